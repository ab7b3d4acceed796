"""The storage contract on SQLite, plus what only a file can show: schema versions, bad
files, durability under SIGKILL and several writer processes."""

from __future__ import annotations

import multiprocessing
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from dagloom.errors import SchemaVersionError, StorageError
from dagloom.messages import AssetKeyMessage, Event, EventRecord, EventType, Run, RunStatus
from dagloom.storage import _sql
from dagloom.storage.base import RunTransition
from dagloom.storage.migrations import latest
from dagloom.storage.migrations.sqlite import SQLITE_MIGRATIONS
from dagloom.storage.sqlite import sqlite_storages
from tests.storage._legacy import LEGACY_EVENTS, LEGACY_INSERT, LEGACY_ROWS
from tests.storage._racer import sqlite_writer_process, thread_race
from tests.storage.contract import (
    Race,
    StorageContract,
    Storages,
    check_race,
    lifecycle_path,
    make_run,
    opened,
)


class TestSqliteStorage(StorageContract):
    @pytest.fixture
    async def storages(self, tmp_path: Path) -> AsyncIterator[Storages]:
        async with opened(sqlite_storages(tmp_path / "dagloom.db")) as trio:
            yield trio

    @pytest.fixture
    def race(self, tmp_path: Path) -> Race:
        return thread_race(lambda: sqlite_storages(tmp_path / "dagloom.db", readers=1))


def _writer(*args: object) -> list[str]:
    return [sys.executable, str(Path(__file__).with_name("_writer.py")), *map(str, args)]


async def test_a_fresh_file_gets_the_latest_schema(tmp_path: Path) -> None:
    runs, _, _ = sqlite_storages(tmp_path / "sub" / "dagloom.db")
    assert (await runs.schema_info()).current == 0
    await runs.open()
    await runs.close()
    info = await runs.schema_info()
    assert info.up_to_date and info.current == latest(SQLITE_MIGRATIONS)


async def test_an_older_schema_must_be_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for statement in SQLITE_MIGRATIONS[0].statements:
            conn.execute(statement)
        conn.execute("INSERT INTO dagloom_schema (version, migrated_at) VALUES (1, 0)")
        # Schema 1's runs table: every column up to `failure`, which came later.
        width = _sql.RUN_COLUMNS.index("failure")
        conn.execute(
            f"INSERT INTO runs ({', '.join(_sql.RUN_COLUMNS[:width])}) "
            f"VALUES ({', '.join('?' * width)})",
            _sql.run_row(Run(run_id="old", job_name="j"))[:width],
        )
    runs, _, schedules = sqlite_storages(path)
    with pytest.raises(SchemaVersionError, match="dagloom instance migrate") as caught:
        await runs.open()
    assert (caught.value.found, caught.value.expected) == (1, latest(SQLITE_MIGRATIONS))
    info = await runs.migrate()
    assert info.up_to_date
    await runs.open()
    await schedules.open()
    try:
        assert (await runs.get_run("old")) is not None
        assert await schedules.get_daemon_heartbeats() == {}
    finally:
        await schedules.close()
        await runs.close()
    assert (await runs.migrate()).up_to_date


async def test_migrating_from_schema_2_keeps_every_event_and_its_storage_id(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for migration in SQLITE_MIGRATIONS[:2]:
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute("INSERT INTO dagloom_schema (version, migrated_at) VALUES (2, 0)")
        conn.executemany(LEGACY_INSERT, LEGACY_ROWS)
        # The highest id ever given out was deleted; it is never given out again.
        conn.execute(LEGACY_INSERT, (9, "gone", 10, "", 0.0, None, None, None))
        conn.execute("DELETE FROM events WHERE id = 9")
    runs, _, _ = sqlite_storages(path)
    with pytest.raises(SchemaVersionError):
        await runs.open()
    assert (await runs.migrate()).up_to_date
    async with opened(sqlite_storages(path)) as (_, events, _):
        r1 = await events.get_events("r1")
        assert {r.storage_id: r.event for r in r1} == {
            i: e for i, e in LEGACY_EVENTS.items() if e.run_id == "r1"
        }
        assert [(r.storage_id, r.event) for r in await events.get_events("r2")] == [
            (3, LEGACY_EVENTS[3])
        ]
        assert [r.storage_id for r in await events.get_events("r1", after=2, limit=2)] == [4, 5]
        assert await events.get_asset_keys() == [("a", "b")]
        latest = await events.get_latest_materialization(["a", "b"])
        assert latest == EventRecord(storage_id=5, event=LEGACY_EVENTS[5])
        await events.store_events([Event(run_id="r3", event_type=EventType.RUN_START)])
        assert [r.storage_id for r in await events.get_events("r3")] == [10]
        await events.delete_events("r1")
        assert await events.get_events("r1") == []
        assert await events.get_asset_keys() == []
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "events" not in tables


async def test_migrating_indexes_the_partitions_of_runs_stored_before(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    before = next(i for i, m in enumerate(SQLITE_MIGRATIONS) if m.version == 10)
    with sqlite3.connect(path) as conn:
        for migration in SQLITE_MIGRATIONS[:before]:
            for statement in migration.statements:
                conn.execute(statement)
        version = SQLITE_MIGRATIONS[before - 1].version
        conn.execute(f"INSERT INTO dagloom_schema (version, migrated_at) VALUES ({version}, 0)")
        for run in (
            Run(
                run_id="day",
                job_name="j",
                status=RunStatus.FAILURE,
                tags={"dagster/partition": "2024-01-01"},
                asset_selection=[AssetKeyMessage(path=["a"])],
            ),
            Run(run_id="plain", job_name="j", asset_selection=[AssetKeyMessage(path=["a"])]),
        ):
            # The run's row as schema 9 held it: the columns it had then.
            columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")][1:]
            values = dict(zip(_sql.RUN_COLUMNS, _sql.run_row(run), strict=True))
            conn.execute(
                f"INSERT INTO runs ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})",
                [values[c] for c in columns],
            )
            conn.executemany(_sql.INSERT_TAG, [(run.run_id, k, v) for k, v in run.tags.items()])
    runs, _, _ = sqlite_storages(path)
    assert (await runs.migrate()).up_to_date
    async with opened(sqlite_storages(path)) as (migrated, _, _):
        found = await migrated.get_partition_runs(["a"], [RunStatus.FAILURE, RunStatus.NOT_STARTED])
        assert [(r.run_id, r.range_start, r.range_end) for r in found] == [
            ("day", "2024-01-01", "2024-01-01")
        ]


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    runs, _, _ = sqlite_storages(path)
    await runs.open()
    await runs.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO dagloom_schema (version, migrated_at) VALUES (99, 0)")
    with pytest.raises(SchemaVersionError, match="newer than this dagloom"):
        await runs.open()
    with pytest.raises(SchemaVersionError):
        await runs.migrate()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is a text file, not a database" * 200, "not a usable SQLite database"),
        (None, "another application"),
    ],
)
async def test_a_foreign_file_gives_one_clear_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "dagloom.db"
    if content is None:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER)")
    else:
        path.write_bytes(content)
    runs, _, _ = sqlite_storages(path)
    with pytest.raises(StorageError, match=message) as caught:
        await runs.open()
    assert str(path) in str(caught.value)


async def test_a_directory_at_the_path_gives_one_clear_error(tmp_path: Path) -> None:
    runs, _, _ = sqlite_storages(tmp_path)
    with pytest.raises(StorageError, match="is a directory"):
        await runs.open()


async def test_sigkill_mid_write_keeps_every_acknowledged_batch(tmp_path: Path) -> None:
    path = tmp_path / "dagloom.db"
    acked = 0
    with anyio.fail_after(60):
        async with await anyio.open_process(_writer(path, "r", 0, 500)) as proc:
            assert proc.stdout is not None
            async for chunk in TextReceiveStream(proc.stdout):
                acked = max([acked, *(int(x) for x in re.findall(r"ack (\d+)", chunk))])
                if acked >= 20:
                    proc.send_signal(signal.SIGKILL)
                    break
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    runs, events, _ = sqlite_storages(path)
    await runs.open()
    try:
        stored = await events.get_events("r")
        batches = {int(r.event.step_key.split(":")[0]) for r in stored if r.event}
        assert set(range(1, acked + 1)) <= batches
        assert len(stored) == 500 * len(batches), "a batch was stored in part"
    finally:
        await runs.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_several_writer_processes_never_hit_database_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "dagloom.db"
    writers, batches, size = 7, 40, 5
    runs, events, _ = sqlite_storages(path)
    await runs.open()
    await runs.close()
    with anyio.fail_after(120):
        results: list[tuple[int, bytes]] = []

        async def one(n: int) -> None:
            done = await anyio.run_process(_writer(path, f"r{n}", batches, size), check=False)
            results.append((done.returncode, done.stderr))

        async with anyio.create_task_group() as tg:
            for n in range(writers):
                tg.start_soon(one, n)
    assert [code for code, _ in results] == [0] * writers, [err for _, err in results]
    await runs.open()
    try:
        assert await runs.get_runs_count() == writers
        for n in range(writers):
            stored = await events.get_events(f"r{n}")
            assert len(stored) == batches * size + 1
            run = await runs.get_run(f"r{n}")
            assert run is not None and run.status == RunStatus.SUCCESS
    finally:
        await runs.close()


async def test_a_write_after_one_on_the_loops_thread_waits_for_a_lock_held_elsewhere(
    tmp_path: Path,
) -> None:
    """A write on the loop's thread leaves the writer not waiting for the file's lock; the
    next write that finds the lock taken waits for it on the writer's thread all the same."""
    path = tmp_path / "dagloom.db"
    runs, events, _ = sqlite_storages(path)
    await runs.open()
    try:
        await runs.add_run(make_run("r"))
        await events.store_events([Event(run_id="r", event_type=EventType.ENGINE_EVENT)])
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(
                        events.store_events,
                        [Event(run_id="r", event_type=EventType.ENGINE_EVENT, message="late")],
                    )
                    await anyio.wait_all_tasks_blocked()  # waiting on the writer's thread
                    other.execute("COMMIT")
        finally:
            if other.in_transaction:
                other.execute("ROLLBACK")
            other.close()
        stored = await events.get_events("r")
        assert [r.event.message for r in stored if r.event] == ["", "late"]
    finally:
        await runs.close()


async def test_a_watcher_finds_events_written_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "dagloom.db"
    runs, events, _ = sqlite_storages(path, poll_interval=0.05)
    await runs.open()
    try:
        seen: list[EventRecord] = []
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    async for record in events.watch_run_events("r"):
                        seen.append(record)

                tg.start_soon(watch)
                await anyio.run_process(_writer(path, "r", 3, 10))
        assert len(seen) == 31
        assert seen[-1].event is not None and seen[-1].event.event_type == EventType.RUN_SUCCESS
    finally:
        await runs.close()


async def test_the_wal_is_checkpointed_in_the_background_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "dagloom.db"
    trio = sqlite_storages(path)
    async with opened(trio) as (_, events, _):
        checkpointer = trio[1].database._checkpointer
        assert checkpointer is not None
        big = "x" * 2000
        stored = 0
        # ~1 MB a batch: the fourth or fifth wakes the checkpointer (its count of bytes
        # starts over then). Writing stops there, so the one checkpoint it runs comes after
        # every commit and can copy the whole WAL back.
        while True:
            batch = [Event(run_id="r", event_type=EventType.LOG_MESSAGE, message=big)] * 500
            await events.store_events(batch)
            stored += len(batch)
            if checkpointer._pending == 0 or stored > 3000:
                break
        assert stored <= 3000
        with anyio.fail_after(60):
            # A poll under a deadline: the checkpointer is a plain thread that sets nothing an
            # event loop can await, and storage code stays free of test-only hooks.
            while checkpointer.checkpoints + checkpointer.failures == 0:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert checkpointer.failures == 0
        # All of it copied back: the next commit starts the WAL over instead of growing it.
        wal = tmp_path / "dagloom.db-wal"
        size = wal.stat().st_size
        await events.store_events([Event(run_id="r", event_type=EventType.LOG_MESSAGE)])
        assert wal.stat().st_size <= size
        assert len(await events.get_events("r")) == stored + 1
        thread = checkpointer._thread
    assert not thread.is_alive()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_writer_processes_racing_on_one_run_take_each_step_once(tmp_path: Path) -> None:
    """Spawned processes, each with its own connections to one file, race to move one run
    through conflicting transitions: one wins each step and the history is a possible one."""
    path = tmp_path / "dagloom.db"
    runs, events, _ = sqlite_storages(path)
    writers = 4
    async with opened((runs, events, _)):
        await runs.add_run(make_run("race"))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers, timeout=120)
    results = context.Queue()
    processes = [
        context.Process(target=sqlite_writer_process, args=(str(path), "race", n, barrier, results))
        for n in range(writers)
    ]
    for process in processes:
        process.start()
    try:
        answers = [await anyio.to_thread.run_sync(results.get, True, 180) for _ in processes]
    finally:
        for process in processes:
            await anyio.to_thread.run_sync(process.join, 30)
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * writers
    outcomes = [
        [RunTransition(applied, RunStatus(status)) for applied, status in found]
        for _, found in sorted(answers)
    ]
    async with opened((runs, events, _)):
        run = await runs.get_run("race")
        path_taken = await lifecycle_path(events, "race")
    assert run is not None
    check_race(RunStatus.NOT_STARTED, path_taken, run.status, outcomes)
    assert path_taken[:2] == [RunStatus.STARTING, RunStatus.STARTED]
