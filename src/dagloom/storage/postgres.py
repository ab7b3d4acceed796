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
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import structlog

from dagloom.errors import LeaseLostError, StorageError, StorageUnavailableError
from dagloom.messages import EventRecord
from dagloom.messages.rows import EventRow
from dagloom.storage._codec import Chunk
from dagloom.storage._retry import RETRY_TIMEOUT
from dagloom.storage._sql_storage import (
    SqlConnection,
    SqlDatabase,
    SqlEventLogStorage,
    SqlRunStorage,
    SqlScheduleStorage,
    Statements,
    insert_chunks,
    kept_chunks,
    transition,
)
from dagloom.storage.base import Fence, RunMove, RunTransition
from dagloom.storage.migrations.postgres import POSTGRES_MIGRATIONS

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.TransactionRollbackError,
    asyncpg.LockNotAvailableError,
)
"""Driver errors of a fault that may pass: the connection was lost or refused, the server is
shutting down or out of connections, a lock or serialization conflict. Retried (see
`_retry`); the asyncpg pool replaces a lost connection on the next acquire."""


def _terminate(conn: asyncpg.Connection) -> None:
    """Drop `conn` at once; one the pool already took back (asyncpg releases a connection
    the server closed) needs nothing more."""
    with suppress(asyncpg.InterfaceError):
        conn.terminate()


def _from_driver(exc: BaseException) -> bool:
    """Whether asyncpg raised `exc` (any of its exception classes)."""
    return type(exc).__module__.startswith("asyncpg")


_log = structlog.get_logger("dagloom.storage")

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """Rewrite `?` placeholders (shared with SQLite) as `$1`, `$2`, ..."""
    parts = sql.split("?")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], start=1):
        out.append(f"${n}{part}")
    return "".join(out)


_SCHEME = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?//")
_USERINFO_PASSWORD = re.compile(r"^(?P<user>[^:/?#@\s]*):\S*@")
_KEYWORD_PASSWORD = re.compile(r"(?i)(?P<key>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]*)")


def dsn_password(dsn: str) -> str | None:
    """The password a DSN carries, wherever it is written; None if it has none."""
    scheme = _SCHEME.match(dsn)
    userinfo = _USERINFO_PASSWORD.match(dsn[scheme.end() if scheme else 0 :])
    if userinfo is not None:
        return userinfo.group(0)[len(userinfo.group("user")) + 1 : -1] or None
    keyword = _KEYWORD_PASSWORD.search(dsn)
    if keyword is not None:
        return keyword.group(0)[len(keyword.group("key")) :].strip("'") or None
    return None


def scrub(text: str, dsn: str) -> str:
    """`text` (a driver's error, say) with the DSN's password, should it appear, masked."""
    password = dsn_password(dsn)
    if password:
        text = text.replace(password, "***")
        unquoted = unquote(password)
        if unquoted != password:
            text = text.replace(unquoted, "***")
    return text


def redact(dsn: str) -> str:
    """The DSN with any password replaced by `***`, for messages: in the user info of a
    URL with or without its scheme (`user:pw@host/db`), and as a `password=` keyword or
    query parameter. When in doubt it masks more, never less."""
    scheme = _SCHEME.match(dsn)
    head = scheme.group(0) if scheme else ""
    rest = _USERINFO_PASSWORD.sub(lambda m: f"{m.group('user')}:***@", dsn[len(head) :], count=1)
    masked = head + rest
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m.group('key')}***", masked)


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

    No wait on the server is unbounded: connecting and taking a pooled connection wait at
    most `connect_timeout` seconds, a statement `command_timeout`, and `close` at most
    `connect_timeout` for connections in use before it drops them. Connections carry
    `application_name`, so operators (and tests) can find this storage's backends in
    `pg_stat_activity`.
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
        command_timeout: float = 60.0,
        retry_timeout: float = RETRY_TIMEOUT,
        application_name: str = "dagloom",
    ) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise StorageError(f"invalid Postgres schema name {schema!r}")
        super().__init__(poll_interval=poll_interval, retry_timeout=retry_timeout)
        self.dsn = dsn
        self.schema = schema
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.application_name = application_name
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
                scrub(
                    f"{doing} failed: PostgreSQL at {server} rejected the credentials of user "
                    f"{parts.username or '(default)'!r} ({exc})",
                    self.dsn,
                ),
                location=self.location,
                operation=doing,
            ) from exc
        except _TRANSIENT as exc:
            raise StorageUnavailableError(
                scrub(
                    f"{doing} failed: cannot reach PostgreSQL at {server} "
                    f"({type(exc).__name__}: {exc or 'no detail'})",
                    self.dsn,
                ),
                location=self.location,
                operation=doing,
            ) from exc
        except asyncpg.PostgresError as exc:
            raise StorageError(
                scrub(f"{doing} failed: {exc}", self.dsn), location=self.location, operation=doing
            ) from exc
        except Exception as exc:
            # The storage boundary: whatever else asyncpg raises (its `_base` errors, a
            # protocol's RuntimeError) leaves as a StorageError, never as itself.
            if not _from_driver(exc):
                raise
            raise StorageError(
                f"{doing} failed: {type(exc).__name__}: {exc}",
                location=self.location,
                operation=doing,
            ) from exc

    def rejected_as_duplicate(self, cause: BaseException | None) -> bool:
        return isinstance(cause, asyncpg.UniqueViolationError)

    def _server_settings(self) -> dict[str, str]:
        return {"search_path": self.schema, "application_name": self.application_name}

    async def _connect(self) -> asyncpg.Connection:
        with self._errors("connecting"):
            conn: asyncpg.Connection = await asyncpg.connect(
                self.dsn,
                timeout=self.connect_timeout,
                command_timeout=self.command_timeout,
                server_settings=self._server_settings(),
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
                command_timeout=self.command_timeout,
                server_settings=self._server_settings(),
            )

    async def _close(self) -> None:
        pool, self._pool = self._pool, None
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.terminate()
        if pool is not None:
            # A graceful close waits for connections in use; a server gone quiet could make
            # that forever, so after `connect_timeout` they are dropped.
            with anyio.move_on_after(self.connect_timeout) as waited:
                try:
                    await pool.close()
                except Exception:  # the pool goes either way: terminated below
                    waited.cancel()
            if waited.cancel_called:
                pool.terminate()

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a query (with `?` placeholders) on a pooled connection."""
        with self._errors("reading"):
            rows: list[Any] = await self._require(self._pool).fetch(
                _pg(sql), *params, timeout=self.command_timeout
            )
            return rows

    async def _begin(self, pool: asyncpg.Pool) -> tuple[asyncpg.Connection, Any]:
        """A pooled connection and its begun transaction (the connection is released if
        beginning fails)."""
        with self._errors("beginning a transaction"):
            conn: asyncpg.Connection = await pool.acquire(timeout=self.connect_timeout)
            try:
                tx = conn.transaction()
                await tx.start()
            except BaseException:
                await self._release(pool, conn)
                raise
            return conn, tx

    async def _release(self, pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
        """Give `conn` back to `pool`; a connection that cannot be reset is dropped (the pool
        opens a new one when next needed). Runs to its end even if the caller is cancelled,
        so a cancelled caller never leaks a pooled connection."""
        try:
            with anyio.CancelScope(shield=True), anyio.fail_after(self.connect_timeout):
                await pool.release(conn)
        except Exception:  # a broken connection: nothing to give back, so drop it
            _terminate(conn)

    @asynccontextmanager
    async def _transaction(self, *, retry: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """`transaction` with the bare asyncpg connection, for the advisory lock and NOTIFY;
        with `retry`, getting a connection and beginning are retried (see `SqlDatabase`).
        Cancellation interrupts the beginning; once begun, the transaction finishes."""
        pool = self._require(self._pool)
        if retry:
            conn, tx = await self._retrying("beginning a transaction", lambda: self._begin(pool))
        else:
            conn, tx = await self._begin(pool)
        with anyio.CancelScope(shield=True):
            try:
                with self._errors("writing"):
                    try:
                        yield conn
                    except BaseException:
                        await self._rollback(conn, tx)
                        raise
                    await tx.commit()
            finally:
                await self._release(pool, conn)

    async def _rollback(self, conn: asyncpg.Connection, tx: Any) -> None:
        """Roll `tx` back, or drop `conn` if that fails: the error that made the caller roll
        back is the one to report, not a second one from a connection already lost."""
        try:
            if not conn.is_closed():
                await tx.rollback()
        except Exception:  # the connection is broken: dropping it ends the transaction
            _terminate(conn)

    @asynccontextmanager
    async def transaction(self, *, retry: bool = True) -> AsyncIterator[SqlConnection]:
        """A pooled connection inside a transaction, committed on success. Once begun, it
        finishes even if the caller is cancelled. With `retry`, getting the connection and
        beginning are retried."""
        async with self._transaction(retry=retry) as conn:
            yield _PostgresConnection(conn)

    def _transaction_once(self) -> AbstractAsyncContextManager[SqlConnection]:
        return self.transaction(retry=False)

    async def listen(self) -> None:
        """Start the LISTEN connection that wakes this process's watchers; idempotent, and
        after that connection was lost, starts a new one."""
        async with self._listen_lock:
            if self._listener is not None and not self._listener.is_closed():
                return
            listener = await self._connect()
            try:
                with self._errors("listening"):
                    await listener.add_listener(self.channel, self._on_notify)
                    listener.add_termination_listener(self._on_listener_lost)
            except BaseException:
                listener.terminate()
                raise
            self._listener = listener

    def _on_listener_lost(self, conn: object) -> None:
        # Watchers poll until the next `listen` (the next watcher) connects again.
        if conn is self._listener:
            self._listener = None
            _log.warning("storage_listener_lost", location=self.location)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self.notifier.notify(str(payload))

    async def _store_chunks(
        self,
        batches: Sequence[tuple[str, Sequence[EventRow]]],
        chunks: Sequence[Chunk],
        moves: Sequence[RunMove],
        fence: Fence | None = None,
        inserts: Statements = (),
        only_stored_runs: bool = False,
    ) -> list[RunTransition | None]:
        run_ids = sorted({run_id for run_id, _ in batches})
        async with self._transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_key)
            tx = _PostgresConnection(conn)
            if fence is not None:
                current = await conn.fetchval(
                    "SELECT token FROM leases WHERE name = $1 FOR UPDATE", fence.name
                )
                if current != fence.token:
                    raise LeaseLostError(fence.name, fence.token, current)
            for sql, rows in inserts:
                if rows:
                    await tx.executemany(sql, rows)
            outcomes = [await transition(tx, change) for _, _, change in moves]
            kept = kept_chunks(batches, chunks, moves, outcomes, only_stored_runs=only_stored_runs)
            await insert_chunks(tx, kept)
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

    async def _listen(self) -> None:
        # LISTEN before the first read, so a NOTIFY from another process wakes the watcher.
        # Without it (storage down for now) the watcher still finds events by polling.
        try:
            await self.database.listen()
        except StorageError as exc:
            _log.warning("storage_listen_failed", location=self.database.location, error=str(exc))

    async def watch_run_event_batches(
        self, run_id: str, *, after: int | None = None, stop_at_end: bool = True
    ) -> AsyncIterator[list[EventRecord]]:
        await self._listen()
        batches = super().watch_run_event_batches(run_id, after=after, stop_at_end=stop_at_end)
        async for batch in batches:
            yield batch


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
