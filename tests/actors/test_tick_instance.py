"""A sensor the daemon ticks sees the deployment's instance as `context.instance`: in a
`dagloom dev` node its calls are forwarded from the evaluation process to the node's
instance (here in memory, which no other process could open)."""

from __future__ import annotations

import functools
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

import dagloom as dg
from dagloom.daemon._instigators import origin_id
from dagloom.daemon._tags import RUN_KEY_TAG
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.messages import InstigatorType, Tick, TickStatus
from dagloom.topology import dev_topology
from dagloom.topology.wiring import RunningNode, run_node

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("restore_import_state")]

DEFS = textwrap.dedent(
    """
    import dagloom as dg

    releases = dg.DynamicPartitionsDefinition(name="releases")


    @dg.asset
    def upstream() -> int:
        return 1


    @dg.asset(partitions_def=releases)
    def release(context) -> str:
        return context.partition_key


    release_job = dg.define_asset_job(
        "release_job", selection=["release"], partitions_def=releases
    )


    @dg.op
    def follow_up() -> None:
        pass


    @dg.job
    def follow() -> None:
        follow_up()


    @dg.sensor(job=release_job, default_status=dg.DefaultSensorStatus.RUNNING)
    def new_releases(context):
        latest = context.instance.get_latest_materialization_event(dg.AssetKey("upstream"))
        if latest is None:
            return dg.SkipReason("upstream has no materialization")
        return [
            dg.RunRequest(
                run_key=key, partition_key=key, tags={"upstream_run": latest.run_id or "none"}
            )
            for key in ("v1", "v2")
            if context.instance.has_dynamic_partition("releases", key)
        ]


    @dg.multi_asset_sensor(
        monitored_assets=[dg.AssetKey("upstream")],
        job=follow,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def on_upstream(context):
        record = context.latest_materialization_records_by_key()[dg.AssetKey("upstream")]
        if record is None:
            return dg.SkipReason("no new materialization of upstream")
        context.advance_all_cursors()
        return dg.RunRequest(run_key=f"upstream-{record.storage_id}")
    """
)


@asynccontextmanager
async def dev_node(tmp_path: Path, instance: DagloomInstance) -> AsyncIterator[RunningNode]:
    """A `dagloom dev` node (daemon included) serving `DEFS` over `instance`."""
    path = tmp_path / "defs.py"
    path.write_text(DEFS)
    topology = dev_topology(
        {"here": CodeOrigin(python_file=str(path))},
        api_port=None,
        grpc_port=None,
        launcher=None,
        reload_on_change=False,
    )
    async with anyio.create_task_group() as tg:
        node = await tg.start(functools.partial(run_node, topology, "dev", instance=instance))
        yield node
        tg.cancel_scope.cancel()


async def first_ended_tick(instance: DagloomInstance, sensor: str) -> Tick:
    """The sensor's first tick that ended, once it has."""
    ended = [TickStatus.SUCCESS, TickStatus.SKIPPED, TickStatus.FAILURE]
    origin = origin_id(InstigatorType.SENSOR, "here", sensor)
    while True:
        ticks = await instance.schedule_storage.get_ticks(origin, statuses=ended)
        if ticks:
            return ticks[-1]
        # Ticks have no watch to wait on: poll storage (the caller bounds the wait).
        await anyio.sleep(0.05)


async def test_a_sensor_reads_partitions_and_materializations_from_the_instance(
    tmp_path: Path,
) -> None:
    async with DagloomInstance.ephemeral() as instance:
        await instance.add_dynamic_partitions("releases", ["v1"])
        await instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="upstream"))
        with anyio.fail_after(120):
            async with dev_node(tmp_path, instance):
                tick = await first_ended_tick(instance, "new_releases")
        assert tick.status == TickStatus.SUCCESS, tick.error
        [run] = [run for run in await instance.get_runs() if run.job_name == "release_job"]
        assert run.tags["dagster/partition"] == "v1"
        assert run.tags["upstream_run"] == "none"


async def test_a_multi_asset_sensor_ticks_through_the_daemon(tmp_path: Path) -> None:
    async with DagloomInstance.ephemeral() as instance:
        await instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="upstream"))
        [record] = await instance.get_materializations(["upstream"], limit=1)
        with anyio.fail_after(120):
            async with dev_node(tmp_path, instance):
                tick = await first_ended_tick(instance, "on_upstream")
        assert tick.status == TickStatus.SUCCESS, tick.error
        runs = [run for run in await instance.get_runs() if run.job_name == "follow"]
        assert [run.tags[RUN_KEY_TAG] for run in runs] == [f"upstream-{record.storage_id}"]
