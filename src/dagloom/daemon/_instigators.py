"""Schedules and sensors as storage holds them: their origin ids, whether each is running
(its stored status, else its definition's default) and since when.

The daemon records a state for every schedule and sensor it sees (status
`DECLARED_IN_CODE`, with what tools need to show it), so `dagloom schedule` and `dagloom
sensor` work on the instance alone; starting or stopping one stores RUNNING or STOPPED.
Pure and sync, except `sync_state`, which is one read and at most one write.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from dagloom.definitions._cron import iter_cron_ticks, load_timezone
from dagloom.errors import DefinitionError
from dagloom.messages import DaemonHeartbeat, InstigatorState, InstigatorStatus, InstigatorType
from dagloom.messages.rpc import ScheduleSnapshot, SensorSnapshot
from dagloom.storage.base import ScheduleStorage

_KIND_WORDS = {InstigatorType.SCHEDULE: "schedule", InstigatorType.SENSOR: "sensor"}


def origin_id(kind: InstigatorType, location: str, name: str) -> str:
    """The id a schedule or sensor is stored under: stable across reloads and daemons."""
    return f"{_KIND_WORDS[kind]}:{location}:{name}"


def is_running(state: InstigatorState) -> bool:
    """Whether the schedule or sensor ticks: RUNNING or STOPPED as stored, else (declared
    in code) as its definition's `default_status` says."""
    if state.status == InstigatorStatus.RUNNING:
        return True
    if state.status == InstigatorStatus.STOPPED:
        return False
    return state.default_running


def next_tick_time(state: InstigatorState, *, last_tick_time: float | None, now: float) -> float:
    """When it ticks next (seconds since the epoch), 0 when it is stopped: a schedule's first
    cron tick after `now` in its timezone; a sensor's `minimum_interval_seconds` after its
    last tick, or `now` when that has passed or it never ticked."""
    if not is_running(state):
        return 0.0
    if state.instigator_type == InstigatorType.SCHEDULE:
        tz = load_timezone(state.execution_timezone or None)
        upcoming = iter_cron_ticks(list(state.cron_schedules), tz, datetime.fromtimestamp(now, UTC))
        return next(upcoming).timestamp()
    if last_tick_time is None:
        return now
    return max(now, last_tick_time + state.minimum_interval_seconds)


STALE_INTERVALS = 3
"""A loop whose last heartbeat is older than this many of its intervals is stale."""


def heartbeat_fresh(beat: DaemonHeartbeat, *, now: float) -> bool:
    """Whether a daemon loop's latest heartbeat is at most `STALE_INTERVALS` of its intervals
    (at least 1 s each) old at `now`; a loop that gave no interval is always fresh."""
    return beat.interval <= 0 or now - beat.timestamp <= STALE_INTERVALS * max(beat.interval, 1.0)


def started_at(state: InstigatorState) -> float:
    """Since when it has been running: when it was last started (or first seen, when
    running by default). No schedule tick before this is ever due."""
    return state.update_time


def schedule_state(location: str, snapshot: ScheduleSnapshot, *, now: float) -> InstigatorState:
    """The state of a schedule first seen at `now`: declared in code, with its definition."""
    return InstigatorState(
        origin_id=origin_id(InstigatorType.SCHEDULE, location, snapshot.name),
        name=snapshot.name,
        instigator_type=InstigatorType.SCHEDULE,
        status=InstigatorStatus.DECLARED_IN_CODE,
        code_location=location,
        update_time=now,
        cron_schedules=list(snapshot.cron_schedules),
        execution_timezone=snapshot.execution_timezone,
        default_running=snapshot.default_running,
        job_names=[snapshot.job_name] if snapshot.job_name else [],
    )


def sensor_state(location: str, snapshot: SensorSnapshot, *, now: float) -> InstigatorState:
    """The state of a sensor first seen at `now`: declared in code, with its definition."""
    return InstigatorState(
        origin_id=origin_id(InstigatorType.SENSOR, location, snapshot.name),
        name=snapshot.name,
        instigator_type=InstigatorType.SENSOR,
        status=InstigatorStatus.DECLARED_IN_CODE,
        code_location=location,
        update_time=now,
        default_running=snapshot.default_running,
        minimum_interval_seconds=snapshot.minimum_interval_seconds,
        job_names=list(snapshot.job_names),
    )


def refreshed(stored: InstigatorState | None, seen: InstigatorState) -> InstigatorState | None:
    """What to store now that the definition `seen` was loaded: `seen` itself when nothing
    is stored, the stored state with the definition's fields replaced when they changed
    (status, start time and cursor kept), None when storage is up to date."""
    if stored is None:
        return seen
    fields = (
        "cron_schedules",
        "execution_timezone",
        "default_running",
        "minimum_interval_seconds",
        "job_names",
    )
    if all(getattr(stored, f) == getattr(seen, f) for f in fields):
        return None
    updated = InstigatorState.parse(bytes(stored))
    for f in fields:
        setattr(updated, f, getattr(seen, f))
    return updated


async def sync_state(storage: ScheduleStorage, seen: InstigatorState) -> InstigatorState:
    """The stored state of `seen`'s schedule or sensor, first recorded or brought up to date
    with its definition (see `refreshed`). Idempotent."""
    stored = await storage.get_instigator_state(seen.origin_id)
    update = refreshed(stored, seen)
    if update is None:
        assert stored is not None
        return stored
    await storage.set_instigator_state(update)
    return update


def toggled(state: InstigatorState, *, running: bool, now: float) -> InstigatorState:
    """`state` started (RUNNING since `now`) or stopped, as `dagloom schedule start|stop`
    stores it. Starting resets the start time, so no tick missed while stopped is caught up."""
    updated = InstigatorState.parse(bytes(state))
    updated.status = InstigatorStatus.RUNNING if running else InstigatorStatus.STOPPED
    updated.update_time = now
    return updated


def find_state(
    states: Sequence[InstigatorState],
    kind: InstigatorType,
    name: str,
    location: str | None = None,
) -> InstigatorState:
    """The one stored schedule or sensor called `name` (in `location`, if given).

    Raises `DefinitionError` when there is none (a daemon records them when it loads the
    code) or when several code locations have one of that name.
    """
    word = _KIND_WORDS[kind]
    found = [
        s
        for s in states
        if s.instigator_type == kind
        and s.name == name
        and (location is None or s.code_location == location)
    ]
    if not found:
        known = sorted({s.name for s in states if s.instigator_type == kind})
        listing = ", ".join(known) if known else "none yet (a daemon records them once it runs)"
        raise DefinitionError(f"no {word} named {name!r}; known: {listing}", name=name)
    if len(found) > 1:
        where = ", ".join(sorted(s.code_location for s in found))
        raise DefinitionError(
            f"{word} {name!r} is in several code locations ({where}); pick one with --location",
            name=name,
        )
    return found[0]
