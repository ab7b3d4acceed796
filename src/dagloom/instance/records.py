"""Dagster's records API over an instance: `get_run_records` (RunRecord objects) and
`get_event_records` (EventLogRecord objects of asset events).

Each read is one coroutine here, which `DagloomInstance` serves awaitable or blocking
(`_sync_or_async`) and `SyncInstance` (`context.instance`) blocking, so both answer alike.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dagloom.definitions.asset_key import AssetKey
from dagloom.errors import DagsterInvalidInvocationError
from dagloom.execution.result import RunView
from dagloom.instance.sync import EventLogRecord, EventRecordsFilter
from dagloom.storage.base import RunsFilter

if TYPE_CHECKING:
    from dagloom.instance._instance import DagloomInstance
    from dagloom.messages import EventRecord, Run


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A stored run as Dagster's `RunRecord`: the run (`dagster_run`, a `DagsterRun`) and
    when it was created, last changed, started and ended (start and end None until then).

    `storage_id` orders records by creation (the creation time in microseconds: stable, the
    same whatever the query); `update_timestamp` is the latest of its creation, start and
    end, the status changes storage keeps times of."""

    storage_id: int
    dagster_run: RunView
    create_timestamp: datetime
    update_timestamp: datetime
    start_time: float | None = None
    end_time: float | None = None

    @classmethod
    def of(cls, run: Run) -> RunRecord:
        """The record of a stored run."""
        changed = max(run.create_time, run.start_time, run.end_time)
        return cls(
            round(run.create_time * 1_000_000),
            RunView.of(run),
            datetime.fromtimestamp(run.create_time, UTC),
            datetime.fromtimestamp(changed, UTC),
            run.start_time or None,
            run.end_time or None,
        )


async def run_records(
    instance: DagloomInstance,
    filters: RunsFilter | None,
    limit: int | None,
    cursor: str | None,
    ascending: bool,
) -> list[RunRecord]:
    """Up to `limit` runs matching `filters`, newest first (oldest first with `ascending`),
    after the run whose id is `cursor` (DagsterInvalidInvocationError when no such run
    matches the filters)."""
    if limit is not None and limit < 1:
        raise DagsterInvalidInvocationError("get_run_records: limit must be >= 1")
    runs = instance.run_storage
    if not ascending:
        if cursor is not None and await runs.get_run(cursor) is None:
            raise DagsterInvalidInvocationError(f"get_run_records: no run has id {cursor!r}")
        return [
            RunRecord.of(run) for run in await runs.get_runs(filters, limit=limit, cursor=cursor)
        ]
    # Storage pages newest first: the oldest need every matching run.
    every = list(reversed(await runs.get_runs(filters)))
    start = 0
    if cursor is not None:
        ids = [run.run_id for run in every]
        if cursor not in ids:
            raise DagsterInvalidInvocationError(
                f"get_run_records: cursor {cursor!r} is no run matching the filters"
            )
        start = ids.index(cursor) + 1
    chosen = every[start:] if limit is None else every[start : start + limit]
    return [RunRecord.of(run) for run in chosen]


_ORDERS = (None, "create_timestamp", "storage_id", "id")


def record_order(where: str, order_by: str | None, bucket_by: Any) -> None:
    """Refuse an `order_by` other than creation order, and any `bucket_by`, naming `where`."""
    if order_by not in _ORDERS:
        raise DagsterInvalidInvocationError(
            f"{where}: runs are ordered by creation; order_by={order_by!r} is not supported"
        )
    if bucket_by is not None:
        raise DagsterInvalidInvocationError(f"{where}: bucket_by is not supported")


_READERS = {
    "ASSET_MATERIALIZATION": "get_materializations",
    "ASSET_OBSERVATION": "get_observations",
}


def event_records_arguments(records_filter: Any) -> tuple[str, AssetKey | None]:
    """The storage read (`get_materializations` / `get_observations`) and asset key of a
    `get_event_records` filter; DagsterInvalidInvocationError naming what is not supported."""
    if not isinstance(records_filter, EventRecordsFilter):
        raise DagsterInvalidInvocationError(
            f"get_event_records takes an EventRecordsFilter, not {type(records_filter).__name__}"
        )
    kind = str(getattr(records_filter.event_type, "name", records_filter.event_type))
    reader = _READERS.get(kind)
    if reader is None:
        raise DagsterInvalidInvocationError(
            f"get_event_records: event_type {kind} is not supported; records of "
            f"{sorted(_READERS)} are (a run's own events: instance.all_logs(run_id))"
        )
    key = records_filter.asset_key
    return reader, None if key is None else AssetKey.from_coercible(key)


async def event_records(
    instance: DagloomInstance,
    records_filter: EventRecordsFilter,
    limit: int | None,
    ascending: bool,
) -> list[EventLogRecord]:
    """Up to `limit` asset events the filter selects (see EventRecordsFilter), newest first
    (oldest first with `ascending`)."""
    from dagloom.definitions.event_sensors import EventLogEntry

    if limit is not None and limit < 1:
        raise DagsterInvalidInvocationError("get_event_records: limit must be >= 1")
    reader, key = event_records_arguments(records_filter)
    read = getattr(instance, reader)
    after, before = records_filter.after_cursor, records_filter.before_cursor
    partitions = records_filter.asset_partitions
    # Storage reads newest first, `limit` rows below `before`: that is the answer unless
    # rows are dropped afterwards or the oldest are wanted, which need every row.
    after_time, before_time = records_filter.after_timestamp, records_filter.before_timestamp
    ids = None if records_filter.storage_ids is None else set(records_filter.storage_ids)
    exact = not ascending and after is None and partitions is None and ids is None
    exact = exact and after_time is None and before_time is None
    keys = [key.path] if key is not None else await instance.get_asset_keys()
    per_key: list[list[EventRecord]] = [
        await read(path, limit=limit if exact else None, before=before) for path in keys
    ]
    rows = heapq.merge(*per_key, key=lambda r: r.storage_id, reverse=True)
    records: list[EventLogRecord] = []
    for row in rows:
        if after is not None and row.storage_id <= after:
            break
        if ids is not None and row.storage_id not in ids:
            continue
        record = EventLogRecord(row.storage_id, EventLogEntry.of(row))
        if partitions is not None and _partition(record) not in partitions:
            continue
        if after_time is not None and record.timestamp <= after_time:
            continue
        if before_time is not None and record.timestamp >= before_time:
            continue
        records.append(record)
        if exact and limit is not None and len(records) == limit:
            break
    if ascending:
        records.reverse()
    return records if limit is None else records[:limit]


def _partition(record: EventLogRecord) -> str | None:
    event = record.asset_materialization or record.asset_observation
    return getattr(event, "partition", None)


__all__ = [
    "RunRecord",
    "event_records",
    "event_records_arguments",
    "record_order",
    "run_records",
]
