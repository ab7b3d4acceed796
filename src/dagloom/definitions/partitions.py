"""Partitions definitions: the slices (days, regions, customers) an asset or job is split into.

Pure, sync code. A definition answers which keys exist (`get_partition_keys`), whether one
does (`has_partition_key`), and the keys between two (`get_partition_keys_in_range`); a time
window definition also maps each key to the `TimeWindow` it covers. Keys are strings; a
`MultiPartitionKey` is a string too, `"a|b"` with its dimensions in name order, as in Dagster.

Time windows follow a cron schedule in the definition's timezone: the first window starts at
the first tick at or after `start`, each ends at the next tick, and a window exists once it
has ended (`end_offset=1` also lets the window in progress exist). Ticks come from
`_cron.iter_cron_ticks`, so daylight-saving days have 23 or 25 hours.
"""

from __future__ import annotations

import bisect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NamedTuple, Protocol

from dagloom.definitions._cron import cron_problem, iter_cron_ticks, load_timezone
from dagloom.errors import DagsterInvalidDefinitionError, DagsterUnknownPartitionError

# Dagster refuses these in a static key: they carry meaning in ranges and selections.
_RESERVED_IN_KEYS = ("...", ",", "[", "]", "|")
MULTIPARTITION_KEY_DELIMITER = "|"


class PartitionKeyRange(NamedTuple):
    """The partitions from `start` to `end`, both included, in the definition's order."""

    start: str
    end: str


class TimeWindow(NamedTuple):
    """The half-open interval [start, end) one time partition covers (aware datetimes)."""

    start: datetime
    end: datetime


class DynamicPartitionsStore(Protocol):
    """Where a DynamicPartitionsDefinition's keys live: the instance, or a test's fake."""

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]: ...


class PartitionsDefinition(ABC):
    """The set of partition keys of an asset or job, in order."""

    @abstractmethod
    def get_partition_keys(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        """Every key, in order, as of `current_time` (default: now)."""

    def has_partition_key(
        self,
        partition_key: str,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> bool:
        return partition_key in self.get_partition_keys(current_time, dynamic_partitions_store)

    def validate_partition_key(
        self,
        partition_key: str,
        *,
        what: str,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> None:
        """Raise `DagsterUnknownPartitionError` naming `what` (an asset or job) unless the
        key exists."""
        if not self.has_partition_key(partition_key, current_time, dynamic_partitions_store):
            raise DagsterUnknownPartitionError(
                f"{what}: partition key {partition_key!r} is not a partition of {self}",
                name=what,
            )

    def get_first_partition_key(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> str | None:
        keys = self.get_partition_keys(current_time, dynamic_partitions_store)
        return keys[0] if keys else None

    def get_last_partition_key(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> str | None:
        keys = self.get_partition_keys(current_time, dynamic_partitions_store)
        return keys[-1] if keys else None

    def get_partition_keys_in_range(
        self,
        partition_key_range: PartitionKeyRange,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        """The keys from `partition_key_range.start` to `.end`, both included.

        Raises `DagsterUnknownPartitionError` when an end is not a key, or when the range is
        reversed (its start after its end), naming both ends.
        """
        keys = self.get_partition_keys(dynamic_partitions_store=dynamic_partitions_store)
        return _slice(keys, partition_key_range, str(self))

    def get_num_partitions(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> int:
        return len(self.get_partition_keys(current_time, dynamic_partitions_store))


def _slice(
    keys: Sequence[str],
    key_range: PartitionKeyRange,
    what: str,
    index: Mapping[str, int] | None = None,
) -> list[str]:
    """`keys` from the range's start to its end; `index` (each key's position) when the
    caller keeps one."""
    if index is None:
        index = {k: i for i, k in enumerate(keys)}
    for end in (key_range.start, key_range.end):
        if end not in index:
            raise DagsterUnknownPartitionError(
                f"partition key {end!r} of range {key_range.start}...{key_range.end} is not "
                f"a partition of {what}",
                name=end,
            )
    first, last = index[key_range.start], index[key_range.end]
    if first > last:
        raise DagsterUnknownPartitionError(
            f"partition range {key_range.start}...{key_range.end} is reversed: "
            f"{key_range.start!r} comes after {key_range.end!r} in {what}",
            name=key_range.start,
        )
    return list(keys[first : last + 1])


def check_partition_key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise DagsterInvalidDefinitionError(
            f"{where}: partition keys are strings, got {key!r}", name=where
        )
    for bad in _RESERVED_IN_KEYS:
        if bad in key:
            raise DagsterInvalidDefinitionError(
                f"{where}: partition key {key!r} contains {bad!r}, which is reserved",
                name=where,
            )
    return key


class StaticPartitionsDefinition(PartitionsDefinition):
    """A fixed list of keys (`StaticPartitionsDefinition(["us", "eu"])`)."""

    def __init__(self, partition_keys: Sequence[str]) -> None:
        keys = [check_partition_key(k, "StaticPartitionsDefinition") for k in partition_keys]
        # Each key's position, built once: duplicates, lookups and range slices are O(1)
        # per key rather than a scan of the list (100,000 keys: a count per key took minutes).
        index: dict[str, int] = {}
        duplicates: set[str] = set()
        for position, key in enumerate(keys):
            if index.setdefault(key, position) != position:
                duplicates.add(key)
        if duplicates:
            raise DagsterInvalidDefinitionError(
                f"StaticPartitionsDefinition: duplicate partition keys {sorted(duplicates)}",
                name="StaticPartitionsDefinition",
            )
        self._keys = keys
        self._index = index

    def get_partition_keys(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        return list(self._keys)

    def has_partition_key(
        self,
        partition_key: str,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> bool:
        return partition_key in self._index

    def get_partition_keys_in_range(
        self,
        partition_key_range: PartitionKeyRange,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        return _slice(self._keys, partition_key_range, str(self), self._index)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StaticPartitionsDefinition) and other._keys == self._keys

    def __hash__(self) -> int:
        return hash(tuple(self._keys))

    def __str__(self) -> str:
        shown = ", ".join(self._keys[:5]) + (", ..." if len(self._keys) > 5 else "")
        return f"static partitions [{shown}]"


def _parse_time(value: str | datetime, fmt: str, tz: tzinfo, what: str) -> datetime:
    """`value` as an aware datetime in `tz`: a datetime (naive ones are taken as wall time in
    `tz`), or a string in `fmt` or ISO 8601."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise DagsterInvalidDefinitionError(
                    f"{what}: {value!r} matches neither the format {fmt!r} nor ISO 8601",
                    name=what,
                ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=tz)
    return parsed.astimezone(tz)


class TimeWindowPartitionsDefinition(PartitionsDefinition):
    """One partition per window between consecutive ticks of `cron_schedule`, from `start`
    (included) to `end` (excluded; default: open-ended), keyed by the window's start in
    `fmt`. `end_offset=1` adds the window in progress; negative values hold back ended ones.
    """

    def __init__(
        self,
        start: str | datetime,
        fmt: str,
        end: str | datetime | None = None,
        schedule_type: Any = None,
        timezone: str | None = None,
        end_offset: int = 0,
        minute_offset: int | None = None,
        hour_offset: int | None = None,
        day_offset: int | None = None,
        cron_schedule: str | None = None,
        exclusions: Any = None,
    ) -> None:
        name = type(self).__name__
        if cron_schedule is None:
            raise DagsterInvalidDefinitionError(f"{name}: cron_schedule is required", name=name)
        problem = cron_problem(cron_schedule)
        if problem is not None:
            raise DagsterInvalidDefinitionError(
                f"{name}: cron_schedule {cron_schedule!r}: {problem}", name=name
            )
        try:
            self.tz = UTC if timezone in (None, "UTC", "Etc/UTC") else load_timezone(timezone)
        except ValueError as exc:
            raise DagsterInvalidDefinitionError(f"{name}: {exc}", name=name) from exc
        self.timezone = timezone or "UTC"
        self.fmt = fmt
        self.cron_schedule = cron_schedule
        self.end_offset = end_offset
        self.start = _parse_time(start, fmt, self.tz, f"{name} start")
        self.end = None if end is None else _parse_time(end, fmt, self.tz, f"{name} end")
        if self.end is not None and self.end <= self.start:
            raise DagsterInvalidDefinitionError(
                f"{name}: end {end!r} is not after start {start!r}", name=name
            )
        self.minute_offset = minute_offset
        self.hour_offset = hour_offset
        self.day_offset = day_offset
        # Window starts computed so far, in order; extended as time passes.
        self._starts: list[datetime] = []
        self._keys: list[str] = []  # the keys of the first windows of _starts, formatted
        self._key_positions: dict[str, int] = {}  # each of _keys -> its index
        self._ticks: Iterator[datetime] = self._iter_ticks()
        self._next_tick: datetime | None = None

    # The cadence of the fixed-period subclasses: in UTC their ticks are evenly spaced (or a
    # month apart) and are stepped arithmetically, ~100x faster than matching cron fields
    # (13,000 daily windows: 1.9 s through croniter).
    _step: timedelta | None = None
    _monthly = False

    def _iter_ticks(self) -> Iterator[datetime]:
        ticks = iter_cron_ticks(
            [self.cron_schedule], self.tz, self.start - timedelta(microseconds=1)
        )
        if self.tz is not UTC or (self._step is None and not self._monthly):
            return ticks
        return _stepped(next(ticks), self._step, monthly=self._monthly)

    # -- windows --------------------------------------------------------------------------

    def _tick(self) -> datetime:
        if self._next_tick is None:
            self._next_tick = next(self._ticks)
        return self._next_tick

    def _advance(self) -> None:
        self._starts.append(self._tick())
        self._next_tick = next(self._ticks)

    def _ended_by(self, bound: datetime) -> int:
        """How many windows have ended at or before `bound`: window i is
        [starts[i], starts[i+1]), so those are all but the last start at or before it."""
        while self._tick() <= bound:
            self._advance()
        return max(bisect.bisect_right(self._starts, bound) - 1, 0)

    def _window_count(self, current_time: datetime | None) -> int:
        now = (current_time or datetime.now(UTC)).astimezone(self.tz)
        count = self._ended_by(now) + self.end_offset
        if self.end is not None:
            count = min(count, self._ended_by(self.end))
        return max(count, 0)

    def _window_at(self, index: int) -> TimeWindow:
        while len(self._starts) <= index + 1:
            self._advance()
        return TimeWindow(self._starts[index], self._starts[index + 1])

    def get_partition_keys(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        count = self._window_count(current_time)
        if count:
            self._window_at(count - 1)
        keys = self._keys
        if len(keys) < count:  # format each start once: 10,000 strftime calls cost ~60 ms
            fmt = self.fmt
            first = len(keys)
            keys.extend(start.strftime(fmt) for start in self._starts[first:count])
            positions = self._key_positions
            for i in range(first, count):
                positions[keys[i]] = i
        return keys[:count]

    def get_partition_time_windows(self, current_time: datetime | None = None) -> list[TimeWindow]:
        return [self._window_at(i) for i in range(self._window_count(current_time))]

    def _index_of(self, partition_key: str) -> int | None:
        """The position of `partition_key` among all windows (existing yet or not), or None
        when it is not the start of a window of this definition."""
        known = self._key_positions.get(partition_key)
        if known is not None:  # a key formatted already: no parsing
            return known
        try:
            start = datetime.strptime(partition_key, self.fmt).replace(tzinfo=self.tz)
        except ValueError:
            return None
        if start < self.start or (self.end is not None and start >= self.end):
            return None
        while not self._starts or self._starts[-1] < start:
            self._advance()
        i = bisect.bisect_left(self._starts, start)
        if i < len(self._starts) and self._starts[i] == start:
            return i
        return None

    def has_partition_key(
        self,
        partition_key: str,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> bool:
        index = self._index_of(partition_key)
        return index is not None and index < self._window_count(current_time)

    def time_window_for_partition_key(self, partition_key: str) -> TimeWindow:
        """The window `partition_key` names. Raises `DagsterUnknownPartitionError` when the
        key is not the start of one of this definition's windows."""
        index = self._index_of(partition_key)
        if index is None:
            raise DagsterUnknownPartitionError(
                f"{partition_key!r} is not a partition of {self}", name=partition_key
            )
        return self._window_at(index)

    def time_window_for_partition_key_range(self, key_range: PartitionKeyRange) -> TimeWindow:
        first = self.time_window_for_partition_key(key_range.start)
        last = self.time_window_for_partition_key(key_range.end)
        if first.start > last.start:
            raise DagsterUnknownPartitionError(
                f"partition range {key_range.start}...{key_range.end} is reversed in {self}",
                name=key_range.start,
            )
        return TimeWindow(first.start, last.end)

    def get_partition_keys_in_time_window(self, window: TimeWindow) -> list[str]:
        """Keys of the existing windows that overlap `window`."""
        keys = self.get_partition_keys()
        return [
            k
            for k, w in zip(keys, self._windows_for(len(keys)), strict=True)
            if _overlap(w, window)
        ]

    def get_partition_key_range_for_time_window(self, time_window: TimeWindow) -> PartitionKeyRange:
        """The range of the existing partitions that overlap `time_window`; raises
        DagsterUnknownPartitionError when none does."""
        keys = self.get_partition_keys_in_time_window(time_window)
        if not keys:
            raise DagsterUnknownPartitionError(
                f"no partition of {self} overlaps {time_window.start}...{time_window.end}"
            )
        return PartitionKeyRange(keys[0], keys[-1])

    def get_first_partition_window(self, current_time: datetime | None = None) -> TimeWindow | None:
        """The window of the first partition, or None when none has ended yet."""
        key = self.get_first_partition_key(current_time)
        return None if key is None else self.time_window_for_partition_key(key)

    def get_last_partition_window(self, current_time: datetime | None = None) -> TimeWindow | None:
        """The window of the last partition (as of `current_time`), or None when none."""
        key = self.get_last_partition_key(current_time)
        return None if key is None else self.time_window_for_partition_key(key)

    def get_cron_schedule(
        self,
        minute_of_hour: int | None = None,
        hour_of_day: int | None = None,
        day_of_week: int | None = None,
        day_of_month: int | None = None,
    ) -> str:
        """The partitions' cron with the given fields replaced (a schedule of them may tick
        later in the period than the partition boundary)."""
        fields = self.cron_schedule.split()
        for index, value in (
            (0, minute_of_hour),
            (1, hour_of_day),
            (2, day_of_month),
            (4, day_of_week),
        ):
            if value is not None:
                fields[index] = str(value)
        return " ".join(fields)

    def _windows_for(self, count: int) -> list[TimeWindow]:
        if count:
            self._window_at(count - 1)
        starts = self._starts
        return [TimeWindow(starts[i], starts[i + 1]) for i in range(count)]

    def get_partition_keys_in_range(
        self,
        partition_key_range: PartitionKeyRange,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        first = self._index_of(partition_key_range.start)
        last = self._index_of(partition_key_range.end)
        for end, index in ((partition_key_range.start, first), (partition_key_range.end, last)):
            if index is None:
                raise DagsterUnknownPartitionError(
                    f"partition key {end!r} of range {partition_key_range.start}..."
                    f"{partition_key_range.end} is not a partition of {self}",
                    name=end,
                )
        assert first is not None and last is not None
        if first > last:
            raise DagsterUnknownPartitionError(
                f"partition range {partition_key_range.start}...{partition_key_range.end} is "
                f"reversed: {partition_key_range.start!r} comes after "
                f"{partition_key_range.end!r} in {self}",
                name=partition_key_range.start,
            )
        self._window_at(last)
        return [s.strftime(self.fmt) for s in self._starts[first : last + 1]]

    def _identity(self) -> tuple[Any, ...]:
        return (self.cron_schedule, self.fmt, self.start, self.end, self.timezone, self.end_offset)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TimeWindowPartitionsDefinition)
            and other._identity() == self._identity()
        )

    def __hash__(self) -> int:
        return hash(self._identity())

    def __str__(self) -> str:
        return (
            f"{type(self).__name__.removesuffix('PartitionsDefinition').lower() or 'time'} "
            f"partitions from {self.start.strftime(self.fmt)} ({self.cron_schedule!r}, "
            f"{self.timezone})"
        )


def _stepped(first: datetime, step: timedelta | None, *, monthly: bool) -> Iterator[datetime]:
    tick = first
    months = 0
    while True:
        if monthly:
            total = first.month - 1 + months
            yield first.replace(year=first.year + total // 12, month=total % 12 + 1)
            months += 1
        else:
            assert step is not None
            yield tick
            tick += step


def _overlap(a: TimeWindow, b: TimeWindow) -> bool:
    return a.start < b.end and b.start < a.end


class HourlyPartitionsDefinition(TimeWindowPartitionsDefinition):
    """One partition per hour, keyed `%Y-%m-%d-%H:%M`."""

    _step = timedelta(hours=1)

    def __init__(
        self,
        start_date: str | datetime,
        end_date: str | datetime | None = None,
        minute_offset: int = 0,
        timezone: str | None = None,
        fmt: str | None = None,
        end_offset: int = 0,
        **_: Any,
    ) -> None:
        super().__init__(
            start=start_date,
            end=end_date,
            fmt=fmt or "%Y-%m-%d-%H:%M",
            timezone=timezone,
            end_offset=end_offset,
            minute_offset=minute_offset,
            cron_schedule=f"{minute_offset} * * * *",
        )


class DailyPartitionsDefinition(TimeWindowPartitionsDefinition):
    """One partition per day, keyed `%Y-%m-%d`."""

    _step = timedelta(days=1)

    def __init__(
        self,
        start_date: str | datetime,
        end_date: str | datetime | None = None,
        minute_offset: int = 0,
        hour_offset: int = 0,
        timezone: str | None = None,
        fmt: str | None = None,
        end_offset: int = 0,
        **_: Any,
    ) -> None:
        super().__init__(
            start=start_date,
            end=end_date,
            fmt=fmt or "%Y-%m-%d",
            timezone=timezone,
            end_offset=end_offset,
            minute_offset=minute_offset,
            hour_offset=hour_offset,
            cron_schedule=f"{minute_offset} {hour_offset} * * *",
        )


class WeeklyPartitionsDefinition(TimeWindowPartitionsDefinition):
    """One partition per week, starting on `day_offset` (0 is Sunday), keyed `%Y-%m-%d`."""

    _step = timedelta(days=7)

    def __init__(
        self,
        start_date: str | datetime,
        end_date: str | datetime | None = None,
        minute_offset: int = 0,
        hour_offset: int = 0,
        day_offset: int = 0,
        timezone: str | None = None,
        fmt: str | None = None,
        end_offset: int = 0,
        **_: Any,
    ) -> None:
        super().__init__(
            start=start_date,
            end=end_date,
            fmt=fmt or "%Y-%m-%d",
            timezone=timezone,
            end_offset=end_offset,
            minute_offset=minute_offset,
            hour_offset=hour_offset,
            day_offset=day_offset,
            cron_schedule=f"{minute_offset} {hour_offset} * * {day_offset}",
        )


class MonthlyPartitionsDefinition(TimeWindowPartitionsDefinition):
    """One partition per month, starting on day `day_offset` (default 1), keyed `%Y-%m-%d`."""

    _monthly = True

    def __init__(
        self,
        start_date: str | datetime,
        end_date: str | datetime | None = None,
        minute_offset: int = 0,
        hour_offset: int = 0,
        day_offset: int = 1,
        timezone: str | None = None,
        fmt: str | None = None,
        end_offset: int = 0,
        **_: Any,
    ) -> None:
        if not 1 <= day_offset <= 28:
            raise DagsterInvalidDefinitionError(
                f"MonthlyPartitionsDefinition: day_offset must be between 1 and 28, got "
                f"{day_offset}",
                name="MonthlyPartitionsDefinition",
            )
        super().__init__(
            start=start_date,
            end=end_date,
            fmt=fmt or "%Y-%m-%d",
            timezone=timezone,
            end_offset=end_offset,
            minute_offset=minute_offset,
            hour_offset=hour_offset,
            day_offset=day_offset,
            cron_schedule=f"{minute_offset} {hour_offset} {day_offset} * *",
        )


class DynamicPartitionsDefinition(PartitionsDefinition):
    """Keys added and removed while dagloom runs, kept by the instance under `name`
    (`instance.add_dynamic_partitions(name, keys)`, or a sensor's
    `SensorResult(dynamic_partitions_requests=[...])`). `partition_fn`, Dagster's older
    form, computes the keys instead."""

    def __init__(
        self,
        partition_fn: Callable[[datetime | None], Sequence[str]] | None = None,
        name: str | None = None,
    ) -> None:
        if (partition_fn is None) == (name is None):
            raise DagsterInvalidDefinitionError(
                "DynamicPartitionsDefinition: give exactly one of name= and partition_fn=",
                name=name,
            )
        self.name = name
        self.partition_fn = partition_fn

    def get_partition_keys(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        if self.partition_fn is not None:
            return list(self.partition_fn(current_time))
        assert self.name is not None
        if dynamic_partitions_store is None:
            raise DagsterInvalidDefinitionError(
                f"dynamic partitions {self.name!r}: their keys live in an instance; pass "
                "dynamic_partitions_store=instance",
                name=self.name,
            )
        return list(dynamic_partitions_store.get_dynamic_partitions(self.name))

    def build_add_request(self, partition_keys: Sequence[str]) -> AddDynamicPartitionsRequest:
        assert self.name is not None
        return AddDynamicPartitionsRequest(self.name, list(partition_keys))

    def build_delete_request(self, partition_keys: Sequence[str]) -> DeleteDynamicPartitionsRequest:
        assert self.name is not None
        return DeleteDynamicPartitionsRequest(self.name, list(partition_keys))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DynamicPartitionsDefinition)
            and other.name == self.name
            and other.partition_fn is self.partition_fn
        )

    def __hash__(self) -> int:
        return hash((self.name, id(self.partition_fn)))

    def __str__(self) -> str:
        return f"dynamic partitions {self.name!r}"


class AddDynamicPartitionsRequest(NamedTuple):
    """Add `partition_keys` to the dynamic partitions `partitions_def_name`."""

    partitions_def_name: str
    partition_keys: list[str]


class DeleteDynamicPartitionsRequest(NamedTuple):
    """Remove `partition_keys` from the dynamic partitions `partitions_def_name`."""

    partitions_def_name: str
    partition_keys: list[str]


class MultiPartitionKey(str):
    """A key of a MultiPartitionsDefinition: a string `"a|b"` (dimensions in name order)
    that also knows each dimension's key."""

    keys_by_dimension: dict[str, str]

    def __new__(cls, keys_by_dimension: Mapping[str, str]) -> MultiPartitionKey:
        ordered = dict(sorted(keys_by_dimension.items()))
        text = MULTIPARTITION_KEY_DELIMITER.join(ordered.values())
        key = super().__new__(cls, text)
        key.keys_by_dimension = ordered
        return key

    def __getnewargs__(self) -> tuple[Any, ...]:
        return (self.keys_by_dimension,)

    @property
    def dimension_keys(self) -> list[PartitionDimensionKey]:
        return [PartitionDimensionKey(n, k) for n, k in self.keys_by_dimension.items()]


class PartitionDimensionKey(NamedTuple):
    dimension_name: str
    partition_key: str


class PartitionDimensionDefinition(NamedTuple):
    name: str
    partitions_def: PartitionsDefinition


class MultiPartitionsDefinition(PartitionsDefinition):
    """The product of two partitions definitions (`{"date": daily, "region": static}`);
    its keys are MultiPartitionKeys."""

    def __init__(self, partitions_defs: Mapping[str, PartitionsDefinition]) -> None:
        if len(partitions_defs) != 2:
            raise DagsterInvalidDefinitionError(
                "MultiPartitionsDefinition: exactly two dimensions are supported, got "
                f"{sorted(partitions_defs)}",
                name="MultiPartitionsDefinition",
            )
        for dim, part in partitions_defs.items():
            check_partition_key(dim, "MultiPartitionsDefinition dimension name")
            if isinstance(part, MultiPartitionsDefinition):
                raise DagsterInvalidDefinitionError(
                    f"MultiPartitionsDefinition: dimension {dim!r} is itself multi-partitioned",
                    name=dim,
                )
        self.partitions_defs = [
            PartitionDimensionDefinition(n, d) for n, d in sorted(partitions_defs.items())
        ]

    @property
    def partition_dimension_names(self) -> list[str]:
        return [d.name for d in self.partitions_defs]

    def get_partitions_def_for_dimension(self, dimension_name: str) -> PartitionsDefinition:
        for dim in self.partitions_defs:
            if dim.name == dimension_name:
                return dim.partitions_def
        raise DagsterInvalidDefinitionError(
            f"{self}: no dimension {dimension_name!r}; dimensions are "
            f"{self.partition_dimension_names}",
            name=dimension_name,
        )

    @property
    def time_window_dimension(self) -> PartitionDimensionDefinition | None:
        for dim in self.partitions_defs:
            if isinstance(dim.partitions_def, TimeWindowPartitionsDefinition):
                return dim
        return None

    @property
    def primary_dimension(self) -> PartitionDimensionDefinition:
        return self.time_window_dimension or self.partitions_defs[0]

    @property
    def secondary_dimension(self) -> PartitionDimensionDefinition:
        primary = self.primary_dimension
        return next(d for d in self.partitions_defs if d.name != primary.name)

    def get_partition_keys(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        (n1, d1), (n2, d2) = self.partitions_defs
        k1 = d1.get_partition_keys(current_time, dynamic_partitions_store)
        k2 = d2.get_partition_keys(current_time, dynamic_partitions_store)
        return [MultiPartitionKey({n1: a, n2: b}) for a in k1 for b in k2]

    def get_partition_key_from_str(self, partition_key_str: str) -> MultiPartitionKey:
        parts = partition_key_str.split(MULTIPARTITION_KEY_DELIMITER)
        if len(parts) != len(self.partitions_defs):
            raise DagsterUnknownPartitionError(
                f"{partition_key_str!r} is not a key of {self}: expected "
                f"{len(self.partitions_defs)} parts separated by '|'",
                name=partition_key_str,
            )
        return MultiPartitionKey(
            {d.name: p for d, p in zip(self.partitions_defs, parts, strict=True)}
        )

    def has_partition_key(
        self,
        partition_key: str,
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> bool:
        parts = partition_key.split(MULTIPARTITION_KEY_DELIMITER)
        if len(parts) != len(self.partitions_defs):
            return False
        return all(
            d.partitions_def.has_partition_key(p, current_time, dynamic_partitions_store)
            for d, p in zip(self.partitions_defs, parts, strict=True)
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MultiPartitionsDefinition)
            and other.partitions_defs == self.partitions_defs
        )

    def __hash__(self) -> int:
        return hash(tuple(self.partitions_defs))

    def __str__(self) -> str:
        return "multi-partitions " + " x ".join(
            f"{d.name}: {d.partitions_def}" for d in self.partitions_defs
        )


def dynamic_partition_names(partitions_def: PartitionsDefinition | None) -> list[str]:
    """The names of the stored dynamic partitions a definition (or its dimensions) uses."""
    if isinstance(partitions_def, DynamicPartitionsDefinition) and partitions_def.name:
        return [partitions_def.name]
    if isinstance(partitions_def, MultiPartitionsDefinition):
        return [n for d in partitions_def.partitions_defs for n in dynamic_partition_names(d[1])]
    return []


def partition_keys_for_range(
    partitions_def: PartitionsDefinition,
    key_range: PartitionKeyRange,
    dynamic_partitions_store: DynamicPartitionsStore | None = None,
) -> list[str]:
    """The keys of `key_range` in `partitions_def` (see `get_partition_keys_in_range`)."""
    return partitions_def.get_partition_keys_in_range(key_range, dynamic_partitions_store)


def parse_partition_range(text: str) -> PartitionKeyRange:
    """`"A...B"` as a PartitionKeyRange (a single key `"A"` is `A...A`)."""
    start, sep, end = text.partition("...")
    if not sep:
        return PartitionKeyRange(text, text)
    return PartitionKeyRange(start, end)


__all__ = [
    "AddDynamicPartitionsRequest",
    "DailyPartitionsDefinition",
    "DeleteDynamicPartitionsRequest",
    "DynamicPartitionsDefinition",
    "DynamicPartitionsStore",
    "HourlyPartitionsDefinition",
    "MonthlyPartitionsDefinition",
    "MultiPartitionKey",
    "MultiPartitionsDefinition",
    "PartitionDimensionDefinition",
    "PartitionKeyRange",
    "PartitionsDefinition",
    "StaticPartitionsDefinition",
    "TimeWindow",
    "TimeWindowPartitionsDefinition",
    "WeeklyPartitionsDefinition",
    "parse_partition_range",
]
