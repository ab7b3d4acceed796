"""SQLite writes a sink's full batch in `emit` itself when nothing has to wait, so a busy run
buffers one batch at most; anything that would wait goes to the background write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from dagloom.messages import Event, EventType, RunStatus
from dagloom.messages.rows import MESSAGE, EventRow, row_of
from dagloom.storage.sink import StorageEventSink
from dagloom.storage.sqlite import (
    SqliteEventLogStorage,
    SqliteRunStorage,
    sqlite_storages,
)
from tests.storage.contract import make_run, opened


def _rows(run_id: str, count: int, start: int = 0) -> list[EventRow]:
    return [
        row_of(Event(run_id=run_id, event_type=EventType.ENGINE_EVENT, message=str(n)))
        for n in range(start, start + count)
    ]


@pytest.fixture
async def storages(tmp_path: Path) -> AsyncIterator[tuple[SqliteRunStorage, SqliteEventLogStorage]]:
    trio = sqlite_storages(tmp_path / "dagloom.db")
    async with opened(trio):
        yield trio[0], trio[1]


async def _messages(events: SqliteEventLogStorage, run_id: str) -> list[str]:
    return [r.event.message for r in await events.get_events(run_id)]


async def test_store_rows_nowait_stores_at_once_and_moves_the_run(
    storages: tuple[SqliteRunStorage, SqliteEventLogStorage],
) -> None:
    runs, events = storages
    await runs.add_run(make_run("r"))
    start = row_of(Event(run_id="r", event_type=EventType.RUN_START, message="start"))
    moved = events.store_rows_nowait("r", [start, *_rows("r", 3)])
    assert [t.status for t in moved] == [RunStatus.STARTED]
    assert await _messages(events, "r") == ["start", "0", "1", "2"]
    assert (await runs.get_run("r")).status == RunStatus.STARTED


async def test_store_rows_nowait_refuses_while_another_write_holds_the_writer(
    storages: tuple[SqliteRunStorage, SqliteEventLogStorage],
) -> None:
    _, events = storages
    async with events.database.transaction():
        with pytest.raises(anyio.WouldBlock):
            events.store_rows_nowait("r", _rows("r", 2))
    assert await _messages(events, "r") == []


async def test_store_rows_nowait_refuses_off_the_loop_thread(
    storages: tuple[SqliteRunStorage, SqliteEventLogStorage],
) -> None:
    _, events = storages
    with pytest.raises(anyio.WouldBlock):
        await anyio.to_thread.run_sync(events.store_rows_nowait, "r", _rows("r", 2))
    assert await _messages(events, "r") == []


async def test_a_full_batch_is_stored_by_emit_itself(
    storages: tuple[SqliteRunStorage, SqliteEventLogStorage],
) -> None:
    _, events = storages
    async with anyio.create_task_group() as tg:
        sink = StorageEventSink(events, tg, "r", batch_size=4, max_delay=None, keep=True)
        for row in _rows("r", 10):
            sink.emit(row)
        # No checkpoint yet: two batches went in at emit, two rows wait for the next one.
        assert sink.pending == 2
        assert await _messages(events, "r") == [str(n) for n in range(8)]
        await sink.flush()
    assert await _messages(events, "r") == [str(n) for n in range(10)]
    assert [row[MESSAGE] for row in sink.rows] == [str(n) for n in range(10)]


async def test_a_batch_that_would_wait_is_written_in_the_background_in_order(
    storages: tuple[SqliteRunStorage, SqliteEventLogStorage],
) -> None:
    _, events = storages
    async with anyio.create_task_group() as tg:
        sink = StorageEventSink(events, tg, "r", batch_size=4, max_delay=None)
        async with events.database.transaction():  # another write holds the writer
            for row in _rows("r", 6):
                sink.emit(row)
            assert sink.pending == 6
        for row in _rows("r", 5, start=6):
            sink.emit(row)
        await sink.flush()
    assert sink.pending == 0
    assert await _messages(events, "r") == [str(n) for n in range(11)]
