"""Start-up: what a user waits for before any work, against `python -c pass` in the same run.

Each workload is a whole process, started the way a user starts it:

    pass         `python -c pass`: the interpreter alone, the baseline
    import       `python -c "import dagloom"`
    import-api   `python -c "from dagloom import Definitions, asset, job, op"` (loads the
                 definitions API a code location uses)
    help         `dagloom --help`
    execute      `dagloom job execute -f one.py -j one`: a 1-op job run and recorded in a
                 fresh SQLite instance

Rounds rotate through the workloads so load on the machine hits each alike; each figure is
the median over rounds, of wall time (the targets' measure) and of CPU time (user +
system, steadier when the machine is loaded). Bytecode is compiled once, in a warm-up
round, into a private cache (`PYTHONPYCACHEPREFIX`), as an installed package's would be.
A last workload runs in one process: the first `execute_in_process` of a 1-op job, against
the median of the next ones (the target), and against next ones each run right after the CPU
caches were flushed by copying a buffer larger than the last-level cache. A first run that
matches those cold-cache runs does no work that later runs skip: what separates it from a warm
run is memory the CPU has not cached yet. The same three figures for a bare `asyncio.run` of an
empty coroutine show that shape in the interpreter alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._common import REPO_ROOT

ONE_OP_JOB = """\
from dagloom import job, op


@op
def hello() -> int:
    return 1


@job
def one():
    hello()
"""

# One process: the first call, 20 warm calls, then 15 calls each after the CPU caches were
# flushed (a copy between two buffers of twice the last-level cache each, made beforehand).
FIRST_RUN = """\
import json, sys, time
sys.path.insert(0, sys.argv[1])
flush_from = bytearray(int(sys.argv[2]))
flush_to = bytearray(len(flush_from))
flush_to[:] = flush_from
{setup}
def call():
    start = time.perf_counter()
    {call}
    return time.perf_counter() - start
times = [call() for _ in range(21)]
cold = []
for _ in range(15):
    flush_to[:] = flush_from
    cold.append(call())
print(json.dumps({{"times": times, "cold": cold}}))
"""
JOB_SETUP = "from one import one"
JOB_CALL = "assert one.execute_in_process().success"
LOOP_SETUP = "import asyncio\nasync def empty():\n    pass"
LOOP_CALL = "asyncio.run(empty())"

# Targets as seconds with a ~25 ms interpreter; checked as ratios to this run's baseline.
# `import dagloom` alone loads next to nothing, so its target also applies to the API import.
BASELINE_S = 0.025
TARGETS_S = {"import": 0.25, "import-api": 0.25, "help": 0.35, "execute": 0.5}
FIRST_RUN_TARGET = 2.0


def _env(cache: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["COLUMNS"] = "100"
    return env


def _commands(work: Path) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "pass": [py, "-c", "pass"],
        "import": [py, "-c", "import dagloom"],
        "import-api": [py, "-c", "from dagloom import Definitions, asset, job, op"],
        "help": [py, "-m", "dagloom.cli", "--help"],
        "execute": [py, "-m", "dagloom.cli", "job", "execute", "-f", "one.py", "-j", "one"],
    }


def _time(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def _flush_bytes() -> int:
    """Twice the largest CPU cache this machine reports (64 MiB if it reports none)."""
    largest = 0
    for size_file in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = size_file.read_text().strip()
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        scale = units.get(text[-1:], 1)
        digits = text[:-1] if text[-1:] in units else text
        if digits.isdigit():
            largest = max(largest, int(digits) * scale)
    return 2 * largest if largest else 64 << 20


def _first_run(
    env: dict[str, str], work: Path, setup: str, call: str
) -> tuple[float, float, float]:
    """The first call in a new process, the median warm call, the median call on flushed
    caches."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            FIRST_RUN.format(setup=setup, call=call),
            str(work),
            str(_flush_bytes()),
        ],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    times = measured["times"]
    return times[0], statistics.median(times[1:]), statistics.median(measured["cold"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks startup",
        description=textwrap.dedent(__doc__ or "").strip().splitlines()[0],
    )
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per workload")
    parser.add_argument("--json", help="also write the rows to this file")
    ns = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dagloom-startup-") as tmp:
        work = Path(tmp)
        (work / "one.py").write_text(ONE_OP_JOB)
        env = _env(work / "pycache")
        env["DAGLOOM_HOME"] = str(work / "home")
        commands = _commands(work)
        for command in commands.values():  # warm-up: compile bytecode, create the instance
            _time(command, env, work)
        load_before = os.getloadavg()
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(ns.rounds):
            for name, command in commands.items():
                wall, cpu_s = _time(command, env, work)
                times[name].append(wall)
                cpu[name].append(cpu_s)
        first, warm, cold = _first_run(env, work, JOB_SETUP, JOB_CALL)
        loop_first, loop_warm, loop_cold = _first_run(env, work, LOOP_SETUP, LOOP_CALL)
        load_after = os.getloadavg()

    base = statistics.median(times["pass"])
    cpu_base = statistics.median(cpu["pass"])
    rows: list[dict[str, object]] = []
    print(f"{'workload':<12}{'median s':>10}{'ratio':>9}{'cpu s':>8}{'cpu ratio':>11}{'target':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        cpu_median = statistics.median(cpu[name])
        target = TARGETS_S[name] / BASELINE_S if name in TARGETS_S else None
        verdict = "" if target is None else ("PASS" if median / base <= target else "MISSED")
        target_text = "" if target is None else f"<={target:.0f}x"
        print(
            f"{name:<12}{median:>10.3f}{median / base:>8.2f}x{cpu_median:>8.3f}"
            f"{cpu_median / cpu_base:>10.2f}x{target_text:>9} {verdict}"
        )
        rows.append(
            {
                "workload": name,
                "rounds": len(values),
                "median_s": median,
                "ratio_to_pass": median / base,
                "cpu_median_s": cpu_median,
                "cpu_ratio_to_pass": cpu_median / cpu_base,
                "target_ratio": target,
            }
        )
    first_ratio = first / warm
    verdict = "PASS" if first_ratio <= FIRST_RUN_TARGET else "MISSED"
    print(
        f"first execute_in_process {first * 1e3:.1f} ms, warm {warm * 1e3:.2f} ms: "
        f"{first_ratio:.1f}x (target <={FIRST_RUN_TARGET:.0f}x) {verdict}"
    )
    print(
        f"  against runs on flushed CPU caches ({cold * 1e3:.2f} ms): {first / cold:.2f}x; "
        f"a bare asyncio.run: first {loop_first * 1e3:.2f} ms, warm {loop_warm * 1e3:.3f} ms "
        f"({loop_first / loop_warm:.1f}x), flushed caches {loop_cold * 1e3:.2f} ms "
        f"({loop_first / loop_cold:.2f}x)"
    )
    rows.append(
        {
            "workload": "first-run",
            "first_s": first,
            "warm_median_s": warm,
            "cold_cache_median_s": cold,
            "ratio_to_warm": first_ratio,
            "ratio_to_cold_cache": first / cold,
            "target_ratio": FIRST_RUN_TARGET,
        }
    )
    rows.append(
        {
            "workload": "first-asyncio-run",
            "first_s": loop_first,
            "warm_median_s": loop_warm,
            "cold_cache_median_s": loop_cold,
            "ratio_to_warm": loop_first / loop_warm,
            "ratio_to_cold_cache": loop_first / loop_cold,
        }
    )
    print(
        "targets: seconds given for a ~25 ms interpreter, checked as ratios to `pass`; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    if ns.json:
        record = {"rows": rows, "loadavg_before": load_before, "loadavg_after": load_after}
        Path(ns.json).write_text(json.dumps(record, indent=2))
    return 0
