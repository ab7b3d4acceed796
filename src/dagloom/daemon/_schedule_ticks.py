"""Which schedule ticks are due now, and the identity of each tick's runs.

Pure and sync: the scheduler loop feeds it what storage says (when the schedule was started,
its last tick) and the clock's `now`, and gets back the scheduled times to evaluate. Tick
times come from `dagloom.definitions._cron`, so daylight-saving transitions follow the same
rules as `ScheduleDefinition.iter_ticks_after`.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from dagloom.daemon._tags import RUN_KEY_TAG, derived_run_id
from dagloom.definitions._cron import cron_problem, iter_cron_ticks, load_timezone
from dagloom.definitions.schedule import SCHEDULE_NAME_TAG, SCHEDULED_EXECUTION_TIME_TAG

if TYPE_CHECKING:
    from dagloom.instance.config import InstanceConfig

DEFAULT_MAX_CATCHUP_RUNS = 5
"""Dagster's `scheduler.config.max_catchup_runs`: how far `catch_up: all` reaches back."""

DEFAULT_CATCH_UP_GRACE_SECONDS = 60.0
"""Under `catch_up: none`, a tick at most this old is on time rather than missed."""

# Ticks are whole seconds; this turns "at or after the start" into the strict bound that
# `iter_cron_ticks` takes.
_JUST_BEFORE = timedelta(microseconds=1)
# The first window searched for the latest ticks; each retry widens it fourfold, so even a
# yearly schedule behind by a decade is found in about ten cheap passes.
_FIRST_SPAN = timedelta(hours=1)


class CatchUp(enum.StrEnum):
    """What a schedule does about ticks that fell due while no daemon was looking."""

    LATEST = "latest"
    """Evaluate only the most recent missed tick (Dagster's behaviour; the default)."""
    ALL = "all"
    """Evaluate the missed ticks, the most recent `limit` of them, oldest first."""
    NONE = "none"
    """Evaluate only ticks that are on time (at most `grace_seconds` old)."""


@dataclass(frozen=True, slots=True)
class CatchUpPolicy:
    """A schedule's catch-up mode with its bounds.

    `mode` may be given by name (`"all"`); a name that is no mode raises `ValueError`.
    `limit` (at least 1) caps how many ticks one evaluation returns under `all` and `none`;
    `grace_seconds` is how late a tick may be and still count as on time under `none`.
    """

    mode: CatchUp = CatchUp.LATEST
    limit: int = DEFAULT_MAX_CATCHUP_RUNS
    grace_seconds: float = DEFAULT_CATCH_UP_GRACE_SECONDS

    def __post_init__(self) -> None:
        # A mode given by its name ("all") becomes the member, so `is` comparisons hold.
        object.__setattr__(self, "mode", CatchUp(self.mode))
        if self.limit < 1:
            raise ValueError(f"a catch-up limit must be at least 1, got {self.limit}")
        if self.grace_seconds < 0:
            raise ValueError(f"a catch-up grace must not be negative, got {self.grace_seconds}")

    @classmethod
    def from_config(
        cls, config: InstanceConfig, mode: CatchUp | str | None = None
    ) -> CatchUpPolicy:
        """The policy of a schedule that chose `mode` (None: the `schedules.catch_up`
        default), bounded by `scheduler.config.max_catchup_runs` and
        `schedules.catch_up_grace_seconds`. Raises `ValueError` for an unknown mode."""
        limit = DEFAULT_MAX_CATCHUP_RUNS
        if config.scheduler is not None:
            limit = config.scheduler.config.max_catchup_runs
        return cls(
            mode=CatchUp(config.schedules.catch_up if mode is None else mode),
            limit=limit,
            grace_seconds=config.schedules.catch_up_grace_seconds,
        )


@dataclass(frozen=True, slots=True)
class LastScheduleTick:
    """The schedule's most recent recorded tick.

    `finished` is False for a tick recorded STARTED and never completed (its daemon died
    mid-tick); `failure_count` is how many times in a row the tick at `scheduled_time`
    failed (0 when it did not).
    """

    scheduled_time: float
    finished: bool = True
    failure_count: int = 0


@dataclass(frozen=True, slots=True)
class ScheduleTickState:
    """What the scheduler knows about one schedule when it looks for due ticks.

    `cron_schedule` and `execution_timezone` are as on `ScheduleDefinition` (None: UTC).
    `started_at` is when the schedule was last turned on (seconds since the epoch); no
    tick before it is ever due. `max_tick_retries` is Dagster's
    `scheduler.config.max_tick_retries`: how many times a failed tick is redone.
    """

    cron_schedule: str | Sequence[str]
    execution_timezone: str | None
    started_at: float
    last_tick: LastScheduleTick | None = None
    catch_up: CatchUpPolicy = CatchUpPolicy()
    max_tick_retries: int = 0


@dataclass(frozen=True, slots=True)
class ScheduleTicksDue:
    """The ticks to evaluate now, oldest first, as aware datetimes in the schedule's timezone.

    `redone` is the last recorded tick when it is being done again (it is then `ticks[0]`).
    `skipped_first` / `skipped_last` bound the ticks that fell due and that the catch-up
    policy leaves out (both None when none were left out). `next_tick` is the first tick
    strictly after `now`: the loop has nothing to do for this schedule before then unless
    its state changes.
    """

    ticks: tuple[datetime, ...]
    next_tick: datetime
    redone: datetime | None = None
    skipped_first: datetime | None = None
    skipped_last: datetime | None = None


def schedule_ticks_due(state: ScheduleTickState, *, now: float) -> ScheduleTicksDue:
    """The ticks of `state`'s schedule to evaluate at `now` (seconds since the epoch).

    A tick is due when it lies after the last recorded tick, at or after `started_at`, and
    at or before `now`; among those, the catch-up policy picks which to evaluate. A last
    tick that never finished, or that failed at most `max_tick_retries` times, is done
    again first, whatever the policy, as long as it is not before `started_at`: doing it
    again is safe because its runs are found again by their `ScheduledRunIdentity`.

    Idempotent: the same state and `now` give the same answer; once the loop records the
    returned ticks, asking again returns none of them. Raises `ValueError` for a cron string
    or timezone the definitions would have refused.
    """
    crons = _cron_strings(state.cron_schedule)
    tz = load_timezone(state.execution_timezone)
    now_dt = datetime.fromtimestamp(now, UTC)
    low = datetime.fromtimestamp(state.started_at, UTC) - _JUST_BEFORE
    redone: datetime | None = None
    last = state.last_tick
    if last is not None:
        last_dt = datetime.fromtimestamp(last.scheduled_time, UTC)
        again = not last.finished or 0 < last.failure_count <= state.max_tick_retries
        if again and low < last_dt <= now_dt:
            redone = last_dt.astimezone(tz)
        low = max(low, last_dt)

    policy = state.catch_up
    count = 1 if policy.mode is CatchUp.LATEST else policy.limit
    # One pass finds the ticks to evaluate, the latest one left out, and the next tick.
    latest, next_tick = _latest_ticks(crons, tz, low, now_dt, count + 1)
    chosen = latest[-count:]
    if policy.mode is CatchUp.NONE:
        on_time_low = now_dt - timedelta(seconds=policy.grace_seconds) - _JUST_BEFORE
        chosen = [tick for tick in chosen if tick > on_time_low]
    left_out = latest[: len(latest) - len(chosen)]

    skipped_first = skipped_last = None
    if left_out:
        skipped_last = left_out[-1]
        skipped_first = next(iter_cron_ticks(crons, tz, low))

    ticks = ([redone] if redone is not None else []) + chosen
    return ScheduleTicksDue(
        ticks=tuple(ticks),
        next_tick=next_tick,
        redone=redone,
        skipped_first=skipped_first,
        skipped_last=skipped_last,
    )


@dataclass(frozen=True, slots=True)
class ScheduledRunIdentity:
    """What names one run of one schedule tick, so the run is found again after a crash.

    A tick's runs are told apart by `run_key` (None for a tick's single unkeyed run). The
    same identity always gives the same `run_id`, so a tick done twice (by a restarted
    daemon, or by a second daemon) creates each run once: storage refuses a second run with
    an id it holds. `tags` are what the run is tagged with and can be searched by.
    """

    location_name: str
    schedule_name: str
    scheduled_time: datetime
    run_key: str | None = None

    def __post_init__(self) -> None:
        if self.scheduled_time.utcoffset() is None:
            raise ValueError(f"a scheduled time must be timezone-aware: {self.scheduled_time!r}")

    @property
    def run_id(self) -> str:
        """The id of the run this identity names; the same on every daemon."""
        instant = self.scheduled_time.astimezone(UTC).isoformat()
        parts = ["schedule", self.location_name, self.schedule_name, instant]
        if self.run_key is not None:
            parts.append(self.run_key)
        return derived_run_id(*parts)

    @property
    def tags(self) -> dict[str, str]:
        """The identifying tags, as `ScheduleDefinition.evaluate_tick` writes them (the
        time in the schedule's timezone, ISO 8601), plus `dagloom/run_key` when keyed."""
        tags = {
            SCHEDULE_NAME_TAG: self.schedule_name,
            SCHEDULED_EXECUTION_TIME_TAG: self.scheduled_time.isoformat(),
        }
        if self.run_key is not None:
            tags[RUN_KEY_TAG] = self.run_key
        return tags

    def matches(self, code_location: str, tags: Mapping[str, str]) -> bool:
        """Whether a stored run (its code location and tags) is this identity's run.

        The scheduled time is compared as an instant, so a tag written in UTC or in any
        other offset matches; an unparsable one does not.
        """
        if code_location != self.location_name:
            return False
        if tags.get(SCHEDULE_NAME_TAG) != self.schedule_name:
            return False
        if tags.get(RUN_KEY_TAG) != self.run_key:
            return False
        try:
            when = datetime.fromisoformat(tags.get(SCHEDULED_EXECUTION_TIME_TAG, ""))
        except ValueError:
            return False
        return when.utcoffset() is not None and when.timestamp() == self.scheduled_time.timestamp()


def _cron_strings(cron_schedule: str | Sequence[str]) -> list[str]:
    crons = [cron_schedule] if isinstance(cron_schedule, str) else list(cron_schedule)
    if not crons:
        raise ValueError("a schedule needs at least one cron string")
    for cron in crons:
        problem = _cron_problem(cron)
        if problem is not None:
            raise ValueError(f"cron string {cron!r} {problem}")
    return crons


# A loop asks about the same few cron strings over and over; checking one costs ~0.5 ms.
_cron_problem = functools.lru_cache(maxsize=1024)(cron_problem)


def _latest_ticks(
    crons: Sequence[str], tz: tzinfo, low: datetime, high: datetime, count: int
) -> tuple[list[datetime], datetime]:
    """Up to `count` of the latest ticks `t` with `low < t <= high`, oldest first, and the
    first tick after `high`.

    Searches backwards from `high` in widening windows rather than forwards from `low`, so a
    minutely schedule behind by a year costs a few hundred tick computations, not 500,000.
    """
    span = _FIRST_SPAN
    while True:
        after = max(low, high - span)
        found: list[datetime] = []
        ticks = iter_cron_ticks(crons, tz, min(after, high))
        for tick in ticks:
            if tick > high:
                break
            found.append(tick)
        if len(found) >= count or after == low:
            return found[-count:], tick
        span *= 4
