"""Event chunks: a batch of one run's events as one orjson list of compact rows, and back.

The SQL event log stores events in chunks, one table row per batch of a run's events, because a
table row per event costs more than the executor's whole per-step budget (~2.6 µs to encode and
2-4 µs to insert each, at ~5 events per step). Encoding a chunk costs ~0.35 µs per event with
warm caches and ~0.75 µs at the end of a 500-step run, when the events are cold.

An event is the row `(event_type, step_key, timestamp, message, level, job_name, *payloads)`:
`payloads` has one slot per field of Event's `data` oneof (`PAYLOAD_FIELDS`, in order), null
except for the field that is set, which holds that message as a JSON object. `run_id` is the
chunk's, and an event's `storage_id` is the chunk's first storage id plus its index.

Rows are built for the hot path: each is one `itemgetter` over the event's `__dict__` (in C,
one tuple per event), and orjson serializes the payload messages (dataclasses) itself, so no
Python code runs per event and there is one `orjson.dumps` per chunk. Collapsing the payload
slots into one needs a Python step per event: measured inside a 500-step run, that costs
~1.2 µs per event instead of ~0.75. Events are not encoded through betterproto2: its
serialize+parse costs ~60 µs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, count, repeat
from operator import attrgetter, is_not, itemgetter
from typing import Any

import orjson

from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    EngineEventData,
    ErrorInfo,
    Event,
    EventRecord,
    EventType,
    HandledOutputData,
    LoadedInputData,
    LogLevel,
    MetadataValue,
    RunFailureData,
    StepFailureData,
    StepOutputData,
    StepRetryData,
    StepSkippedData,
)

EventRow = tuple[Any, ...]
"""One event in a chunk: see the module docstring."""

PAYLOAD_FIELDS = (
    "step_output",
    "step_failure",
    "step_retry",
    "step_skipped",
    "handled_output",
    "loaded_input",
    "asset_materialization",
    "run_failure",
    "engine_event",
)
"""The fields of Event's `data` oneof, in the order of a row's payload slots; stored rows
depend on this order, so a new field only ever goes at the end."""

HEAD = 6
"""Columns of a row ahead of its payload slots."""

MAX_CHUNK = 1000
"""Events per chunk at most: a read decodes whole chunks, so a chunk stays a sink batch or two
(the sink writes 500 at a time)."""

_EVENT_TYPES: dict[int, EventType] = {int(t): t for t in EventType}
_LOG_LEVELS: dict[int, LogLevel] = {int(level): level for level in LogLevel}
_ASSET_EVENT_TYPES = frozenset({EventType.ASSET_MATERIALIZATION, EventType.ASSET_OBSERVATION})
_MATERIALIZATION = HEAD + PAYLOAD_FIELDS.index("asset_materialization")


def asset_key_text(path: tuple[str, ...] | list[str]) -> str:
    """Render an asset key path for the `asset_key` column: components joined by `/`.

    Asset key components cannot contain `/` (see `dagloom.definitions.asset_key`), so the
    rendering is unambiguous and `split("/")` inverts it.
    """
    return "/".join(path)


# -- encoding --------------------------------------------------------------------------------

_dict_of = attrgetter("__dict__")
_run_id_of = itemgetter("run_id")
_row_of = itemgetter(
    "event_type", "step_key", "timestamp", "message", "level", "job_name", *PAYLOAD_FIELDS
)
_materialization_of = itemgetter(_MATERIALIZATION)


@dataclass(slots=True)
class AssetEntry:
    """An asset event of a chunk, for the asset index: `index` is its place in the chunk."""

    index: int
    event_type: int
    asset_key: str
    partition: str | None
    body: bytes


@dataclass(slots=True)
class Chunk:
    """Consecutive events of one run, encoded; storage ids are given when it is written."""

    run_id: str
    count: int
    body: bytes
    assets: list[AssetEntry] = field(default_factory=list)


def encode_row(event: Event) -> EventRow:
    """One event's row, as `encode_chunks` puts it in a chunk (payload still a message)."""
    row: EventRow = _row_of(event.__dict__)
    return row


def dumps_row(row: EventRow) -> bytes:
    """One row as JSON (how the asset index and the memory backend keep an event)."""
    return orjson.dumps(row)


def asset_key_of(row: EventRow) -> tuple[str, str | None] | None:
    """The (asset_key, partition) an event row is indexed under, if it is an asset event:
    an ASSET_MATERIALIZATION or ASSET_OBSERVATION whose materialization payload has a key."""
    data = row[_MATERIALIZATION]
    if data is None or data.asset_key is None or row[0] not in _ASSET_EVENT_TYPES:
        return None
    return asset_key_text(data.asset_key.path), data.partition or None


def _runs(run_ids: list[str]) -> list[tuple[str, int, int]]:
    """(run_id, start, stop) of each stretch of consecutive events of one run."""
    first = run_ids[0]
    if run_ids.count(first) == len(run_ids):
        return [(first, 0, len(run_ids))]
    out: list[tuple[str, int, int]] = []
    start = 0
    for index, run_id in enumerate(run_ids):
        if run_id != run_ids[start]:
            out.append((run_ids[start], start, index))
            start = index
    out.append((run_ids[start], start, len(run_ids)))
    return out


def encode_chunks(events: Sequence[Event], max_size: int = MAX_CHUNK) -> list[Chunk]:
    """Encode events, in order, as chunks: a new chunk starts whenever the run changes and
    after `max_size` events. Per event this runs only C code (see the module docstring)."""
    if not events:
        return []
    dicts = list(map(_dict_of, events))
    rows: list[EventRow] = list(map(_row_of, dicts))
    slots = list(map(_materialization_of, rows))
    materialized = (
        []
        if slots.count(None) == len(slots)
        else list(compress(count(), map(is_not, slots, repeat(None))))
    )
    chunks: list[Chunk] = []
    for run_id, start, stop in _runs(list(map(_run_id_of, dicts))):
        for begin in range(start, stop, max_size):
            end = min(begin + max_size, stop)
            assets: list[AssetEntry] = []
            for index in materialized:
                if begin <= index < end and (found := asset_key_of(rows[index])) is not None:
                    row = rows[index]
                    assets.append(AssetEntry(index - begin, int(row[0]), *found, orjson.dumps(row)))
            chunks.append(Chunk(run_id, end - begin, orjson.dumps(rows[begin:end]), assets))
    return chunks


# -- decoding --------------------------------------------------------------------------------


def _asset_key(data: Mapping[str, Any] | None) -> AssetKeyMessage | None:
    return None if data is None else AssetKeyMessage(path=data["path"])


def _error(data: Mapping[str, Any] | None) -> ErrorInfo | None:
    if data is None:
        return None
    return ErrorInfo(
        cls_name=data["cls_name"],
        message=data["message"],
        stack=data["stack"],
        cause=_error(data["cause"]),
    )


def _metadata(data: Mapping[str, Mapping[str, Any]]) -> dict[str, MetadataValue]:
    out: dict[str, MetadataValue] = {}
    for key, value in data.items():
        fields = {name: item for name, item in value.items() if item is not None}
        if "asset" in fields:
            fields["asset"] = _asset_key(fields["asset"])
        out[key] = MetadataValue(**fields)
    return out


def _step_failure(d: Mapping[str, Any]) -> StepFailureData:
    return StepFailureData(
        error=_error(d["error"]), user_failure=d["user_failure"], metadata=_metadata(d["metadata"])
    )


def _step_retry(d: Mapping[str, Any]) -> StepRetryData:
    return StepRetryData(
        attempt=d["attempt"],
        max_retries=d["max_retries"],
        delay_seconds=d["delay_seconds"],
        error=_error(d["error"]),
    )


def _materialization(d: Mapping[str, Any]) -> AssetMaterializationData:
    return AssetMaterializationData(
        asset_key=_asset_key(d["asset_key"]),
        metadata=_metadata(d["metadata"]),
        partition=d["partition"],
        description=d["description"],
    )


def _run_failure(d: Mapping[str, Any]) -> RunFailureData:
    return RunFailureData(failed_step_keys=d["failed_step_keys"], error=_error(d["error"]))


def _engine_event(d: Mapping[str, Any]) -> EngineEventData:
    return EngineEventData(metadata=_metadata(d["metadata"]), error=_error(d["error"]))


# In `PAYLOAD_FIELDS` order: each rebuilds a payload message from its JSON object.
_PAYLOADS: tuple[Callable[[Mapping[str, Any]], Any], ...] = (
    lambda d: StepOutputData(**d),
    _step_failure,
    _step_retry,
    lambda d: StepSkippedData(**d),
    lambda d: HandledOutputData(**d),
    lambda d: LoadedInputData(**d),
    _materialization,
    _run_failure,
    _engine_event,
)


def decode_row(run_id: str, row: Sequence[Any]) -> Event:
    """Rebuild the `Event` a row (as stored, read back from JSON) was encoded from."""
    event = Event(
        run_id=run_id,
        event_type=_EVENT_TYPES.get(row[0], EventType.UNSPECIFIED),
        step_key=row[1],
        timestamp=row[2],
        message=row[3],
        level=_LOG_LEVELS.get(row[4], LogLevel.UNSPECIFIED),
        job_name=row[5],
    )
    for kind, data in enumerate(row[HEAD:]):
        if data is not None:
            setattr(event, PAYLOAD_FIELDS[kind], _PAYLOADS[kind](data))
            break
    return event


def decode_chunk(
    run_id: str,
    first_storage_id: int,
    body: bytes,
    out: list[EventRecord],
    *,
    after: int | None = None,
    event_types: frozenset[int] = frozenset(),
    limit: int | None = None,
) -> None:
    """Append to `out` the records of a chunk's events after `after`, of `event_types` (all
    when empty), until `out` holds `limit`."""
    rows: list[list[Any]] = orjson.loads(body)
    start = 0 if after is None else max(0, after - first_storage_id + 1)
    for index in range(start, len(rows)):
        if limit is not None and len(out) >= limit:
            return
        row = rows[index]
        if event_types and row[0] not in event_types:
            continue
        out.append(EventRecord(storage_id=first_storage_id + index, event=decode_row(run_id, row)))


def decode_record(storage_id: int, run_id: str, body: bytes) -> EventRecord:
    """The record of one event kept on its own (`dumps_row`)."""
    return EventRecord(storage_id=storage_id, event=decode_row(run_id, orjson.loads(body)))
