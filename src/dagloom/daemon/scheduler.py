"""The scheduler loop: fires each running schedule's due ticks, recording every tick
before submitting its runs, so a tick redone after a crash submits each run once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dagloom.daemon._instigators import is_running, schedule_state, started_at, sync_state
from dagloom.daemon._schedule_ticks import (
    CatchUpPolicy,
    LastScheduleTick,
    ScheduledRunIdentity,
    ScheduleTickState,
    schedule_ticks_due,
)
from dagloom.daemon._submit import (
    LeasedInstigatorLoop,
    Location,
    finished,
    named_error,
    submission,
)
from dagloom.errors import LeaseLostError
from dagloom.instance import DagloomInstance
from dagloom.messages import InstigatorType, Tick, TickStatus
from dagloom.messages.rpc import EvaluateScheduleRequest, ScheduleSnapshot
from dagloom.transport import ActorRef

SCHEDULER_LEASE = "daemon/scheduler"
"""The storage lease the scheduler loop of one daemon at a time holds."""


class SchedulerLoop(LeasedInstigatorLoop):
    """Every `interval` seconds, fires the due ticks of every running schedule of every
    code location (a `DaemonLoop`).

    A schedule runs when started (`dagloom schedule start`) or, never toggled, when its
    `default_status` is RUNNING; no tick before it was (last) started is ever due. Due ticks
    follow `schedule_ticks_due` and the schedule's catch-up policy (its own `catch_up`, else
    the instance's `schedules.catch_up`). Each tick is recorded
    STARTED, then evaluated in the code location, then its runs are submitted to
    `coordinator` under derived run ids, then the tick is updated with the runs and its
    outcome. A round killed anywhere in between leaves the tick STARTED, and the next round
    (of this daemon or another) redoes it: runs already stored are found again by their
    ids, so each run is submitted once. An evaluation that raises, times out or names an
    unknown job ends its tick FAILURE with the error, naming the schedule.

    Only the daemon holding the `daemon/scheduler` lease (renewed each round, lost
    `lease_seconds` after its holder stops) fires ticks. Its tick writes carry the lease's
    fencing token, so a holder paused past its lease has them refused once another daemon
    took over, and stops; the derived run ids make its submissions harmless besides.
    """

    name = "scheduler"
    lease = SCHEDULER_LEASE

    def __init__(
        self,
        instance: DagloomInstance,
        locations: Mapping[str, ActorRef[Any, Any]],
        coordinator: ActorRef[Any, Any],
        *,
        owner: str,
        interval: float = 10.0,
        lease_seconds: float | None = None,
        ask_timeout: float | None = None,
    ) -> None:
        config = instance.config
        # A schedule's evaluation is bounded in its code location; this only bounds the wait.
        super().__init__(
            instance,
            locations,
            coordinator,
            owner=owner,
            interval=interval,
            lease_seconds=lease_seconds,
            ask_timeout=ask_timeout or config.sensors.evaluation_timeout_seconds + 30.0,
        )
        self._config = config
        self._max_tick_retries = (
            config.scheduler.config.max_tick_retries if config.scheduler is not None else 0
        )

    async def tick(self, now: float) -> None:
        """One round at `now`; raises the first problem met after trying every schedule."""
        leased = await self._leased_locations(now)
        if leased is None:
            return
        locations, problems = leased
        for location in locations:
            for schedule in location.snapshot.schedules:
                try:
                    await self._schedule(location, schedule, now)
                except LeaseLostError as exc:
                    self._log.warning("scheduler_lease_lost", error=str(exc))
                    return
                except Exception as exc:  # a supervision point: one schedule stops no other
                    self._log.exception("schedule_round_failed", schedule=schedule.name)
                    problems.append(exc)
        if problems:
            raise problems[0]

    async def _schedule(self, location: Location, schedule: ScheduleSnapshot, now: float) -> None:
        storage = self._instance.schedule_storage
        state = await sync_state(storage, schedule_state(location.name, schedule, now=now))
        if not is_running(state):
            return
        recent = await storage.get_ticks(state.origin_id, limit=self._max_tick_retries + 2)
        last = recent[0] if recent else None
        last_tick = None
        if last is not None:
            failures = 0
            for earlier in recent:
                if earlier.timestamp != last.timestamp or earlier.status != TickStatus.FAILURE:
                    break
                failures += 1
            last_tick = LastScheduleTick(
                scheduled_time=last.timestamp,
                finished=last.status != TickStatus.STARTED,
                failure_count=failures,
            )
        due = schedule_ticks_due(
            ScheduleTickState(
                cron_schedule=list(schedule.cron_schedules),
                execution_timezone=schedule.execution_timezone or None,
                started_at=started_at(state),
                last_tick=last_tick,
                catch_up=CatchUpPolicy.from_config(self._config, schedule.catch_up or None),
                max_tick_retries=self._max_tick_retries,
            ),
            now=now,
        )
        for when in due.ticks:
            resumed = (
                last
                if last is not None
                and last.status == TickStatus.STARTED
                and last.timestamp == when.timestamp()
                else None
            )
            await self._fire(location, schedule, state.origin_id, when, resumed, now)

    async def _fire(
        self,
        location: Location,
        schedule: ScheduleSnapshot,
        origin_id: str,
        when: datetime,
        resumed: Tick | None,
        now: float,
    ) -> None:
        storage = self._instance.schedule_storage
        tick = resumed or await storage.create_tick(
            Tick(
                origin_id=origin_id,
                instigator_name=schedule.name,
                instigator_type=InstigatorType.SCHEDULE,
                status=TickStatus.STARTED,
                timestamp=when.timestamp(),
            ),
            fence=self.fence,
        )
        self._log.info(
            "schedule_tick",
            schedule=schedule.name,
            scheduled=when.isoformat(),
            redone=bool(resumed),
        )
        result = await self._evaluated(
            location,
            EvaluateScheduleRequest(
                schedule_name=schedule.name, scheduled_execution_time=when.timestamp()
            ),
        )
        if result.error is not None:
            error = named_error(result.error, "schedule", schedule.name)
            await storage.update_tick(
                finished(tick, now=now, run_ids=[], run_keys=[], error=error), fence=self.fence
            )
            return
        submissions = []
        for request in result.run_requests:
            identity = ScheduledRunIdentity(
                location_name=location.name,
                schedule_name=schedule.name,
                scheduled_time=when,
                run_key=request.run_key or None,
            )
            submissions.append(
                submission(
                    location.name,
                    request,
                    default_job=schedule.job_name,
                    run_id=identity.run_id,
                    tags=identity.tags,
                )
            )
        done = await self._submit(submissions)
        await storage.update_tick(
            finished(
                tick,
                now=now,
                run_ids=done.run_ids,
                run_keys=[r.run_key for r in result.run_requests if r.run_key],
                skip_reason=result.skip_message,
                error=named_error(done.errors[0], "schedule", schedule.name)
                if done.errors
                else None,
            ),
            fence=self.fence,
        )
