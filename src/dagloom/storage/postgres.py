"""Postgres storage through asyncpg: runs, events and schedules in one database schema.

A connection pool serves reads and writes. An event batch is inserted as chunks (one row per
run's run of events, see `_codec`) under a transaction-scoped advisory lock, so storage ids
commit in order and a watcher's cursor never skips an event committed late. Each batch sends
`NOTIFY` in its transaction; a listener connection wakes this process's watchers at once, and
watchers in any process poll as a fallback.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from dagloom.errors import StorageError
from dagloom.messages import EventRecord
from dagloom.messages.rows import EventRow
from dagloom.storage._codec import Chunk
from dagloom.storage._sql_storage import (
    SqlConnection,
    SqlDatabase,
    SqlEventLogStorage,
    SqlRunStorage,
    SqlScheduleStorage,
    insert_chunks,
    kept_chunks,
    transition,
)
from dagloom.storage.base import RunMove, RunTransition
from dagloom.storage.migrations.postgres import POSTGRES_MIGRATIONS

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
    # asyncpg returns a command tag such as "DELETE 3"; DDL tags ("CREATE TABLE") count none.
    count = status.rsplit(" ", 1)[-1]
    return int(count) if count.isdigit() else 0


class _PostgresConnection:
    """`SqlConnection` over an asyncpg connection: `?` placeholders become `$1`, `$2`, ..."""

    __slots__ = ("conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _status_count(await self.conn.execute(_pg(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(_pg(sql), rows)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        rows: list[Any] = await self.conn.fetch(_pg(sql), *params)
        return rows


class PostgresDatabase(SqlDatabase[asyncpg.Connection]):
    """One Postgres schema shared by the three Postgres storages.

    Opened and closed as every `SqlDatabase`. `open` creates the schema and its tables when
    absent, and raises `StorageError` with one clear line when the server is unreachable,
    rejects the credentials or lacks the database, and `SchemaVersionError` for tables of
    another version. Use from one event loop.
    """

    migrations = POSTGRES_MIGRATIONS
    row_lock = " FOR UPDATE"

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
        super().__init__(poll_interval=poll_interval)
        self.dsn = dsn
        self.schema = schema
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self.channel = f"dagloom_events_{schema}"
        # Event inserts in one schema serialize on this key, so ids commit in order.
        self._lock_key = int.from_bytes(
            hashlib.sha256(f"dagloom:{schema}".encode()).digest()[:8], "big", signed=True
        )
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

    def rejected_as_duplicate(self, cause: BaseException | None) -> bool:
        return isinstance(cause, asyncpg.UniqueViolationError)

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

    @asynccontextmanager
    async def _schema_transaction(self, conn: asyncpg.Connection) -> AsyncIterator[SqlConnection]:
        """A transaction holding the schema's advisory lock, with the schema created."""
        async with conn.transaction():
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key)
            yield _PostgresConnection(conn)

    async def _open(self) -> None:
        conn = await self._connect()
        try:
            await self._check_schema(conn)
        finally:
            await conn.close()
        with self._errors("connecting"):
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self.min_size,
                max_size=self.max_size,
                timeout=self.connect_timeout,
                server_settings={"search_path": self.schema},
            )

    async def _close(self) -> None:
        pool, self._pool = self._pool, None
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
        if pool is not None:
            await pool.close()

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a query (with `?` placeholders) on a pooled connection."""
        with self._errors("reading"):
            rows: list[Any] = await self._require(self._pool).fetch(_pg(sql), *params)
            return rows

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """`transaction` with the bare asyncpg connection, for the advisory lock and NOTIFY."""
        pool = self._require(self._pool)
        with self._errors("writing"), anyio.CancelScope(shield=True):
            async with pool.acquire() as conn, conn.transaction():
                yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlConnection]:
        """A pooled connection inside a transaction, committed on success. Once begun, it
        finishes even if the caller is cancelled."""
        async with self._transaction() as conn:
            yield _PostgresConnection(conn)

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

    async def _store_chunks(
        self,
        batches: Sequence[tuple[str, Sequence[EventRow]]],
        chunks: Sequence[Chunk],
        moves: Sequence[RunMove],
    ) -> list[RunTransition | None]:
        run_ids = sorted({run_id for run_id, _ in batches})
        async with self._transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key)
            tx = _PostgresConnection(conn)
            outcomes = [await transition(tx, change) for _, _, change in moves]
            await insert_chunks(tx, kept_chunks(batches, chunks, moves, outcomes))
            await conn.execute(
                "SELECT pg_notify($1, r) FROM unnest($2::text[]) AS r", self.channel, run_ids
            )
        for run_id in run_ids:
            self.notifier.notify(run_id)
        return outcomes


class PostgresRunStorage(SqlRunStorage[PostgresDatabase]):
    """`RunStorage` on a `PostgresDatabase`."""

    __slots__ = ()


class PostgresEventLogStorage(SqlEventLogStorage[PostgresDatabase]):
    """`EventLogStorage` on a `PostgresDatabase`; run status moves in the same transaction."""

    __slots__ = ()

    async def watch_run_events(
        self, run_id: str, *, after: int | None = None, stop_at_end: bool = True
    ) -> AsyncIterator[EventRecord]:
        # LISTEN before the first read, so a NOTIFY from another process wakes the watcher.
        await self.database.listen()
        async for record in super().watch_run_events(run_id, after=after, stop_at_end=stop_at_end):
            yield record


class PostgresScheduleStorage(SqlScheduleStorage[PostgresDatabase]):
    """`ScheduleStorage` on a `PostgresDatabase`."""

    __slots__ = ()


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
