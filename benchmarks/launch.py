"""Launch latency: submit to RUN_SUCCESS of a one-op job, for each launcher, with the
actors on the memory transport (one process) and split over gRPC (three processes).

Workloads are named `<launcher>/<transport>`:

    <launcher>/memory   one process: API (called in-process), coordinator, launcher and
                        code location on the memory transport, SQLite under a temp dir
    <launcher>/grpc     three `dagloom serve` processes (control: API + coordinator +
                        launcher; code: the code location; workers: a worker pool) over
                        gRPC on 127.0.0.1 and one SQLite file; the benchmark is a client of
                        the public API

Launchers: `in_process` (a worker in the launcher's loop), `subprocess` (a process per
run), `warm_pool` (worker processes started once, beside the launcher), and
`worker_pool` (run workers on the topology's worker node; in memory, beside the rest).

Each run is timed from `LaunchRun` until the client has seen RUN_SUCCESS in the run's
event stream (`AsyncClient.launch_run` + `wait_for_run`). Watchers of a SQLite file in
another process poll it (every 2 ms here; nothing notifies across processes on SQLite), so
part of a `/grpc` latency is that poll. The `ask_*` rows are `benchmarks.transport`'s
round trips, measured in the same run. `peak_rss_mb` is the measuring process's (the
client's, for `/grpc`). Targets (medians): warm_pool/grpc <= 10 ms, in_process/memory
<= 5 ms, each printed PASS or MISSED; the load average is printed with the figures.

    python -m benchmarks launch [--runs N] [--workload W ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import yaml

from benchmarks import transport

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFS = Path(__file__).with_name("_launch_defs.py")
LAUNCHERS = ("in_process", "worker_pool", "warm_pool", "subprocess")
TRANSPORTS = ("memory", "grpc")
WORKLOADS = tuple(f"{launcher}/{t}" for launcher in LAUNCHERS for t in TRANSPORTS)
DEFAULT_RUNS = {"subprocess": 20}
"""Runs timed per workload unless --runs says; a subprocess launch starts an interpreter."""
RUNS = 200
WARMUP = 5
POLL_SECONDS = 0.002
TARGETS = {"warm_pool/grpc": 0.010, "in_process/memory": 0.005}
"""Median targets (seconds): warm-pool launch across processes, in-process launch."""

Launch = Callable[[], Awaitable[str]]


def _topology(home: Path, launcher: str, *, split: bool) -> dict[str, Any]:
    location = {"one": {"python_file": str(DEFS)}}
    control: dict[str, Any] = {
        "coordinator": {},
        "launcher": {"kind": launcher, "size": 2},
        "api": {"port": _free_port() if split else None},
    }
    if not split:
        control["code_locations"] = ["one"]
        if launcher == "worker_pool":
            control["worker_pool"] = {"workers": 2}
        return {"instance": {"home": str(home)}, "locations": location, "nodes": {"all": control}}
    control["grpc_port"] = _free_port()
    nodes = {
        "control": control,
        "code": {"grpc_port": _free_port(), "code_locations": ["one"]},
        "workers": {"grpc_port": _free_port(), "worker_pool": {"workers": 2}},
    }
    return {"instance": {"home": str(home)}, "locations": location, "nodes": nodes}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _home(root: Path) -> Path:
    home = root / "home"
    home.mkdir()
    (home / "dagloom.yaml").write_text(
        yaml.safe_dump({"storage": {"sqlite": {"poll_interval_seconds": POLL_SECONDS}}})
    )
    return home


async def _one_run(client: Any) -> str:
    from dagloom.messages import RunStatus

    run = await client.launch_run("one_op", location_name="one")
    done = await client.wait_for_run(run.run_id)
    if done.status != RunStatus.SUCCESS:
        raise RuntimeError(f"run {run.run_id} ended {done.status.name}")
    return str(run.run_id)


@asynccontextmanager
async def _memory(launcher: str, root: Path) -> AsyncIterator[Launch]:
    from dagloom.api import AsyncClient
    from dagloom.topology import parse_topology
    from dagloom.topology.wiring import run_node

    topology = parse_topology(_topology(_home(root), launcher, split=False))
    async with anyio.create_task_group() as tg:
        node = await tg.start(functools.partial(run_node, topology, "all"))
        client = AsyncClient.in_process(node.api)
        yield functools.partial(_one_run, client)
        tg.cancel_scope.cancel()


def _start_node(topology: Path, name: str, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "dagloom.cli", "serve", "-t", str(topology), "-n", name]
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


@asynccontextmanager
async def _grpc(launcher: str, root: Path) -> AsyncIterator[Launch]:
    from dagloom.actors import HealthReporter
    from dagloom.api import AsyncClient
    from dagloom.errors import ActorUnavailableError
    from dagloom.messages.rpc import PingRequest
    from dagloom.transport import GrpcTransport

    data = _topology(_home(root), launcher, split=True)
    path = root / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    children: list[subprocess.Popen[bytes]] = []
    transport = GrpcTransport()
    try:
        for name in ("code", "workers", "control"):
            children.append(_start_node(path, name, root / f"{name}.log"))
        for name, child in zip(("code", "workers", "control"), children, strict=True):
            port = data["nodes"][name]["grpc_port"]
            ref = transport.ref(HealthReporter, name="health", address=f"127.0.0.1:{port}")
            with anyio.fail_after(120):
                while True:
                    if child.poll() is not None:
                        log_text = (root / f"{name}.log").read_text(errors="replace")
                        raise RuntimeError(f"node {name} exited:\n{log_text}")
                    try:
                        reply = await ref.ask(PingRequest(), timeout=5)
                    except (ActorUnavailableError, TimeoutError):
                        await anyio.sleep(0.05)  # a poll interval: another process starting
                        continue
                    if all(a.ready for a in reply.actors):
                        break
        api = f"127.0.0.1:{data['nodes']['control']['api']['port']}"
        async with AsyncClient.connect(api) as client:
            yield functools.partial(_one_run, client)
    finally:
        transport.close()
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


async def measure(workload: str, runs: int) -> list[float]:
    """Submit-to-success latencies of `runs` runs of `workload`, after a warm-up."""
    launcher, kind = workload.split("/")
    clock = time.perf_counter
    with tempfile.TemporaryDirectory(prefix="dagloom-launch-") as tmp:
        setup = _memory if kind == "memory" else _grpc
        async with setup(launcher, Path(tmp)) as launch:
            for _ in range(WARMUP):
                await launch()
            times = []
            for _ in range(runs):
                start = clock()
                await launch()
                times.append(clock() - start)
    return times


def run_one(workload: str, runs: int) -> dict[str, Any]:
    """Measure `workload` in a fresh interpreter and return its record."""
    command = [sys.executable, "-m", "benchmarks.launch", "--one", workload, "--runs", str(runs)]
    env = {**os.environ, "DAGLOOM_STRICT_MESSAGES": "0"}
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"{workload} failed:\n{done.stderr.strip()[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def print_table(results: Sequence[dict[str, Any]]) -> None:
    header = ("workload", "system", "n", "median_ms", "p95_ms", "peak_rss_mb", "target")
    rows = [header]
    for r in results:
        target = TARGETS.get(r["workload"])
        verdict = ""
        if target is not None:
            met = "PASS" if r["median_s"] <= target else "MISSED"
            verdict = f"<= {target * 1e3:g} ms: {met}"
        rows.append(
            (
                r["workload"],
                r["system"],
                str(r["calls"]),
                f"{r['median_s'] * 1e3:.3f}",
                f"{r['p95_s'] * 1e3:.3f}",
                f"{r['peak_rss_mb']:.1f}",
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks launch",
        description="submit-to-RUN_SUCCESS latency per launcher and transport, and ask latency",
    )
    parser.add_argument("--runs", type=int, help=f"runs timed per workload (default {RUNS})")
    parser.add_argument(
        "--workload", action="append", choices=WORKLOADS, help="run only this one (repeatable)"
    )
    parser.add_argument("--no-ask", action="store_true", help="skip the ask round-trip rows")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows here")
    parser.add_argument("--one", metavar="WORKLOAD", help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)

    if ns.one:
        import logging

        import structlog

        # As a `dagloom serve` node logs: info lines to stderr, debug ones left out.
        structlog.configure(
            logger_factory=lambda *_: structlog.PrintLogger(file=sys.stderr),
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        )
        times = anyio.run(measure, ns.one, ns.runs or RUNS, backend="asyncio")
        print(json.dumps(transport.record(ns.one, "dagloom", times)))
        return 0

    results: list[dict[str, Any]] = []
    failed = 0
    for workload in ns.workload or WORKLOADS:
        runs = ns.runs or DEFAULT_RUNS.get(workload.split("/")[0], RUNS)
        try:
            results.append(run_one(workload, runs))
        except RuntimeError as exc:
            # Keep going: one broken launcher should not hide the others' numbers.
            failed += 1
            print(exc, file=sys.stderr)
    if not ns.no_ask:
        for workload in ("ask_memory", "ask_grpc_child_process"):
            calls = transport.DEFAULT_CALLS["grpc" if "grpc" in workload else "memory"]
            for system in transport.SYSTEMS:
                results.append(transport.run_one(workload, system, calls))
    print(f"submit to RUN_SUCCESS per launcher; load average {_load()}")
    print_table(results)
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
