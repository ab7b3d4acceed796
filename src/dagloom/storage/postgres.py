"""Postgres storage through asyncpg: runs, events and schedules in one database schema.

A connection pool serves reads and writes. Event batches are inserted with `COPY` (or
`executemany` for small ones) under a transaction-scoped advisory lock, so storage ids commit
in order and a watcher's cursor never skips an event committed late. Each batch sends
`NOTIFY` in its transaction; a listener connection wakes this process's watchers at once, and
watchers in any process poll as a fallback.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import orjson

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
from dagloom.storage._codec import EVENT_COLUMNS, asset_key_text, decode_record, encode_event
from dagloom.storage._watch import RunEventNotifier, watch_events
from dagloom.storage.base import (
    STEP_STATS_EVENTS,
    Lease,
    RunsFilter,
    RunStorage,
    SchemaInfo,
    StepStats,
    fold_step_stats,
    run_status_changes,
)
from dagloom.storage.migrations import latest, outdated_message, pending
from dagloom.storage.migrations.postgres import POSTGRES_MIGRATIONS

COPY_THRESHOLD = 64
"""Batches at least this long go through COPY; below it `executemany` has less overhead."""

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """Rewrite `?` placeholders (shared with SQLite) as `$1`, `$2`, ..."""
    parts = sql.split("?")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], start=1):
        out.append(f"${n}{part}")
    return "".join(out)


def redact(dsn: str) -> str:
    """The DSN with its password replaced by `***`, for messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _status_count(status: str) -> int:
    # asyncpg returns a command tag such as "DELETE 3".
    return int(status.rsplit(" ", 1)[-1])


class PostgresDatabase:
    """One Postgres schema shared by the three Postgres storages.

    `open`/`close` are counted like `SqliteDatabase`'s. `open` creates the schema and its
    tables when absent, and raises `StorageError` with one clear line when the server is
    unreachable, rejects the credentials or lacks the database, and `SchemaVersionError` for
    tables of another version. Use from one event loop.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 10,
        poll_interval: float = 2.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise StorageError(f"invalid Postgres schema name {schema!r}")
        self.dsn = dsn
        self.schema = schema
        self.min_size = min_size
        self.max_size = max_size
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self.notifier = RunEventNotifier()
        self.channel = f"dagloom_events_{schema}"
        # Event inserts in one schema serialize on this key, so ids commit in order.
        self._lock_key = int.from_bytes(
            hashlib.sha256(f"dagloom:{schema}".encode()).digest()[:8], "big", signed=True
        )
        self._opened = 0
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._listen_lock = anyio.Lock()

    @property
    def location(self) -> str:
        where = redact(self.dsn)
        return where if self.schema == "public" else f"{where} (schema {self.schema})"

    def describe(self) -> str:
        return f"postgres {self.location}"

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        parts = urlsplit(self.dsn)
        server = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        try:
            yield
        except (
            asyncpg.InvalidPasswordError,
            asyncpg.InvalidAuthorizationSpecificationError,
        ) as exc:
            raise StorageError(
                f"{doing} failed: PostgreSQL at {server} rejected the credentials of user "
                f"{parts.username or '(default)'!r} ({exc})",
                location=self.location,
            ) from exc
        except asyncpg.InvalidCatalogNameError as exc:
            raise StorageError(f"{doing} failed: {exc}", location=self.location) from exc
        except asyncpg.PostgresError as exc:
            raise StorageError(f"{doing} failed: {exc}", location=self.location) from exc
        except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
            raise StorageError(
                f"{doing} failed: cannot reach PostgreSQL at {server} "
                f"({exc or type(exc).__name__})",
                location=self.location,
            ) from exc

    async def _connect(self) -> asyncpg.Connection:
        with self._errors("connecting"):
            conn: asyncpg.Connection = await asyncpg.connect(
                self.dsn,
                timeout=self.connect_timeout,
                server_settings={"search_path": self.schema},
            )
            return conn

    async def _read_version(self, conn: asyncpg.Connection) -> int:
        tables = {
            row[0]
            for row in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                self.schema,
            )
        }
        if "dagloom_schema" in tables:
            return int(await conn.fetchval("SELECT MAX(version) FROM dagloom_schema") or 0)
        if tables:
            raise StorageError(
                "the schema holds another application's tables "
                f"({', '.join(sorted(tables)[:5])}), not a dagloom database",
                location=self.location,
            )
        return 0

    async def _apply(self, conn: asyncpg.Connection, current: int) -> int:
        version = current
        for migration in pending(POSTGRES_MIGRATIONS, current):
            for statement in migration.statements:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO dagloom_schema (version, migrated_at) VALUES ($1, $2)",
                migration.version,
                time.time(),
            )
            version = migration.version
        return version

    async def _lock_schema(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key)

    async def open(self) -> None:
        """Connect (first call), create or check the schema; see the class docstring."""
        self._opened += 1
        if self._opened > 1:
            return
        try:
            conn = await self._connect()
            try:
                with self._errors("checking the schema"):
                    async with conn.transaction():
                        await self._lock_schema(conn)
                        found = await self._read_version(conn)
                        if found == 0:
                            found = await self._apply(conn, 0)
            finally:
                await conn.close()
            expected = latest(POSTGRES_MIGRATIONS)
            if found != expected:
                raise SchemaVersionError(
                    outdated_message(self.location, found, expected),
                    location=self.location,
                    found=found,
                    expected=expected,
                )
            with self._errors("connecting"):
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.min_size,
                    max_size=self.max_size,
                    timeout=self.connect_timeout,
                    server_settings={"search_path": self.schema},
                )
        except BaseException:
            self._opened = 0
            raise

    async def close(self) -> None:
        """Close the pool and listener when the last opener closes; idempotent."""
        if self._opened == 0:
            return
        self._opened -= 1
        if self._opened:
            return
        pool, self._pool = self._pool, None
        listener, self._listener = self._listener, None
        with anyio.CancelScope(shield=True):
            if listener is not None:
                await listener.close()
            if pool is not None:
                await pool.close()

    async def schema_info(self) -> SchemaInfo:
        conn = await self._connect()
        try:
            with self._errors("reading the schema version"):
                found = await self._read_version(conn)
        finally:
            await conn.close()
        return SchemaInfo(self.location, found, latest(POSTGRES_MIGRATIONS))

    async def migrate(self) -> SchemaInfo:
        conn = await self._connect()
        expected = latest(POSTGRES_MIGRATIONS)
        try:
            with self._errors("migrating the schema"):
                async with conn.transaction():
                    await self._lock_schema(conn)
                    found = await self._read_version(conn)
                    if found > expected:
                        raise SchemaVersionError(
                            outdated_message(self.location, found, expected),
                            location=self.location,
                            found=found,
                            expected=expected,
                        )
                    version = await self._apply(conn, found)
        finally:
            await conn.close()
        return SchemaInfo(self.location, version, expected)

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageError("the storage is not open", location=self.location)
        return self._pool

    async def fetch(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        """Run a query (with `?` placeholders) on a pooled connection."""
        with self._errors("reading"):
            rows: list[asyncpg.Record] = await self._require_pool().fetch(_pg(sql), *params)
            return rows

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside a transaction, committed on success. Once begun, it
        finishes even if the caller is cancelled."""
        pool = self._require_pool()
        with self._errors("writing"), anyio.CancelScope(shield=True):
            async with pool.acquire() as conn, conn.transaction():
                yield conn

    async def listen(self) -> None:
        """Start the LISTEN connection that wakes this process's watchers; idempotent."""
        async with self._listen_lock:
            if self._listener is not None:
                return
            listener = await self._connect()
            with self._errors("listening"):
                await listener.add_listener(self.channel, self._on_notify)
            self._listener = listener

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self.notifier.notify(str(payload))

    async def store_events(self, events: Sequence[Event]) -> None:
        rows = [encode_event(e) for e in events]
        changes = run_status_changes(events)
        run_ids = sorted({e.run_id for e in events})
        async with self.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key)
            if len(rows) >= COPY_THRESHOLD:
                await conn.copy_records_to_table(
                    "events", records=rows, columns=EVENT_COLUMNS, schema_name=self.schema
                )
            else:
                await conn.executemany(_pg(_sql.INSERT_EVENT), rows)
            if changes:
                await conn.executemany(
                    _pg(_sql.UPDATE_RUN_STATUS), [_sql.status_row(c) for c in changes]
                )
            await conn.execute(
                "SELECT pg_notify($1, r) FROM unnest($2::text[]) AS r", self.channel, run_ids
            )
        for run_id in run_ids:
            self.notifier.notify(run_id)


class _PostgresStorage:
    __slots__ = ("database",)

    def __init__(self, database: PostgresDatabase) -> None:
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


class PostgresRunStorage(_PostgresStorage):
    """`RunStorage` on a `PostgresDatabase`."""

    __slots__ = ()

    async def add_run(self, run: Run) -> Run:
        try:
            async with self.database.transaction() as conn:
                await conn.execute(_pg(_sql.INSERT_RUN), *_sql.run_row(run))
                await conn.executemany(
                    _pg(_sql.INSERT_TAG), [(run.run_id, k, v) for k, v in run.tags.items()]
                )
        except StorageError as exc:
            if isinstance(exc.__cause__, asyncpg.UniqueViolationError):
                raise StorageError(
                    f"a run with id {run.run_id!r} is already stored",
                    location=self.database.location,
                ) from exc
            raise
        stored = await self.get_run(run.run_id)
        if stored is None:
            raise RunNotFoundError(run.run_id)
        return stored

    async def get_run(self, run_id: str) -> Run | None:
        rows = await self.database.fetch(f"{_sql.RUN_SELECT} WHERE run_id = ?", run_id)
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
            found = await self.database.fetch("SELECT id FROM runs WHERE run_id = ?", cursor)
            if not found:
                raise RunNotFoundError(cursor)
            cursor_id = found[0][0]
        sql, params = _sql.runs_query(filters, limit, cursor_id)
        return [_sql.row_run(row) for row in await self.database.fetch(sql, *params)]

    async def get_runs_count(self, filters: RunsFilter | None = None) -> int:
        where, params = _sql.runs_where(filters)
        rows = await self.database.fetch(f"SELECT COUNT(*) FROM runs{where}", *params)
        return int(rows[0][0])

    async def handle_run_events(self, events: Sequence[Event]) -> None:
        changes = run_status_changes(events)
        if changes:
            async with self.database.transaction() as conn:
                await conn.executemany(
                    _pg(_sql.UPDATE_RUN_STATUS), [_sql.status_row(c) for c in changes]
                )

    async def add_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        async with self.database.transaction() as conn:
            current = await conn.fetchval(
                "SELECT tags FROM runs WHERE run_id = $1 FOR UPDATE", run_id
            )
            if current is None:
                raise RunNotFoundError(run_id)
            merged = {**orjson.loads(current), **tags}
            await conn.execute(
                "UPDATE runs SET tags = $1 WHERE run_id = $2",
                orjson.dumps(merged).decode(),
                run_id,
            )
            await conn.executemany(_pg(_sql.UPSERT_TAG), [(run_id, k, v) for k, v in tags.items()])

    async def delete_run(self, run_id: str) -> None:
        async with self.database.transaction() as conn:
            status = await conn.execute("DELETE FROM runs WHERE run_id = $1", run_id)
            if _status_count(status) == 0:
                raise RunNotFoundError(run_id)
            await conn.execute("DELETE FROM run_tags WHERE run_id = $1", run_id)
            await conn.execute("DELETE FROM events WHERE run_id = $1", run_id)

    async def add_job_snapshot(self, job_name: str, snapshot: bytes) -> str:
        snapshot_id = hashlib.sha256(snapshot).hexdigest()
        async with self.database.transaction() as conn:
            await conn.execute(
                "INSERT INTO job_snapshots (snapshot_id, job_name, body) VALUES ($1, $2, $3) "
                "ON CONFLICT (snapshot_id) DO NOTHING",
                snapshot_id,
                job_name,
                bytes(snapshot),
            )
        return snapshot_id

    async def get_job_snapshot(self, snapshot_id: str) -> bytes | None:
        rows = await self.database.fetch(
            "SELECT body FROM job_snapshots WHERE snapshot_id = ?", snapshot_id
        )
        return bytes(rows[0][0]) if rows else None


class PostgresEventLogStorage(_PostgresStorage):
    """`EventLogStorage` on a `PostgresDatabase`; run status moves in the same transaction."""

    __slots__ = ()

    async def store_events(self, events: Sequence[Event]) -> None:
        if events:
            await self.database.store_events(events)

    def updates_run_status_in(self, run_storage: RunStorage) -> bool:
        return isinstance(run_storage, PostgresRunStorage) and run_storage.database is self.database

    async def get_events(
        self,
        run_id: str,
        *,
        after: int | None = None,
        limit: int | None = None,
        event_types: Sequence[EventType] = (),
    ) -> list[EventRecord]:
        sql, params = _sql.events_query(run_id, after, limit, [int(t) for t in event_types])
        return [decode_record(*row) for row in await self.database.fetch(sql, *params)]

    async def _fetch(self, run_id: str, after: int | None, limit: int) -> list[EventRecord]:
        return await self.get_events(run_id, after=after, limit=limit)

    async def watch_run_events(
        self, run_id: str, *, after: int | None = None, stop_at_end: bool = True
    ) -> AsyncIterator[EventRecord]:
        await self.database.listen()
        async for record in watch_events(
            self._fetch,
            self.database.notifier,
            run_id,
            after=after,
            stop_at_end=stop_at_end,
            poll_interval=self.database.poll_interval,
        ):
            yield record

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
        return [decode_record(*row) for row in await self.database.fetch(sql, *params)]

    async def get_latest_materialization(self, asset_key: Sequence[str]) -> EventRecord | None:
        found = await self.get_materializations(asset_key, limit=1)
        return found[0] if found else None

    async def delete_events(self, run_id: str) -> None:
        async with self.database.transaction() as conn:
            await conn.execute("DELETE FROM events WHERE run_id = $1", run_id)


class PostgresScheduleStorage(_PostgresStorage):
    """`ScheduleStorage` on a `PostgresDatabase`."""

    __slots__ = ()

    async def set_instigator_state(self, state: InstigatorState) -> None:
        async with self.database.transaction() as conn:
            await conn.execute(
                "INSERT INTO instigators (origin_id, instigator_type, body) VALUES ($1, $2, $3) "
                "ON CONFLICT (origin_id) DO UPDATE SET "
                "instigator_type = excluded.instigator_type, body = excluded.body",
                state.origin_id,
                int(state.instigator_type),
                bytes(state),
            )

    async def get_instigator_state(self, origin_id: str) -> InstigatorState | None:
        rows = await self.database.fetch(
            "SELECT body FROM instigators WHERE origin_id = ?", origin_id
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
                int(instigator_type),
            )
        return [InstigatorState.parse(row[0]) for row in rows]

    async def delete_instigator_state(self, origin_id: str) -> None:
        async with self.database.transaction() as conn:
            await conn.execute("DELETE FROM instigators WHERE origin_id = $1", origin_id)

    async def set_sensor_cursor(self, origin_id: str, cursor: str) -> None:
        async with self.database.transaction() as conn:
            body = await conn.fetchval(
                "SELECT body FROM instigators WHERE origin_id = $1 FOR UPDATE", origin_id
            )
            if body is None:
                raise StorageError(f"no instigator state for {origin_id!r}")
            state = InstigatorState.parse(body)
            state.cursor = cursor
            await conn.execute(
                "UPDATE instigators SET body = $1 WHERE origin_id = $2", bytes(state), origin_id
            )

    async def create_tick(self, tick: Tick) -> Tick:
        stored = Tick.parse(bytes(tick))
        stored.tick_id = 0
        async with self.database.transaction() as conn:
            stored.tick_id = await conn.fetchval(
                "INSERT INTO ticks (origin_id, status, timestamp, body) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                stored.origin_id,
                int(stored.status),
                stored.timestamp,
                bytes(stored),
            )
        return stored

    async def update_tick(self, tick: Tick) -> None:
        async with self.database.transaction() as conn:
            status = await conn.execute(
                "UPDATE ticks SET origin_id = $1, status = $2, timestamp = $3, body = $4 "
                "WHERE id = $5",
                tick.origin_id,
                int(tick.status),
                tick.timestamp,
                bytes(tick),
                tick.tick_id,
            )
            if _status_count(status) == 0:
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
        for tick_id, body in await self.database.fetch(sql, *params):
            tick = Tick.parse(body)
            tick.tick_id = tick_id
            ticks.append(tick)
        return ticks

    async def purge_ticks(self, origin_id: str, before: float) -> int:
        async with self.database.transaction() as conn:
            status = await conn.execute(
                "DELETE FROM ticks WHERE origin_id = $1 AND timestamp < $2", origin_id, before
            )
            return _status_count(status)

    async def acquire_lease(
        self, name: str, owner: str, *, duration: float, now: float
    ) -> Lease | None:
        async with self.database.transaction() as conn:
            row = await conn.fetchrow(_pg(_sql.ACQUIRE_LEASE), name, owner, now + duration, now)
        return None if row is None else Lease(name=row[0], owner=row[1], expires_at=row[2])

    async def release_lease(self, name: str, owner: str) -> bool:
        async with self.database.transaction() as conn:
            status = await conn.execute(
                "DELETE FROM leases WHERE name = $1 AND owner = $2", name, owner
            )
            return _status_count(status) > 0

    async def get_lease(self, name: str) -> Lease | None:
        rows = await self.database.fetch(
            "SELECT name, owner, expires_at FROM leases WHERE name = ?", name
        )
        return Lease(name=rows[0][0], owner=rows[0][1], expires_at=rows[0][2]) if rows else None

    async def add_daemon_heartbeat(self, heartbeat: DaemonHeartbeat) -> None:
        async with self.database.transaction() as conn:
            await conn.execute(
                "INSERT INTO daemon_heartbeats (daemon_type, body) VALUES ($1, $2) "
                "ON CONFLICT (daemon_type) DO UPDATE SET body = excluded.body",
                heartbeat.daemon_type,
                bytes(heartbeat),
            )

    async def get_daemon_heartbeats(self) -> dict[str, DaemonHeartbeat]:
        rows = await self.database.fetch("SELECT daemon_type, body FROM daemon_heartbeats")
        return {row[0]: DaemonHeartbeat.parse(row[1]) for row in rows}


def postgres_storages(
    dsn: str, **options: Any
) -> tuple[PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage]:
    """The three Postgres storages over one database schema (options go to
    `PostgresDatabase`)."""
    database = PostgresDatabase(dsn, **options)
    return (
        PostgresRunStorage(database),
        PostgresEventLogStorage(database),
        PostgresScheduleStorage(database),
    )
