"""Event chunks: a batch of one run's event rows as one orjson list, and back.

The SQL event log stores events in chunks, one table row per batch of a run's events, because a
table row per event costs more than the executor's whole per-step budget (~2.6 µs to encode and
2-4 µs to insert each, at ~5 events per step). A chunk is the JSON list of the batch's rows,
as the executor made them (see `dagloom.messages.rows`): orjson writes the tuples and the
payload messages (dataclasses) itself, so encoding runs no Python code per event. `run_id` is
the chunk's, and an event's `storage_id` is the chunk's first storage id plus its index.

Chunks written before rows had a payload kind hold rows of 15 columns: the six of a row ahead
of its payload kind, then one slot per field of `PAYLOAD_FIELDS`, null but for the one that is
set. They are still read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, count, repeat
from operator import eq, itemgetter
from typing import Any

import orjson

from dagloom.messages import Event, EventRecord, EventType
from dagloom.messages.rows import (
    ASSET_CHECK_EVALUATION_DATA,
    ASSET_MATERIALIZATION_DATA,
    NO_PAYLOAD,
    PAYLOAD,
    PAYLOAD_KIND,
    TYPE,
    EventRow,
    event_of,
    loaded_row,
)

MAX_CHUNK = 1000
"""Events per chunk at most: a read decodes whole chunks, so a chunk stays a sink batch or two
(the sink writes 500 at a time)."""

_LEGACY_HEAD = 6
_LEGACY_WIDTH = _LEGACY_HEAD + 9  # PAYLOAD_FIELDS had nine entries when chunks were so written
_ASSET_EVENT_TYPES = frozenset({EventType.ASSET_MATERIALIZATION, EventType.ASSET_OBSERVATION})


def asset_key_text(path: tuple[str, ...] | list[str]) -> str:
    """Render an asset key path for the `asset_key` column: components joined by `/`.

    Asset key components cannot contain `/` (see `dagloom.definitions.asset_key`), so the
    rendering is unambiguous and `split("/")` inverts it.
    """
    return "/".join(path)


# -- encoding --------------------------------------------------------------------------------

_kind_of = itemgetter(PAYLOAD_KIND)


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


def dumps_row(row: EventRow) -> bytes:
    """One row as JSON (how the asset index and the memory backend keep an event)."""
    return orjson.dumps(row)


def asset_key_of(row: EventRow) -> tuple[str, str | None] | None:
    """The (asset_key, partition) an event row is indexed under, if it is an asset event:
    an ASSET_MATERIALIZATION or ASSET_OBSERVATION whose materialization payload has a key,
    or an ASSET_CHECK_EVALUATION (under the checked asset)."""
    kind = row[PAYLOAD_KIND]
    if kind == ASSET_CHECK_EVALUATION_DATA and row[TYPE] == EventType.ASSET_CHECK_EVALUATION:
        check = row[PAYLOAD]
        if check is None or check.asset_key is None:
            return None
        return asset_key_text(check.asset_key.path), check.partition or None
    if kind != ASSET_MATERIALIZATION_DATA or row[TYPE] not in _ASSET_EVENT_TYPES:
        return None
    data = row[PAYLOAD]
    if data is None or data.asset_key is None:
        return None
    return asset_key_text(data.asset_key.path), data.partition or None


def encode_chunks(
    batches: Iterable[tuple[str, Sequence[EventRow]]], max_size: int = MAX_CHUNK
) -> list[Chunk]:
    """Encode each run's rows, in order, as chunks of at most `max_size` events. Per event
    this runs only C code (see the module docstring)."""
    chunks: list[Chunk] = []
    for run_id, rows in batches:
        kinds = list(map(_kind_of, rows))
        materialized = (
            []
            if ASSET_MATERIALIZATION_DATA not in kinds
            else list(compress(count(), map(eq, kinds, repeat(ASSET_MATERIALIZATION_DATA))))
        )
        if ASSET_CHECK_EVALUATION_DATA in kinds:  # rare: only runs with asset checks
            materialized = sorted(
                [
                    *materialized,
                    *(i for i, k in enumerate(kinds) if k == ASSET_CHECK_EVALUATION_DATA),
                ]
            )
        for begin in range(0, len(rows), max_size):
            end = min(begin + max_size, len(rows))
            assets: list[AssetEntry] = []
            for index in materialized:
                if begin <= index < end and (found := asset_key_of(rows[index])) is not None:
                    row = rows[index]
                    assets.append(AssetEntry(index - begin, int(row[0]), *found, orjson.dumps(row)))
            body = orjson.dumps(rows if begin == 0 and end == len(rows) else rows[begin:end])
            chunks.append(Chunk(run_id, end - begin, body, assets))
    return chunks


# -- decoding --------------------------------------------------------------------------------


def _current_row(row: Sequence[Any]) -> Sequence[Any]:
    """A legacy row (`_LEGACY_WIDTH` columns, as stored) in today's eight columns."""
    kind, payload = NO_PAYLOAD, None
    for index, data in enumerate(row[_LEGACY_HEAD:]):
        if data is not None:
            kind, payload = index, data
            break
    return (*row[:_LEGACY_HEAD], kind, payload)


def decode_row(run_id: str, row: Sequence[Any]) -> Event:
    """Rebuild the `Event` a row (as stored, read back from JSON) was encoded from."""
    if len(row) == _LEGACY_WIDTH:
        row = _current_row(row)
    return event_of(run_id, row)


def decode_rows(body: bytes) -> list[EventRow]:
    """A chunk's rows as the executor emits them (`loaded_row`: payloads messages again,
    event types and levels their int values)."""
    return [
        loaded_row(_current_row(row) if len(row) == _LEGACY_WIDTH else row)
        for row in orjson.loads(body)
    ]


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
