"""Service path: one-op runs through the public API of `dagloom dev`, against the same job's
`execute_in_process_async` in the same process, measured in one run.

The benchmark starts `dagloom dev -f benchmarks/_launch_defs.py` (every actor in one
process; runs launched in-process; SQLite in a fresh `$DAGLOOM_HOME`) and is a client of
its public gRPC API from this process, as a user's script would be. Each run is a
`launch_run` followed by `wait_for_run` (its event stream until RUN_SUCCESS, then GetRun).

    in_process     baseline: `one_op.execute_in_process_async()` on a SQLite instance in
                   this process, back to back
    api_1          the API, one run in flight at a time: latency submit -> success
    api_20         the API, 20 runs in flight (20 clients' loops over one channel):
                   runs per second

Targets: api_20 >= 300 runs/s; api_1 p50 <= 5 ms. The p50 ratio column is each row's
median latency over the baseline's. cpu_ms/run is the CPU time (user + system) of the
process doing the work per run: the dev server for the API rows (the client's own is not
counted), this process for the baseline; unlike latency it barely moves with load from
other work on the machine, and its ratio says what the service path costs beyond the run.
The load average is printed with the figures: the machine may be shared.

    python -m benchmarks service [--runs N] [--in-flight K] [--json PATH] [--profile PATH]

With `--profile PATH` the dev server runs under cProfile (by its event loop thread's CPU
time, see `benchmarks/_profiled.py`) and writes its profile to PATH as it stops: read it with
`python -m pstats PATH`. The profiler slows the server several times over, so the figures
of such a run measure the profiler too; the profile tells where the loop's time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks.responsiveness import START_TIMEOUT, stop_dev

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFS = Path(__file__).with_name("_launch_defs.py")
LOCATION = DEFS.stem
RUNS = 500
IN_FLIGHT = 20
WARMUP = 20
TARGET_RATE = 300.0
TARGET_P50 = 0.005


def start_dev(home: Path, profile: Path | None = None) -> tuple[Any, str]:
    """`dagloom dev` on the one-op job with its API on a free port; it and the address.
    With `profile`, the server runs under cProfile and writes its profile there on exit."""
    import subprocess

    runner = ["-m", "dagloom.cli"]
    if profile is not None:
        runner = ["-m", "benchmarks._profiled", str(profile.resolve())]
    command = [
        sys.executable,
        *runner,
        "dev",
        "-f",
        str(DEFS),
        "--host",
        "127.0.0.1",
        "--api-port",
        "0",
        "--grpc-port",
        "0",
        "--no-reload",
    ]
    env = {**os.environ, "DAGLOOM_HOME": str(home)}
    log = (home / "dev.log").open("w")
    dev = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True
    )
    assert dev.stdout is not None
    address = ""
    deadline = time.monotonic() + START_TIMEOUT
    for line in dev.stdout:
        if "public gRPC API listening on" in line:
            address = line.rsplit(" ", 1)[-1].strip()
        if line.strip().endswith("ready") or time.monotonic() > deadline:
            break
    if not address:
        dev.kill()
        raise RuntimeError(f"dagloom dev did not start:\n{(home / 'dev.log').read_text()}")
    return dev, address


def cpu_seconds(pid: int | None = None) -> float:
    """User plus system CPU seconds of process `pid` (default: this one) so far; a
    measure of the work done per run that load on a shared machine barely moves."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _summary(name: str, latencies: Sequence[float], seconds: float, cpu: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "workload": name,
        "runs": len(ordered),
        "seconds": seconds,
        "per_second": len(ordered) / seconds,
        "p50_s": statistics.median(ordered),
        "p95_s": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "server_cpu_ms_per_run": cpu * 1e3 / len(ordered),
    }


async def measure_in_process(runs: int) -> dict[str, Any]:
    """The baseline: the job executed in this process on a SQLite instance."""
    from benchmarks._launch_defs import one_op
    from dagloom.instance import DagloomInstance

    clock = time.perf_counter
    with tempfile.TemporaryDirectory(prefix="dagloom-service-") as tmp:
        async with DagloomInstance.open(Path(tmp)) as instance:
            for _ in range(WARMUP):
                await one_op.execute_in_process_async(instance=instance)
            latencies = []
            start = clock()
            cpu = cpu_seconds()
            for _ in range(runs):
                began = clock()
                result = await one_op.execute_in_process_async(instance=instance)
                latencies.append(clock() - began)
                if not result.success:
                    raise RuntimeError("the in-process run failed")
            elapsed = clock() - start
            return _summary("in_process", latencies, elapsed, cpu_seconds() - cpu)


async def measure_api(
    address: str, runs: int, in_flight: int, server_pid: int
) -> list[dict[str, Any]]:
    """api_1 and api_<in_flight> against the dev server at `address` (process
    `server_pid`, whose CPU time per run is recorded)."""
    from dagloom.api import AsyncClient
    from dagloom.messages import RunStatus

    clock = time.perf_counter
    async with AsyncClient.connect(address) as client:

        async def one() -> float:
            began = clock()
            run = await client.launch_run("one_op", location_name=LOCATION)
            done = await client.wait_for_run(run.run_id)
            if done.status != RunStatus.SUCCESS:
                raise RuntimeError(f"run {run.run_id} ended {done.status.name}")
            return clock() - began

        for _ in range(WARMUP):
            await one()
        serial = []
        start, cpu = clock(), cpu_seconds(server_pid)
        for _ in range(runs):
            serial.append(await one())
        elapsed = clock() - start
        records = [_summary("api_1", serial, elapsed, cpu_seconds(server_pid) - cpu)]

        concurrent: list[float] = []
        left = runs * 2

        async def loop() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                concurrent.append(await one())

        start, cpu = clock(), cpu_seconds(server_pid)
        async with anyio.create_task_group() as tg:
            for _ in range(in_flight):
                tg.start_soon(loop)
        elapsed = clock() - start
        used = cpu_seconds(server_pid) - cpu
        records.append(_summary(f"api_{in_flight}", concurrent, elapsed, used))
    return records


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def print_table(records: Sequence[dict[str, Any]], in_flight: int) -> None:
    base = next(r for r in records if r["workload"] == "in_process")
    header = (
        "workload",
        "runs",
        "per_s",
        "p50_ms",
        "p95_ms",
        "p50 ratio",
        "cpu_ms/run",
        "cpu ratio",
        "target",
    )
    lines = [header]
    for r in records:
        target = ""
        if r["workload"] == "api_1":
            met = "PASS" if r["p50_s"] <= TARGET_P50 else "MISSED"
            target = f"p50 <= {TARGET_P50 * 1e3:g} ms: {met}"
        elif r["workload"] == f"api_{in_flight}":
            met = "PASS" if r["per_second"] >= TARGET_RATE else "MISSED"
            target = f">= {TARGET_RATE:g} runs/s: {met}"
        lines.append(
            (
                r["workload"],
                str(r["runs"]),
                f"{r['per_second']:.1f}",
                f"{r['p50_s'] * 1e3:.3f}",
                f"{r['p95_s'] * 1e3:.3f}",
                "" if r is base else f"{r['p50_s'] / base['p50_s']:.1f}x",
                f"{r['server_cpu_ms_per_run']:.2f}",
                ""
                if r is base
                else f"{r['server_cpu_ms_per_run'] / base['server_cpu_ms_per_run']:.1f}x",
                target,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks service",
        description="one-op runs through `dagloom dev`'s API vs execute_in_process_async",
    )
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs per row (default {RUNS})")
    parser.add_argument(
        "--in-flight", type=int, default=IN_FLIGHT, help=f"concurrent runs (default {IN_FLIGHT})"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows here")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="PATH",
        help="run the dev server under cProfile and write its profile here",
    )
    ns = parser.parse_args(argv)

    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    baseline = anyio.run(measure_in_process, ns.runs, backend="asyncio")
    with tempfile.TemporaryDirectory(prefix="dagloom-service-") as tmp:
        dev, address = start_dev(Path(tmp), ns.profile)
        try:
            api = anyio.run(measure_api, address, ns.runs, ns.in_flight, dev.pid, backend="asyncio")
        finally:
            stop_dev(dev)
    records = [baseline, *api]
    print(f"one-op runs through `dagloom dev`'s public API; load average {_load()}")
    print_table(records, ns.in_flight)
    if ns.json:
        ns.json.write_text(json.dumps(records, indent=2) + "\n")
    rate = next(r for r in records if r["workload"] == f"api_{ns.in_flight}")
    p50 = next(r for r in records if r["workload"] == "api_1")["p50_s"]
    return 0 if rate["per_second"] >= TARGET_RATE and p50 <= TARGET_P50 else 1


if __name__ == "__main__":
    sys.exit(main())
