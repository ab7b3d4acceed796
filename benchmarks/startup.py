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
the median of the next ones.
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

FIRST_RUN = """\
import json, sys, time
sys.path.insert(0, sys.argv[1])
from one import one
times = []
for _ in range(21):
    start = time.perf_counter()
    result = one.execute_in_process()
    times.append(time.perf_counter() - start)
    assert result.success
print(json.dumps(times))
"""

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


def _first_run(env: dict[str, str], work: Path) -> tuple[float, float]:
    done = subprocess.run(
        [sys.executable, "-c", FIRST_RUN, str(work)],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    times = json.loads(done.stdout.strip().splitlines()[-1])
    return times[0], statistics.median(times[1:])


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
        first, warm = _first_run(env, work)
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
    rows.append(
        {
            "workload": "first-run",
            "first_s": first,
            "warm_median_s": warm,
            "ratio_to_warm": first_ratio,
            "target_ratio": FIRST_RUN_TARGET,
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
