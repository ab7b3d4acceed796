"""Auth: what a token check and TLS add to a public-API call, against the same call on the
same node with neither, in one run.

One node (`run_node`, in this process, SQLite in a fresh home) serves the API; a client in
the same process calls GetRun of a finished run back to back, in rounds that rotate through
the configurations so load on the machine hits each alike:

    plain        auth disabled, plain text: the baseline
    token        auth enabled, a launcher token (verified tokens cached for 5 s)
    token-nocache  auth enabled, every call reads the token from storage
    token+tls    auth enabled and mutual TLS (certificates made with trustme)

The ratio column is each row's p50 over plain's. Target: token p50 <= 1.2x plain.

With `--webserver` the same is measured for the webserver: a GraphQL `runOrError` POST
(aiohttp client, one keep-alive connection) with auth disabled over HTTP (the baseline), with
a Bearer token, with the token re-read from storage on every request, and with a token
over HTTPS (`tls: {cert, key}`).

    python -m benchmarks auth [--webserver] [--calls N] [--rounds R] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

DEFS = Path(__file__).resolve().parent.parent / "tests" / "integration" / "defs.py"
TARGET = 1.2
CONFIGS = ("plain", "token", "token-nocache", "token+tls")


@asynccontextmanager
async def _node(kind: str, home: Path) -> AsyncIterator[tuple[Any, str, Any]]:
    import trustme

    from dagloom.api import AsyncClient
    from dagloom.auth import Role, TlsConfig, new_token
    from dagloom.instance import DagloomInstance
    from dagloom.topology import parse_topology
    from dagloom.topology.security import token_storage
    from dagloom.topology.wiring import run_node

    config: dict[str, Any] = {"storage": {"sqlite": {}}}
    client_tls = None
    if kind != "plain":
        config["auth"] = {"enabled": True}
    if kind == "token-nocache":
        config["auth"]["token_cache_seconds"] = 0
    if kind == "token+tls":
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        leaf.private_key_pem.write_to_path(str(home / "key.pem"))
        leaf.cert_chain_pems[0].write_to_path(str(home / "cert.pem"))
        ca.cert_pem.write_to_path(str(home / "ca.pem"))
        config["tls"] = {"cert": "cert.pem", "key": "key.pem", "ca": "ca.pem"}
        client_tls = TlsConfig(
            cert=str(home / "cert.pem"), key=str(home / "key.pem"), ca=str(home / "ca.pem")
        )
    topology = parse_topology(
        {
            "locations": {"suite": {"python_file": str(DEFS)}},
            "nodes": {
                "one": {
                    "api": {"port": 0},
                    "coordinator": {},
                    "launcher": {"kind": "in_process"},
                    "code_locations": ["suite"],
                }
            },
        }
    )
    async with (
        DagloomInstance.from_config(config, home=home) as instance,
        anyio.create_task_group() as tg,
    ):
        token = None
        if kind != "plain":
            stored, token = new_token("bench", Role.LAUNCHER, now=time.time())
            await token_storage(instance).add_api_token(stored)
        node = await tg.start(functools.partial(run_node, topology, "one", instance=instance))
        async with AsyncClient.connect(node.api_address, token=token, tls=client_tls) as c:
            run = await c.wait_for_run((await c.launch_run("failing_job")).run_id)
            yield c, run.run_id, node
        tg.cancel_scope.cancel()


async def _measure(calls: int, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for kind in CONFIGS:
                home = Path(tmp) / f"{kind}-{r}"
                home.mkdir()
                async with _node(kind, home) as (client, run_id, _):
                    for _ in range(20):  # warm the connection and caches
                        await client.get_run(run_id)
                    for _ in range(calls):
                        start = time.perf_counter()
                        await client.get_run(run_id)
                        times[kind].append(time.perf_counter() - start)
    return times


NUMBERS = Path(__file__).resolve().parent.parent / "examples" / "numbers.py"
RUN_QUERY = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"


@asynccontextmanager
async def _webserver(kind: str, home: Path) -> AsyncIterator[tuple[Any, str, str, Any]]:
    """(session, base URL, run id, ssl context for the client) of a dev node's webserver."""
    import ssl

    import aiohttp
    import trustme

    from dagloom.auth import Role, new_token
    from dagloom.execution.origin import CodeOrigin
    from dagloom.instance import DagloomInstance
    from dagloom.messages import Run
    from dagloom.topology import dev_topology
    from dagloom.topology.security import token_storage
    from dagloom.topology.wiring import run_node

    config: dict[str, Any] = {"storage": {"sqlite": {}}}
    if kind != "plain":
        config["auth"] = {"enabled": True}
    if kind == "token-nocache":
        config["auth"]["token_cache_seconds"] = 0
    client_ssl: Any = None
    if kind == "token+tls":
        ca = trustme.CA()
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            str(home / "node.pem")
        )
        config["tls"] = {"cert": "node.pem", "key": "node.pem"}
        client_ssl = ssl.create_default_context()
        ca.configure_trust(client_ssl)
    topology = dev_topology(
        {"numbers": CodeOrigin(python_file=str(NUMBERS))},
        grpc_port=None,
        api_port=None,
        reload_on_change=False,
        daemon=False,
        webserver_port=0,
    )
    async with (
        DagloomInstance.from_config(config, home=home) as instance,
        anyio.create_task_group() as tg,
    ):
        headers = {}
        if kind != "plain":
            stored, token = new_token("bench", Role.VIEWER, now=time.time())
            await token_storage(instance).add_api_token(stored)
            headers["Authorization"] = f"Bearer {token}"
        run = await instance.create_run(Run(job_name="process_numbers"))
        node = await tg.start(functools.partial(run_node, topology, "dev", instance=instance))
        scheme = "https" if client_ssl is not None else "http"
        async with aiohttp.ClientSession(headers=headers) as session:
            yield session, f"{scheme}://{node.webserver_address}", run.run_id, client_ssl
        tg.cancel_scope.cancel()


async def _measure_webserver(calls: int, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for kind in CONFIGS:
                home = Path(tmp) / f"web-{kind}-{r}"
                home.mkdir()
                async with _webserver(kind, home) as (session, url, run_id, context):
                    body = {"query": RUN_QUERY, "variables": {"id": run_id}}

                    async def one(body: dict[str, Any] = body) -> None:
                        async with session.post(
                            f"{url}/graphql", json=body, ssl=context or True
                        ) as response:
                            answer = await response.json()
                            assert answer["data"]["runOrError"]["__typename"] == "Run", answer

                    for _ in range(20):
                        await one()
                    for _ in range(calls):
                        start = time.perf_counter()
                        await one()
                        times[kind].append(time.perf_counter() - start)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks auth", description=__doc__)
    parser.add_argument("--calls", type=int, default=500, help="GetRun calls per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument(
        "--webserver", action="store_true", help="measure GraphQL on the webserver instead"
    )
    ns = parser.parse_args(argv)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    measure = _measure_webserver if ns.webserver else _measure
    times = anyio.run(measure, ns.calls, ns.rounds)
    base = statistics.median(times["plain"])
    rows = []
    print(f"{'config':<15}{'calls':>7}{'p50 ms':>9}{'p99 ms':>9}{'p50 ratio':>11}")
    for kind in CONFIGS:
        values = sorted(times[kind])
        p50 = statistics.median(values)
        p99 = values[int(len(values) * 0.99) - 1]
        rows.append({"config": kind, "calls": len(values), "p50_s": p50, "p99_s": p99})
        print(f"{kind:<15}{len(values):>7}{p50 * 1e3:>9.3f}{p99 * 1e3:>9.3f}{p50 / base:>10.2f}x")
    token_ratio = statistics.median(times["token"]) / base
    verdict = "PASS" if token_ratio <= TARGET else "MISSED"
    print(f"target: token p50 <= {TARGET}x plain: {token_ratio:.2f}x {verdict}")
    if ns.json:
        Path(ns.json).write_text(json.dumps(rows, indent=2))
    return 0
