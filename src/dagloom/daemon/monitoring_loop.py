"""The run monitoring loop: ends runs that are stuck starting, lost their worker, ran too
long, or stayed canceling, as `monitoring_verdict` decides."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import structlog

from dagloom.actors.run_worker import run_end_event
from dagloom.daemon._monitoring import (
    MonitorAction,
    MonitoredRun,
    MonitoringSettings,
    MonitoringVerdict,
    monitoring_verdict,
)
from dagloom.errors import ActorUnavailableError, DagloomError, RunNotFoundError
from dagloom.messages import EventType, Run, RunStatus
from dagloom.messages.rpc import TerminateRunRequest
from dagloom.storage.base import RUN_STATUS_BY_EVENT, RunsFilter

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
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
    nothing more is done, so two daemons monitoring one storage end each run once. A verdict
    asking to stop the worker (start timeout, max runtime) is carried out only by the daemon
    whose transition applied, by telling `launcher` `TerminateRun` (a launcher that is down
    or has no such run changes nothing: the run is already ended in storage, so a worker
    that goes on is refused its events' transitions).

    Resuming a run on a new worker is not done: a STARTED run cannot be claimed again, so
    `max_resume_run_attempts` is taken as 0 and a lost worker's run is failed.

    A tick reads storage and writes only to runs it ends; calling it twice with the same
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
    ) -> None:
        self.interval = interval
        self._instance = instance
        self._launcher = launcher
        self._settings = dataclasses.replace(settings, max_resume_run_attempts=0)
        self._terminate_timeout = terminate_timeout
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
        if config.max_resume_run_attempts > 0:
            structlog.get_logger("dagloom.daemon").warning(
                "run_resume_not_supported",
                max_resume_run_attempts=config.max_resume_run_attempts,
                message="runs whose worker was lost are failed, not resumed "
                "(run_retries re-executes them from failure)",
            )
        return cls(
            instance,
            launcher,
            MonitoringSettings.from_config(config),
            interval=config.poll_interval_seconds,
        )

    async def tick(self, now: float) -> None:
        """Judge every monitored run at `now` and act on the verdicts (see the class)."""
        runs = await self._instance.get_runs(RunsFilter(statuses=list(MONITORED_STATUSES)))
        for run in runs:
            await self._monitor(run, now)

    async def _monitor(self, run: Run, now: float) -> None:
        watched = MonitoredRun(
            run_id=run.run_id,
            status=run.status,
            create_time=run.create_time,
            tags=dict(run.tags),
            start_time=run.start_time or None,
            status_time=await self._status_time(run),
        )
        verdict = monitoring_verdict(watched, self._settings, now=now)
        match verdict.action:
            case MonitorAction.LEAVE | MonitorAction.RESUME:
                return
            case MonitorAction.FAIL:
                await self._end(run, EventType.RUN_FAILURE, verdict, now)
            case MonitorAction.CANCEL:
                await self._end(run, EventType.RUN_CANCELED, verdict, now)

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
        self, run: Run, event_type: EventType, verdict: MonitoringVerdict, now: float
    ) -> None:
        check = verdict.check.value if verdict.check is not None else "monitoring"
        event = run_end_event(
            run,
            event_type,
            f"Run monitoring ({check}): {verdict.message}",
            DagloomError(verdict.message) if event_type == EventType.RUN_FAILURE else None,
        )
        event.timestamp = now
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
