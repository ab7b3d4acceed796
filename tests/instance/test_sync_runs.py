"""Run reads of the synchronous instance (`context.instance.get_runs` and friends), as a
sensor built with `build_sensor_context(instance=...)` calls them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import pytest

import dagloom as dg
from dagloom.messages import Run, RunStatus


@dg.op
def noop() -> None:
    pass


@dg.job
def follow() -> None:
    noop()


@dg.sensor(job=follow)
def recent_etl_runs(context: dg.SensorEvaluationContext) -> list[dg.RunRequest]:
    recent = dg.RunsFilter(job_name="etl", created_after=datetime.fromtimestamp(150, UTC))
    return [dg.RunRequest(run_key=run.run_id) for run in context.instance.get_runs(recent)]


async def tick(instance: dg.DagloomInstance, sensor: Any) -> Any:
    # The instance's calls wait for its own loop: the sensor runs on a thread, as on a tick.
    context = dg.build_sensor_context(instance=instance)
    return await anyio.to_thread.run_sync(sensor.evaluate_tick, context)


async def test_get_runs_takes_dagsters_runs_filter_with_datetimes() -> None:
    async with dg.DagloomInstance.ephemeral() as instance:
        for run_id, job, created in [("old", "etl", 100.0), ("new", "etl", 200.0)]:
            await instance.create_run(
                Run(run_id=run_id, job_name=job, status=RunStatus.SUCCESS, create_time=created)
            )
        await instance.create_run(Run(run_id="other", job_name="report", create_time=300.0))
        result = await tick(instance, recent_etl_runs)
    assert [r.run_key for r in result.run_requests] == ["new"]


async def test_run_reads_refuse_what_they_cannot_answer() -> None:
    async with dg.DagloomInstance.ephemeral() as instance:
        view = dg.build_sensor_context(instance=instance).instance

        def read() -> None:
            view.get_run_records(order_by="update_timestamp")

        with pytest.raises(dg.DagsterInvalidInvocationError, match="order_by='update_timestamp'"):
            await anyio.to_thread.run_sync(read)
        with pytest.raises(dg.DagsterInvalidInvocationError, match="must be a RunsFilter"):
            await anyio.to_thread.run_sync(view.get_runs, {"job_name": "etl"})
