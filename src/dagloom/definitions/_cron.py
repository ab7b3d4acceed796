"""Cron tick computation: which instants a cron schedule fires at, in its timezone, DST-safe.

Pure, sync code; the scheduler daemon uses it to find the ticks it owes. croniter matches
cron fields against *wall-clock* times; this module turns each wall time into the instants
it denotes, with Dagster's rules for daylight-saving transitions:

- a wall time that does not exist (clocks jump forward over it) fires once, at the first
  instant after the jump (a daily 2:30 AM schedule runs at 3:00 AM that day);
- a wall time that happens twice (clocks fall back) fires once, at the second occurrence;
- a schedule whose hour field is `*` fires by the clock on the wall regardless: both
  occurrences of a repeated time fire, and times inside a jump are skipped, so an hourly
  schedule still fires exactly once an hour.

croniter is imported inside the functions that use it: importing it costs ~50 ms and
`import dagloom` has a 0.3 s budget.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["cron_problem", "iter_cron_ticks", "load_timezone"]

# Longest month length for each month number; February counts its leap-year 29th.
_MONTH_DAYS = {
    1: 31,
    2: 29,
    3: 31,
    4: 30,
    5: 31,
    6: 30,
    7: 31,
    8: 31,
    9: 30,
    10: 31,
    11: 30,
    12: 31,
}

# No timezone has ever shifted its clocks by more than 2 hours in one transition; looking 3
# hours ahead is enough to see a pending fall-back.
_LOOKAHEAD = (timedelta(hours=1), timedelta(hours=2), timedelta(hours=3))


def cron_problem(cron_string: object) -> str | None:
    """Say what is wrong with `cron_string`, or return None if dagloom can schedule it.

    Accepted: standard 5-field cron expressions and croniter's `@hourly`, `@daily`,
    `@weekly`, `@monthly`, `@yearly` aliases. Rejected, as in Dagster: seconds or year fields,
    and expressions that can never fire (such as the 30th of February).
    """
    if not isinstance(cron_string, str):
        return f"expected a string, got {type(cron_string).__name__}"
    from croniter import croniter

    if not croniter.is_valid(cron_string):
        return "not a valid cron expression"
    expanded = croniter.expand(cron_string)[0]
    if len(expanded) != 5:
        return (
            f"has {len(expanded)} fields; dagloom recognizes standard cron expressions "
            "of 5 fields (minute hour day-of-month month day-of-week)"
        )
    days, months, weekdays = expanded[2], expanded[3], expanded[4]
    day_numbers = [day for day in days if isinstance(day, int)]
    # With both day fields restricted, cron fires on either (day_or), so any month can match.
    if weekdays == ["*"] and day_numbers and len(day_numbers) == len(days):
        month_numbers = range(1, 13) if months == ["*"] else [int(m) for m in months]
        if min(day_numbers) > max(_MONTH_DAYS[m] for m in month_numbers):
            return "names a day of the month that none of its months has, so it never fires"
    return None


def load_timezone(name: str | None) -> tzinfo:
    """Return the tzinfo for an IANA timezone name (None means UTC).

    Raises `ValueError` when the name is not a known timezone.
    """
    if name is None:
        return UTC
    if not isinstance(name, str) or not name:
        raise ValueError(f"{name!r} is not a timezone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not a known IANA timezone") from exc


def iter_cron_ticks(cron_strings: Sequence[str], tz: tzinfo, after: datetime) -> Iterator[datetime]:
    """Yield, in increasing order and without repeats, every instant strictly after `after` at
    which any of `cron_strings` fires in `tz`; each is an aware datetime in `tz`.

    The iterator is infinite and lazy. `after` must be timezone-aware (else `ValueError`); the
    cron strings must already have passed `cron_problem`.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"tick computation needs a timezone-aware datetime, got {after!r}")
    after_utc = after.astimezone(UTC)
    streams = [_ticks_utc(cron, tz, after_utc) for cron in dict.fromkeys(cron_strings)]
    last: datetime | None = None
    for instant in heapq.merge(*streams):
        if last is None or instant > last:
            last = instant
            yield instant.astimezone(tz)


def _ticks_utc(cron_string: str, tz: tzinfo, after_utc: datetime) -> Iterator[datetime]:
    """Ticks of one cron string as UTC datetimes, increasing, strictly after `after_utc`.

    UTC throughout because aware datetimes sharing a tzinfo compare by wall time and ignore
    `fold`, which would misorder the two occurrences of a repeated hour.
    """
    from croniter import croniter

    hours = croniter.expand(cron_string)[0][1]
    every_hour = hours == ["*"] or len(hours) == 24
    local_after = after_utc.astimezone(tz)
    # A wall time earlier than `after`'s can still denote a later instant if the clocks are
    # about to fall back; start that much earlier and filter.
    offset_now = _offset(local_after)
    offset_soon = min(_offset((after_utc + step).astimezone(tz)) for step in _LOOKAHEAD)
    lookback = max(offset_now - offset_soon, timedelta(0)) + timedelta(minutes=1)
    walls = croniter(cron_string, local_after.replace(tzinfo=None) - lookback)

    pending: list[datetime] = []
    while True:
        wall: datetime = walls.get_next(datetime)
        instants = _instants_for_wall(wall, tz, every_hour=every_hour)
        for instant in instants:
            heapq.heappush(pending, instant)
        if not instants:
            continue
        # The earliest instant of a wall time never decreases as wall times increase, so
        # anything at or before this one's earliest is final.
        horizon = instants[0]
        while pending and pending[0] <= horizon:
            instant = heapq.heappop(pending)
            if instant > after_utc:
                yield instant


def _instants_for_wall(wall: datetime, tz: tzinfo, *, every_hour: bool) -> list[datetime]:
    """The UTC instants, ascending, at which a schedule matching wall time `wall` fires."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    exists = first.astimezone(tz).replace(tzinfo=None) == wall
    if exists:
        # Clocks fell back: `wall` happened twice, `first` before `second`.
        return [first, second] if every_hour else [second]
    # Clocks jumped over `wall`. zoneinfo maps a missing time with fold=0 by the old offset
    # (landing after the jump) and fold=1 by the new one (landing before it).
    if every_hour:
        return []
    return [_transition_instant(second, first, tz)]


def _transition_instant(before: datetime, after: datetime, tz: tzinfo) -> datetime:
    """The first instant in (`before`, `after`] that has `after`'s UTC offset (1 s precision)."""
    target = _offset(after.astimezone(tz))
    lo, hi = before, after
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if _offset(mid.astimezone(tz)) == target:
            hi = mid
        else:
            lo = mid
    return hi


def _offset(local: datetime) -> timedelta:
    offset = local.utcoffset()
    assert offset is not None  # `local` always carries a real tzinfo here
    return offset
