"""SQLite storage through aiosqlite: the default backend, one file for runs, events and
schedules.

The file runs in WAL mode with `synchronous=NORMAL`: a committed transaction survives the
process being killed (only an OS crash or power loss can drop the last ones). One writer
connection commits; concurrent `store_events` calls are combined into one transaction (500
rows per transaction is ~25x to ~400x faster than one). Readers use their own connections and
run while the writer writes. Writes begin with `BEGIN IMMEDIATE` and wait for the file lock
with a long busy timeout, so several processes can write one file without "database is locked".
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import anyio
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from dagloom.errors import RunNotFoundError, SchemaVersionError, StorageError
from dagloom.messages import (
    DaemonHeartbeat,
    Event,
    EventRecord,
    EventType,
    InstigatorState,
    InstigatorType,
    Run,
    Tick,
    TickStatus,
)
from dagloom.storage import _sql
from dagloom.storage._codec import EventRow, asset_key_text, decode_record, encode_event
from dagloom.storage._watch import RunEventNotifier, watch_events
from dagloom.storage.base import (
    STEP_STATS_EVENTS,
    Lease,
    RunsFilter,
    RunStatusChange,
    RunStorage,
    SchemaInfo,
    StepStats,
    fold_step_stats,
    run_status_changes,
)
from dagloom.storage.migrations import latest, outdated_message, pending
from dagloom.storage.migrations.sqlite import SQLITE_MIGRATIONS

T = TypeVar("T")

_BUSY_MARKERS = ("database is locked", "database is busy", "database table is locked")


def _is_busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(m in str(exc) for m in _BUSY_MARKERS)


@dataclass(slots=True)
class _Batch:
    rows: list[EventRow]
    changes: list[RunStatusChange]
    run_ids: set[str]
    done: anyio.Event = field(default_factory=anyio.Event)
    error: StorageError | None = None


class SqliteDatabase:
    """One SQLite file shared by the three SQLite storages.

    `open`/`close` are counted, so each storage over the database opens and closes it. `open`
    creates the file and its schema when the file is empty or absent, and raises
    `StorageError` for a file that is not a SQLite database or holds another application's
    tables, and `SchemaVersionError` for a schema of another version. Use from one event loop.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        readers: int = 4,
        busy_timeout: float = 120.0,
        poll_interval: float = 0.5,
    ) -> None:
        self.path = Path(path)
        self.readers = max(1, readers)
        self.busy_timeout = busy_timeout
        self.poll_interval = poll_interval
        self.notifier = RunEventNotifier()
        self._opened = 0
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = anyio.Lock()
        self._pool_send: MemoryObjectSendStream[aiosqlite.Connection] | None = None
        self._pool_recv: MemoryObjectReceiveStream[aiosqlite.Connection] | None = None
        self._pool: list[aiosqlite.Connection] = []
        self._queue: list[_Batch] = []
        self._committing = False

    @property
    def location(self) -> str:
        return str(self.path)

    def describe(self) -> str:
        return f"sqlite {self.path}"

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            if "file is not a database" in text or "malformed" in text:
                text = f"the file is not a usable SQLite database ({text})"
            raise StorageError(f"{doing} failed: {text}", location=self.location) from exc
        except sqlite3.Error as exc:
            raise StorageError(f"{doing} failed: {exc}", location=self.location) from exc

    async def _connect(self) -> aiosqlite.Connection:
        with self._errors("opening the database"):
            if self.path.is_dir():
                raise StorageError("is a directory, not a database file", location=self.location)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(
                self.path, isolation_level=None, timeout=self.busy_timeout
            )
            try:
                await conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                await self._retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"))
                await conn.execute("PRAGMA synchronous = NORMAL")
            except BaseException:
                await conn.close()
                raise
            return conn

    async def _retry_busy(self, attempt: Callable[[], Awaitable[T]]) -> T:
        # The busy timeout makes SQLite wait for the lock itself; a few paths (WAL recovery,
        # switching journal mode) return BUSY at once, so those are retried here until the
        # same deadline.
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.001
        while True:
            try:
                return await attempt()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def _read_version(self, conn: aiosqlite.Connection) -> int:
        tables = {
            row[0]
            for row in await conn.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        if "dagloom_schema" in tables:
            rows = list(await conn.execute_fetchall("SELECT MAX(version) FROM dagloom_schema"))
            return int(rows[0][0] or 0)
        foreign = sorted(t for t in tables if not t.startswith("sqlite_"))
        if foreign:
            raise StorageError(
                "the file is a SQLite database of another application (tables: "
                f"{', '.join(foreign[:5])}), not a dagloom database",
                location=self.location,
            )
        return 0

    async def _apply(self, conn: aiosqlite.Connection, current: int) -> int:
        version = current
        for migration in pending(SQLITE_MIGRATIONS, current):
            for statement in migration.statements:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO dagloom_schema (version, migrated_at) VALUES (?, ?)",
                (migration.version, time.time()),
            )
            version = migration.version
        return version

    async def _begin(self, conn: aiosqlite.Connection) -> None:
        await self._retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))

    async def open(self) -> None:
        """Connect (first call) and check the schema; see the class docstring."""
        self._opened += 1
        if self._opened > 1:
            return
        try:
            writer = await self._connect()
            try:
                with self._errors("checking the schema"):
                    await self._begin(writer)
                    try:
                        found = await self._read_version(writer)
                        if found == 0:
                            found = await self._apply(writer, 0)
                        await writer.execute("COMMIT")
                    except BaseException:
                        await writer.execute("ROLLBACK")
                        raise
                expected = latest(SQLITE_MIGRATIONS)
                if found != expected:
                    raise SchemaVersionError(
                        outdated_message(self.location, found, expected),
                        location=self.location,
                        found=found,
                        expected=expected,
                    )
                self._pool_send, self._pool_recv = anyio.create_memory_object_stream[
                    aiosqlite.Connection
                ](self.readers)
                for _ in range(self.readers):
                    reader = await self._connect()
                    self._pool.append(reader)
                    self._pool_send.send_nowait(reader)
            except BaseException:
                await writer.close()
                raise
        except BaseException:
            self._opened = 0
            await self._close_readers()
            raise
        self._writer = writer

    async def _close_readers(self) -> None:
        for reader in self._pool:
            await reader.close()
        self._pool.clear()
        if self._pool_send is not None:
            self._pool_send.close()
        if self._pool_recv is not None:
            self._pool_recv.close()
        self._pool_send = self._pool_recv = None

    async def close(self) -> None:
        """Close the connections when the last opener closes; idempotent."""
        if self._opened == 0:
            return
        self._opened -= 1
        if self._opened:
            return
        writer, self._writer = self._writer, None
        with anyio.CancelScope(shield=True):
            await self._close_readers()
            if writer is not None:
                await writer.close()

    def _require_writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise StorageError("the storage is not open", location=self.location)
        return self._writer

    async def schema_info(self) -> SchemaInfo:
        """The file's schema version (0 when empty or absent) and the latest known."""
        conn = await self._connect()
        try:
            with self._errors("reading the schema version"):
                found = await self._read_version(conn)
        finally:
            await conn.close()
        return SchemaInfo(self.location, found, latest(SQLITE_MIGRATIONS))

    async def migrate(self) -> SchemaInfo:
        """Apply pending migrations in one transaction; a newer schema raises."""
        conn = await self._connect()
        try:
            with self._errors("migrating the schema"):
                await self._begin(conn)
                try:
                    found = await self._read_version(conn)
                    expected = latest(SQLITE_MIGRATIONS)
                    if found > expected:
                        raise SchemaVersionError(
                            outdated_message(self.location, found, expected),
                            location=self.location,
                            found=found,
                            expected=expected,
                        )
                    version = await self._apply(conn, found)
                    await conn.execute("COMMIT")
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
        finally:
            await conn.close()
        return SchemaInfo(self.location, version, expected)

    # -- reads and writes --------------------------------------------------------------------

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a query on a reader connection and return its rows."""
        if self._pool_recv is None or self._pool_send is None:
            raise StorageError("the storage is not open", location=self.location)
        reader = await self._pool_recv.receive()
        try:
            with self._errors("reading"):
                return list(await self._retry_busy(lambda: reader.execute_fetchall(sql, params)))
        finally:
            self._pool_send.send_nowait(reader)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the writer inside `BEGIN IMMEDIATE` ... `COMMIT` (ROLLBACK on error).

        Once begun, the transaction finishes even if the caller is cancelled, so the writer
        is never left inside a transaction.
        """
        conn = self._require_writer()
        async with self._write_lock:
            with self._errors("writing"), anyio.CancelScope(shield=True):
                await self._begin(conn)
                try:
                    yield conn
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")

    async def store_events(self, events: Sequence[Event]) -> None:
        """Store events, combined with concurrent callers into one transaction; see
        `EventLogStorage.store_events`."""
        self._require_writer()
        batch = _Batch(
            rows=[encode_event(e) for e in events],
            changes=run_status_changes(events),
            run_ids={e.run_id for e in events},
        )
        self._queue.append(batch)
        if not self._committing:
            self._committing = True
            try:
                with anyio.CancelScope(shield=True):
                    while self._queue:
                        batches, self._queue = self._queue, []
                        await self._commit(batches)
            finally:
                self._committing = False
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error

    async def _commit(self, batches: list[_Batch]) -> None:
        try:
            async with self.transaction() as conn:
                for b in batches:
                    await conn.executemany(_sql.INSERT_EVENT, b.rows)
                    if b.changes:
                        await conn.executemany(
                            _sql.UPDATE_RUN_STATUS, [_sql.status_row(c) for c in b.changes]
                        )
        except StorageError as exc:
            for b in batches:
                b.error = exc
        finally:
            for b in batches:
                b.done.set()
        for run_id in set().union(*(b.run_ids for b in batches)):
            self.notifier.notify(run_id)


class _SqliteStorage:
    __slots__ = ("database",)

    def __init__(self, database: SqliteDatabase) -> None:
        self.database = database

    async def open(self) -> None:
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()

    def describe(self) -> str:
        return self.database.describe()

    async def schema_info(self) -> SchemaInfo:
        return await self.database.schema_info()

    async def migrate(self) -> SchemaInfo:
        return await self.database.migrate()


class SqliteRunStorage(_SqliteStorage):
    """`RunStorage` on a `SqliteDatabase`."""

    __slots__ = ()

    async def add_run(self, run: Run) -> Run:
        try:
            async with self.database.transaction() as conn:
                await conn.execute(_sql.INSERT_RUN, _sql.run_row(run))
                await conn.executemany(
                    _sql.INSERT_TAG, [(run.run_id, k, v) for k, v in run.tags.items()]
                )
        except StorageError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise StorageError(
                    f"a run with id {run.run_id!r} is already stored",
                    location=self.database.location,
                ) from exc
            raise
        return await self._get(run.run_id)

    async def _get(self, run_id: str) -> Run:
        run = await self.get_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    async def get_run(self, run_id: str) -> Run | None:
        rows = await self.database.fetch(f"{_sql.RUN_SELECT} WHERE run_id = ?", (run_id,))
        return _sql.row_run(rows[0]) if rows else None

    async def get_runs(
        self,
        filters: RunsFilter | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> list[Run]:
        cursor_id: int | None = None
        if cursor is not None:
            found = await self.database.fetch("SELECT id FROM runs WHERE run_id = ?", (cursor,))
            if not found:
                raise RunNotFoundError(cursor)
            cursor_id = found[0][0]
        sql, params = _sql.runs_query(filters, limit, cursor_id)
        return [_sql.row_run(row) for row in await self.database.fetch(sql, params)]

    async def get_runs_count(self, filters: RunsFilter | None = None) -> int:
        where, params = _sql.runs_where(filters)
        rows = await self.database.fetch(f"SELECT COUNT(*) FROM runs{where}", params)
        return int(rows[0][0])

    async def handle_run_events(self, events: Sequence[Event]) -> None:
        changes = run_status_changes(events)
        if changes:
            async with self.database.transaction() as conn:
                await conn.executemany(
                    _sql.UPDATE_RUN_STATUS, [_sql.status_row(c) for c in changes]
                )

    async def add_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        async with self.database.transaction() as conn:
            rows = list(
                await conn.execute_fetchall("SELECT tags FROM runs WHERE run_id = ?", (run_id,))
            )
            if not rows:
                raise RunNotFoundError(run_id)
            merged = {**orjson.loads(rows[0][0]), **tags}
            await conn.execute(
                "UPDATE runs SET tags = ? WHERE run_id = ?",
                (orjson.dumps(merged).decode(), run_id),
            )
            await conn.executemany(_sql.UPSERT_TAG, [(run_id, k, v) for k, v in tags.items()])

    async def delete_run(self, run_id: str) -> None:
        async with self.database.transaction() as conn:
            cursor = await conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            if cursor.rowcount == 0:
                raise RunNotFoundError(run_id)
            await conn.execute("DELETE FROM run_tags WHERE run_id = ?", (run_id,))
            await conn.execute("DELETE FROM events WHERE run_id = ?", (run_id,))

    async def add_job_snapshot(self, job_name: str, snapshot: bytes) -> str:
        snapshot_id = hashlib.sha256(snapshot).hexdigest()
        async with self.database.transaction() as conn:
            await conn.execute(
                "INSERT INTO job_snapshots (snapshot_id, job_name, body) VALUES (?, ?, ?) "
                "ON CONFLICT (snapshot_id) DO NOTHING",
                (snapshot_id, job_name, bytes(snapshot)),
            )
        return snapshot_id

    async def get_job_snapshot(self, snapshot_id: str) -> bytes | None:
        rows = await self.database.fetch(
            "SELECT body FROM job_snapshots WHERE snapshot_id = ?", (snapshot_id,)
        )
        return bytes(rows[0][0]) if rows else None


class SqliteEventLogStorage(_SqliteStorage):
    """`EventLogStorage` on a `SqliteDatabase`; run status moves in the same transaction."""

    __slots__ = ()

    async def store_events(self, events: Sequence[Event]) -> None:
        if events:
            await self.database.store_events(events)

    def updates_run_status_in(self, run_storage: RunStorage) -> bool:
        return isinstance(run_storage, SqliteRunStorage) and run_storage.database is self.database

    async def get_events(
        self,
        run_id: str,
        *,
        after: int | None = None,
        limit: int | None = None,
        event_types: Sequence[EventType] = (),
    ) -> list[EventRecord]:
        sql, params = _sql.events_query(run_id, after, limit, [int(t) for t in event_types])
        return [decode_record(*row) for row in await self.database.fetch(sql, params)]

    async def _fetch(self, run_id: str, after: int | None, limit: int) -> list[EventRecord]:
        return await self.get_events(run_id, after=after, limit=limit)

    def watch_run_events(
        self, run_id: str, *, after: int | None = None, stop_at_end: bool = True
    ) -> AsyncIterator[EventRecord]:
        return watch_events(
            self._fetch,
            self.database.notifier,
            run_id,
            after=after,
            stop_at_end=stop_at_end,
            poll_interval=self.database.poll_interval,
        )

    async def get_step_stats(self, run_id: str) -> list[StepStats]:
        records = await self.get_events(run_id, event_types=tuple(STEP_STATS_EVENTS))
        return fold_step_stats(run_id, (r.event for r in records if r.event is not None))

    async def get_asset_keys(self) -> list[tuple[str, ...]]:
        rows = await self.database.fetch(
            "SELECT DISTINCT asset_key FROM events WHERE asset_key IS NOT NULL"
        )
        return sorted(tuple(row[0].split("/")) for row in rows)

    async def get_materializations(
        self,
        asset_key: Sequence[str],
        *,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[EventRecord]:
        sql, params = _sql.materializations_query(
            asset_key_text(list(asset_key)), int(EventType.ASSET_MATERIALIZATION), limit, before
        )
        return [decode_record(*row) for row in await self.database.fetch(sql, params)]

    async def get_latest_materialization(self, asset_key: Sequence[str]) -> EventRecord | None:
        found = await self.get_materializations(asset_key, limit=1)
        return found[0] if found else None

    async def delete_events(self, run_id: str) -> None:
        async with self.database.transaction() as conn:
            await conn.execute("DELETE FROM events WHERE run_id = ?", (run_id,))


class SqliteScheduleStorage(_SqliteStorage):
    """`ScheduleStorage` on a `SqliteDatabase`."""

    __slots__ = ()

    async def set_instigator_state(self, state: InstigatorState) -> None:
        async with self.database.transaction() as conn:
            await conn.execute(
                "INSERT INTO instigators (origin_id, instigator_type, body) VALUES (?, ?, ?) "
                "ON CONFLICT (origin_id) DO UPDATE SET "
                "instigator_type = excluded.instigator_type, body = excluded.body",
                (state.origin_id, int(state.instigator_type), bytes(state)),
            )

    async def get_instigator_state(self, origin_id: str) -> InstigatorState | None:
        rows = await self.database.fetch(
            "SELECT body FROM instigators WHERE origin_id = ?", (origin_id,)
        )
        return InstigatorState.parse(rows[0][0]) if rows else None

    async def get_instigator_states(
        self, instigator_type: InstigatorType | None = None
    ) -> list[InstigatorState]:
        if instigator_type is None:
            rows = await self.database.fetch("SELECT body FROM instigators ORDER BY origin_id")
        else:
            rows = await self.database.fetch(
                "SELECT body FROM instigators WHERE instigator_type = ? ORDER BY origin_id",
                (int(instigator_type),),
            )
        return [InstigatorState.parse(row[0]) for row in rows]

    async def delete_instigator_state(self, origin_id: str) -> None:
        async with self.database.transaction() as conn:
            await conn.execute("DELETE FROM instigators WHERE origin_id = ?", (origin_id,))

    async def set_sensor_cursor(self, origin_id: str, cursor: str) -> None:
        async with self.database.transaction() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT body FROM instigators WHERE origin_id = ?", (origin_id,)
                )
            )
            if not rows:
                raise StorageError(f"no instigator state for {origin_id!r}")
            state = InstigatorState.parse(rows[0][0])
            state.cursor = cursor
            await conn.execute(
                "UPDATE instigators SET body = ? WHERE origin_id = ?", (bytes(state), origin_id)
            )

    async def create_tick(self, tick: Tick) -> Tick:
        stored = Tick.parse(bytes(tick))
        stored.tick_id = 0
        async with self.database.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO ticks (origin_id, status, timestamp, body) VALUES (?, ?, ?, ?)",
                (stored.origin_id, int(stored.status), stored.timestamp, bytes(stored)),
            )
            assert cursor.lastrowid is not None
            stored.tick_id = cursor.lastrowid
        return stored

    async def update_tick(self, tick: Tick) -> None:
        async with self.database.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE ticks SET origin_id = ?, status = ?, timestamp = ?, body = ? WHERE id = ?",
                (tick.origin_id, int(tick.status), tick.timestamp, bytes(tick), tick.tick_id),
            )
            if cursor.rowcount == 0:
                raise StorageError(f"no tick with id {tick.tick_id}")

    async def get_ticks(
        self,
        origin_id: str,
        *,
        limit: int | None = None,
        statuses: Sequence[TickStatus] = (),
        before: float | None = None,
        after: float | None = None,
    ) -> list[Tick]:
        sql, params = _sql.ticks_query(origin_id, limit, [int(s) for s in statuses], before, after)
        ticks = []
        for tick_id, body in await self.database.fetch(sql, params):
            tick = Tick.parse(body)
            tick.tick_id = tick_id
            ticks.append(tick)
        return ticks

    async def purge_ticks(self, origin_id: str, before: float) -> int:
        async with self.database.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM ticks WHERE origin_id = ? AND timestamp < ?", (origin_id, before)
            )
            return cursor.rowcount

    async def acquire_lease(
        self, name: str, owner: str, *, duration: float, now: float
    ) -> Lease | None:
        async with self.database.transaction() as conn:
            rows = list(
                await conn.execute_fetchall(_sql.ACQUIRE_LEASE, (name, owner, now + duration, now))
            )
        return Lease(name=rows[0][0], owner=rows[0][1], expires_at=rows[0][2]) if rows else None

    async def release_lease(self, name: str, owner: str) -> bool:
        async with self.database.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner)
            )
            return cursor.rowcount > 0

    async def get_lease(self, name: str) -> Lease | None:
        rows = await self.database.fetch(
            "SELECT name, owner, expires_at FROM leases WHERE name = ?", (name,)
        )
        return Lease(name=rows[0][0], owner=rows[0][1], expires_at=rows[0][2]) if rows else None

    async def add_daemon_heartbeat(self, heartbeat: DaemonHeartbeat) -> None:
        async with self.database.transaction() as conn:
            await conn.execute(
                "INSERT INTO daemon_heartbeats (daemon_type, body) VALUES (?, ?) "
                "ON CONFLICT (daemon_type) DO UPDATE SET body = excluded.body",
                (heartbeat.daemon_type, bytes(heartbeat)),
            )

    async def get_daemon_heartbeats(self) -> dict[str, DaemonHeartbeat]:
        rows = await self.database.fetch("SELECT daemon_type, body FROM daemon_heartbeats")
        return {row[0]: DaemonHeartbeat.parse(row[1]) for row in rows}


def sqlite_storages(
    path: str | Path, **options: Any
) -> tuple[SqliteRunStorage, SqliteEventLogStorage, SqliteScheduleStorage]:
    """The three SQLite storages over one file (options go to `SqliteDatabase`)."""
    database = SqliteDatabase(path, **options)
    return (
        SqliteRunStorage(database),
        SqliteEventLogStorage(database),
        SqliteScheduleStorage(database),
    )
