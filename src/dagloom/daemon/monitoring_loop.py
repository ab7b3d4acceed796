"""The run monitoring loop: ends runs that are stuck starting, lost their worker, ran too
long, or stayed canceling, as `monitoring_verdict` decides."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import structlog

from dagloom.actors.run_coordinator import launch_stored_run
from dagloom.actors.run_worker import run_end_event
from dagloom.daemon._monitoring import (
    MonitorAction,
    MonitorCheck,
    MonitoredRun,
    MonitoringSettings,
    MonitoringVerdict,
    monitoring_verdict,
    resume_attempts,
    resume_claim_event,
)
from dagloom.daemon._run_claims import RunClaims
from dagloom.errors import ActorUnavailableError, DagloomError, LeaseLostError, RunNotFoundError
from dagloom.messages import EventType, Run, RunStatus
from dagloom.messages.rpc import TerminateRunRequest
from dagloom.storage.base import RUN_STATUS_BY_EVENT, RunsFilter

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.storage.base import Fence
    from dagloom.transport import ActorRef

MONITORED_STATUSES = (
    RunStatus.NOT_STARTED,
    RunStatus.STARTING,
    RunStatus.STARTED,
    RunStatus.CANCELING,
)
"""The statuses of runs monitoring looks at: every unfinished one but QUEUED and MANAGED."""

_EVENT_OF_STATUS = {status: event for event, status in RUN_STATUS_BY_EVENT.items()}


class RunMonitoringLoop:
    """Each tick, judges every NOT_STARTED, STARTING, STARTED and CANCELING run with
    `monitoring_verdict` at `now` and carries the verdict out.

    FAIL stores a RUN_FAILURE whose message names the check and why; CANCEL stores a
    RUN_CANCELED. Both go through `DagloomInstance.transition_run`, a compare-and-set: when
    the run moved meanwhile (it ended, or another daemon acted first) storage refuses and
    nothing more is done. A verdict asking to stop the worker (start timeout, max runtime)
    is carried out only by the daemon whose transition applied, by telling `launcher`
    `TerminateRun` (a launcher that is down or has no such run changes nothing: the run is
    already ended in storage, so a worker that goes on is refused its events' transitions).

    RESUME (a STARTED run whose worker went silent, while `max_resume_run_attempts` allows)
    stores a resume claim (`resume_claim_event`: the run moves back to STARTING, in a
    compare-and-set from STARTED only, with the attempt's number in the event), then hands
    the run to `launcher`, whose new worker claims it and executes only the steps that had
    not succeeded (see `RunWorker`). Attempts are counted from those events, so a daemon that
    dies between claim and launch does not make the count wrong: the run then sits STARTING
    and the start timeout fails it. When the attempts are spent, the run is failed saying so.

    A verdict other than LEAVE is acted on under a per-run claim (`RunClaims`, taken as
    `owner`): the run is read again and judged again under it, and the claim's fence is
    checked before each write, so two daemons monitoring one storage act on each run once.
    Runs left alone cost no claim.

    A tick reads storage and writes only to runs it acts on; calling it twice with the same
    `now` acts once. Cancelling a tick may leave a run failed but its worker not yet told;
    a max-runtime worker's own later events are then refused.
    """

    name = "run_monitoring"

    def __init__(
        self,
        instance: DagloomInstance,
        launcher: ActorRef[Any, Any] | None,
        settings: MonitoringSettings,
        *,
        interval: float = 120.0,
        terminate_timeout: float = 30.0,
        launch_timeout: float = 60.0,
        owner: str | None = None,
    ) -> None:
        self.interval = interval
        self._instance = instance
        self._launcher = launcher
        self._settings = settings
        self._terminate_timeout = terminate_timeout
        self._launch_timeout = launch_timeout
        self._claims = RunClaims(instance, owner or f"{self.name}/{uuid.uuid4()}")
        self._log = structlog.get_logger("dagloom.daemon")

    @classmethod
    def from_instance(
        cls, instance: DagloomInstance, launcher: ActorRef[Any, Any] | None
    ) -> RunMonitoringLoop | None:
        """The loop the instance's `run_monitoring` section configures, ticking every
        `poll_interval_seconds`; None when `enabled` is false (the default, as in Dagster)."""
        config = instance.config.run_monitoring
        if not config.enabled:
            return None
        return cls(
            instance,
            launcher,
            MonitoringSettings.from_config(config),
            interval=config.poll_interval_seconds,
        )

    async def tick(self, now: float) -> None:
        """Judge every monitored run at `now` and act on the verdicts (see the class)."""
        runs = await self._instance.get_runs_async(RunsFilter(statuses=list(MONITORED_STATUSES)))
        for run in runs:
            await self._monitor(run, now)

    async def _monitor(self, run: Run, now: float) -> None:
        verdict = monitoring_verdict(await self._view(run, attempts=False), self._settings, now=now)
        if verdict.action == MonitorAction.LEAVE:
            return
        async with self._claims.claim(run.run_id, now) as fence:
            if fence is None:
                self._log.debug("run_claimed_elsewhere", run_id=run.run_id)
                return
            fresh = await self._instance.get_run(run.run_id)
            if fresh is None:
                return  # deleted since it was listed
            watched = await self._view(fresh, attempts=True)
            verdict = monitoring_verdict(watched, self._settings, now=now)
            try:
                match verdict.action:
                    case MonitorAction.LEAVE:
                        return
                    case MonitorAction.FAIL:
                        await self._end(fresh, EventType.RUN_FAILURE, verdict, now, fence)
                    case MonitorAction.CANCEL:
                        await self._end(fresh, EventType.RUN_CANCELED, verdict, now, fence)
                    case MonitorAction.RESUME:
                        await self._resume(fresh, verdict, watched.resume_attempts + 1, now, fence)
            except LeaseLostError as exc:
                self._log.warning("run_claim_lost", run_id=run.run_id, error=str(exc))

    async def _view(self, run: Run, *, attempts: bool) -> MonitoredRun:
        """`run` as monitoring judges it; with `attempts`, a STARTED run's resume attempts
        are read from its events (judging it without them can only ask for more action,
        never less, so they are read only under a claim)."""
        count = 0
        if attempts and run.status == RunStatus.STARTED:
            records = await self._instance.get_events(
                run.run_id, event_types=[EventType.RUN_STARTING]
            )
            count = resume_attempts(r.event for r in records if r.event is not None)
        return MonitoredRun(
            run_id=run.run_id,
            status=run.status,
            create_time=run.create_time,
            tags=dict(run.tags),
            start_time=run.start_time or None,
            status_time=await self._status_time(run),
            resume_attempts=count,
        )

    async def _resume(
        self, run: Run, verdict: MonitoringVerdict, attempt: int, now: float, fence: Fence
    ) -> None:
        """Store the resume claim of `attempt` and hand the run to the launcher."""
        claim = resume_claim_event(
            run.run_id,
            run.job_name,
            attempt,
            f"Run monitoring ({MonitorCheck.WORKER_LOST.value}): {verdict.message}",
            now=now,
        )
        await self._instance.schedule_storage.check_fence(fence)
        try:
            moved = await self._instance.transition_run(run.run_id, claim)
        except RunNotFoundError:
            return
        if not moved.applied:
            return  # it ended meanwhile, or another daemon resumed it first
        self._log.warning(
            "run_resumed_by_monitoring", run_id=run.run_id, attempt=attempt, message=verdict.message
        )
        if self._launcher is None:
            # Nobody to launch it here: it stays STARTING and the start timeout fails it.
            self._log.error("run_resume_not_launched", run_id=run.run_id, error="no launcher")
            return
        await launch_stored_run(
            self._instance,
            self._launcher,
            run,
            timeout=self._launch_timeout,
            clock=lambda: now,
            name=self.name,
            starting=moved,
        )

    async def _status_time(self, run: Run) -> float | None:
        """When the run entered its current status: the time of the latest event that set
        it (None when its events do not say, as for a run stored NOT_STARTED)."""
        event_type = _EVENT_OF_STATUS.get(run.status)
        if event_type is None or run.status == RunStatus.STARTED:
            return None  # STARTED is timed by its start time and heartbeats
        records = await self._instance.get_events(run.run_id, event_types=[event_type])
        times = [r.event.timestamp for r in records if r.event is not None]
        return times[-1] if times else None

    async def _end(
        self,
        run: Run,
        event_type: EventType,
        verdict: MonitoringVerdict,
        now: float,
        fence: Fence,
    ) -> None:
        check = verdict.check.value if verdict.check is not None else "monitoring"
        event = run_end_event(
            run,
            event_type,
            f"Run monitoring ({check}): {verdict.message}",
            DagloomError(verdict.message) if event_type == EventType.RUN_FAILURE else None,
        )
        event.timestamp = now
        await self._instance.schedule_storage.check_fence(fence)
        try:
            moved = await self._instance.transition_run(run.run_id, event)
        except RunNotFoundError:
            return  # deleted since it was listed
        if not moved.applied:
            return  # it moved on meanwhile, or another daemon acted first
        self._log.warning(
            "run_ended_by_monitoring",
            run_id=run.run_id,
            check=check,
            status=moved.status.name,
            message=verdict.message,
        )
        if verdict.terminate_worker and self._launcher is not None:
            try:
                await self._launcher.ask(
                    TerminateRunRequest(run_id=run.run_id), timeout=self._terminate_timeout
                )
            except (ActorUnavailableError, TimeoutError) as exc:
                self._log.warning("run_worker_not_terminated", run_id=run.run_id, error=str(exc))
