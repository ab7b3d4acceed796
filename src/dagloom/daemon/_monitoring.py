"""Run monitoring verdicts: whether a run that is not finished should be left alone, failed,
resumed, or have its cancellation completed.

Pure and sync: the monitoring loop feeds it one run as storage shows it, the settings and the
clock's `now`, and acts on the verdict (re-reading the run's status first, since a verdict
may be stale by the time it is acted on).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dagloom.actors.run_worker import HEARTBEAT_TAG, WORKER_TAG
from dagloom.daemon._tags import MAX_RUNTIME_TAGS, tag_value
from dagloom.messages import (
    EngineEventData,
    Event,
    EventType,
    LogLevel,
    MetadataValue,
    RunStatus,
)
from dagloom.storage.base import RESUME_ATTEMPT_KEY, is_resume_claim

if TYPE_CHECKING:
    from dagloom.instance.config import RunMonitoringConfig

DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 120.0
"""How long a STARTED run's worker may stay silent: four of the worker's 30 s heartbeats."""


class MonitorAction(enum.StrEnum):
    """What the monitoring loop does with a run."""

    LEAVE = "leave"
    """Nothing: the run is within every bound (or not one monitoring looks after)."""
    FAIL = "fail"
    """End the run FAILURE with the verdict's message."""
    RESUME = "resume"
    """Launch a new worker for the run, which carries on where the lost one stopped."""
    CANCEL = "cancel"
    """End the CANCELING run CANCELED: whoever was to finish the cancellation did not."""


class MonitorCheck(enum.StrEnum):
    """Which check a verdict comes from."""

    START_TIMEOUT = "start_timeout"
    WORKER_LOST = "worker_lost"
    MAX_RUNTIME = "max_runtime"
    CANCEL_TIMEOUT = "cancel_timeout"


@dataclass(frozen=True, slots=True)
class MonitoringSettings:
    """The `run_monitoring` settings that decide verdicts, in seconds.

    `max_runtime_seconds` 0 means no instance-wide bound (a run's `dagloom/max_runtime` tag
    still applies). `max_resume_run_attempts` is how many times a run whose worker was lost
    is resumed before it is failed (0: failed at once).
    """

    start_timeout_seconds: float = 180.0
    cancel_timeout_seconds: float = 180.0
    heartbeat_timeout_seconds: float = DEFAULT_HEARTBEAT_TIMEOUT_SECONDS
    max_runtime_seconds: float = 0.0
    max_resume_run_attempts: int = 0

    @classmethod
    def from_config(cls, config: RunMonitoringConfig) -> MonitoringSettings:
        """The settings of a validated `run_monitoring` section."""
        return cls(
            start_timeout_seconds=config.start_timeout_seconds,
            cancel_timeout_seconds=config.cancel_timeout_seconds,
            heartbeat_timeout_seconds=config.heartbeat_timeout_seconds,
            max_runtime_seconds=config.max_runtime_seconds,
            max_resume_run_attempts=config.max_resume_run_attempts,
        )


@dataclass(frozen=True, slots=True)
class MonitoredRun:
    """A run as monitoring sees it.

    Times are seconds since the epoch; `start_time` is None until the run started.
    `status_time` is when the run entered its current status (the time of the event that
    moved it there), None when unknown, in which case the latest of the other times stands
    in. `resume_attempts` counts the times a new worker was already launched to resume it.
    """

    run_id: str
    status: RunStatus
    create_time: float
    tags: Mapping[str, str]
    start_time: float | None = None
    status_time: float | None = None
    resume_attempts: int = 0


@dataclass(frozen=True, slots=True)
class MonitoringVerdict:
    """What to do with a run, which check says so, and a message for the run's events.

    `terminate_worker` asks for the run's worker to be stopped first (it is alive but the
    run must end). `recheck_at` is, for a run left alone, the earliest time the verdict can
    change (None: not before its status does), so the loop knows when to look again.
    """

    action: MonitorAction
    message: str = ""
    check: MonitorCheck | None = None
    terminate_worker: bool = False
    recheck_at: float | None = None


_LEAVE = MonitoringVerdict(MonitorAction.LEAVE)


def monitoring_verdict(
    run: MonitoredRun, settings: MonitoringSettings, *, now: float
) -> MonitoringVerdict:
    """The verdict on `run` at `now` under `settings`.

    - NOT_STARTED or STARTING longer than `start_timeout_seconds` (counted from
      `status_time`, else the create time): FAIL with `terminate_worker` (a worker may
      have taken it late), check START_TIMEOUT.
    - STARTED, with no sign of life from its worker for longer than
      `heartbeat_timeout_seconds` (the later of the `dagloom/heartbeat` tag and the start
      time; an unreadable heartbeat counts as none; the heartbeat is in the worker's clock,
      so the timeout must exceed the clock skew between hosts): RESUME while
      `resume_attempts` is below `max_resume_run_attempts`, else FAIL, check WORKER_LOST.
    - STARTED for longer than its max runtime (the `dagloom/max_runtime` or
      `dagster/max_runtime` tag, in seconds, else `max_runtime_seconds`; 0 or a tag that is
      not a positive number means none): FAIL with `terminate_worker`, check MAX_RUNTIME.
    - CANCELING longer than `cancel_timeout_seconds` (from `status_time`, else the start
      or create time): CANCEL, check CANCEL_TIMEOUT.
    - Anything else (QUEUED, MANAGED, finished runs): LEAVE, with no `recheck_at`.

    A lost worker is judged before the max runtime, since it is the cause of whatever
    follows. Pure: the same input gives the same verdict.
    """
    match run.status:
        case RunStatus.NOT_STARTED | RunStatus.STARTING:
            since = run.status_time if run.status_time is not None else run.create_time
            deadline = since + settings.start_timeout_seconds
            if now > deadline:
                state = "not started" if run.status == RunStatus.NOT_STARTED else "starting"
                return MonitoringVerdict(
                    MonitorAction.FAIL,
                    f"Run timed out while {state}: it was {state} for {now - since:.0f} s, "
                    f"longer than run_monitoring.start_timeout_seconds "
                    f"({settings.start_timeout_seconds:g} s).",
                    MonitorCheck.START_TIMEOUT,
                    terminate_worker=True,
                )
            return MonitoringVerdict(MonitorAction.LEAVE, recheck_at=deadline)
        case RunStatus.STARTED:
            return _started_verdict(run, settings, now)
        case RunStatus.CANCELING:
            since = _first_known(run.status_time, run.start_time, run.create_time)
            deadline = since + settings.cancel_timeout_seconds
            if now > deadline:
                return MonitoringVerdict(
                    MonitorAction.CANCEL,
                    f"Run was canceling for {now - since:.0f} s, longer than "
                    f"run_monitoring.cancel_timeout_seconds "
                    f"({settings.cancel_timeout_seconds:g} s); marking it canceled.",
                    MonitorCheck.CANCEL_TIMEOUT,
                )
            return MonitoringVerdict(MonitorAction.LEAVE, recheck_at=deadline)
        case _:
            return _LEAVE


def resume_attempts(events: Iterable[Event]) -> int:
    """How many times the run whose lifecycle `events` these are was resumed: its resume
    claims (RUN_STARTING events with `RESUME_ATTEMPT_KEY`), each stored with the move back
    to STARTING it made, so the count survives a daemon that dies after making one. Pure."""
    return sum(
        1
        for e in events
        if e.event_type == EventType.RUN_STARTING and is_resume_claim(e.event_type, e.engine_event)
    )


def resume_claim_event(
    run_id: str, job_name: str, attempt: int, message: str, *, now: float
) -> Event:
    """The resume claim of attempt `attempt` on run `run_id` (see `is_resume_claim`): stored
    with `DagloomInstance.transition_run`, it moves the STARTED run back to STARTING for a
    new worker to claim, or is refused when the run is no longer STARTED."""
    return Event(
        run_id=run_id,
        event_type=EventType.RUN_STARTING,
        timestamp=now,
        job_name=job_name,
        message=message,
        level=LogLevel.WARNING,
        engine_event=EngineEventData(metadata={RESUME_ATTEMPT_KEY: MetadataValue(int=attempt)}),
    )


def max_runtime_of(tags: Mapping[str, str], default: float) -> float | None:
    """The run's max runtime in seconds: its tag when that is a positive number, else
    `default` when positive, else None (no bound)."""
    found = tag_value(tags, MAX_RUNTIME_TAGS)
    if found is not None:
        seconds = _number(found[1])
        if seconds is not None and seconds > 0:
            return seconds
    return default if default > 0 else None


def _started_verdict(
    run: MonitoredRun, settings: MonitoringSettings, now: float
) -> MonitoringVerdict:
    started = _first_known(run.start_time, run.status_time, run.create_time)
    heartbeat = _number(run.tags.get(HEARTBEAT_TAG, ""))
    last_seen = started if heartbeat is None else max(started, heartbeat)
    silent_until = last_seen + settings.heartbeat_timeout_seconds
    if now > silent_until:
        worker = run.tags.get(WORKER_TAG) or "its worker"
        silence = f"{worker} sent no heartbeat for {now - last_seen:.0f} s"
        if run.resume_attempts < settings.max_resume_run_attempts:
            attempt = run.resume_attempts + 1
            return MonitoringVerdict(
                MonitorAction.RESUME,
                f"Resuming run: {silence}; launching a new run worker "
                f"(attempt {attempt} of {settings.max_resume_run_attempts}).",
                MonitorCheck.WORKER_LOST,
            )
        tried = (
            f" after {run.resume_attempts} resume attempt(s), exhausting "
            f"run_monitoring.max_resume_run_attempts ({settings.max_resume_run_attempts})"
            if settings.max_resume_run_attempts > 0
            else ""
        )
        return MonitoringVerdict(
            MonitorAction.FAIL,
            f"Run worker lost: {silence} (run_monitoring.heartbeat_timeout_seconds is "
            f"{settings.heartbeat_timeout_seconds:g} s){tried}; the worker process likely "
            "died.",
            MonitorCheck.WORKER_LOST,
        )
    recheck = silent_until
    limit = max_runtime_of(run.tags, settings.max_runtime_seconds)
    if limit is not None:
        deadline = started + limit
        if now > deadline:
            return MonitoringVerdict(
                MonitorAction.FAIL,
                f"Exceeded maximum runtime of {limit:g} seconds: the run started "
                f"{now - started:.0f} s ago.",
                MonitorCheck.MAX_RUNTIME,
                terminate_worker=True,
            )
        recheck = min(recheck, deadline)
    return MonitoringVerdict(MonitorAction.LEAVE, recheck_at=recheck)


def _first_known(*times: float | None) -> float:
    for time in times:
        if time is not None:
            return time
    raise AssertionError("a run always has a create time")


def _number(text: str) -> float | None:
    """`text` as a finite float, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
