"""Storage faults at the storage boundary: driver errors become `StorageError`s, transient
ones are retried for a bounded time, a batch is stored once, the sink fails clearly instead
of hanging, and a watcher resumes from its cursor after a read error.

Faults are injected by replacing driver-facing methods (`_store_chunks`, `get_events`,
`store_rows`) with wrappers that raise, and by building driver exceptions directly.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import asyncpg
import pytest

from dagloom.actors._backoff import Backoff
from dagloom.errors import StorageError, StorageUnavailableError
from dagloom.messages import Event, EventType, Run
from dagloom.messages.rows import EventRow, row_of
from dagloom.storage._retry import retry_deadline_passed, retrying
from dagloom.storage.memory import MemoryEventLogStorage
from dagloom.storage.postgres import PostgresDatabase
from dagloom.storage.sink import StorageEventSink
from dagloom.storage.sqlite import SqliteDatabase, sqlite_storages
from tests.storage.contract import Storages, opened

NO_WAIT = Backoff(initial=0.0, maximum=0.0)


def event(run_id: str, n: int, event_type: EventType = EventType.ENGINE_EVENT) -> Event:
    return Event(run_id=run_id, event_type=event_type, message=f"event {n}", timestamp=n)


def rows(run_id: str, count: int, start: int = 0) -> list[EventRow]:
    return [row_of(event(run_id, n)) for n in range(start, start + count)]


# -- retrying ------------------------------------------------------------------------------


def test_the_retry_budget_counts_from_the_first_failure() -> None:
    assert not retry_deadline_passed(100.0, 129.9, 30.0)
    assert retry_deadline_passed(100.0, 130.0, 30.0)


async def test_a_transient_error_is_retried_until_the_attempt_succeeds() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise StorageUnavailableError("connection lost", operation="writing")
        return "done"

    result = await retrying(
        attempt, timeout=30.0, operation="writing", location="db", backoff=NO_WAIT
    )
    assert (result, calls) == ("done", 4)


async def test_retries_stop_at_the_budget_with_the_last_error_as_cause() -> None:
    now = [0.0]
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        now[0] += 10.0  # each attempt takes 10 s of the injected clock
        raise StorageUnavailableError("connection lost", location="db", operation="writing")

    with pytest.raises(StorageUnavailableError, match="gave up after 4 attempts") as caught:
        await retrying(
            attempt,
            timeout=30.0,
            operation="writing",
            location="db",
            backoff=NO_WAIT,
            clock=lambda: now[0],
        )
    assert calls == 4
    assert caught.value.location == "db" and caught.value.operation == "writing"
    assert isinstance(caught.value.__cause__, StorageUnavailableError)


async def test_a_permanent_error_is_not_retried() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise StorageError("attempt to write a readonly database")

    with pytest.raises(StorageError, match="readonly"):
        await retrying(attempt, timeout=30.0, operation="writing", location="db", backoff=NO_WAIT)
    assert calls == 1


# -- translating driver errors -------------------------------------------------------------


def _internal_client_error() -> BaseException:
    return asyncpg.InternalClientError("cannot switch to state 15; another operation is running")


@pytest.mark.parametrize(
    "raised",
    [
        _internal_client_error,
        lambda: asyncpg.ConnectionDoesNotExistError("connection was closed in the middle"),
        lambda: asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
        lambda: asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        lambda: ConnectionResetError(104, "Connection reset by peer"),
        lambda: TimeoutError(),
    ],
)
def test_postgres_connection_faults_become_storage_unavailable(raised: Any) -> None:
    database = PostgresDatabase("postgresql://u:secret@db.invalid:5432/x", schema="s")
    cause = raised()
    with pytest.raises(StorageUnavailableError) as caught, database._errors("writing"):
        raise cause
    assert caught.value.__cause__ is cause
    assert caught.value.operation == "writing"
    assert "secret" not in str(caught.value) and "db.invalid:5432" in str(caught.value)


def test_other_postgres_errors_become_storage_errors_that_are_not_retried() -> None:
    database = PostgresDatabase("postgresql://u@db.invalid/x")
    with pytest.raises(StorageError) as caught, database._errors("writing"):
        raise asyncpg.UniqueViolationError("duplicate key value")
    assert not isinstance(caught.value, StorageUnavailableError)
    assert isinstance(caught.value.__cause__, asyncpg.UniqueViolationError)


def test_errors_that_are_not_the_drivers_pass_through() -> None:
    database = PostgresDatabase("postgresql://u@db.invalid/x")
    with pytest.raises(KeyError), database._errors("writing"):
        raise KeyError("caller's own")


@pytest.mark.parametrize(
    ("text", "transient"),
    [
        ("database is locked", True),
        ("database or disk is full", True),
        ("disk I/O error", True),
        ("attempt to write a readonly database", False),
    ],
)
def test_sqlite_errors_are_classified(tmp_path: Path, text: str, transient: bool) -> None:
    database = SqliteDatabase(tmp_path / "x.db")
    with pytest.raises(StorageError) as caught, database._errors("writing"):
        raise sqlite3.OperationalError(text)
    assert isinstance(caught.value, StorageUnavailableError) is transient
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)


# -- a batch is stored once ----------------------------------------------------------------


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Storages]:
    storages = sqlite_storages(tmp_path / "dagloom.db", retry_timeout=5.0)
    async with opened(storages) as trio:
        yield trio


async def test_a_batch_whose_commit_was_lost_is_not_stored_twice(
    sqlite: Storages, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first commit succeeds but reports a lost connection, as when Postgres is cut off
    # between COMMIT and its reply: the retry must find the batch instead of adding it again.
    runs, events, _ = sqlite
    run = await runs.add_run(Run(run_id="r", job_name="j"))
    original = SqliteDatabase._store_chunks
    lost = 0

    async def commit_then_lose(self: SqliteDatabase, *args: Any) -> Any:
        nonlocal lost
        outcomes = await original(self, *args)
        if not lost:
            lost += 1
            raise StorageUnavailableError("connection lost after COMMIT", operation="writing")
        return outcomes

    monkeypatch.setattr(SqliteDatabase, "_store_chunks", commit_then_lose)
    await events.store_rows(run.run_id, rows("r", 20))
    stored = await events.get_events("r")
    assert lost == 1
    assert [r.event.message for r in stored] == [f"event {n}" for n in range(20)]


async def test_a_batch_that_failed_before_commit_is_stored_on_retry(
    sqlite: Storages, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, events, _ = sqlite
    await runs.add_run(Run(run_id="r", job_name="j"))
    original = SqliteDatabase._store_chunks
    failures = 0

    async def fail_twice(self: SqliteDatabase, *args: Any) -> Any:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise StorageUnavailableError("database is locked", operation="writing")
        return await original(self, *args)

    monkeypatch.setattr(SqliteDatabase, "_store_chunks", fail_twice)
    await events.store_rows("r", rows("r", 5))
    assert len(await events.get_events("r")) == 5


async def test_a_write_locked_past_the_budget_raises_storage_unavailable(tmp_path: Path) -> None:
    """Fault: a second connection holds `BEGIN EXCLUSIVE` on the file for the whole call."""
    storages = sqlite_storages(tmp_path / "dagloom.db", busy_timeout=0.05, retry_timeout=0.3)
    async with opened(storages) as (runs, events, _):
        await runs.add_run(Run(run_id="r", job_name="j"))
        holder = sqlite3.connect(tmp_path / "dagloom.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with anyio.fail_after(60), pytest.raises(StorageUnavailableError, match="locked"):
                await events.store_rows("r", rows("r", 3))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await events.store_rows("r", rows("r", 3))  # the lock gone, storage works again
        assert len(await events.get_events("r")) == 3


# -- the sink ------------------------------------------------------------------------------


class _FailingEvents(MemoryEventLogStorage):
    """Memory events whose `store_rows` raises `error` (a factory) from the `fail_from`-th
    call on."""

    def __init__(self, error: Any, fail_from: int = 0) -> None:
        super().__init__()
        self.error = error
        self.fail_from = fail_from
        self.calls = 0

    async def store_rows(self, run_id: str, rows: Sequence[EventRow]) -> Any:
        self.calls += 1
        if self.calls > self.fail_from:
            raise self.error()
        return await super().store_rows(run_id, rows)


async def test_a_sink_whose_write_failed_fails_every_flush_with_that_error() -> None:
    storage = _FailingEvents(lambda: StorageUnavailableError("gave up", operation="writing"), 1)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            sink = StorageEventSink(storage, tg, "r", batch_size=10, max_delay=None)
            for row in rows("r", 10):
                sink.emit(row)
            await sink.flush()  # the first batch is stored
            for row in rows("r", 25, start=10):
                sink.emit(row)  # fills two batches: the background write fails
            with pytest.raises(StorageUnavailableError, match="gave up") as first:
                await sink.flush()
            sink.emit(row_of(event("r", 99)))
            with pytest.raises(StorageUnavailableError) as second:
                await sink.flush()
    assert first.value is second.value is sink.error
    assert storage.calls == 2  # no write after the failure
    assert len(await storage.get_events("r")) == 10


async def test_a_driver_error_in_the_background_write_fails_the_sink_not_the_task_group() -> None:
    storage = _FailingEvents(lambda: asyncpg.InternalClientError("protocol state broken"))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            sink = StorageEventSink(storage, tg, "r", batch_size=5, max_delay=None)
            for row in rows("r", 5):
                sink.emit(row)
            with pytest.raises(StorageError, match="InternalClientError") as caught:
                await sink.flush()
    assert isinstance(caught.value.__cause__, asyncpg.InternalClientError)


async def test_a_write_that_never_returns_ends_the_flush_with_storage_error() -> None:
    class Hanging(MemoryEventLogStorage):
        async def store_rows(self, run_id: str, rows: Sequence[EventRow]) -> None:
            await anyio.sleep_forever()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            sink = StorageEventSink(Hanging(), tg, "r", max_delay=None, write_timeout=0.1)
            sink.emit(row_of(event("r", 0)))
            with pytest.raises(StorageError, match="not stored within"):
                await sink.flush()


async def test_a_write_cancelled_before_it_began_does_not_leave_flush_waiting() -> None:
    # A full batch starts a background write; when the task group is being cancelled the
    # write is cancelled before it begins. A later flush writes the rows itself.
    storage = MemoryEventLogStorage()
    async with anyio.create_task_group() as tg:
        sink = StorageEventSink(storage, tg, "r", batch_size=3, max_delay=None)
        tg.cancel_scope.cancel()
        for row in rows("r", 3):
            sink.emit(row)
    with anyio.fail_after(10):
        await sink.flush()
    assert len(await storage.get_events("r")) == 3


# -- watchers ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
async def test_a_watcher_resumes_from_its_cursor_after_read_errors(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault: `get_events` raises `StorageUnavailableError` at seeded random calls."""
    rng = random.Random(seed)
    events = MemoryEventLogStorage()
    total = 3000
    written = [*rows("r", total - 1), row_of(event("r", total, EventType.RUN_SUCCESS))]
    failing = set(rng.sample(range(1, 5), 2))  # reads page 1000 events: mid-stream too
    calls = 0
    get_events = MemoryEventLogStorage.get_events

    async def flaky(self: MemoryEventLogStorage, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls in failing:
            raise StorageUnavailableError("connection lost", operation="reading")
        return await get_events(self, *args, **kwargs)

    monkeypatch.setattr(MemoryEventLogStorage, "get_events", flaky)
    seen: list[str] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:

            async def write() -> None:
                for start in range(0, total, 250):
                    await events.store_rows("r", written[start : start + 250])
                    await anyio.lowlevel.checkpoint()

            tg.start_soon(write)
            async for record in events.watch_run_events("r"):
                seen.append(record.event.message)
    assert seen == [f"event {n}" for n in range(total - 1)] + [f"event {total}"]
    assert calls > max(failing)


async def test_a_watcher_gives_up_after_its_retry_budget() -> None:
    from dagloom.storage._watch import RunEventNotifier, watch_event_batches

    class Down(MemoryEventLogStorage):
        async def get_events(self, *args: Any, **kwargs: Any) -> Any:
            raise StorageUnavailableError("server down", operation="reading")

    watcher = watch_event_batches(
        Down(),
        RunEventNotifier(),
        "r",
        after=None,
        stop_at_end=True,
        poll_interval=None,
        retry_timeout=0.2,
    )
    with anyio.fail_after(30), pytest.raises(StorageUnavailableError, match="server down"):
        async for _ in watcher:
            pass
