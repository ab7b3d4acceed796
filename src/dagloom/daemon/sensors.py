"""The sensor loop: evaluates each running sensor once its interval has passed, with its
cursor, launches the runs it asks for (once per run key over the sensor's whole history),
and stores the cursor with the tick."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from dagloom.daemon._event_sensors import monitored_status, select_materialization, select_runs
from dagloom.daemon._instigators import is_running, sensor_state, sync_state
from dagloom.daemon._sensor_ticks import (
    KeyedRun,
    SensorRunIdentity,
    SensorTickState,
    sensor_due,
    sensor_submissions,
)
from dagloom.daemon._submit import (
    LeasedInstigatorLoop,
    Location,
    finished,
    named_error,
    submission,
)
from dagloom.daemon._tags import derived_run_id
from dagloom.definitions.run_request import RunRequest
from dagloom.errors import LeaseLostError
from dagloom.instance import DagloomInstance
from dagloom.messages import (
    Event,
    EventRecord,
    EventType,
    InstigatorState,
    InstigatorType,
    Run,
    RunStatus,
    Tick,
    TickStatus,
)
from dagloom.messages.rpc import (
    EvaluateSensorRequest,
    RunRequestMessage,
    SensorSnapshot,
    SubmitRunRequest,
)
from dagloom.storage.base import RunsFilter
from dagloom.transport import ActorRef

SENSOR_LEASE = "daemon/sensors"
"""The storage lease the sensor loop of one daemon at a time holds."""

DEFAULT_SENSOR_WORKERS = 4
"""Sensors evaluated at once when `sensors.num_workers` is not set."""


class SensorLoop(LeasedInstigatorLoop):
    """Every `interval` seconds, ticks each running sensor whose `minimum_interval_seconds`
    has passed since its last tick (a `DaemonLoop`).

    A sensor runs when started (`dagloom sensor start`) or, never toggled, when its
    `default_status` is RUNNING. A tick is recorded STARTED, the sensor is evaluated in its
    code location with the stored cursor (several sensors at once, up to
    `sensors.num_workers`, each bounded by `sensors.evaluation_timeout_seconds`), its run
    requests are deduplicated by run key over the sensor's whole history
    (`sensor_submissions`; a keyed run's id is derived from the sensor and key), the new runs
    are submitted, and the tick is finished with its runs and cursor; the cursor is stored
    in the sensor's state only when the tick did not fail. A tick cut short is resumed on
    the next round and evaluated again from the cursor it started with, so keyed runs are
    never doubled. A sensor that raises, times out or returns what is not a sensor result
    ends its tick FAILURE with the error, and the loop goes on with the others.

    Only the daemon holding the `daemon/sensors` lease ticks sensors, and its tick and
    cursor writes carry the lease's fencing token: a daemon paused past its lease has them
    refused once another took over, and ends its round.
    """

    name = "sensors"
    lease = SENSOR_LEASE

    def __init__(
        self,
        instance: DagloomInstance,
        locations: Mapping[str, ActorRef[Any, Any]],
        coordinator: ActorRef[Any, Any],
        *,
        owner: str,
        interval: float = 5.0,
        lease_seconds: float | None = None,
        ask_timeout: float | None = None,
    ) -> None:
        config = instance.config.sensors
        super().__init__(
            instance,
            locations,
            coordinator,
            owner=owner,
            interval=interval,
            lease_seconds=lease_seconds,
            ask_timeout=ask_timeout or config.evaluation_timeout_seconds,
        )
        self._workers = config.num_workers or DEFAULT_SENSOR_WORKERS

    async def tick(self, now: float) -> None:
        """One round at `now`; raises the first problem met after trying every sensor."""
        leased = await self._leased_locations(now)
        if leased is None:
            return
        locations, problems = leased
        limiter = anyio.CapacityLimiter(self._workers)
        lost: list[LeaseLostError] = []

        async def one(location: Location, sensor: SensorSnapshot) -> None:
            async with limiter:
                if lost:
                    return
                try:
                    await self._sensor(location, sensor, now)
                except LeaseLostError as exc:
                    lost.append(exc)
                except Exception as exc:  # a supervision point: one sensor stops no other
                    self._log.exception("sensor_round_failed", sensor=sensor.name)
                    problems.append(exc)

        async with anyio.create_task_group() as tg:
            for location in locations:
                for sensor in location.snapshot.sensors:
                    if not sensor.automation_condition_sensor:  # the automation loop's
                        tg.start_soon(one, location, sensor)
        if lost:
            self._log.warning("sensors_lease_lost", error=str(lost[0]))
            return
        if problems:
            raise problems[0]

    async def _sensor(self, location: Location, sensor: SensorSnapshot, now: float) -> None:
        storage = self._instance.schedule_storage
        state = await sync_state(storage, sensor_state(location.name, sensor, now=now))
        if not is_running(state):
            return
        recent = await storage.get_ticks(state.origin_id, limit=1)
        last = recent[0] if recent else None
        due = sensor_due(
            SensorTickState(
                minimum_interval_seconds=sensor.minimum_interval_seconds,
                last_tick_time=last.timestamp if last is not None else None,
                last_tick_finished=last is None or last.status != TickStatus.STARTED,
            ),
            now=now,
        )
        if not due.due:
            return
        if due.resume and last is not None:
            tick = last
        else:
            tick = await storage.create_tick(
                Tick(
                    origin_id=state.origin_id,
                    instigator_name=sensor.name,
                    instigator_type=InstigatorType.SENSOR,
                    status=TickStatus.STARTED,
                    timestamp=now,
                    cursor=state.cursor,
                ),
                fence=self.fence,
            )
        await self._evaluate(location, sensor, state, tick, last, now)

    async def _evaluate(
        self,
        location: Location,
        sensor: SensorSnapshot,
        state: InstigatorState,
        tick: Tick,
        last: Tick | None,
        now: float,
    ) -> None:
        storage = self._instance.schedule_storage
        completed = last.end_time if last is not None and last is not tick else 0.0
        inputs = await self._stored_inputs(location, sensor, state.cursor)
        result = await self._evaluated(
            location,
            EvaluateSensorRequest(
                sensor_name=sensor.name,
                cursor=state.cursor,
                last_tick_completion_time=completed,
                runs=inputs.runs,
                events=inputs.events,
                step_failure_events=inputs.step_failures,
            ),
        )
        if inputs.cursor is not None:
            # Run and asset sensors: the cursor is where the stored inputs end.
            result.cursor, result.cursor_updated = inputs.cursor, inputs.cursor != state.cursor
        if result.error is not None:
            failure = named_error(result.error, "sensor", sensor.name)
            ended = finished(tick, now=now, run_ids=[], run_keys=[], error=failure)
            ended.cursor = state.cursor
            if inputs.past_failures and result.cursor_updated:
                # As in Dagster, a run status sensor does not see a run again after a
                # failed evaluation.
                ended.cursor = result.cursor
                await storage.set_sensor_cursor(state.origin_id, result.cursor, fence=self.fence)
            await storage.update_tick(ended, fence=self.fence)
            self._log.info("sensor_tick_failed", sensor=sensor.name, error=failure.message)
            return

        # Dynamic partitions first, so runs for new partitions find them (idempotent: a
        # redone tick applies them again harmlessly).
        for change in result.dynamic_partitions_requests:
            if change.delete:
                for key in change.partition_keys:
                    await self._instance.delete_dynamic_partition_async(
                        change.partitions_def_name, key
                    )
            else:
                await self._instance.add_dynamic_partitions_async(
                    change.partitions_def_name, change.partition_keys
                )
        requests = [_as_request(m) for m in result.run_requests]
        by_request = {id(r): m for r, m in zip(requests, result.run_requests, strict=True)}
        identities = {
            r.run_key: SensorRunIdentity(location.name, sensor.name, r.run_key)
            for r in requests
            if r.run_key is not None
        }
        existing: dict[str, KeyedRun] = {}
        if identities:
            by_id = {i.run_id: key for key, i in identities.items()}
            for run in await self._instance.get_runs_async(RunsFilter(run_ids=list(by_id))):
                existing[by_id[run.run_id]] = KeyedRun(run.run_id, run.status)
        plan = sensor_submissions(requests, existing)
        submissions: list[SubmitRunRequest] = []
        default_job = sensor.job_names[0] if len(sensor.job_names) == 1 else ""
        for index, request in enumerate(plan.create):
            if request.run_key is not None:
                identity = identities[request.run_key]
                run_id, tags = identity.run_id, identity.tags
            else:
                # Unkeyed: one run per request of this tick, also when the tick is resumed.
                parts = ("sensor", location.name, sensor.name, "tick", str(tick.tick_id))
                run_id, tags = derived_run_id(*parts, str(index)), {}
            submissions.append(
                submission(
                    location.name,
                    by_request[id(request)],
                    default_job=default_job,
                    run_id=run_id,
                    tags=tags,
                )
            )
        if plan.submit:
            # Created by a submission that died before it was handed on; the coordinator
            # rolls such runs back, so one left NOT_STARTED is only reported.
            self._log.warning("sensor_runs_not_started", sensor=sensor.name, run_ids=plan.submit)
        done = await self._submit(submissions)
        skip = result.skip_message
        if not done.run_ids and plan.skipped_keys and not skip:
            skip = f"runs already requested for run keys: {', '.join(plan.skipped_keys)}"
        cursor = result.cursor if result.cursor_updated else state.cursor
        error = named_error(done.errors[0], "sensor", sensor.name) if done.errors else None
        ended = finished(
            tick,
            now=now,
            run_ids=done.run_ids,
            run_keys=[r.run_key for r in requests if r.run_key is not None],
            skip_reason=skip,
            error=error,
        )
        ended.cursor = cursor
        await storage.update_tick(ended, fence=self.fence)
        if error is None and result.cursor_updated:
            await storage.set_sensor_cursor(state.origin_id, cursor, fence=self.fence)
        # A skipped tick every few seconds is routine: only ticks that did something inform.
        log = self._log.debug if ended.status == TickStatus.SKIPPED else self._log.info
        log("sensor_tick", sensor=sensor.name, status=ended.status.name, run_ids=done.run_ids)

    async def _stored_inputs(
        self, location: Location, sensor: SensorSnapshot, cursor: str
    ) -> _StoredInputs:
        """The runs or materializations a run status or asset sensor is evaluated on, and
        its cursor after them; nothing (and no cursor) for another sensor."""
        status = monitored_status(sensor)
        events_storage = self._instance.event_log_storage
        if status is not None:
            selection = select_runs(
                sensor,
                location.name,
                await self._instance.get_runs_async(RunsFilter(statuses=[status])),
                cursor or None,
            )
            records = [await self._end_event(run) for run in selection.runs]
            step_failures: list[EventRecord] = []
            if status == RunStatus.FAILURE:
                for run in selection.runs:
                    step_failures += await events_storage.get_events(
                        run.run_id, event_types=[EventType.STEP_FAILURE]
                    )
            return _StoredInputs(selection.runs, records, selection.cursor, True, step_failures)
        if sensor.monitored_asset_key is not None:
            newest = await events_storage.get_materializations(
                list(sensor.monitored_asset_key.path), limit=1
            )
            record = select_materialization(newest, cursor or None)
            if record is None:
                return _StoredInputs([], [], cursor, past_failures=False)
            return _StoredInputs([], [record], str(record.storage_id), past_failures=False)
        return _StoredInputs([], [], None, past_failures=False)

    async def _end_event(self, run: Run) -> EventRecord:
        """The event that ended `run` (its status's), or one made from the run when none
        was stored (a run ended by storage alone)."""
        event_type = _END_EVENTS[run.status]
        stored = await self._instance.event_log_storage.get_events(
            run.run_id, event_types=[event_type]
        )
        if stored:
            return stored[-1]
        return EventRecord(
            storage_id=0,
            event=Event(
                run_id=run.run_id,
                event_type=event_type,
                timestamp=run.end_time,
                job_name=run.job_name,
                message=run.failure.message if run.failure is not None else "",
            ),
        )


_END_EVENTS = {
    RunStatus.SUCCESS: EventType.RUN_SUCCESS,
    RunStatus.FAILURE: EventType.RUN_FAILURE,
    RunStatus.CANCELED: EventType.RUN_CANCELED,
}


@dataclass(frozen=True, slots=True)
class _StoredInputs:
    """What a sensor tick is evaluated on from storage, and the cursor after it (None: the
    sensor keeps its own cursor). `past_failures`: the cursor moves even when the
    evaluation fails."""

    runs: list[Run]
    events: list[EventRecord]
    cursor: str | None
    past_failures: bool
    step_failures: list[EventRecord] = field(default_factory=list)


def _as_request(message: RunRequestMessage) -> RunRequest:
    """The parts of a requested run that deduplication looks at."""
    return RunRequest(run_key=message.run_key or None, job_name=message.job_name or None)
