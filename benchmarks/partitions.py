"""Partition status: how long `instance.get_partition_status` takes for an asset with
10,000 daily partitions, half materialized, on SQLite, against a baseline measured in the
same run.

Workloads:

    status          `get_partition_status(asset, daily)`: the materialization index read
                    (one row per partition), the failed and unfinished runs, the fold.
    index_floor     `get_materialized_partitions(asset)` alone: the index read every answer
                    makes (one row per materialized partition).
    events_floor    the same answer read the slow way: every materialization event of the
                    asset decoded (`get_materializations`), what an index avoids.
    runs_scan       the failed and unfinished runs read the slow way: every such run of the
                    instance decoded (`get_runs(statuses=...)`), what the run partition index
                    avoids. The instance holds `--other-runs` failed runs of another asset,
                    plus 50 failed and 10 running runs of this one.

    python -m benchmarks partitions [--partitions N] [--repeat R]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks._common import median_ms

PARTITIONS = 10_000
REPEAT = 20
OTHER_RUNS = 5_000


async def measure(partitions: int, repeat: int, other_runs: int = OTHER_RUNS) -> dict[str, float]:
    from dagloom.definitions.partitions import DailyPartitionsDefinition
    from dagloom.instance import DagloomInstance
    from dagloom.messages import (
        AssetKeyMessage,
        AssetMaterializationData,
        Event,
        EventType,
        Run,
        RunStatus,
    )
    from dagloom.storage.base import RunsFilter

    start = DailyPartitionsDefinition(start_date="1990-01-01")
    keys = start.get_partition_keys()[:partitions]
    end = start.time_window_for_partition_key(keys[-1]).end
    daily = DailyPartitionsDefinition(start_date="1990-01-01", end_date=end)

    def materialized(key: str) -> Event:
        return Event(
            run_id="r1",
            event_type=EventType.ASSET_MATERIALIZATION,
            step_key="days",
            timestamp=1.0,
            asset_materialization=AssetMaterializationData(
                asset_key=AssetKeyMessage(path=["days"]), partition=key
            ),
        )

    with tempfile.TemporaryDirectory(prefix="dagloom-partitions-") as tmp:
        async with DagloomInstance.open(Path(tmp)) as instance:
            batch = [materialized(k) for k in keys[::2]]
            for i in range(0, len(batch), 500):
                await instance.event_log_storage.store_events(batch[i : i + 500])
            for i in range(other_runs + 60):
                ours = i >= other_runs
                await instance.run_storage.add_run(
                    Run(
                        run_id=f"run-{i}",
                        job_name="__ASSET_JOB",
                        status=RunStatus.STARTED if i >= other_runs + 50 else RunStatus.FAILURE,
                        create_time=2.0,
                        tags={"dagster/partition": keys[(i * 7) % len(keys)]},
                        asset_selection=[AssetKeyMessage(path=["days" if ours else "other"])],
                    )
                )
            status = await instance.get_partition_status(["days"], daily)
            if len(status.in_progress) != 10 or not status.failed:
                raise RuntimeError("expected 10 partitions in progress and some failed")

            async def runs_scan() -> Any:
                return await instance.get_runs(
                    RunsFilter(statuses=[RunStatus.FAILURE, RunStatus.STARTED])
                )

            async def index_only() -> Any:
                return await instance.get_materialized_partitions(["days"])

            async def by_events() -> Any:
                records = await instance.get_materializations(["days"])
                return {
                    r.event.asset_materialization.partition
                    for r in records
                    if r.event and r.event.asset_materialization
                }

            return {
                "status": await median_ms(
                    lambda: instance.get_partition_status(["days"], daily), repeat
                ),
                "index_floor": await median_ms(index_only, repeat),
                "events_floor": await median_ms(by_events, max(repeat // 4, 3)),
                "runs_scan": await median_ms(runs_scan, max(repeat // 4, 3)),
            }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks partitions", description=__doc__)
    parser.add_argument("--partitions", type=int, default=PARTITIONS)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--other-runs", type=int, default=OTHER_RUNS)
    ns = parser.parse_args(argv)
    results = anyio.run(measure, ns.partitions, ns.repeat, ns.other_runs)
    print(f"{'workload':<14} {'median ms':>10} {'ratio to status':>16}")
    for name, ms in results.items():
        print(f"{name:<14} {ms:>10.2f} {ms / results['status']:>15.2f}x")
    print(
        f"{ns.partitions} daily partitions, half materialized, {ns.other_runs} failed runs "
        "of another asset, SQLite"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
