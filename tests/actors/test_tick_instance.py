"""A sensor the daemon ticks sees the deployment's instance as `context.instance`: in a
`dagloom dev` node its calls are forwarded from the evaluation process to the node's
instance (here in memory, which no other process could open)."""

from __future__ import annotations

import functools
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import dagloom as dg
from dagloom.actors import Supervisor
from dagloom.actors.code_location import CodeLocationServer, TickInstance
from dagloom.daemon._instigators import origin_id
from dagloom.daemon._tags import RUN_KEY_TAG
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.messages import InstigatorType, Run, RunStatus, Tick, TickStatus
from dagloom.messages.rpc import EvaluateScheduleRequest, EvaluateSensorRequest, TickResult
from dagloom.topology import dev_topology
from dagloom.topology.wiring import RunningNode, run_node
from dagloom.transport import MemoryTransport

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


    @dg.schedule(job=release_job, cron_schedule="0 * * * *")
    def every_release(context):
        return [
            dg.RunRequest(run_key=key, partition_key=key)
            for key in context.instance.get_dynamic_partitions("releases")
        ]


    @dg.sensor(job=follow)
    def after_releases(context):
        released = dg.RunsFilter(job_name="release_job")
        done = context.instance.get_runs(
            dg.RunsFilter(job_name="release_job", statuses=[dg.DagsterRunStatus.SUCCESS])
        )
        records = context.instance.get_run_records(released, limit=10)
        return [
            dg.RunRequest(
                run_key=run.run_id,
                tags={
                    "of_job": context.instance.get_run_by_id(run.run_id).job_name,
                    "released": str(context.instance.get_runs_count(released)),
                    "ended": ",".join(str(bool(r.end_time)) for r in records),
                },
            )
            for run in done
        ]


    @dg.sensor(job=release_job)
    def quiet(context):
        return dg.SkipReason("reads nothing")


    @dg.sensor(job=release_job)
    def backwards(context):
        context.instance.fetch_materializations(
            dg.AssetKey("upstream"), limit=1, ascending=True
        )
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


@asynccontextmanager
async def serving(actor: CodeLocationServer) -> AsyncIterator[Any]:
    supervisor = Supervisor()
    supervisor.add(actor)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        yield MemoryTransport(strict=True).ref(actor)
        tg.cancel_scope.cancel()


async def evaluate(
    ref: Any, request: EvaluateScheduleRequest | EvaluateSensorRequest
) -> TickResult:
    reply = await ref.ask(request, timeout=120)
    assert isinstance(reply, TickResult)
    return reply


async def test_a_code_location_opens_its_instance_when_a_tick_first_reads_it(
    tmp_path: Path,
) -> None:
    """A code server's instance is opened by the first tick that calls context.instance,
    once, and closed when the location stops; a tick that never calls it opens nothing."""
    home = tmp_path / "home"
    async with DagloomInstance.open(home) as instance:
        await instance.add_dynamic_partitions("releases", ["v1", "v2"])
    opened: list[DagloomInstance] = []

    def open_instance() -> DagloomInstance:
        opened.append(DagloomInstance.open(home))
        return opened[-1]

    path = tmp_path / "defs.py"
    path.write_text(DEFS)
    holder = TickInstance(open_instance=open_instance)
    actor = CodeLocationServer("here", CodeOrigin(python_file=str(path)), instance=holder)
    with anyio.fail_after(60):
        async with serving(actor) as ref:
            skipped = await evaluate(ref, EvaluateSensorRequest(sensor_name="quiet"))
            assert opened == []
            first = await evaluate(ref, EvaluateScheduleRequest(schedule_name="every_release"))
            second = await evaluate(ref, EvaluateScheduleRequest(schedule_name="every_release"))
            assert holder.is_open
    assert skipped.skip_message == "reads nothing"
    assert [r.run_key for r in first.run_requests] == ["v1", "v2"]
    assert [r.run_key for r in second.run_requests] == ["v1", "v2"]
    [instance] = opened
    assert not holder.is_open
    assert not instance.is_open


async def test_an_instance_call_that_raises_fails_the_tick_with_its_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "defs.py"
    path.write_text(DEFS)
    async with DagloomInstance.ephemeral() as instance:
        actor = CodeLocationServer("here", CodeOrigin(python_file=str(path)), instance=instance)
        with anyio.fail_after(60):
            async with serving(actor) as ref:
                result = await evaluate(ref, EvaluateSensorRequest(sensor_name="backwards"))
    assert result.error is not None
    assert result.error.cls_name == "DagsterInvalidInvocationError"
    assert "ascending=True is not supported" in result.error.message


async def test_a_sensor_reads_runs_from_the_instance(tmp_path: Path) -> None:
    """get_runs / get_run_records / get_run_by_id / get_runs_count with Dagster's
    RunsFilter, forwarded from the evaluation process."""
    path = tmp_path / "defs.py"
    path.write_text(DEFS)
    async with DagloomInstance.ephemeral() as instance:
        await instance.create_run(Run(run_id="a", job_name="release_job", status=RunStatus.STARTED))
        await instance.create_run(
            Run(run_id="b", job_name="release_job", status=RunStatus.SUCCESS, end_time=5.0)
        )
        await instance.create_run(Run(run_id="c", job_name="follow", status=RunStatus.SUCCESS))
        actor = CodeLocationServer("here", CodeOrigin(python_file=str(path)), instance=instance)
        with anyio.fail_after(60):
            async with serving(actor) as ref:
                result = await evaluate(ref, EvaluateSensorRequest(sensor_name="after_releases"))
    assert result.error is None
    [request] = result.run_requests
    assert request.run_key == "b"
    assert request.tags["of_job"] == "release_job"
    assert request.tags["released"] == "2"
    assert sorted(request.tags["ended"].split(",")) == ["False", "True"]
