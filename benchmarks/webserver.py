"""The webserver: run-event subscriptions, the runs query and the asset graph, each measured
next to what it wraps, in the same run.

Workloads:

    events      A 10,000-step run's events (STEP_START, STEP_OUTPUT, HANDLED_OUTPUT and
                STEP_SUCCESS per step, ~40,000 rows) stored in SQLite, then read three ways:
                `floor`: the storage reads alone (`get_events`, pages of 5,000);
                `json`: the `pipelineRunLogs` subscription over a `graphql-transport-ws`
                websocket, selecting `messagesJson`; `typed`: the same selecting typed
                `messages { ... on MessageEvent { eventType stepKey timestamp } }`.
                Target: json at most 2x floor.
    runs        N stored runs (default 100,000; a third SUCCESS, a third FAILURE, a third
                CANCELED, over 10 job names). A page of 50 runs filtered by job and status,
                at random cursors: the storage query (`get_runs`) against `runsOrError` over
                HTTP. p50 and p95 of Q queries each. Target: runsOrError p95 ≤ 50 ms.
    assets      A code location of 5,000 assets (10 groups, each with up to 3 deps): the
                `assetNodes` query a graph view sends (key, group, kinds, deps, dependents,
                op, jobs). Target: the response under 5 MB.

    python -m benchmarks webserver [--runs N] [--queries Q] [--steps S] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson
import structlog

from dagloom.instance import DagloomInstance
from dagloom.messages import (
    AssetKeyMessage,
    Event,
    EventType,
    HandledOutputData,
    Run,
    RunStatus,
    StepOutputData,
)
from dagloom.messages.rpc import AssetSnapshot, GetSnapshotRequest, LocationSnapshot
from dagloom.storage.base import RunsFilter
from dagloom.webserver import Backend, Webserver

EVENTS_RATIO_TARGET = 2.0
RUNS_P95_TARGET_MS = 50.0
ASSETS_BYTES_TARGET = 5 * 1024 * 1024
PAGE = 50
JOBS = [f"job_{i}" for i in range(10)]
ENDS = [RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED]


class _SnapshotRef:
    """A code location that only answers `GetSnapshot` with a fixed snapshot."""

    def __init__(self, snapshot: LocationSnapshot) -> None:
        self._snapshot = snapshot

    @property
    def actor(self) -> str:
        return self._snapshot.location_name

    async def tell(self, message: Any) -> None:
        raise NotImplementedError("the benchmark location answers asks only")

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - ActorRef.ask takes it
        assert isinstance(message, GetSnapshotRequest)
        return self._snapshot


class _NoCoordinator:
    actor = "run_coordinator"

    async def tell(self, message: Any) -> None:
        raise RuntimeError("the benchmark launches nothing")

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - ActorRef.ask takes it
        raise RuntimeError("the benchmark launches nothing")


def _asset_snapshot(count: int) -> LocationSnapshot:
    rng = random.Random(5)
    assets = []
    for i in range(count):
        deps = [AssetKeyMessage(path=["assets", f"a{j}"]) for j in rng.sample(range(i), min(i, 3))]
        assets.append(
            AssetSnapshot(
                key=AssetKeyMessage(path=["assets", f"a{i}"]),
                group_name=f"group_{i % 10}",
                description=f"asset number {i}",
                kinds=["python"],
                deps=deps,
                op_name=f"a{i}",
                job_names=["__ASSET_JOB"],
            )
        )
    return LocationSnapshot(location_name="bench", assets=assets, loaded_at=time.time())


async def _seed_events(instance: DagloomInstance, steps: int) -> str:
    run = await instance.create_run(Run(job_name="wide", status=RunStatus.NOT_STARTED))
    now = time.time()

    def event(kind: EventType, step: str = "", **data: Any) -> Event:
        return Event(
            run_id=run.run_id,
            event_type=kind,
            timestamp=now,
            job_name="wide",
            step_key=step,
            message=f"{kind.name} {step}".strip(),
            **data,
        )

    await instance.transition_run(run.run_id, event(EventType.RUN_STARTING))
    await instance.transition_run(run.run_id, event(EventType.RUN_START))
    batch: list[Event] = []
    for i in range(steps):
        step = f"op_{i}"
        batch += [
            event(EventType.STEP_START, step),
            event(EventType.STEP_OUTPUT, step, step_output=StepOutputData(output_name="result")),
            event(
                EventType.HANDLED_OUTPUT,
                step,
                handled_output=HandledOutputData(output_name="result", manager_key="io_manager"),
            ),
            event(EventType.STEP_SUCCESS, step),
        ]
        if len(batch) >= 2000:
            await instance.store_events(batch)
            batch = []
    await instance.store_events(batch)
    await instance.transition_run(run.run_id, event(EventType.RUN_SUCCESS))
    return run.run_id


async def _seed_runs(instance: DagloomInstance, count: int) -> None:
    now = time.time() - count

    async def add(start: int, stop: int) -> None:
        for i in range(start, stop):
            await instance.create_run(
                Run(
                    job_name=JOBS[i % len(JOBS)],
                    status=ENDS[i % len(ENDS)],
                    create_time=now + i,
                    start_time=now + i,
                    end_time=now + i + 0.5,
                    tags={"team": f"t{i % 7}"},
                )
            )

    chunk = max(count // 50, 1)
    async with anyio.create_task_group() as tg:
        for start in range(0, count, chunk):
            tg.start_soon(add, start, min(start + chunk, count))


async def _read_all(instance: DagloomInstance, run_id: str) -> int:
    after, total = 0, 0
    while True:
        page = await instance.get_events(run_id, after=after or None, limit=5000)
        if not page:
            return total
        total += len(page)
        after = page[-1].storage_id


async def _subscribe(session: aiohttp.ClientSession, url: str, query: str, run_id: str) -> int:
    received = 0
    async with session.ws_connect(url, protocols=["graphql-transport-ws"], max_msg_size=0) as ws:
        await ws.send_json({"type": "connection_init"})
        while (await ws.receive_json())["type"] != "connection_ack":
            pass
        payload = {"query": query, "variables": {"id": run_id}}
        await ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        async for message in ws:
            body = orjson.loads(message.data)
            if body["type"] == "next":
                logs = body["payload"]["data"]["pipelineRunLogs"]
                received += len(logs.get("messagesJson") or logs.get("messages") or [])
            elif body["type"] == "complete":
                return received
            elif body["type"] != "ka":
                raise RuntimeError(body)
    return received


JSON_QUERY = (
    "subscription($id: ID!) { pipelineRunLogs(runId: $id) {"
    " ... on PipelineRunLogsSubscriptionSuccess { messagesJson } } }"
)
TYPED_QUERY = (
    "subscription($id: ID!) { pipelineRunLogs(runId: $id) {"
    " ... on PipelineRunLogsSubscriptionSuccess { messages {"
    " ... on MessageEvent { eventType stepKey timestamp } } } } }"
)
RUNS_QUERY = (
    "query($f: RunsFilter, $c: String, $l: Int) { runsOrError(filter: $f, cursor: $c, limit: $l)"
    " { ... on Runs { results { runId status jobName startTime endTime tags { key value } } } } }"
)
ASSETS_QUERY = (
    "{ assetNodes { id assetKey { path } groupName kinds opName jobNames"
    " dependencyKeys { path } dependedByKeys { path } } }"
)


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = await fn(*args)
    return time.perf_counter() - start, value


async def bench(steps: int, runs: int, queries: int, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "dagloom.yaml").write_text("")
        async with DagloomInstance.open(home) as instance, anyio.create_task_group() as tg:
            snapshot = _asset_snapshot(5000)
            backend = Backend(instance, _NoCoordinator(), {"bench": _SnapshotRef(snapshot)})
            server = Webserver(backend, port=0, graphiql=False)
            address = await tg.start(server.run)
            url = f"http://{address}/graphql"
            async with aiohttp.ClientSession() as session:
                print(f"seeding a {steps}-step run ...", file=sys.stderr, flush=True)
                run_id = await _seed_events(instance, steps)
                stored = await _read_all(instance, run_id)
                floor, json_s, typed = [], [], []
                for _ in range(repeats):
                    seconds, n = await _timed(_read_all, instance, run_id)
                    assert n == stored
                    floor.append(seconds)
                    seconds, n = await _timed(_subscribe, session, url, JSON_QUERY, run_id)
                    assert n == stored, (n, stored)
                    json_s.append(seconds)
                    seconds, n = await _timed(_subscribe, session, url, TYPED_QUERY, run_id)
                    assert n == stored
                    typed.append(seconds)
                out["events"] = {
                    "events": stored,
                    "floor_s": statistics.median(floor),
                    "json_s": statistics.median(json_s),
                    "typed_s": statistics.median(typed),
                }

                print(f"seeding {runs} runs ...", file=sys.stderr, flush=True)
                await _seed_runs(instance, runs)
                ids = [r.run_id for r in await instance.get_runs(limit=runs)]
                rng = random.Random(7)
                storage_ms, graphql_ms = [], []
                for _ in range(queries):
                    job = rng.choice(JOBS)
                    status = rng.choice(ENDS)
                    cursor = rng.choice(ids)
                    filters = RunsFilter(job_name=job, statuses=[status])
                    start = time.perf_counter()
                    page = await instance.get_runs(filters, limit=PAGE, cursor=cursor)
                    seconds = time.perf_counter() - start
                    storage_ms.append(seconds * 1000)
                    variables = {
                        "f": {"pipelineName": job, "statuses": [status.name]},
                        "c": cursor,
                        "l": PAGE,
                    }
                    start = time.perf_counter()
                    async with session.post(
                        url, json={"query": RUNS_QUERY, "variables": variables}
                    ) as r:
                        body = await r.json()
                    graphql_ms.append((time.perf_counter() - start) * 1000)
                    results = body["data"]["runsOrError"]["results"]
                    assert [x["runId"] for x in results] == [p.run_id for p in page]
                out["runs"] = {
                    "runs": runs,
                    "storage_p50_ms": _pct(storage_ms, 0.5),
                    "storage_p95_ms": _pct(storage_ms, 0.95),
                    "graphql_p50_ms": _pct(graphql_ms, 0.5),
                    "graphql_p95_ms": _pct(graphql_ms, 0.95),
                }

                start = time.perf_counter()
                async with session.post(url, json={"query": ASSETS_QUERY}) as r:
                    raw = await r.read()
                seconds = time.perf_counter() - start
                nodes = json.loads(raw)["data"]["assetNodes"]
                assert len(nodes) == 5000
                out["assets"] = {"assets": 5000, "bytes": len(raw), "seconds": seconds}
            tg.cancel_scope.cancel()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks webserver")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the figures to this file")
    ns = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    out = anyio.run(bench, ns.steps, ns.runs, ns.queries, ns.repeats)

    events, runs, assets = out["events"], out["runs"], out["assets"]
    ratio = events["json_s"] / events["floor_s"]
    typed_ratio = events["typed_s"] / events["floor_s"]
    rows = [
        ("events: storage reads (floor)", f"{events['floor_s'] * 1000:.0f} ms", "", ""),
        (
            "events: subscription, messagesJson",
            f"{events['json_s'] * 1000:.0f} ms",
            f"{ratio:.2f}x",
            "PASS" if ratio <= EVENTS_RATIO_TARGET else "MISS",
        ),
        (
            "events: subscription, typed messages",
            f"{events['typed_s'] * 1000:.0f} ms",
            f"{typed_ratio:.2f}x",
            "",
        ),
        (
            "runs: get_runs p50 / p95",
            f"{runs['storage_p50_ms']:.1f} / {runs['storage_p95_ms']:.1f} ms",
            "",
            "",
        ),
        (
            "runs: runsOrError p50 / p95",
            f"{runs['graphql_p50_ms']:.1f} / {runs['graphql_p95_ms']:.1f} ms",
            f"{runs['graphql_p95_ms'] / runs['storage_p95_ms']:.2f}x",
            "PASS" if runs["graphql_p95_ms"] <= RUNS_P95_TARGET_MS else "MISS",
        ),
        (
            "assets: assetNodes of 5,000",
            f"{assets['bytes'] / 1e6:.2f} MB in {assets['seconds'] * 1000:.0f} ms",
            "",
            "PASS" if assets["bytes"] < ASSETS_BYTES_TARGET else "MISS",
        ),
    ]
    print(
        f"{events['events']} events of a {ns.steps}-step run; {runs['runs']} stored runs; "
        f"pages of {PAGE}"
    )
    width = max(len(r[0]) for r in rows)
    for name, value, rel, verdict in rows:
        print(f"{name:<{width}}  {value:>22}  {rel:>7}  {verdict}")
    if ns.json:
        Path(ns.json).write_text(json.dumps(out, indent=2))
    return 0
