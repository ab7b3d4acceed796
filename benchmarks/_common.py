"""Shared benchmark machinery: timing, per-workload subprocesses, peak RSS, targets, output.

Every measured workload runs in a fresh interpreter (`python -m benchmarks._worker ...`), so
its peak RSS belongs to it alone and no workload warms another's caches. A suite module
exposes `prepare(workload, system) -> Prepared`; the worker times it and prints one JSON line.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

DAGLOOM = "dagloom"
FLOOR = "floor"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A workload ready to time: `run()` executes it once, `check(value)` raises when the
    value `run()` returned is wrong (applied to the warm-up run only); `close()`, when given,
    releases what the workload holds open once timing is done."""

    run: Callable[[], Any]
    n_steps: int
    check: Callable[[Any], None]
    close: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """One workload measured for one system; the fields are the `--json` record's keys."""

    workload: str
    n_steps: int
    system: str
    median_s: float
    us_per_step: float
    peak_rss_mb: float

    @classmethod
    def from_times(
        cls, workload: str, system: str, n_steps: int, times: Sequence[float], peak_rss_mb: float
    ) -> Result:
        median = statistics.median(times)
        return cls(workload, n_steps, system, median, median * 1e6 / n_steps, peak_rss_mb)


@dataclass(frozen=True, slots=True)
class Target:
    """A goal for dagloom's row of one workload; every limit given must hold."""

    workload: str
    label: str
    max_ratio: float | None = None  # dagloom us_per_step / floor us_per_step
    max_seconds: float | None = None  # dagloom median_s
    max_rss_mb: float | None = None  # dagloom peak_rss_mb
    system: str = "dagloom"  # the row the target applies to

    def met(self, dagloom: Result, floor: Result | None) -> bool:
        if self.max_ratio is not None and (floor is None or ratio(dagloom, floor) > self.max_ratio):
            return False
        if self.max_seconds is not None and dagloom.median_s > self.max_seconds:
            return False
        return self.max_rss_mb is None or dagloom.peak_rss_mb <= self.max_rss_mb


def ratio(dagloom: Result, floor: Result) -> float:
    return dagloom.us_per_step / floor.us_per_step


async def median_ms(fn: Callable[[], Awaitable[Any]], repeat: int) -> float:
    """The median of `repeat` timed awaits of `fn()`, in milliseconds, measured in this
    process (for suites that time an open instance's reads in place)."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


# --- Measuring, inside the worker -------------------------------------------------------


def time_runs(prepared: Prepared, repetitions: int, warmups: int = 1) -> list[float]:
    """Run once per warm-up (checking the first result), then time `repetitions` runs with
    `time.perf_counter`. A full collection before each run keeps one run's garbage from
    being charged to the next; the collector stays on, as it is in real runs."""
    for i in range(warmups):
        value = prepared.run()
        if i == 0:
            prepared.check(value)
    times = []
    for _ in range(repetitions):
        gc.collect()
        start = time.perf_counter()
        prepared.run()
        times.append(time.perf_counter() - start)
    return times


def peak_rss_mb() -> float:
    """The peak resident set size of this process's own address space, in MiB.

    On Linux this is `VmHWM`, not `ru_maxrss`: the kernel carries the parent's high-water
    mark across fork and exec into the child's `ru_maxrss` (a 300 MiB parent makes every
    child report at least 300 MiB), while `VmHWM` starts afresh with the exec'd image.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    # Elsewhere ru_maxrss is the best there is; macOS reports bytes, the others KiB.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / (1024 * 1024)


# --- Spawning, in the parent ------------------------------------------------------------


def run_worker(suite: str, workload: str, system: str, repetitions: int) -> dict[str, Any]:
    """Measure one workload for one system in a fresh `python -m benchmarks._worker`;
    return its record `{"n_steps", "times", "peak_rss_mb"}`."""
    argv = [sys.executable, "-m", "benchmarks._worker", suite, workload, system, str(repetitions)]
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{suite} {workload} ({system}) failed with exit code {proc.returncode}:\n"
            f"{proc.stderr.strip()}"
        )
    # The worker's record is its last stdout line; anything above it is the workload's own.
    record: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return record


def measure_in_workers(
    suite: str, workload: str, systems: Sequence[str], repetitions: int, rounds: int = 1
) -> list[Result]:
    """Measure `workload` for each system, alternating systems over `rounds` fresh workers
    each, so load that comes and goes on a shared machine falls on every system alike.
    The median is over all rounds' runs; the peak RSS is the highest any worker reached."""
    records: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
    for _ in range(rounds):
        for system in systems:
            records[system].append(run_worker(suite, workload, system, repetitions))
    return [
        Result.from_times(
            workload,
            system,
            found[0]["n_steps"],
            [t for record in found for t in record["times"]],
            max(record["peak_rss_mb"] for record in found),
        )
        for system, found in records.items()
    ]


# Appended to the code of one extra run; stdlib only, so it adds (almost) nothing to the peak.
_REPORT_PEAK_RSS = """
import resource as _r, sys as _s
try:
    _hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
    print(int(_hwm.split()[1]) / 1024)
except (OSError, IndexError):
    print(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss / (1 << 20 if _s.platform == "darwin" else 1024))
"""


def time_process(
    workload: str, system: str, code: str, repetitions: int, warmups: int = 1
) -> Result:
    """Time `python -c code` from spawn to exit. The warm-ups fill the OS page cache and
    write `.pyc` files. Peak RSS comes from one more run that reports it at its end, so the
    timed runs carry no measuring code."""
    argv = [sys.executable, "-c", code]
    times: list[float] = []
    for i in range(warmups + repetitions):
        start = time.perf_counter()
        proc = subprocess.run(
            argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(
                f"{workload} ({system}): python -c {code!r} failed with exit code "
                f"{proc.returncode}:\n{proc.stderr.decode(errors='replace').strip()}"
            )
        if i >= warmups:
            times.append(elapsed)
    report = subprocess.run(
        [sys.executable, "-c", code + _REPORT_PEAK_RSS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    peak = float(report.stdout.strip().splitlines()[-1])
    return Result.from_times(workload, system, 1, times, peak)


# --- Reporting --------------------------------------------------------------------------

_COLUMNS = (
    "workload",
    "system",
    "n_steps",
    "median_s",
    "us_per_step",
    "peak_rss_mb",
    "ratio",
    "target",
    "pass",
)


def table_rows(results: Sequence[Result], targets: Sequence[Target]) -> list[tuple[str, ...]]:
    """One row per result; dagloom's row carries the ratio to its workload's floor and the
    PASS/FAIL mark against each of the workload's targets."""
    floors = {r.workload: r for r in results if r.system == FLOOR}
    rows: list[tuple[str, ...]] = []
    for r in results:
        floor = floors.get(r.workload)
        ratio_cell = ""
        if r.system != FLOOR and floor is not None:
            ratio_cell = f"{ratio(r, floor):.1f}x"
        marks = [
            (t.label, "PASS" if t.met(r, floor) else "FAIL")
            for t in targets
            if t.workload == r.workload and r.system == t.system
        ]
        base = (
            r.workload,
            r.system,
            str(r.n_steps),
            f"{r.median_s:.6f}",
            f"{r.us_per_step:.2f}",
            f"{r.peak_rss_mb:.1f}",
            ratio_cell,
        )
        if not marks:
            rows.append((*base, "", ""))
        for i, (label, mark) in enumerate(marks):
            rows.append((*(base if i == 0 else ("",) * len(base)), label, mark))
    return rows


def print_table(results: Sequence[Result], targets: Sequence[Target]) -> None:
    rows = [_COLUMNS, *table_rows(results, targets)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    # Text columns align left, numbers right.
    left = {0, 1, 7, 8}
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i in left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def summarize(results: Sequence[Result], targets: Sequence[Target]) -> tuple[int, int]:
    """How many targets, among those whose workload was measured, pass and fail."""
    passed = failed = 0
    for row in table_rows(results, targets):
        passed += row[-1] == "PASS"
        failed += row[-1] == "FAIL"
    return passed, failed


def write_json(path: str | os.PathLike[str], results: Sequence[Result]) -> None:
    """Write the results as a JSON list of records (see `Result`)."""
    Path(path).write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
