"""Run status, run failure and asset sensors in the sensor loop: each ended run or new
materialization is evaluated once, from the stored cursor, and the cursor of a run status
sensor moves past a run even when its evaluation failed."""

from __future__ import annotations

from typing import Any, cast

import dagloom as dg
from dagloom.daemon._event_sensors import RunPosition, select_materialization, select_runs
from dagloom.daemon._instigators import origin_id
from dagloom.daemon.sensors import SensorLoop
from dagloom.definitions import Definitions
from dagloom.instance import DagloomInstance
from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    Event,
    EventRecord,
    EventType,
    InstigatorType,
    Run,
    RunStatus,
    TickStatus,
)
from dagloom.messages.rpc import SensorSnapshot

from ._fakes import InProcessLocation, storing_coordinator

T0 = 1_800_000_000.0
RUNNING = dg.DefaultSensorStatus.RUNNING
SEEN: list[str] = []


@dg.op
def noop() -> None:
    pass


@dg.job
def watched() -> None:
    noop()


@dg.job
def other() -> None:
    noop()


@dg.job
def follow_up() -> None:
    noop()


@dg.run_failure_sensor(minimum_interval_seconds=30, default_status=RUNNING)
def on_failure(context: dg.RunFailureSensorContext) -> None:
    steps = ",".join(e.step_key or "" for e in context.get_step_failure_events())
    SEEN.append(f"{context.dagster_run.run_id}:{context.failure_event.message}:{steps}")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[watched],
    request_job=follow_up,
    minimum_interval_seconds=30,
    default_status=RUNNING,
)
def after_watched(context: dg.RunStatusSensorContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=context.dagster_run.run_id)


@dg.run_failure_sensor(minimum_interval_seconds=30, default_status=RUNNING)
def broken(context: dg.RunFailureSensorContext) -> None:
    raise RuntimeError("the sensor broke")


@dg.asset_sensor(
    asset_key=dg.AssetKey("orders"),
    job=follow_up,
    minimum_interval_seconds=30,
    default_status=RUNNING,
)
def orders_changed(context: Any, asset_event: dg.EventLogEntry) -> dg.RunRequest:
    assert asset_event.dagster_event.asset_key == dg.AssetKey("orders")
    assert asset_event.asset_materialization is not None
    assert context.cursor == str(asset_event.storage_id)
    return dg.RunRequest(run_key=context.cursor)


def origin(name: str) -> str:
    return origin_id(InstigatorType.SENSOR, "here", name)


def loop(instance: DagloomInstance, coordinator: Any, defs: Definitions) -> SensorLoop:
    location = InProcessLocation("here", defs)
    return SensorLoop(instance, {"here": cast(Any, location)}, coordinator, owner="d")


async def ended_run(
    instance: DagloomInstance, job_name: str, event_type: EventType, at: float, message: str = ""
) -> Run:
    run = await instance.create_run(Run(job_name=job_name, code_location="here", create_time=at))
    steps = [EventType.RUN_STARTING, EventType.RUN_START]
    if event_type == EventType.RUN_FAILURE:
        steps.append(EventType.STEP_FAILURE)
    for step in (*steps, event_type):
        await instance.store_events(
            [
                Event(
                    run_id=run.run_id,
                    event_type=step,
                    step_key="noop" if step == EventType.STEP_FAILURE else "",
                    job_name=job_name,
                    timestamp=at,
                    message=message if step == event_type else "",
                )
            ]
        )
    stored = await instance.get_run(run.run_id)
    assert stored is not None
    return stored


async def materialize(instance: DagloomInstance, at: float) -> None:
    run = await instance.create_run(Run(job_name="assets", code_location="here", create_time=at))
    data = AssetMaterializationData(asset_key=AssetKeyMessage(path=["orders"]))
    await instance.store_events(
        [
            Event(
                run_id=run.run_id,
                event_type=EventType.ASSET_MATERIALIZATION,
                timestamp=at,
                step_key="orders",
                asset_materialization=data,
            )
        ]
    )


async def test_a_run_failure_sensor_fires_once_per_failed_run() -> None:
    SEEN.clear()
    defs = Definitions(jobs=[watched], sensors=[on_failure])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        await ended_run(instance, "watched", EventType.RUN_FAILURE, 1.0, "history")
        sensors = loop(instance, coord, defs)
        await sensors.tick(T0)  # the first tick starts after the runs already ended
        assert SEEN == []
        failed = await ended_run(instance, "watched", EventType.RUN_FAILURE, 2.0, "boom")
        await ended_run(instance, "watched", EventType.RUN_SUCCESS, 3.0)
        await sensors.tick(T0 + 30)
        assert [f"{failed.run_id}:boom:noop"] == SEEN
        await sensors.tick(T0 + 60)
        assert [f"{failed.run_id}:boom:noop"] == SEEN


async def test_a_run_status_sensor_requests_a_run_after_a_monitored_job_succeeds() -> None:
    defs = Definitions(jobs=[watched, other, follow_up], sensors=[after_watched])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        sensors = loop(instance, coord, defs)
        await sensors.tick(T0)
        done = await ended_run(instance, "watched", EventType.RUN_SUCCESS, 2.0)
        await ended_run(instance, "other", EventType.RUN_SUCCESS, 3.0)
        await ended_run(instance, "watched", EventType.RUN_FAILURE, 4.0)
        await sensors.tick(T0 + 30)
        await sensors.tick(T0 + 60)
        runs = await instance.get_runs()
        requested = [run for run in runs if run.job_name == "follow_up"]
        assert len(requested) == 1
        assert requested[0].tags["dagloom/run_key"] == done.run_id


async def test_a_failed_evaluation_still_moves_a_run_status_sensors_cursor() -> None:
    defs = Definitions(jobs=[watched], sensors=[broken])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        sensors = loop(instance, coord, defs)
        await sensors.tick(T0)
        await ended_run(instance, "watched", EventType.RUN_FAILURE, 2.0)
        await sensors.tick(T0 + 30)
        await sensors.tick(T0 + 60)
        ticks = await instance.schedule_storage.get_ticks(origin("broken"))
        statuses = [tick.status for tick in reversed(ticks)]
        assert statuses == [TickStatus.SKIPPED, TickStatus.FAILURE, TickStatus.SKIPPED]


async def test_an_asset_sensor_fires_once_per_new_materialization() -> None:
    defs = Definitions(jobs=[follow_up], sensors=[orders_changed])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        sensors = loop(instance, coord, defs)
        await sensors.tick(T0)
        await materialize(instance, 1.0)
        await sensors.tick(T0 + 30)
        await sensors.tick(T0 + 60)
        await materialize(instance, 2.0)
        await sensors.tick(T0 + 90)
        runs = [run for run in await instance.get_runs() if run.job_name == "follow_up"]
        assert len(runs) == 2
        ticks = await instance.schedule_storage.get_ticks(origin("orders_changed"))
        statuses = [tick.status for tick in reversed(ticks)]
        assert statuses == [
            TickStatus.SKIPPED,
            TickStatus.SUCCESS,
            TickStatus.SKIPPED,
            TickStatus.SUCCESS,
        ]


def run(run_id: str, job: str, status: RunStatus, end: float, location: str = "here") -> Run:
    return Run(run_id=run_id, job_name=job, status=status, end_time=end, code_location=location)


def test_runs_are_selected_after_the_cursor_in_end_time_order() -> None:
    snapshot = SensorSnapshot(name="s", monitored_run_status="FAILURE", monitored_job_names=["a"])
    runs = [
        run("r3", "a", RunStatus.FAILURE, 3.0),
        run("r1", "a", RunStatus.FAILURE, 1.0),
        run("r2", "a", RunStatus.FAILURE, 2.0),
        run("x", "b", RunStatus.FAILURE, 2.5),
        run("y", "a", RunStatus.SUCCESS, 2.5),
        run("z", "a", RunStatus.FAILURE, 2.7, location="elsewhere"),
    ]
    first = select_runs(snapshot, "here", runs, None)
    assert first.runs == [] and RunPosition.parse(first.cursor) == RunPosition(3.0, "r3")
    since_one = select_runs(snapshot, "here", runs, RunPosition(1.0, "r1").cursor(), limit=1)
    assert [r.run_id for r in since_one.runs] == ["r2"]
    assert RunPosition.parse(since_one.cursor) == RunPosition(2.0, "r2")
    everywhere = SensorSnapshot(
        name="s", monitored_run_status="FAILURE", monitor_all_code_locations=True
    )
    all_runs = select_runs(everywhere, "here", runs, RunPosition(2.0, "r2").cursor())
    assert [r.run_id for r in all_runs.runs] == ["x", "z", "r3"]


def test_the_latest_materialization_after_the_cursor_is_selected() -> None:
    newest_first = [EventRecord(storage_id=9), EventRecord(storage_id=4)]
    assert select_materialization(newest_first, None) == newest_first[0]
    assert select_materialization(newest_first, "4") == newest_first[0]
    assert select_materialization(newest_first, "9") is None
    assert select_materialization([], None) is None
