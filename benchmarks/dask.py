"""`python -m benchmarks dask`: the Dask executor against the multiprocess executor and
against bare `client.submit` of the same functions (the floor), and throughput across 1, 2
and 4 Dask worker processes for a fan of CPU-bound steps.

Every system runs from this one process, in the same run, on a cluster of processes started
here: a `dask scheduler` and worker processes of one thread each. Target: the Dask executor
within 3x the floor's time per step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TARGET_RATIO = 3.0
_DASK = (sys.executable, "-m")
DEFS = Path(__file__).resolve().parent / "_dask_defs.py"


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _median_seconds(run: Callable[[], Any], repeats: int) -> float:
    run()  # warm-up: imports, code locations, warm pools
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _interleaved_medians(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Each system's median time over `repeats` rounds, every round timing each system once
    in turn, so a change in the machine's load weighs on all of them alike."""
    for run in runs.values():
        run()  # warm-up: imports, code locations, warm pools
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _floor(client: Any, workload: str, width: int) -> Callable[[], int]:
    from benchmarks._dask_defs import burn, work

    def fan() -> int:
        futures = [client.submit(work, i, pure=False) for i in range(width)]
        return int(sum(client.gather(futures)))

    def chain() -> int:
        value = client.submit(work, 0, pure=False)
        for _ in range(width - 1):
            value = client.submit(work, value, pure=False)
        return int(value.result())

    def cpu_fan() -> int:
        futures = [client.submit(burn, i, pure=False) for i in range(width)]
        return int(sum(client.gather(futures)))

    return {"fan": fan, "chain": chain, "cpu_fan": cpu_fan}[workload]


def _dagloom(job_name: str, run_config: dict[str, Any], width: int) -> Callable[[], None]:
    from dagloom.code.loader import load_definitions
    from dagloom.execution.origin import CodeOrigin
    from dagloom.execution.run import execute_job_in_process
    from dagloom.instance import DagloomInstance

    job = load_definitions(python_file=DEFS).get_job_def(job_name)

    async def once() -> None:
        async with DagloomInstance.ephemeral() as instance:
            result = await execute_job_in_process(
                job,
                run_config=run_config,
                instance=instance,
                raise_on_error=False,
                code_origin=CodeOrigin(python_file=str(DEFS)),
                tags={"width": str(width)},
                heartbeat_interval=None,
            )
        if not result.success:
            raise RuntimeError(f"{job_name} failed: {[e.message for e in result.all_events][-3:]}")

    return lambda: asyncio.run(once())


def _dask_run_config(address: str) -> dict[str, Any]:
    return {"execution": {"config": {"dask": {"cluster": {"existing": {"address": address}}}}}}


@contextmanager
def _cluster(workers: int) -> Iterator[str]:
    """A `dask scheduler` process and `workers` worker processes (one thread each) on
    127.0.0.1, as in production: nothing of the cluster shares this process's GIL. Yields the
    scheduler's address once every worker serves."""
    from distributed import Client

    with tempfile.TemporaryDirectory() as tmp:
        file = str(Path(tmp) / "scheduler.json")
        quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        common = ["--scheduler-file", file, "--no-dashboard"]
        procs = [
            subprocess.Popen(
                [*_DASK, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", *common],
                **quiet,
            )
        ]
        try:
            procs.append(
                subprocess.Popen(
                    [
                        *_DASK,
                        "distributed.cli.dask_worker",
                        "--host",
                        "127.0.0.1",
                        *common,
                        "--nworkers",
                        str(workers),
                        "--nthreads",
                        "1",
                    ],
                    **quiet,
                )
            )
            deadline = time.monotonic() + 120
            while not Path(file).exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("the Dask scheduler did not start")
                time.sleep(0.1)
            with Client(scheduler_file=file, set_as_default=False) as client:
                client.wait_for_workers(workers, timeout=120)
                yield str(client.scheduler.address)
        finally:
            for proc in reversed(procs):
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks dask", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per system")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (overhead)")
    parser.add_argument(
        "--cpu-width", type=int, default=40, help="steps of the CPU-bound fan (50 ms each)"
    )
    parser.add_argument("--quick", action="store_true", help="one timed run, 100 steps")
    parser.add_argument("--json", metavar="PATH", help="also write the results here as JSON")
    ns = parser.parse_args(argv)
    from distributed import Client

    from benchmarks._dask_defs import CPU_SECONDS, WIDTH

    repeats = 1 if ns.quick else ns.repeats
    width = 100 if ns.quick else WIDTH
    # Outputs on tmpfs where there is one: the floor keeps its values in worker memory, so
    # the measure is the executor's overhead, not the disk's.
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    io_dir = tempfile.mkdtemp(prefix="dagloom-bench-io-", dir=shm)
    os.environ["DAGLOOM_BENCH_IO"] = io_dir  # inherited by the worker processes started below
    print(
        f"dagloom dask benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{ns.workers} worker processes x 1 thread, load average {_load()}",
        flush=True,
    )
    failed = 0
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "workers": ns.workers,
        "load_start": os.getloadavg(),
        "overhead": [],
        "throughput": [],
    }
    with _cluster(ns.workers) as address, Client(address, set_as_default=False) as client:
        dask_config = _dask_run_config(address)
        mp_config = {"execution": {"config": {"multiprocess": {"max_concurrent": ns.workers}}}}
        print(f"\n{'workload':<10} {'system':<14} {'median s':>9} {'us/step':>9} {'x floor':>8}")
        for workload in ("fan", "chain"):
            steps = width if workload == "fan" else WIDTH  # the chain job has WIDTH steps
            n_steps = steps + (2 if workload == "fan" else 0)
            medians = _interleaved_medians(
                {
                    "bare dask": _floor(client, workload, steps),
                    "dask executor": _dagloom(workload, dask_config, steps),
                    "multiprocess": _dagloom(workload, mp_config, steps),
                },
                repeats,
            )
            rows = list(medians.items())
            floor = medians["bare dask"]
            dask_s = medians["dask executor"]
            for system, seconds in rows:
                print(
                    f"{workload + '-' + str(steps):<10} {system:<14} {seconds:>9.3f} "
                    f"{seconds * 1e6 / n_steps:>9.0f} {seconds / floor:>7.1f}x",
                    flush=True,
                )
            for system, seconds in rows:
                report["overhead"].append(
                    {
                        "workload": f"{workload}-{steps}",
                        "system": system,
                        "steps": n_steps,
                        "median_s": seconds,
                        "us_per_step": seconds * 1e6 / n_steps,
                        "x_floor": seconds / floor,
                    }
                )
            ratio = dask_s / floor
            verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
            failed += verdict == "MISS"
            print(f"  dask executor per step at {ratio:.1f}x the floor (target <= 3x): {verdict}")
    print(
        f"\nthroughput: a fan of {ns.cpu_width} CPU-bound steps ({CPU_SECONDS * 1000:.0f} ms each)"
    )
    print(
        f"{'workers':>7} {'dask executor s':>16} {'steps/s':>8} {'bare dask s':>12} {'steps/s':>8}"
    )
    for workers in (1, 2, 4):
        with _cluster(workers) as address, Client(address, set_as_default=False) as client:
            config = _dask_run_config(address)
            ours = _median_seconds(_dagloom("cpu_fan", config, ns.cpu_width), 1)
            bare = _median_seconds(_floor(client, "cpu_fan", ns.cpu_width), 1)
            print(
                f"{workers:>7} {ours:>12.2f} {ns.cpu_width / ours:>8.1f} {bare:>12.2f} "
                f"{ns.cpu_width / bare:>8.1f}",
                flush=True,
            )
            report["throughput"].append(
                {
                    "workers": workers,
                    "steps": ns.cpu_width,
                    "dask_executor_s": ours,
                    "dask_executor_steps_per_s": ns.cpu_width / ours,
                    "bare_dask_s": bare,
                    "bare_dask_steps_per_s": ns.cpu_width / bare,
                }
            )
    print(f"\nload average at the end {_load()}")
    report["load_end"] = os.getloadavg()
    if ns.json:
        Path(ns.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {ns.json}")
    return 1 if failed else 0
