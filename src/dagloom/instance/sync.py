"""`context.instance`: the run's instance, called synchronously from an op's body.

Ops are plain functions; the instance's storage belongs to the event loop that entered it
(`DagloomInstance.owner_loop`). Each call here submits the storage coroutine to that loop
and waits for its answer on the calling thread. That works from any thread but the owner
loop's own: a run executes on a thread of its own (`run_on_own_thread`, as the run worker
and `execute_in_process(instance=...)` do), and sync ops in worker threads wait there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.errors import DagsterInvalidInvocationError

if TYPE_CHECKING:
    from dagloom.definitions.event_sensors import EventLogEntry
    from dagloom.definitions.outputs import AssetMaterialization, AssetObservation
    from dagloom.execution.result import RunView
    from dagloom.instance._instance import DagloomInstance
    from dagloom.instance.records import RunRecord
    from dagloom.messages import EventRecord, EventType, Run
    from dagloom.storage.base import RunsFilter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EventLogRecord:
    """One stored event and its storage id, as `fetch_materializations` returns them."""

    storage_id: int
    event_log_entry: EventLogEntry

    @property
    def run_id(self) -> str:
        return self.event_log_entry.run_id

    @property
    def timestamp(self) -> float:
        return self.event_log_entry.timestamp

    @property
    def asset_key(self) -> AssetKey | None:
        event = self.asset_materialization or self.asset_observation
        return event.asset_key if event is not None else None

    @property
    def asset_materialization(self) -> AssetMaterialization | None:
        return self.event_log_entry.asset_materialization

    @property
    def asset_observation(self) -> AssetObservation | None:
        return self.event_log_entry.asset_observation


@dataclass(frozen=True, slots=True)
class AssetRecordsFilter:
    """Which asset's events `fetch_materializations` / `fetch_observations` read. Only
    `asset_key` narrows the read; other filters raise DagsterInvalidInvocationError."""

    asset_key: CoercibleToAssetKey
    asset_partitions: Sequence[str] | None = None
    after_storage_id: int | None = None
    before_storage_id: int | None = None


@dataclass(frozen=True, slots=True)
class EventRecordsFilter:
    """Which asset events `get_event_records` reads: of `event_type` (materializations or
    observations), of `asset_key` (None: every asset), of `asset_partitions`, between
    storage ids (`after_cursor` < id < `before_cursor`) and timestamps, among `storage_ids`.
    `fetch_materializations` / `fetch_observations` read only `asset_key` and
    `before_cursor` of it (their method chooses the event type)."""

    event_type: Any
    asset_key: CoercibleToAssetKey | None = None
    asset_partitions: Sequence[str] | None = None
    after_cursor: int | None = None
    before_cursor: int | None = None
    after_timestamp: float | None = None
    before_timestamp: float | None = None
    storage_ids: Sequence[int] | None = None


@dataclass(frozen=True, slots=True)
class EventRecordsResult:
    """A page of event records, newest first: `records`, the `cursor` to pass for the next
    page (the last record's storage id, as a string), and whether there are more."""

    records: Sequence[EventLogRecord]
    cursor: str | None
    has_more: bool


def fetch_arguments(
    where: str, records_filter: Any, limit: int, cursor: str | None, ascending: bool
) -> tuple[AssetKey, int | None]:
    """The asset key and `before` storage id of a `fetch_materializations` /
    `fetch_observations` call; DagsterInvalidInvocationError (naming `where`) for what is
    not supported: `ascending=True`, a limit below 1, a filter without an asset key or
    filtering on partitions or on `after`, a cursor these methods did not return."""
    if ascending:
        raise DagsterInvalidInvocationError(
            f"{where}: records are read newest first; ascending=True is not supported"
        )
    if limit < 1:
        raise DagsterInvalidInvocationError(f"{where}: limit must be >= 1")
    raw_key = getattr(records_filter, "asset_key", records_filter)
    if raw_key is None:
        raise DagsterInvalidInvocationError(f"{where}: the filter names no asset_key")
    for unsupported in (
        "asset_partitions",
        "after_storage_id",
        "after_cursor",
        "after_timestamp",
        "before_timestamp",
        "storage_ids",
    ):
        if getattr(records_filter, unsupported, None) is not None:
            raise DagsterInvalidInvocationError(
                f"{where}: filtering by {unsupported} is not supported"
            )
    key = AssetKey.from_coercible(raw_key)
    before: int | None = getattr(records_filter, "before_storage_id", None) or getattr(
        records_filter, "before_cursor", None
    )
    if cursor is not None:
        try:
            before = int(cursor)
        except ValueError:
            raise DagsterInvalidInvocationError(
                f"{where}: cursor {cursor!r} is not one this method returned"
            ) from None
    return key, before


async def fetch_page(
    instance: DagloomInstance,
    what: str,
    key: AssetKey,
    limit: int,
    before: int | None,
    cursor: str | None,
) -> EventRecordsResult:
    """Up to `limit` materializations (`what` = "fetch_materializations") or observations
    of `key` stored before `before`, newest first, with the cursor of the next page."""
    from dagloom.definitions.event_sensors import EventLogEntry

    read = (
        instance.get_materializations
        if what == "fetch_materializations"
        else instance.get_observations
    )
    rows: list[EventRecord] = await read(key.path, limit=limit + 1, before=before)
    page = rows[:limit]
    records = [EventLogRecord(r.storage_id, EventLogEntry.of(r)) for r in page]
    return EventRecordsResult(
        records=records,
        cursor=str(records[-1].storage_id) if records else cursor,
        has_more=len(rows) > limit,
    )


def _storage_filter(what: str, filters: Any) -> RunsFilter | None:
    """`filters` checked to be a `RunsFilter` (or None); DagsterInvalidInvocationError
    naming `what` otherwise."""
    from dagloom.storage.base import RunsFilter

    if filters is not None and not isinstance(filters, RunsFilter):
        raise DagsterInvalidInvocationError(
            f"context.instance.{what}: filters must be a RunsFilter, not {type(filters).__name__}"
        )
    return filters


def event_types_of(of_type: Any) -> list[EventType]:
    """The event types `all_logs(of_type=...)` keeps: none given keeps every kind; a
    `DagsterEventType` (or its name), or a set, list or tuple of them.
    DagsterInvalidInvocationError when one names no event type."""
    from dagloom.messages import EventType

    if of_type is None:
        return []
    kinds = list(of_type) if isinstance(of_type, set | frozenset | list | tuple) else [of_type]
    try:
        return [EventType[str(getattr(kind, "name", kind))] for kind in kinds]
    except KeyError:
        raise DagsterInvalidInvocationError(
            f"instance.all_logs: of_type={of_type!r} names no event type"
        ) from None


class SyncInstance:
    """The run's instance seen from op code, answering as Dagster's `DagsterInstance` does.

    Every method blocks until storage answers. `instance` is the async `DagloomInstance`
    for code that needs the rest of it from a coroutine of its owner loop.
    """

    __slots__ = ("_flush_events", "_instance")

    def __init__(
        self, instance: DagloomInstance, flush_events: Callable[[], None] | None = None
    ) -> None:
        self._instance = instance
        self._flush_events = flush_events

    @property
    def instance(self) -> DagloomInstance:
        return self._instance

    def storage_directory(self) -> str:
        """Where the default filesystem IO manager keeps outputs."""
        return self._instance.storage_directory()

    def _call(self, what: str, coro: Coroutine[Any, Any, T]) -> T:
        owner = self._instance.owner_loop
        if owner is None:
            coro.close()
            raise DagsterInvalidInvocationError(
                f"context.instance.{what}: the run's instance is not open; open it "
                "(`async with instance:`) or pass it to execute_in_process(instance=...)"
            )
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is owner:
            coro.close()
            raise DagsterInvalidInvocationError(
                f"context.instance.{what} was called on the event loop that owns the "
                "instance's storage, which would wait for itself; from a coroutine of that "
                "loop, await `context.instance.instance` methods instead"
            )
        if self._flush_events is not None:
            # The run's events are written in batches: make those so far durable first, so
            # a read sees what this run has recorded (as Dagster's synchronous writes do).
            try:
                self._flush_events()
            except BaseException:
                coro.close()
                raise
        return asyncio.run_coroutine_threadsafe(coro, owner).result()

    # -- asset events -----------------------------------------------------------------------

    def get_latest_materialization_event(
        self, asset_key: CoercibleToAssetKey
    ) -> EventLogEntry | None:
        """The newest materialization of `asset_key`, or None if it has none."""
        key = AssetKey.from_coercible(asset_key)
        entry: EventLogEntry | None = self._call(
            "get_latest_materialization_event",
            self._instance._latest_materialization_entry(key.path),
        )
        return entry

    def fetch_materializations(
        self,
        records_filter: Any,
        limit: int,
        cursor: str | None = None,
        ascending: bool = False,
    ) -> EventRecordsResult:
        """Up to `limit` materializations of an asset (an asset key, or a filter with an
        `asset_key`), newest first; `cursor` continues from an earlier page."""
        return self._fetch("fetch_materializations", records_filter, limit, cursor, ascending)

    def fetch_observations(
        self,
        records_filter: Any,
        limit: int,
        cursor: str | None = None,
        ascending: bool = False,
    ) -> EventRecordsResult:
        """Up to `limit` observations of an asset, as `fetch_materializations`."""
        return self._fetch("fetch_observations", records_filter, limit, cursor, ascending)

    def _fetch(
        self, what: str, records_filter: Any, limit: int, cursor: str | None, ascending: bool
    ) -> EventRecordsResult:
        key, before = fetch_arguments(
            f"context.instance.{what}", records_filter, limit, cursor, ascending
        )
        return self._call(what, fetch_page(self._instance, what, key, limit, before, cursor))

    def get_event_records(
        self,
        event_records_filter: Any = None,
        limit: int | None = None,
        ascending: bool = False,
    ) -> list[Any]:
        """Up to `limit` EventLogRecords of the asset events an EventRecordsFilter selects,
        as `DagloomInstance.get_event_records`."""
        from dagloom.instance.records import event_records, event_records_arguments

        event_records_arguments(event_records_filter)
        return self._call(
            "get_event_records",
            event_records(self._instance, event_records_filter, limit, ascending),
        )

    def get_materialized_partitions(self, asset_key: CoercibleToAssetKey) -> set[str]:
        """The partitions of `asset_key` that have been materialized."""
        key = AssetKey.from_coercible(asset_key)
        return self._call(
            "get_materialized_partitions",
            self._instance.get_materialized_partition_keys(key.path),
        )

    # -- runs -------------------------------------------------------------------------------

    def get_runs(
        self,
        filters: RunsFilter | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        ascending: bool = False,
    ) -> list[Run]:
        """The runs `filters` matches (every field given must match), newest first, at most
        `limit`; `cursor` is the run id the previous page ended with."""
        if ascending:
            raise DagsterInvalidInvocationError(
                "context.instance.get_runs: runs are read newest first; ascending=True is "
                "not supported"
            )
        return self._call(
            "get_runs",
            self._instance.get_runs_async(
                _storage_filter("get_runs", filters), limit=limit, cursor=cursor
            ),
        )

    def get_runs_count(self, filters: RunsFilter | None = None) -> int:
        """How many runs `filters` matches."""
        return self._call(
            "get_runs_count",
            self._instance.get_runs_count_async(_storage_filter("get_runs_count", filters)),
        )

    def get_run_records(
        self,
        filters: RunsFilter | None = None,
        limit: int | None = None,
        order_by: str | None = None,
        ascending: bool = False,
        cursor: str | None = None,
        bucket_by: Any = None,
    ) -> list[Any]:
        """Up to `limit` RunRecords of the runs matching `filters`, as
        `DagloomInstance.get_run_records`."""
        from dagloom.instance.records import record_order, run_records

        record_order("context.instance.get_run_records", order_by, bucket_by)
        return self._call(
            "get_run_records", run_records(self._instance, filters, limit, cursor, ascending)
        )

    def get_run_by_id(self, run_id: str) -> RunView | None:
        """The run as a `DagsterRun`, or None when there is no such run."""
        return self._call("get_run_by_id", self._instance._run_view(run_id))

    # -- run events -------------------------------------------------------------------------

    def all_logs(self, run_id: str, of_type: Any = None) -> list[EventLogEntry]:
        """The events of run `run_id`, in order; `of_type` (a `DagsterEventType`, or a set
        of them) keeps only those kinds."""
        entries: list[EventLogEntry] = self._call(
            "all_logs", self._instance._log_entries(run_id, event_types_of(of_type))
        )
        return entries

    # -- dynamic partitions -----------------------------------------------------------------

    def get_dynamic_partitions(self, partitions_def_name: str) -> list[str]:
        """The keys of the dynamic partitions `partitions_def_name`, in the order added."""
        return self._call(
            "get_dynamic_partitions",
            self._instance.get_dynamic_partitions_async(partitions_def_name),
        )

    def add_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> None:
        """Add keys to the dynamic partitions `partitions_def_name` (those it has stay)."""
        self._call(
            "add_dynamic_partitions",
            self._instance.add_dynamic_partitions_async(partitions_def_name, list(partition_keys)),
        )

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
        return self._call(
            "has_dynamic_partition",
            self._instance.has_dynamic_partition_async(partitions_def_name, partition_key),
        )

    def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        self._call(
            "delete_dynamic_partition",
            self._instance.delete_dynamic_partition_async(partitions_def_name, partition_key),
        )


INSTANCE_METHODS = frozenset(
    {
        "storage_directory",
        "get_run_by_id",
        "get_runs",
        "get_runs_count",
        "get_run_records",
        "get_latest_materialization_event",
        "fetch_materializations",
        "fetch_observations",
        "get_materialized_partitions",
        "all_logs",
        "get_dynamic_partitions",
        "add_dynamic_partitions",
        "has_dynamic_partition",
        "delete_dynamic_partition",
    }
)
"""The `SyncInstance` methods a `ForwardedInstance` forwards: its whole public API but the
async `instance`, which lives in another process."""

Forward = Callable[[str, tuple[Any, ...], dict[str, Any]], Any]
"""Calls the `SyncInstance` method named by its first argument, with the given positional
and keyword arguments, wherever the instance is, and returns its result (or raises its
error)."""


class ForwardedInstance:
    """A `SyncInstance` in another process, as a schedule's or sensor's `context.instance`
    sees it when the tick is evaluated away from the instance.

    Each method has `SyncInstance`'s signature and answer, and blocks while `forward` carries
    the call to the process holding the instance and brings back its result or error. Making
    one costs nothing: the instance is reached only when a method is called.
    """

    __slots__ = ("_forward",)

    def __init__(self, forward: Forward) -> None:
        self._forward = forward

    def storage_directory(self) -> str:
        """Where the default filesystem IO manager keeps outputs."""
        return str(self._forward("storage_directory", (), {}))

    def get_run_by_id(self, run_id: str) -> RunView | None:
        """The run `run_id` as a `DagsterRun`, or None."""
        run: RunView | None = self._forward("get_run_by_id", (run_id,), {})
        return run

    def get_runs(
        self,
        filters: RunsFilter | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        ascending: bool = False,
    ) -> list[Run]:
        """The runs `filters` matches, newest first (see `SyncInstance`)."""
        runs: list[Run] = self._forward("get_runs", (filters, cursor, limit, ascending), {})
        return runs

    def get_runs_count(self, filters: RunsFilter | None = None) -> int:
        """How many runs `filters` matches."""
        return int(self._forward("get_runs_count", (filters,), {}))

    def get_run_records(
        self,
        filters: RunsFilter | None = None,
        limit: int | None = None,
        order_by: str | None = None,
        ascending: bool = False,
        cursor: str | None = None,
        bucket_by: Any = None,
    ) -> list[RunRecord]:
        """The runs `filters` matches as `RunRecord`s (see `SyncInstance.get_run_records`)."""
        records: list[RunRecord] = self._forward(
            "get_run_records", (filters, limit, order_by, ascending, cursor, bucket_by), {}
        )
        return records

    def get_latest_materialization_event(
        self, asset_key: CoercibleToAssetKey
    ) -> EventLogEntry | None:
        """The newest materialization of `asset_key`, or None if it has none."""
        entry: EventLogEntry | None = self._forward(
            "get_latest_materialization_event", (asset_key,), {}
        )
        return entry

    def fetch_materializations(
        self,
        records_filter: Any,
        limit: int,
        cursor: str | None = None,
        ascending: bool = False,
    ) -> EventRecordsResult:
        """Up to `limit` materializations of an asset, newest first (see `SyncInstance`)."""
        result: EventRecordsResult = self._forward(
            "fetch_materializations", (records_filter, limit, cursor, ascending), {}
        )
        return result

    def fetch_observations(
        self,
        records_filter: Any,
        limit: int,
        cursor: str | None = None,
        ascending: bool = False,
    ) -> EventRecordsResult:
        """Up to `limit` observations of an asset, newest first (see `SyncInstance`)."""
        result: EventRecordsResult = self._forward(
            "fetch_observations", (records_filter, limit, cursor, ascending), {}
        )
        return result

    def get_materialized_partitions(self, asset_key: CoercibleToAssetKey) -> set[str]:
        """The partitions of `asset_key` that have been materialized."""
        keys: set[str] = self._forward("get_materialized_partitions", (asset_key,), {})
        return keys

    def all_logs(self, run_id: str, of_type: Any = None) -> list[EventLogEntry]:
        """The events of run `run_id`, in order, optionally only those of `of_type`."""
        entries: list[EventLogEntry] = self._forward("all_logs", (run_id, of_type), {})
        return entries

    def get_dynamic_partitions(self, partitions_def_name: str) -> list[str]:
        """The keys of the dynamic partitions `partitions_def_name`, in the order added."""
        keys: list[str] = self._forward("get_dynamic_partitions", (partitions_def_name,), {})
        return keys

    def add_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> None:
        """Add keys to the dynamic partitions `partitions_def_name` (those it has stay)."""
        self._forward("add_dynamic_partitions", (partitions_def_name, list(partition_keys)), {})

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
        return bool(
            self._forward("has_dynamic_partition", (partitions_def_name, partition_key), {})
        )

    def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        self._forward("delete_dynamic_partition", (partitions_def_name, partition_key), {})


InstanceView = SyncInstance | ForwardedInstance
"""The instance as schedule, sensor and op code calls it: synchronously, here or forwarded."""


def sync_instance_of(instance: DagloomInstance | InstanceView) -> InstanceView:
    """`instance` seen synchronously, as code outside a run (a sensor invoked in a test)
    reads it: a `DagloomInstance` is opened for synchronous use first when it is not open
    (`open_in_background`, which does nothing when it already is); a view is itself."""
    if isinstance(instance, SyncInstance | ForwardedInstance):
        return instance
    if not instance.is_open:
        instance.open_in_background()
    return SyncInstance(instance)


__all__ = [
    "INSTANCE_METHODS",
    "AssetRecordsFilter",
    "EventLogRecord",
    "EventRecordsFilter",
    "EventRecordsResult",
    "Forward",
    "ForwardedInstance",
    "InstanceView",
    "SyncInstance",
    "sync_instance_of",
]
