"""`python -m benchmarks <suite> [options]`: dispatch to one benchmark suite's `main(argv)`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Suites load lazily so one suite's imports (or absence) never affect another.
SUITES = {
    "core": "executor core: chain, fan, wide and seed-asset DAGs against a bare asyncio floor",
    "storage": "storage backends",
    "transport": "actor transports",
    "launch": "run launchers",
    "service": "one-op runs through `dagloom dev`'s API (1 and 20 in flight) vs in-process",
    "metrics": "one /metrics scrape over 100,000 runs beside a runs page; step counting cost",
    "daemon": "queued runs admitted, sensor ticks and backfill runs submitted per second, "
    "vs bare writes",
    "partitions": "an asset's partition status over 10,000 daily partitions, vs the index read",
    "dask": "the Dask executor against the multiprocess executor and bare client.submit",
    "responsiveness": "GetRun latency in `dagloom dev` while a run's sync ops hold their thread",
    "webserver": "run-event subscription vs storage reads, runs query p95, asset graph size",
    "startup": "whole-process start-up (--help, import, a 1-op job execute) vs `python -c pass`",
    "auth": "GetRun latency with a token check and with mutual TLS, vs neither",
    "compute_logs": "runs with steps' stdout/stderr captured, against runs without capture",
    "ui": "the web UI in chromium: asset graphs and a 10,000-step run page vs their fetch",
    "staleness": "stale status of 5,000 assets, decided and read, vs reading their records",
    "scale": "chain and fan runs of 100,000 steps vs 500: per-step CPU, RSS per step, build",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run one of dagloom's benchmark suites.",
        epilog="suites: " + "; ".join(f"{name} ({what})" for name, what in SUITES.items()),
    )
    parser.add_argument("suite", choices=sorted(SUITES), help="which suite to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the suite's own options")
    ns = parser.parse_args(argv)
    module_name = f"benchmarks.{ns.suite}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the suite's own module being absent means "not available"; a missing
        # dependency inside a present suite is a real error and propagates.
        if exc.name != module_name:
            raise
        print(f"benchmark suite {ns.suite} is not available", file=sys.stderr)
        return 2
    return int(module.main(ns.args) or 0)


if __name__ == "__main__":
    sys.exit(main())
