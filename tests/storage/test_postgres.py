"""The storage contract on Postgres, plus its own bad-input errors and NOTIFY wake-ups."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import asyncpg
import pytest

from dagloom.errors import SchemaVersionError, StorageError
from dagloom.messages import Event, EventRecord, EventType
from dagloom.storage.migrations.postgres import POSTGRES_MIGRATIONS
from dagloom.storage.postgres import PostgresEventLogStorage, postgres_storages
from tests.storage._legacy import LEGACY_EVENTS, LEGACY_ROWS
from tests.storage._racer import thread_race
from tests.storage.contract import Race, StorageContract, Storages, opened
from tests.storage.pg import PG_URL, fresh_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async for name in fresh_schema():
        yield name


class TestPostgresStorage(StorageContract):
    @pytest.fixture
    async def storages(self, schema: str) -> AsyncIterator[Storages]:
        async with opened(postgres_storages(PG_URL, schema=schema, poll_interval=60.0)) as trio:
            yield trio

    @pytest.fixture
    def race(self, schema: str) -> Race:
        return thread_race(
            lambda: postgres_storages(PG_URL, schema=schema, max_size=2, poll_interval=60.0)
        )


async def test_notify_wakes_a_watcher_on_another_connection(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two databases objects are two processes as far as Postgres can tell; polling is set
    # too slow to matter, and the events are written only after the watcher's first read
    # found nothing, so only NOTIFY can deliver them within the deadline.
    _, watcher_events, _ = postgres_storages(PG_URL, schema=schema, poll_interval=3600)
    _, writer_events, _ = postgres_storages(PG_URL, schema=schema, poll_interval=3600)
    found_nothing = anyio.Event()
    get_events = PostgresEventLogStorage.get_events

    async def reading(self: PostgresEventLogStorage, *args: Any, **kwargs: Any) -> Any:
        records = await get_events(self, *args, **kwargs)
        if not records:
            found_nothing.set()
        return records

    monkeypatch.setattr(PostgresEventLogStorage, "get_events", reading)
    await watcher_events.open()
    await writer_events.open()
    try:
        seen: list[EventType] = []
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    async for record in watcher_events.watch_run_events("r"):
                        assert record.event is not None
                        seen.append(record.event.event_type)

                await watcher_events.database.listen()
                tg.start_soon(watch)
                await found_nothing.wait()
                await writer_events.store_events(
                    [Event(run_id="r", event_type=EventType.RUN_START)]
                )
                await writer_events.store_events(
                    [Event(run_id="r", event_type=EventType.RUN_SUCCESS)]
                )
        assert seen == [EventType.RUN_START, EventType.RUN_SUCCESS]
    finally:
        await writer_events.close()
        await watcher_events.close()


async def test_a_large_batch_is_stored_in_chunks_and_reads_back(schema: str) -> None:
    _, events, _ = postgres_storages(PG_URL, schema=schema)
    await events.open()
    try:
        sent = [
            Event(run_id="r", event_type=EventType.STEP_START, step_key=f"s{i}", message="m")
            for i in range(1000)
        ]
        await events.store_events(sent)
        assert [r.event for r in await events.get_events("r")] == sent
    finally:
        await events.close()


async def test_migrating_from_schema_2_keeps_every_event_and_its_storage_id(
    schema: str,
) -> None:
    conn = await asyncpg.connect(PG_URL, server_settings={"search_path": schema})
    try:
        for migration in POSTGRES_MIGRATIONS[:2]:
            for statement in migration.statements:
                await conn.execute(statement)
        await conn.execute("INSERT INTO dagloom_schema (version, migrated_at) VALUES (2, 0)")
        # Ids come from the table's identity, as schema 2 gave them out; 7 and 9 are deleted.
        rows = [*LEGACY_ROWS[:6], (7, "gone", 10, "", 0.0, None, None, None), LEGACY_ROWS[6]]
        rows.append((9, "gone", 10, "", 0.0, None, None, None))
        await conn.executemany(
            "INSERT INTO events (run_id, event_type, step_key, timestamp, asset_key, partition, "
            "body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [row[1:] for row in rows],
        )
        await conn.execute("DELETE FROM events WHERE run_id = 'gone'")
    finally:
        await conn.close()
    runs, _, _ = postgres_storages(PG_URL, schema=schema)
    with pytest.raises(SchemaVersionError):
        await runs.open()
    assert (await runs.migrate()).up_to_date
    async with opened(postgres_storages(PG_URL, schema=schema)) as (_, events, _):
        r1 = await events.get_events("r1")
        assert {r.storage_id: r.event for r in r1} == {
            i: e for i, e in LEGACY_EVENTS.items() if e.run_id == "r1"
        }
        assert [(r.storage_id, r.event) for r in await events.get_events("r2")] == [
            (3, LEGACY_EVENTS[3])
        ]
        latest = await events.get_latest_materialization(["a", "b"])
        assert latest == EventRecord(storage_id=5, event=LEGACY_EVENTS[5])
        await events.store_events([Event(run_id="r3", event_type=EventType.RUN_START)])
        assert [r.storage_id for r in await events.get_events("r3")] == [10]


async def test_a_newer_schema_is_refused(schema: str) -> None:
    runs, _, _ = postgres_storages(PG_URL, schema=schema)
    await runs.open()
    await runs.close()
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(
            f'INSERT INTO "{schema}".dagloom_schema (version, migrated_at) VALUES (99, 0)'
        )
    finally:
        await conn.close()
    with pytest.raises(SchemaVersionError, match="newer than this dagloom"):
        await runs.open()


async def test_foreign_tables_in_the_schema_are_refused(schema: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'CREATE TABLE "{schema}".invoices (id int)')
    finally:
        await conn.close()
    runs, _, _ = postgres_storages(PG_URL, schema=schema)
    with pytest.raises(StorageError, match="another application"):
        await runs.open()


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgresql://postgres@127.0.0.1:1/test", "cannot reach PostgreSQL at 127.0.0.1:1"),
        (
            "postgresql://no_such_user_dagloom:secret@127.0.0.1:5432/test",
            "rejected the credentials of user 'no_such_user_dagloom'",
        ),
        ("postgresql://postgres@127.0.0.1:5432/no_such_db_dagloom", "no_such_db_dagloom"),
    ],
)
async def test_bad_connection_settings_give_one_clear_error(
    schema: str, dsn: str, message: str
) -> None:
    runs, _, _ = postgres_storages(dsn, schema=schema, connect_timeout=5)
    with pytest.raises(StorageError, match=re.escape(message)) as caught:
        await runs.open()
    assert "secret" not in str(caught.value)
