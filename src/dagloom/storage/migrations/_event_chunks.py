"""Schema 3's data step, shared by SQLite and Postgres: the one-row-per-event `events` table of
schema 2 rewritten as `event_chunks`, with every event keeping its storage id.

A schema-2 row is `(id, run_id, event_type, step_key, timestamp, asset_key, partition, body)`,
its body an orjson object of the fields that are set: `j` job name, `m` message, `l` level,
and at most one payload under its oneof field name, as a plain list (metadata values as
`[kind, value]`).
Consecutive rows of one run with consecutive ids become one chunk (of at most `MAX_CHUNK`);
rows with an asset key also go into the asset index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    EngineEventData,
    ErrorInfo,
    HandledOutputData,
    LoadedInputData,
    MetadataValue,
    RunFailureData,
    StepFailureData,
    StepOutputData,
    StepRetryData,
    StepSkippedData,
)
from dagloom.messages.rows import NO_PAYLOAD, PAYLOAD_FIELDS, EventRow
from dagloom.storage._codec import MAX_CHUNK

if TYPE_CHECKING:
    from dagloom.storage._sql_storage import SqlConnection
    from dagloom.storage.migrations import DataStep

PAGE = 5000
"""Schema-2 rows read per query."""


# -- schema 2's payloads: plain lists, and metadata values as [kind, value] ------------------


def _meta_in(data: Mapping[str, list[Any]]) -> dict[str, MetadataValue]:
    out: dict[str, MetadataValue] = {}
    for key, (kind, item) in data.items():
        if kind == "asset":
            out[key] = MetadataValue(asset=AssetKeyMessage(path=item))
        else:
            out[key] = MetadataValue(**{kind: item})
    return out


def _error_in(data: Mapping[str, Any] | None) -> ErrorInfo | None:
    if data is None:
        return None
    return ErrorInfo(
        cls_name=data["c"], message=data["m"], stack=data["s"], cause=_error_in(data["x"])
    )


def _step_output_in(d: list[Any]) -> StepOutputData:
    return StepOutputData(output_name=d[0], mapping_key=d[1])


def _step_failure_in(d: list[Any]) -> StepFailureData:
    return StepFailureData(error=_error_in(d[0]), user_failure=d[1], metadata=_meta_in(d[2]))


def _step_retry_in(d: list[Any]) -> StepRetryData:
    return StepRetryData(attempt=d[0], max_retries=d[1], delay_seconds=d[2], error=_error_in(d[3]))


def _step_skipped_in(d: list[Any]) -> StepSkippedData:
    return StepSkippedData(upstream_step_keys=d)


def _handled_output_in(d: list[Any]) -> HandledOutputData:
    return HandledOutputData(output_name=d[0], manager_key=d[1], mapping_key=d[2])


def _loaded_input_in(d: list[Any]) -> LoadedInputData:
    return LoadedInputData(
        input_name=d[0], manager_key=d[1], upstream_step_key=d[2], upstream_output_name=d[3]
    )


def _materialization_in(d: list[Any]) -> AssetMaterializationData:
    return AssetMaterializationData(
        asset_key=None if d[0] is None else AssetKeyMessage(path=d[0]),
        metadata=_meta_in(d[1]),
        partition=d[2],
        description=d[3],
    )


def _run_failure_in(d: list[Any]) -> RunFailureData:
    return RunFailureData(failed_step_keys=d[0], error=_error_in(d[1]))


def _engine_event_in(d: list[Any]) -> EngineEventData:
    return EngineEventData(metadata=_meta_in(d[0]), error=_error_in(d[1]))


_LEGACY_PAYLOADS: dict[str, Callable[[Any], Any]] = {
    "step_output": _step_output_in,
    "step_failure": _step_failure_in,
    "step_retry": _step_retry_in,
    "step_skipped": _step_skipped_in,
    "handled_output": _handled_output_in,
    "loaded_input": _loaded_input_in,
    "asset_materialization": _materialization_in,
    "run_failure": _run_failure_in,
    "engine_event": _engine_event_in,
}

_INSERT_CHUNK = (
    "INSERT INTO event_chunks (run_id, first_storage_id, last_storage_id, body) VALUES (?, ?, ?, ?)"
)
_INSERT_ASSET = (
    "INSERT INTO asset_events (storage_id, run_id, event_type, asset_key, partition, body) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def legacy_row(event_type: int, step_key: str, timestamp: float, body: bytes | None) -> EventRow:
    """The chunk row of a schema-2 event row (its payload as a message, for orjson)."""
    fields: dict[str, Any] = orjson.loads(body) if body is not None else {}
    kind, payload = NO_PAYLOAD, None
    for name, data in fields.items():
        if name in _LEGACY_PAYLOADS:
            kind, payload = PAYLOAD_FIELDS.index(name), _LEGACY_PAYLOADS[name](data)
    return (
        event_type,
        step_key,
        timestamp,
        fields.get("m", ""),
        fields.get("l", 0),
        fields.get("j", ""),
        kind,
        payload,
    )


class _ChunkWriter:
    """Collects consecutive rows into chunks and inserts them."""

    __slots__ = ("_tx", "first", "rows", "run_id")

    def __init__(self, tx: SqlConnection) -> None:
        self._tx = tx
        self.run_id = ""
        self.first = 0
        self.rows: list[EventRow] = []

    def continues(self, storage_id: int, run_id: str) -> bool:
        return (
            bool(self.rows)
            and run_id == self.run_id
            and storage_id == self.first + len(self.rows)
            and len(self.rows) < MAX_CHUNK
        )

    async def flush(self) -> None:
        if self.rows:
            last = self.first + len(self.rows) - 1
            body = orjson.dumps(self.rows)
            await self._tx.execute(_INSERT_CHUNK, (self.run_id, self.first, last, body))
        self.rows = []


def events_to_chunks(highest_issued_id: str) -> DataStep:
    """The data step of schema 3; `highest_issued_id` is a query for the highest event id the
    `events` table ever gave out, so new storage ids never reuse a deleted event's."""

    async def convert(tx: SqlConnection) -> None:
        writer = _ChunkWriter(tx)
        cursor = 0
        while True:
            page = await tx.fetch(
                "SELECT id, run_id, event_type, step_key, timestamp, asset_key, partition, body "
                "FROM events WHERE id > ? ORDER BY id LIMIT ?",
                (cursor, PAGE),
            )
            assets: list[tuple[Any, ...]] = []
            for storage_id, run_id, event_type, step_key, timestamp, key, part, body in page:
                row = legacy_row(event_type, step_key, timestamp, body)
                if not writer.continues(storage_id, run_id):
                    await writer.flush()
                    writer.run_id, writer.first = run_id, storage_id
                writer.rows.append(row)
                if key is not None:
                    assets.append((storage_id, run_id, event_type, key, part, orjson.dumps(row)))
                cursor = storage_id
            if assets:
                await tx.executemany(_INSERT_ASSET, assets)
            if len(page) < PAGE:
                break
        await writer.flush()
        rows = await tx.fetch(highest_issued_id)
        await tx.execute(
            "UPDATE event_storage_ids SET last_storage_id = ?", (int(rows[0][0] or 0),)
        )

    return convert
