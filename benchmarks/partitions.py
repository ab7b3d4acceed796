"""Partition status: how long `instance.get_partition_status` takes for an asset with
10,000 daily partitions, half materialized, on SQLite, against a baseline measured in the
same run, on SQLite and on Postgres (`DAGLOOM_BENCH_PG_URL`, default `DAGLOOM_TEST_PG_URL`,
else postgresql://postgres@127.0.0.1:5432/test, in a scratch schema; left out with a note
when unreachable or with `--no-postgres`).

Workloads:

    status          `get_partition_status(asset, daily)`: the materialization index read
                    (incremental: only rows newer than the storage's last read of the
                    asset, plus a count), the failed and unfinished runs, the fold.
    status_cold     the same with the storage's per-asset read forgotten before each call
                    (a fresh process): one index row per materialized partition is read.
    index_floor     `get_materialized_partitions(asset)` alone: the index read every answer
                    makes.
    events_floor    the same answer read the slow way: every materialization event of the
                    asset decoded (`get_materializations`), what an index avoids.
    runs_scan       the failed and unfinished runs read the slow way: every such run of the
                    instance decoded (`get_runs(statuses=...)`), what the run partition index
                    avoids. The instance holds `--other-runs` failed runs of another asset,
                    plus 50 failed and 10 running runs of this one.

    python -m benchmarks partitions [--partitions N] [--repeat R] [--no-postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks._common import median_ms

PARTITIONS = 10_000
REPEAT = 20
OTHER_RUNS = 5_000
PG_URL = os.environ.get(
    "DAGLOOM_BENCH_PG_URL",
    os.environ.get("DAGLOOM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
)


@contextlib.asynccontextmanager
async def _instance(storage: str) -> AsyncIterator[Any]:
    from dagloom.instance import DagloomInstance

    with tempfile.TemporaryDirectory(prefix="dagloom-partitions-") as tmp:
        if storage == "sqlite":
            async with DagloomInstance.open(Path(tmp)) as instance:
                yield instance
            return
        import asyncpg

        schema = f"bench_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(PG_URL, timeout=5)
        try:
            await conn.execute(f'CREATE SCHEMA "{schema}"')
            config = {"storage": {"postgres": {"postgres_url": PG_URL, "schema": schema}}}
            async with DagloomInstance.from_config(config, home=tmp) as instance:
                yield instance
        finally:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()


async def measure(
    partitions: int, repeat: int, other_runs: int = OTHER_RUNS, storage: str = "sqlite"
) -> dict[str, float]:
    from dagloom.definitions.partitions import DailyPartitionsDefinition
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

    async with _instance(storage) as instance:
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

        async def status_cold() -> Any:
            # The storage's per-asset read, forgotten as in a freshly opened process.
            getattr(instance.event_log_storage, "_partition_index", {}).clear()
            return await instance.get_partition_status(["days"], daily)

        return {
            "status": await median_ms(
                lambda: instance.get_partition_status(["days"], daily), repeat
            ),
            "status_cold": await median_ms(status_cold, repeat),
            "index_floor": await median_ms(index_only, repeat),
            "events_floor": await median_ms(by_events, max(repeat // 4, 3)),
            "runs_scan": await median_ms(runs_scan, max(repeat // 4, 3)),
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks partitions", description=__doc__)
    parser.add_argument("--partitions", type=int, default=PARTITIONS)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--other-runs", type=int, default=OTHER_RUNS)
    parser.add_argument("--no-postgres", action="store_true")
    ns = parser.parse_args(argv)
    for storage in ("sqlite", *(() if ns.no_postgres else ("postgres",))):
        try:
            results = anyio.run(measure, ns.partitions, ns.repeat, ns.other_runs, storage)
        except OSError as exc:
            print(f"\n{storage}: left out, no server at {PG_URL} ({exc})")
            continue
        print(f"\n{storage}")
        print(f"{'workload':<14} {'median ms':>10} {'ratio to status':>16}")
        for name, ms in results.items():
            print(f"{name:<14} {ms:>10.2f} {ms / results['status']:>15.2f}x")
    print(
        f"{ns.partitions} daily partitions, half materialized, {ns.other_runs} failed runs "
        "of another asset"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
