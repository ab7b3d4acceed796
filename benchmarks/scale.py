"""Runs of any size: per-step cost of a 100,000-step run against a 500-step one.

For each shape (chain, fan) and each system (`dagloom` in memory, `dagloom-sqlite` recording
every event in a durable SQLite instance), one fresh worker process per size:

- builds the job with the public API (`@job` wiring N aliased ops) and compiles its plan,
  each timed per op in CPU time;
- runs it: a warm-up run of a small job first (imports and caches), then timed runs of the
  N-step job (1 at the large size, more at the small one), wall and CPU time per step;
- reports its peak RSS above what it held before building the job, per step, and the share
  of the large run's wall time spent in the garbage collector (`gc %`).

The baseline of each large run is the 500-step run of the same shape and system, measured in
the same invocation with the sizes interleaved round by round. Targets (as ratios):

    us/step at N=100,000 within 1.3x of N=500 (CPU time, steadier under load; wall shown too)
    peak RSS at most 1 KiB per step above the pre-build level, outputs included
    job building at most 5 us per op at N=100,000

The chain's and fan's outputs are small ints, so "plus the outputs" adds nothing here.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import REPO_ROOT

SMALL = 500
LARGE = 100_000
SHAPES = ("chain", "fan")
SYSTEMS = ("dagloom", "dagloom-sqlite")

STEP_RATIO_TARGET = 1.3
RSS_PER_STEP_TARGET_KB = 1.0
BUILD_US_PER_OP_TARGET = 5.0


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    """Start the peak-RSS mark afresh (Linux >= 4.0), so it measures what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


class _CollectorClock:
    """Time spent in the garbage collector and full collections done, via `gc.callbacks`:
    a figure the machine's load does not move the way it moves wall time."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._start
        if info["generation"] == 2:
            self.full += 1


def _worker(shape: str, n: int, system: str, repetitions: int) -> dict[str, Any]:
    """Measure one size in this process; the record's keys are the JSON line's."""
    from benchmarks import core

    def build(size: int) -> Any:
        return (core.chain_job if shape == "chain" else core.fan_job)(size)

    n_steps = n if shape == "chain" else n + 2
    last = ("start" if n == 1 else f"inc_{n - 2}") if shape == "chain" else "sink"
    answer = n - 1 if shape == "chain" else 2 * n

    def prepared(job: Any) -> tuple[Callable[[], Any], Callable[[], None] | None]:
        if system == "dagloom":
            return job.execute_in_process, None
        # The check and step count are the core suite's; only run and close are used here.
        made = core._with_sqlite_instance(job, shape, None, last, n_steps)
        return made.run, made.close

    # Warm-up on a small job: imports, caches and (for SQLite) an instance's schema.
    warm_run, warm_close = prepared(build(5))
    warm_run()
    if warm_close is not None:
        warm_close()
    del warm_run, warm_close

    gc.collect()
    base_kb = _rss_kb("VmRSS")
    _reset_peak()
    # CPU time throughout: on a loaded machine wall time swings 2-3x from run to run.
    start = time.process_time()
    job = build(n)
    build_s = time.process_time() - start
    start = time.process_time()
    job.get_plan()  # compiled once per job and cached; timed apart from the runs
    plan_s = time.process_time() - start
    run, close = prepared(job)
    wall: list[float] = []
    cpu: list[float] = []
    collector: list[_CollectorClock] = []
    try:
        for i in range(repetitions):
            gc.collect()
            clock = _CollectorClock()
            gc.callbacks.append(clock)
            start, start_cpu = time.perf_counter(), time.process_time()
            result = run()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            gc.callbacks.remove(clock)
            collector.append(clock)
            if i == 0 and result.output_for_node(last) != answer:
                raise AssertionError(f"{shape}-{n} ({system}): wrong answer")
            del result
        peak_kb = _rss_kb("VmHWM")
    finally:
        if close is not None:
            close()
    return {
        "shape": shape,
        "n": n,
        "n_steps": n_steps,
        "system": system,
        "build_us_per_op": build_s * 1e6 / n,
        "plan_us_per_op": plan_s * 1e6 / n,
        "wall_us_per_step": [t * 1e6 / n_steps for t in wall],
        "cpu_us_per_step": [t * 1e6 / n_steps for t in cpu],
        "rss_kb_per_step": (peak_kb - base_kb) / n_steps,
        "gc_share": [c.seconds / t for c, t in zip(collector, wall, strict=True)],
        "full_collections": [c.full for c in collector],
    }


def _spawn(shape: str, n: int, system: str, repetitions: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks", "scale", "--worker", shape, str(n), system]
    argv.append(str(repetitions))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"scale {shape}-{n} ({system}) failed:\n{proc.stderr.strip()}")
    record: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return record


def _median(records: Sequence[dict[str, Any]], key: str) -> float:
    values = [v for r in records for v in (r[key] if isinstance(r[key], list) else [r[key]])]
    return statistics.median(values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks scale",
        description="Per-step cost and memory of a 100,000-step run against a 500-step one.",
    )
    parser.add_argument("--rounds", type=int, default=2, help="worker rounds per size")
    parser.add_argument("--large", type=int, default=LARGE, help="the large N (100,000)")
    parser.add_argument("--shape", action="append", choices=SHAPES, help="only this shape")
    parser.add_argument("--system", action="append", choices=SYSTEMS, help="only this system")
    parser.add_argument("--json", metavar="PATH", help="also write the results here as JSON")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.worker:
        shape, n, system, repetitions = ns.worker
        print(json.dumps(_worker(shape, int(n), system, int(repetitions))))
        return 0

    load_before = os.getloadavg()
    print(f"scale: N={SMALL} vs N={ns.large}, load average {load_before[0]:.2f}", flush=True)
    rows: list[dict[str, Any]] = []
    failed = 0
    for system in ns.system or SYSTEMS:
        for shape in ns.shape or SHAPES:
            small: list[dict[str, Any]] = []
            large: list[dict[str, Any]] = []
            for _ in range(ns.rounds):  # sizes interleaved, so load falls on both alike
                print(f"  {shape} {system} ...", file=sys.stderr, flush=True)
                small.append(_spawn(shape, SMALL, system, 15))
                large.append(_spawn(shape, ns.large, system, 1))
            cpu_ratio = _median(large, "cpu_us_per_step") / _median(small, "cpu_us_per_step")
            wall_ratio = _median(large, "wall_us_per_step") / _median(small, "wall_us_per_step")
            rss = max(r["rss_kb_per_step"] for r in large)
            build = _median(large, "build_us_per_op")
            verdicts = {
                "step_ratio": cpu_ratio <= STEP_RATIO_TARGET,
                "rss_per_step": rss <= RSS_PER_STEP_TARGET_KB,
                "build": build <= BUILD_US_PER_OP_TARGET,
            }
            failed += sum(not ok for ok in verdicts.values())
            row = {
                "shape": shape,
                "system": system,
                "small_n": SMALL,
                "large_n": ns.large,
                "small_cpu_us_per_step": _median(small, "cpu_us_per_step"),
                "large_cpu_us_per_step": _median(large, "cpu_us_per_step"),
                "cpu_ratio": cpu_ratio,
                "small_wall_us_per_step": _median(small, "wall_us_per_step"),
                "large_wall_us_per_step": _median(large, "wall_us_per_step"),
                "wall_ratio": wall_ratio,
                "large_rss_kb_per_step": rss,
                "small_build_us_per_op": _median(small, "build_us_per_op"),
                "large_build_us_per_op": build,
                "large_plan_us_per_op": _median(large, "plan_us_per_op"),
                "large_gc_share": _median(large, "gc_share"),
                "large_full_collections": _median(large, "full_collections"),
                "pass": verdicts,
            }
            rows.append(row)
    load_after = os.getloadavg()

    def mark(ok: bool) -> str:
        return "PASS" if ok else "MISSED"

    print(
        f"{'shape':<6}{'system':<16}{'cpu us/step':>18}{'ratio':>8}{'wall us/step':>20}"
        f"{'ratio':>8}{'KiB/step':>10}{'build us/op':>13}{'gc %':>7}  step/rss/build"
    )
    for r in rows:
        print(
            f"{r['shape']:<6}{r['system']:<16}"
            f"{r['small_cpu_us_per_step']:>8.1f} ->{r['large_cpu_us_per_step']:>7.1f}"
            f"{r['cpu_ratio']:>7.2f}x"
            f"{r['small_wall_us_per_step']:>9.1f} ->{r['large_wall_us_per_step']:>8.1f}"
            f"{r['wall_ratio']:>7.2f}x"
            f"{r['large_rss_kb_per_step']:>10.2f}{r['large_build_us_per_op']:>13.1f}"
            f"{r['large_gc_share'] * 100:>7.1f}"
            f"  {mark(r['pass']['step_ratio'])}/{mark(r['pass']['rss_per_step'])}"
            f"/{mark(r['pass']['build'])}"
        )
    print(
        f"targets: cpu ratio <={STEP_RATIO_TARGET}x, <={RSS_PER_STEP_TARGET_KB:.0f} KiB/step, "
        f"build <={BUILD_US_PER_OP_TARGET:.0f} us/op; {failed} missed; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    if ns.json:
        record = {"rows": rows, "loadavg_before": load_before, "loadavg_after": load_after}
        Path(ns.json).write_text(json.dumps(record, indent=2))
    return 0
