"""`python -m benchmarks._worker SUITE WORKLOAD SYSTEM REPETITIONS`: measure one workload in
this fresh process and print one JSON line: `{"n_steps", "times", "peak_rss_mb"}`."""

from __future__ import annotations

import importlib
import json
import sys

from benchmarks._common import peak_rss_mb, time_runs


def main(argv: list[str]) -> int:
    suite_name, workload, system, repetitions = argv
    suite = importlib.import_module(f"benchmarks.{suite_name}")
    prepared = suite.prepare(workload, system)
    try:
        times = time_runs(prepared, int(repetitions))
    finally:
        if prepared.close is not None:
            prepared.close()
    record = {"n_steps": prepared.n_steps, "times": times, "peak_rss_mb": peak_rss_mb()}
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
