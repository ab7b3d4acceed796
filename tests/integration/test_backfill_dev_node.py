"""A 30-day backfill of the daily numbers example through a `dagloom dev` node: stored as
the CLI stores it, submitted by the node's daemon, every run executed by its launcher, and
every partition of every asset materialized once."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import anyio
import pytest

from dagloom.daemon._backfills import BACKFILL_ID_TAG
from dagloom.definitions.partitions import DailyPartitionsDefinition
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.messages import AssetKeyMessage, Backfill, BackfillStatus, RunStatus
from dagloom.storage.base import RunsFilter
from dagloom.topology import dev_topology
from dagloom.topology.wiring import RunningNode, run_node

pytestmark = pytest.mark.usefixtures("restore_import_state")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "daily_numbers.py"
ASSETS = [
    "filtered_even_numbers",
    "filtered_odd_numbers",
    "generated_numbers",
    "summed_even_numbers",
    "summed_odd_numbers",
    "summed_two_sums",
]
DAYS = [f"2024-01-{d:02d}" for d in range(1, 31)]
ENDED = [RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED]


async def test_a_dev_node_backfills_thirty_days(tmp_path: Path) -> None:
    topology = dev_topology(
        {"daily": CodeOrigin(python_file=str(EXAMPLE))},
        api_port=None,
        grpc_port=None,
        reload_on_change=False,
    )
    with anyio.fail_after(240):
        async with DagloomInstance.open(tmp_path) as instance, anyio.create_task_group() as tg:
            node: RunningNode = await tg.start(
                functools.partial(run_node, topology, "dev", instance=instance)
            )
            assert node is not None
            await instance.run_storage.add_backfill(
                Backfill(
                    backfill_id="days",
                    status=BackfillStatus.REQUESTED,
                    job_name="__ASSET_JOB",
                    asset_selection=[AssetKeyMessage(path=[a]) for a in ASSETS],
                    partition_keys=DAYS,
                    partitions_per_run=1,
                    run_config_json="{}",
                    create_time=time.time(),
                )
            )
            mine = RunsFilter(tags={BACKFILL_ID_TAG: "days"})
            # Runs have no watch across many ids: poll their count (under fail_after above).
            ended = RunsFilter(tags={BACKFILL_ID_TAG: "days"}, statuses=ENDED)
            while await instance.get_runs_count(ended) < len(DAYS):  # noqa: ASYNC110
                await anyio.sleep(0.1)
            runs = await instance.get_runs(mine)
            stored = await instance.run_storage.get_backfill("days")
            statuses = {}
            daily = DailyPartitionsDefinition(start_date="2024-01-01")
            for asset in ASSETS:
                status = await instance.get_partition_status([asset], daily)
                statuses[asset] = status.materialized
            tg.cancel_scope.cancel()
    assert stored is not None and stored.status == BackfillStatus.COMPLETED
    assert sorted(r.tags["dagster/partition"] for r in runs) == DAYS
    assert {r.status for r in runs} == {RunStatus.SUCCESS}
    for asset in ASSETS:
        assert statuses[asset] == DAYS, asset
