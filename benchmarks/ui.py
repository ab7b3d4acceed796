"""The web UI in Debian's chromium (Playwright), each page timed next to a bare GraphQL
request for the same data, in the same run.

Workloads:

    assets-N    A code location of N assets (10 groups, up to 3 deps each; N = 500, 2,000,
                5,000): from navigation to `/assets` until the graph is laid out (dagre in
                a Web Worker) and drawn as SVG with every asset's status mark, and one more
                animation frame has run (the page answers input). Half the assets are
                materialized. Floor: the UI's own two queries (`repositoriesOrError` for
                the graph, `assetsLatestInfo` for the marks), sent together over HTTP.
                Target for 5,000: at most 3x its fetch.
    run         A 10,000-step run's ~40,000 events: from navigation to `/runs/<id>` until
                the event log holds them all and the timeline has every step. Floor: the
                same `pipelineRunLogs` subscription (`messagesJson`) read by a bare client.

    python -m benchmarks ui [--sizes 500,2000,5000] [--steps S] [--repeats R] [--json PATH]
    python -m benchmarks ui --server-only [--sizes ...] [--repeats R]

`--server-only` times the server side alone, without a browser: the asset graph's two
queries sent together (the floor above) and `assetsLatestInfo` (the status marks) alone.

Needs the built bundle (`npm run build` in ui/), the `playwright` package and chromium
(`DAGLOOM_CHROMIUM`, default /usr/bin/chromium). Not a test: it asserts no times.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import structlog

from benchmarks.webserver import (
    JSON_QUERY,
    _asset_snapshot,
    _NoCoordinator,
    _seed_events,
    _SnapshotRef,
    _subscribe,
)
from dagloom.instance import DagloomInstance
from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    Event,
    EventType,
    Run,
    RunStatus,
)
from dagloom.webserver import Backend, Webserver

CHROMIUM = os.environ.get("DAGLOOM_CHROMIUM", "/usr/bin/chromium")
GRAPH_RATIO_TARGET = 3.0

# The queries the Assets page sends at once (ui/src/pages/Assets.tsx, ui/src/latest.ts), so
# the floor fetches what the page fetches.
UI_ASSETS_QUERY = """{ repositoriesOrError { ... on RepositoryConnection {
  nodes { name location { name } assetNodes { id assetKey { path } groupName description kinds
    jobNames repositoryLocationName dependencyKeys { path } } } } } }"""
UI_LATEST_QUERY = (
    "{ assetsLatestInfo(assetKeys: []) { id status latestMaterialization { timestamp } } }"
)

NEXT_FRAME = "() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))"


async def _post(session: aiohttp.ClientSession, url: str, query: str) -> None:
    async with session.post(url, json={"query": query}) as response:
        body = await response.json()
    assert "errors" not in body, body["errors"]


async def _fetch(session: aiohttp.ClientSession, url: str) -> float:
    """Both of the page's queries, sent together as the page sends them."""
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_post, session, url, UI_ASSETS_QUERY)
        tg.start_soon(_post, session, url, UI_LATEST_QUERY)
    return time.perf_counter() - start


async def _seed_materializations(instance: DagloomInstance, count: int) -> None:
    """One run that materialized every other asset, so the graph has each kind of mark."""
    run = await instance.create_run(Run(job_name="__ASSET_JOB", status=RunStatus.NOT_STARTED))
    now = time.time()
    await instance.store_events(
        [
            Event(
                run_id=run.run_id,
                event_type=EventType.ASSET_MATERIALIZATION,
                timestamp=now,
                job_name="__ASSET_JOB",
                step_key=f"a{i}",
                asset_materialization=AssetMaterializationData(
                    asset_key=AssetKeyMessage(path=["assets", f"a{i}"])
                ),
            )
            for i in range(0, count, 2)
        ]
    )


async def _graph(page: Any, base: str, count: int) -> float:
    start = time.perf_counter()
    await page.goto(f"{base}/assets")
    await page.wait_for_selector("svg.graph-svg[data-drawn=true]", timeout=600_000)
    await page.wait_for_selector("[data-latest=true]", timeout=600_000)
    await page.evaluate(NEXT_FRAME)
    seconds = time.perf_counter() - start
    drawn = await page.locator("[data-node]").count()
    assert drawn == count, (drawn, count)
    return seconds


async def _run_page(page: Any, base: str, run_id: str, events: int, steps: int) -> float:
    start = time.perf_counter()
    await page.goto(f"{base}/runs/{run_id}")
    await page.wait_for_function(
        f"document.querySelector('[data-events=\"{events}\"]') !== null"
        f" && document.querySelector('.gantt[data-steps=\"{steps}\"]') !== null",
        timeout=600_000,
        polling=50,
    )
    await page.evaluate(NEXT_FRAME)
    return time.perf_counter() - start


async def bench(sizes: list[int], steps: int, repeats: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    out: dict[str, Any] = {"graphs": [], "run": None}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "dagloom.yaml").write_text("")
        async with (
            DagloomInstance.open(home) as instance,
            async_playwright() as p,
            aiohttp.ClientSession() as session,
        ):
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await _seed_materializations(instance, max(sizes))
            for count in sizes:
                backend = Backend(
                    instance, _NoCoordinator(), {"bench": _SnapshotRef(_asset_snapshot(count))}
                )
                async with anyio.create_task_group() as tg:
                    address = await tg.start(Webserver(backend, port=0, graphiql=False).run)
                    base = f"http://{address}"
                    fetch, draw = [], []
                    print(f"assets-{count} ...", file=sys.stderr, flush=True)
                    for _ in range(repeats):
                        fetch.append(await _fetch(session, f"{base}/graphql"))
                        draw.append(await _graph(page, base, count))
                    out["graphs"].append(
                        {
                            "assets": count,
                            "fetch_s": statistics.median(fetch),
                            "ui_s": statistics.median(draw),
                        }
                    )
                    if count == sizes[-1]:
                        print(f"seeding a {steps}-step run ...", file=sys.stderr, flush=True)
                        run_id = await _seed_events(instance, steps)
                        floor, ui = [], []
                        events = 0
                        for _ in range(repeats):
                            start = time.perf_counter()
                            events = await _subscribe(
                                session, f"{base}/graphql", JSON_QUERY, run_id
                            )
                            floor.append(time.perf_counter() - start)
                            ui.append(await _run_page(page, base, run_id, events, steps))
                        out["run"] = {
                            "steps": steps,
                            "events": events,
                            "fetch_s": statistics.median(floor),
                            "ui_s": statistics.median(ui),
                        }
                    tg.cancel_scope.cancel()
            await browser.close()
    return out


async def bench_server(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    """The server side of each asset graph: both queries together, and the marks alone."""
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "dagloom.yaml").write_text("")
        async with DagloomInstance.open(home) as instance, aiohttp.ClientSession() as session:
            await _seed_materializations(instance, max(sizes))
            for count in sizes:
                backend = Backend(
                    instance, _NoCoordinator(), {"bench": _SnapshotRef(_asset_snapshot(count))}
                )
                async with anyio.create_task_group() as tg:
                    address = await tg.start(Webserver(backend, port=0, graphiql=False).run)
                    url = f"http://{address}/graphql"
                    await _fetch(session, url)  # warm: the snapshot's first read
                    both, latest = [], []
                    for _ in range(repeats):
                        both.append(await _fetch(session, url))
                        start = time.perf_counter()
                        await _post(session, url, UI_LATEST_QUERY)
                        latest.append(time.perf_counter() - start)
                    out.append(
                        {
                            "assets": count,
                            "fetch_s": statistics.median(both),
                            "latest_s": statistics.median(latest),
                        }
                    )
                    tg.cancel_scope.cancel()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks ui")
    parser.add_argument("--sizes", default="500,2000,5000")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--server-only", action="store_true", help="no browser: the queries")
    ns = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sizes = [int(s) for s in ns.sizes.split(",") if s.strip()]
    if ns.server_only:
        figures = anyio.run(bench_server, sizes, ns.repeats)
        print(f"{'assets':>6}  {'both queries':>12}  {'assetsLatestInfo':>16}")
        for g in figures:
            print(
                f"{g['assets']:>6}  {g['fetch_s'] * 1000:>9.0f} ms"
                f"  {g['latest_s'] * 1000:>13.0f} ms"
            )
        if ns.json:
            Path(ns.json).write_text(json.dumps(figures, indent=2))
        return 0
    out = anyio.run(bench, sizes, ns.steps, ns.repeats)

    rows = []
    for g in out["graphs"]:
        ratio = g["ui_s"] / g["fetch_s"]
        verdict = ""
        if g["assets"] == 5000:
            verdict = "PASS" if ratio <= GRAPH_RATIO_TARGET else "MISS"
        rows.append(
            (
                f"asset graph, {g['assets']} assets",
                f"{g['fetch_s'] * 1000:.0f} ms",
                f"{g['ui_s'] * 1000:.0f} ms",
                f"{ratio:.1f}x",
                verdict,
            )
        )
    run = out["run"]
    if run:
        rows.append(
            (
                f"run page, {run['steps']} steps ({run['events']} events)",
                f"{run['fetch_s'] * 1000:.0f} ms",
                f"{run['ui_s'] * 1000:.0f} ms",
                f"{run['ui_s'] / run['fetch_s']:.1f}x",
                "",
            )
        )
    width = max(len(r[0]) for r in rows)
    print(f"{'':<{width}}  {'fetch':>9}  {'UI':>9}  {'ratio':>6}")
    for name, fetch, ui, ratio, verdict in rows:
        print(f"{name:<{width}}  {fetch:>9}  {ui:>9}  {ratio:>6}  {verdict}")
    if ns.json:
        Path(ns.json).write_text(json.dumps(out, indent=2))
    return 0
