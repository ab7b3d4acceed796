"""The compute-logs suite: what capturing steps' stdout/stderr costs the executor.

Each workload runs on a durable SQLite instance three ways, in one process that alternates
them run by run (so load that comes and goes on a shared machine falls on each alike; the
console is /dev/null for all three):

- `floor`: `compute_logs: NoOpComputeLogManager` (nothing captured; the baseline);
- `local`: the default `LocalComputeLogManager`, echo to the console off;
- `local-echo`: the same with echo on (output goes to the log file and the console).

Workloads (`n_steps` in brackets):

- `chain-500` [500]: sync ops in a line that print nothing (the cost of capture alone);
- `chain-500-print` [500]: the same, each op printing one line;
- `fan-500-async-print` [502]: 500 async ops printing one line each, concurrently.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import anyio

import dagloom as dg
from benchmarks._common import (
    FLOOR,
    Result,
    Target,
    peak_rss_mb,
    print_table,
    summarize,
    write_json,
)

SUITE = "compute_logs"
LOCAL = "local"
LOCAL_ECHO = "local-echo"
SYSTEMS = (FLOOR, LOCAL, LOCAL_ECHO)
WORKLOADS = ("chain-500", "chain-500-print", "fan-500-async-print")
TARGETS = (
    Target("chain-500", "<=1.1x no capture", max_ratio=1.1, system=LOCAL),
    Target("chain-500", "<=1.1x no capture", max_ratio=1.1, system=LOCAL_ECHO),
)
REPETITIONS = (21, 5)  # runs per system, alternating
N = 500


@dg.op
def first() -> int:
    return 0


@dg.op
def step(x: int) -> int:
    return x + 1


@dg.op
def first_printing() -> int:
    print("step 0")
    return 0


@dg.op
def step_printing(x: int) -> int:
    print(f"step {x + 1}")
    return x + 1


@dg.op
async def source() -> int:
    return 1


@dg.op
async def middle_printing(x: int) -> int:
    print(f"middle got {x}")
    return x


@dg.op
def total(xs: list[int]) -> int:
    return sum(xs)


def _chain(printing: bool) -> dg.JobDefinition:
    head, body = (first_printing, step_printing) if printing else (first, step)

    @dg.job(name="chain_print" if printing else "chain")
    def chain() -> None:
        value = head()
        for i in range(N - 1):
            value = body.alias(f"step_{i}")(value)

    return chain


def _fan() -> dg.JobDefinition:
    @dg.job(name="fan_print")
    def fan() -> None:
        value = source()
        total([middle_printing.alias(f"middle_{i}")(value) for i in range(N)])

    return fan


_JOBS = {
    "chain-500": (lambda: _chain(False), N - 1, f"step_{N - 2}", N),
    "chain-500-print": (lambda: _chain(True), N - 1, f"step_{N - 2}", N),
    "fan-500-async-print": (_fan, N, "total", N + 2),
}

_NOOP = """compute_logs:
  module: dagster.core.storage.noop_compute_log_manager
  class: NoOpComputeLogManager
"""


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


async def _interleaved(workload: str, repetitions: int) -> list[Result]:
    from dagloom.compute_logs import set_console_echo
    from dagloom.instance import DagloomInstance

    build, answer, last, n_steps = _JOBS[workload]
    job = build()
    homes = {system: Path(tempfile.mkdtemp(prefix="dagloom-bench-")) for system in SYSTEMS}
    (homes[FLOOR] / "dagloom.yaml").write_text(_NOOP)
    times: dict[str, list[float]] = {system: [] for system in SYSTEMS}
    try:
        async with AsyncExitStack() as stack:
            instances = {
                system: await stack.enter_async_context(DagloomInstance.open(home))
                for system, home in homes.items()
            }
            for i in range(repetitions + 1):  # the first round warms up
                for system in SYSTEMS:
                    set_console_echo(system == LOCAL_ECHO)
                    gc.collect()
                    start = time.perf_counter()
                    result = await job.execute_in_process_async(instance=instances[system])
                    elapsed = time.perf_counter() - start
                    if i == 0 and result.output_for_node(last) != answer:
                        raise RuntimeError(f"{workload} ({system}): wrong answer")
                    if i > 0:
                        times[system].append(elapsed)
    finally:
        for home in homes.values():
            shutil.rmtree(home, ignore_errors=True)
    return [Result.from_times(workload, s, n_steps, times[s], peak_rss_mb()) for s in SYSTEMS]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks compute_logs",
        description="Time runs with steps' output captured against runs without capture.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and rounds")
    parser.add_argument(
        "--only", action="append", choices=WORKLOADS, metavar="WORKLOAD", help="repeatable"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results here as JSON")
    ns = parser.parse_args(argv)
    print(
        f"dagloom {dg.__version__} compute-logs benchmarks: Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {_load()}\n"
        "floor = NoOpComputeLogManager; local = LocalComputeLogManager (echo off); "
        "local-echo = echo on",
        flush=True,
    )
    results: list[Result] = []
    for workload in ns.only or WORKLOADS:
        print(f"  {workload} ...", file=sys.stderr, flush=True)
        repetitions = REPETITIONS[1] if ns.quick else REPETITIONS[0]
        console = sys.stdout
        with open(os.devnull, "w") as devnull:
            sys.stdout = devnull
            try:
                results += anyio.run(_interleaved, workload, repetitions)
            finally:
                sys.stdout = console
    print(f"load average at the end {_load()}\n")
    print_table(results, TARGETS)
    passed, failed = summarize(results, TARGETS)
    print(f"\ntargets: {passed} passed, {failed} failed")
    if ns.json:
        write_json(Path(ns.json), results)
        print(f"wrote {ns.json}")
    return 0
