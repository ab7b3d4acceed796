"""SQLite storage through aiosqlite: the default backend, one file for runs, events and
schedules.

The file runs in WAL mode with `synchronous=NORMAL`: a committed transaction survives the
process being killed (only an OS crash or power loss can drop the last ones). One writer
connection commits; concurrent `store_events` calls are combined into one transaction, and
each run's events in it are one chunk row (see `_codec`: a row per event would cost more than
the executor's whole per-step budget). Readers use their own connections and
run while the writer writes. Writes begin with `BEGIN IMMEDIATE` and wait for the file lock
with a long busy timeout, so several processes can write one file without "database is locked".

The WAL is copied back into the database (checkpointed) by a thread of its own, not by the
commit that happens to fill it: SQLite does that work without holding the GIL, so it runs
alongside the event loop instead of stalling one commit in about six of a busy run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from dagloom.errors import LeaseLostError, StorageError, StorageUnavailableError
from dagloom.messages import RunStatus
from dagloom.messages.rows import EventRow
from dagloom.storage import _sql
from dagloom.storage._codec import Chunk, encode_chunks
from dagloom.storage._retry import RETRY_TIMEOUT
from dagloom.storage._sql_storage import (
    SqlConnection,
    SqlDatabase,
    SqlEventLogStorage,
    SqlRunStorage,
    SqlScheduleStorage,
    Statements,
    chunk_inserts,
    kept_chunks,
)
from dagloom.storage._stored_rows import StoredRunRows
from dagloom.storage.base import (
    Fence,
    RunMove,
    RunStatusChange,
    RunTransition,
    batch_moves,
    refuse_transition,
)
from dagloom.storage.migrations.sqlite import SQLITE_MIGRATIONS

T = TypeVar("T")

_BUSY_MARKERS = ("database is locked", "database is busy", "database table is locked")
_TRANSIENT_MARKERS = (*_BUSY_MARKERS, "database or disk is full", "disk i/o error")
"""Errors of a fault that may pass (a lock held past the busy timeout, a full disk, an I/O
error): retried for a bounded time (see `_retry`). A read-only file is not among them."""


def _is_busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(m in str(exc) for m in _BUSY_MARKERS)


def _is_transient(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(m in text for m in _TRANSIENT_MARKERS)


class _SqliteConnection:
    """`SqlConnection` over an aiosqlite connection."""

    __slots__ = ("conn",)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self.conn.execute(sql, params)
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self.conn.execute_fetchall(sql, params))


CHECKPOINT_BYTES = 4 * 1024 * 1024
"""Bytes committed after which the checkpointer copies the WAL back into the database: about
SQLite's own default of 1000 pages."""

_PAGE = 4096
"""Bytes counted for a commit beyond its event bodies (the pages any transaction touches)."""

INLINE_WRITE_BYTES = 64 * 1024
"""Bytes (as `_write_once` counts them) up to which a write may run on the loop's thread."""

BACKSTOP_PAGES = 4 * 1000
"""WAL pages at which the writer checkpoints in its own commit after all (SQLite's
`wal_autocheckpoint`, ~16 MB). A passive checkpoint cannot start the WAL over while commits
keep appending to it, so under writes without pauses this is what bounds the WAL; otherwise
only when the checkpointer falls behind."""


class _Checkpointer:
    """A thread that runs passive WAL checkpoints on a connection of its own when told that
    enough has been committed since the last one (`committed`).

    A passive checkpoint never waits for or blocks readers and writers; what it cannot copy
    yet is copied by the next one, and the writer's `BACKSTOP_PAGES` bounds the WAL if
    checkpoints keep failing (a failure is counted in `failures`, not raised).
    """

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._pending = 0
        self._wake = threading.Event()
        self._stopping = False
        self.checkpoints = 0
        self.failures = 0
        self._thread = threading.Thread(
            target=self._run, name=f"dagloom-checkpoint {path.name}", daemon=True
        )
        self._thread.start()

    def committed(self, nbytes: int) -> None:
        """Count `nbytes` more committed; wake the thread once there are enough."""
        self._pending += nbytes
        if self._pending >= CHECKPOINT_BYTES:
            self._pending = 0
            self._wake.set()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    if conn is None:
                        conn = sqlite3.connect(
                            self._path, isolation_level=None, timeout=self._busy_timeout
                        )
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:
                    self.failures += 1
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> None:
        """Stop the thread and wait for it (blocking: call it from a worker thread)."""
        self._stopping = True
        self._wake.set()
        self._thread.join()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if not future.done():
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


class _WriterThread:
    """The thread the writer connection lives on: it runs calls one at a time, in the order
    given, each to its end. A call is a put on a queue and a wake-up of the caller's loop
    when it is done: less than a third of what a worker thread of anyio costs a call, and
    the event path makes several a run."""

    __slots__ = ("_calls", "_thread")

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[
            tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]] | None
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            loop, future, call = item
            result: Any = None
            error: BaseException | None = None
            try:
                result = call()
            except BaseException as exc:  # handed to the caller, which raises it
                error = exc
            # A closed loop raises RuntimeError: nobody waits for this call any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, result, error)

    async def run(self, call: Callable[[], T]) -> T:
        """Run `call` on the thread and return its result; the call runs to its end, and
        is waited for, even if the caller is cancelled meanwhile."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, call))
        with anyio.CancelScope(shield=True):
            result = await future
        return result

    def stop(self) -> None:
        """End the thread once the calls already given have run; idempotent, never blocks."""
        self._calls.put(None)


def _end(conn: sqlite3.Connection) -> None:
    conn.execute("COMMIT")


def _undo(conn: sqlite3.Connection) -> None:
    conn.execute("ROLLBACK")


class _WriterConnection:
    """`SqlConnection` over the writer: each statement is one call into its thread, and the
    first also begins the transaction (`BEGIN IMMEDIATE`), saving a call."""

    __slots__ = ("begun", "database")

    def __init__(self, database: SqliteDatabase) -> None:
        self.database = database
        self.begun = False

    async def _run(self, call: Callable[[sqlite3.Connection], T]) -> T:
        if self.begun:
            return await self.database._in_writer(call)

        def begin_then(conn: sqlite3.Connection) -> T:
            self.database._begin(conn)
            self.begun = True  # before `call`, so its failure still rolls back
            return call(conn)

        return await self.database._in_writer(begin_then)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._run(lambda c: c.execute(sql, params).rowcount)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._run(lambda c: c.executemany(sql, rows))

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._run(lambda c: c.execute(sql, params).fetchall())


def _transition(conn: sqlite3.Connection, change: RunStatusChange) -> RunTransition | None:
    """`_sql_storage.transition` on the writer, inside its transaction, in its thread."""
    sql = _sql.transition_run(change)
    if sql is not None and conn.execute(sql, _sql.status_row(change)).rowcount:
        return RunTransition(applied=True, status=change.status)
    found = conn.execute(_sql.RUN_STATUS, (change.run_id,)).fetchone()
    return None if found is None else refuse_transition(change, RunStatus(found[0]))


def _insert(conn: sqlite3.Connection, batch: _Batch, location: str) -> bool:
    """Run `batch.inserts` inside the writer's transaction, under a savepoint: when one
    breaks a constraint, what they wrote is undone, `batch.error` says so, and False."""
    conn.execute("SAVEPOINT inserts")
    try:
        for sql, rows in batch.inserts:
            if rows:
                conn.executemany(sql, rows)
    except sqlite3.IntegrityError as exc:
        conn.execute("ROLLBACK TO inserts")
        conn.execute("RELEASE inserts")
        batch.error = StorageError(f"writing failed: {exc}", location=location, operation="writing")
        batch.error.__cause__ = exc
        return False
    conn.execute("RELEASE inserts")
    return True


@dataclass(slots=True)
class _Batch:
    """One `_store_chunks` call waiting for the commit that writes it with others."""

    batches: Sequence[tuple[str, Sequence[EventRow]]]
    chunks: Sequence[Chunk]
    moves: Sequence[RunMove]
    run_ids: set[str]
    fence: Fence | None = None
    inserts: Statements = ()
    only_stored_runs: bool = False
    outcomes: list[RunTransition | None] = field(default_factory=list)
    done: anyio.Event = field(default_factory=anyio.Event)
    error: StorageError | LeaseLostError | None = None


class SqliteDatabase(SqlDatabase[aiosqlite.Connection]):
    """One SQLite file shared by the three SQLite storages.

    Opened and closed as every `SqlDatabase`. `open` creates the file and its schema when the
    file is empty or absent, and raises `StorageError` for a file that is not a SQLite
    database or holds another application's tables, and `SchemaVersionError` for a schema of
    another version. Use from one event loop.
    """

    migrations = SQLITE_MIGRATIONS
    # A write transaction begins IMMEDIATE, which already locks the whole file.
    row_lock = ""

    def __init__(
        self,
        path: str | Path,
        *,
        readers: int = 4,
        busy_timeout: float = 120.0,
        poll_interval: float = 0.5,
        retry_timeout: float = RETRY_TIMEOUT,
    ) -> None:
        super().__init__(poll_interval=poll_interval, retry_timeout=retry_timeout)
        self.path = Path(path)
        self.readers = max(1, readers)
        self.busy_timeout = busy_timeout
        self._writer: sqlite3.Connection | None = None
        self._checkpointer: _Checkpointer | None = None
        self._write_lock = anyio.Lock()
        # The writer runs on a thread of its own, one call at a time (`_in_writer`).
        self._writer_thread: _WriterThread | None = None
        self._pool_send: MemoryObjectSendStream[aiosqlite.Connection] | None = None
        self._pool_recv: MemoryObjectReceiveStream[aiosqlite.Connection] | None = None
        self._pool: list[aiosqlite.Connection] = []
        self._inline: sqlite3.Connection | None = None
        self._inline_thread = 0
        self._queue: list[_Batch] = []
        self._committing = False
        # Whether the writer waits for the file's lock (`busy_timeout`) or not (0, as a write
        # on the loop's thread needs): switched only when the other kind of write comes, as
        # each switch is a statement of its own.
        self._writer_waits = True
        # Whether the file is in WAL mode, where a transaction holding the write lock never
        # waits for another lock again (in any other, COMMIT waits for readers).
        self._writer_wal = True

    @property
    def location(self) -> str:
        return str(self.path)

    def describe(self) -> str:
        return f"sqlite {self.path}"

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            text = str(exc)
            if "file is not a database" in text or "malformed" in text:
                text = f"the file is not a usable SQLite database ({text})"
            error = StorageUnavailableError if _is_transient(exc) else StorageError
            raise error(f"{doing} failed: {text}", location=self.location, operation=doing) from exc
        except OSError as exc:
            raise StorageUnavailableError(
                f"{doing} failed: {exc}", location=self.location, operation=doing
            ) from exc
        except ValueError as exc:
            # aiosqlite and sqlite3 raise ValueError for a connection closed under them.
            if "closed" not in str(exc):
                raise
            raise StorageError(
                f"{doing} failed: {exc}", location=self.location, operation=doing
            ) from exc

    def rejected_as_duplicate(self, cause: BaseException | None) -> bool:
        return isinstance(cause, sqlite3.IntegrityError)

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

    def _retry_busy_sync(self, attempt: Callable[[], T]) -> T:
        """`_retry_busy` for the writer, which runs on a thread of its own."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.001
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _connect_writer(self) -> sqlite3.Connection:
        """The writer connection (on its own thread): plain sqlite3, so that a whole event
        commit is one call into its thread rather than one per statement (each such hop
        costs ~75 µs)."""
        conn = sqlite3.connect(
            self.path, isolation_level=None, timeout=self.busy_timeout, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            (mode,) = self._retry_busy_sync(
                lambda: conn.execute("PRAGMA journal_mode = WAL")
            ).fetchone()
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
            self._writer_waits = True
            self._writer_wal = str(mode).lower() == "wal"
        except BaseException:
            conn.close()
            raise
        return conn

    async def _in_writer(self, call: Callable[[sqlite3.Connection], T]) -> T:
        """Run `call` on the writer connection on its thread, one call at a time; the call
        runs to its end even if the caller is cancelled."""
        writer = self._require(self._writer)
        thread = self._require(self._writer_thread)
        return await thread.run(lambda: call(writer))

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

    @asynccontextmanager
    async def _immediate(self, conn: aiosqlite.Connection) -> AsyncIterator[SqlConnection]:
        """`BEGIN IMMEDIATE` ... `COMMIT` (ROLLBACK on error), holding the file's write lock."""
        await self._retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield _SqliteConnection(conn)
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")

    def _schema_transaction(
        self, conn: aiosqlite.Connection
    ) -> AbstractAsyncContextManager[SqlConnection]:
        return self._immediate(conn)

    async def _open(self) -> None:
        checker = await self._connect()
        try:
            await self._check_schema(checker)
        finally:
            await checker.close()
        thread = _WriterThread(f"dagloom-writer {self.path.name}")
        try:
            with self._errors("opening the database"):
                writer = await thread.run(self._connect_writer)
        except BaseException:
            thread.stop()
            raise
        try:
            self._pool_send, self._pool_recv = anyio.create_memory_object_stream[
                aiosqlite.Connection
            ](self.readers)
            for _ in range(self.readers):
                reader = await self._connect()
                self._pool.append(reader)
                self._pool_send.send_nowait(reader)
        except BaseException:
            await thread.run(writer.close)
            thread.stop()
            await self._close_readers()
            raise
        self._writer = writer
        self._writer_thread = thread
        self._inline = self._connect_inline()
        self._inline_thread = threading.get_ident()
        self._checkpointer = _Checkpointer(self.path, self.busy_timeout)

    def _connect_inline(self) -> sqlite3.Connection | None:
        """The reader `fetch_small` uses on the loop's thread: read-only and never waiting
        for a lock (a busy file sends the read to the reader pool instead); None when it
        cannot be opened (every read then goes to the pool)."""
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=0, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA query_only = 1")
        except sqlite3.Error:
            return None
        return conn

    async def _close_readers(self) -> None:
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        for reader in self._pool:
            await reader.close()
        self._pool.clear()
        if self._pool_send is not None:
            self._pool_send.close()
        if self._pool_recv is not None:
            self._pool_recv.close()
        self._pool_send = self._pool_recv = None

    async def _close(self) -> None:
        if self._checkpointer is not None:
            await anyio.to_thread.run_sync(self._checkpointer.stop)
            self._checkpointer = None
        await self._close_readers()
        if self._writer is not None:
            await self._in_writer(sqlite3.Connection.close)
            self._writer = None
        if self._writer_thread is not None:
            self._writer_thread.stop()
            self._writer_thread = None

    # -- reads and writes --------------------------------------------------------------------

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a query on a reader connection and return its rows."""
        pool_recv, pool_send = self._require(self._pool_recv), self._require(self._pool_send)
        reader = await pool_recv.receive()
        try:
            with self._errors("reading"):
                return list(await self._retry_busy(lambda: reader.execute_fetchall(sql, params)))
        finally:
            pool_send.send_nowait(reader)

    async def fetch_small(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Read on the loop's own thread: a read by an index takes tens of microseconds,
        a hop to a reader's thread and back several times that. In WAL mode a read never
        waits for the writer; one that finds the file busy (recovery, another process
        switching journal mode) or fails is done by `fetch`, in the pool, with its retries."""
        inline = self._inline
        if inline is not None and threading.get_ident() == self._inline_thread:
            try:
                return inline.execute(sql, params).fetchall()
            except sqlite3.Error:
                pass  # `fetch` reads again, waiting and retrying as it does
        return await self.fetch(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlConnection]:
        """Hold the writer inside `BEGIN IMMEDIATE` ... `COMMIT` (ROLLBACK on error).

        Once begun, the transaction finishes even if the caller is cancelled, so the writer
        is never left inside a transaction.
        """
        self._require(self._writer)
        async with self._write_lock:
            with self._errors("writing"), anyio.CancelScope(shield=True):
                tx = _WriterConnection(self)
                try:
                    yield tx
                except BaseException:
                    if tx.begun:
                        await self._in_writer(_undo)
                    raise
                if tx.begun:
                    await self._in_writer(_end)
                    self._committed(_PAGE)

    async def _write(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """`SqlDatabase._write` in one call into the writer's thread."""

        def write(conn: sqlite3.Connection) -> None:
            for sql, rows in statements:
                if rows:
                    conn.executemany(sql, rows)

        await self._write_once(write, _PAGE)

    async def _write_once(self, body: Callable[[sqlite3.Connection], None], nbytes: int) -> None:
        """Run `body` inside `BEGIN IMMEDIATE` ... `COMMIT` (ROLLBACK if it raises) in one go,
        which finishes even if the caller is cancelled; count `nbytes` committed for the
        checkpointer.

        A small write (`INLINE_WRITE_BYTES` at most) that finds the writer idle and the
        file's write lock free runs on the loop's own thread: in WAL mode with
        `synchronous=NORMAL` a commit is an append to the WAL, tens of microseconds, less
        than the hop into the writer's thread and back. Any other write, and one whose
        `BEGIN IMMEDIATE` finds the file locked (another process writing), is one call into
        the writer's thread, which waits for the lock."""

        def transaction(conn: sqlite3.Connection) -> None:
            self._begin(conn)
            try:
                body(conn)
            except BaseException:
                _undo(conn)
                raise
            _end(conn)

        writer = self._require(self._writer)
        if nbytes <= INLINE_WRITE_BYTES and threading.get_ident() == self._inline_thread:
            try:
                self._write_lock.acquire_nowait()
            except anyio.WouldBlock:
                pass  # another write is under way: wait for it below
            else:
                try:
                    with self._errors("writing"):
                        written = self._write_inline(writer, body)
                finally:
                    self._write_lock.release()
                if written:
                    self._committed(nbytes)
                    return
        async with self._write_lock:
            with self._errors("writing"), anyio.CancelScope(shield=True):
                await self._in_writer(transaction)
        self._committed(nbytes)

    def _write_inline(
        self, conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], None]
    ) -> bool:
        """`_write_once`'s transaction on this thread, holding the write lock; False (nothing
        done) when the file's write lock is taken, rather than waiting for it here."""
        self._writer_waiting(conn, False)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                return False
            raise
        if not self._writer_wal:
            self._writer_waiting(conn, True)
        try:
            body(conn)
            _end(conn)
        except BaseException:
            if conn.in_transaction:  # COMMIT itself can fail (a full disk): never left open
                _undo(conn)
            raise
        return True

    def _committed(self, nbytes: int) -> None:
        if self._checkpointer is not None:
            self._checkpointer.committed(nbytes)

    def _writer_waiting(self, conn: sqlite3.Connection, waits: bool) -> None:
        """Have the writer wait for the file's lock up to `busy_timeout` (`waits`) or not at
        all; a statement only when that changes. Called holding the writer: on its thread,
        or on the loop's thread for an inline write."""
        if self._writer_waits != waits:
            timeout = int(self.busy_timeout * 1000) if waits else 0
            conn.execute(f"PRAGMA busy_timeout = {timeout}")
            self._writer_waits = waits

    def _begin(self, conn: sqlite3.Connection) -> None:
        """`BEGIN IMMEDIATE` on the writer's thread, waiting for the file's lock."""
        self._writer_waiting(conn, True)
        self._retry_busy_sync(lambda: conn.execute("BEGIN IMMEDIATE"))

    async def _store_chunks(
        self,
        batches: Sequence[tuple[str, Sequence[EventRow]]],
        chunks: Sequence[Chunk],
        moves: Sequence[RunMove],
        fence: Fence | None = None,
        inserts: Statements = (),
        only_stored_runs: bool = False,
    ) -> list[RunTransition | None]:
        """Combined with concurrent callers into one transaction (a caller whose fence is
        stale gets `LeaseLostError`, one whose `inserts` break a constraint `StorageError`,
        and only its batch is left out)."""
        self._require(self._writer)
        run_ids = {run_id for run_id, _ in batches}
        batch = _Batch(batches, chunks, moves, run_ids, fence, inserts, only_stored_runs)
        self._queue.append(batch)
        if not self._committing:
            self._committing = True
            try:
                with anyio.CancelScope(shield=True):
                    # Tasks already ready in this loop iteration queue their batches first,
                    # so concurrent runs' writes share one commit.
                    await asyncio.sleep(0)
                    while self._queue:
                        queued, self._queue = self._queue, []
                        await self._commit(queued)
            finally:
                self._committing = False
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.outcomes

    def _write_batches(self, conn: sqlite3.Connection, batches: Sequence[_Batch]) -> None:
        """The body of the transaction that commits `batches`: each one's fence check,
        `inserts` and compare-and-sets, then the chunks of every batch not refused, in one
        call on the connection (each statement through `_WriterConnection` would be a hop
        into the writer's thread of its own)."""
        chunks: list[Chunk] = []
        for b in batches:
            if b.fence is not None:
                found = conn.execute(
                    "SELECT token FROM leases WHERE name = ?", (b.fence.name,)
                ).fetchone()
                current = None if found is None else int(found[0])
                if current != b.fence.token:
                    b.error = LeaseLostError(b.fence.name, b.fence.token, current)
                    continue
            if b.inserts and not _insert(conn, b, self.location):
                continue
            b.outcomes = [_transition(conn, change) for _, _, change in b.moves]
            chunks += kept_chunks(
                b.batches, b.chunks, b.moves, b.outcomes, only_stored_runs=b.only_stored_runs
            )
        total = sum(c.count for c in chunks)
        (last,) = conn.execute(_sql.ALLOCATE_STORAGE_IDS, (total,)).fetchone()
        chunk_rows, asset_rows = chunk_inserts(chunks, last - total + 1)
        conn.executemany(_sql.INSERT_CHUNK, chunk_rows)
        if asset_rows:
            conn.executemany(_sql.INSERT_ASSET_EVENT, asset_rows)

    async def _commit(self, batches: list[_Batch]) -> None:
        try:
            await self._write_once(
                lambda conn: self._write_batches(conn, batches),
                _PAGE + sum(len(c.body) for b in batches for c in b.chunks),
            )
        except StorageError as exc:
            for b in batches:
                b.error = exc
        finally:
            for b in batches:
                b.done.set()
        for run_id in set().union(*(b.run_ids for b in batches)):
            self.notifier.notify(run_id)

    def store_batches_nowait(
        self, batches: Sequence[tuple[str, Sequence[EventRow]]]
    ) -> list[RunTransition]:
        """`store_batches` done at once on the calling thread, or not at all.

        Raises `anyio.WouldBlock`, having written nothing, when that would mean waiting:
        called off the thread that opened the database, while another write of this
        database is under way or queued, or when another process holds the file's write
        lock. A commit is an append to the WAL (`synchronous=NORMAL`): for a sink's batch of
        500 events, ~0.3 ms of this thread against the ~2 checkpoints of the executor (10 ms
        apart) that a write through the writer's thread waits for, during which a busy run
        keeps emitting. Errors are raised as `store_batches` raises them, not retried; what
        failed was rolled back.
        """
        writer = self._writer
        if (
            writer is None
            or threading.get_ident() != self._inline_thread
            or self._committing
            or self._write_lock.locked()
        ):
            raise anyio.WouldBlock
        # Sync from here on: no other task of this loop can start a write meanwhile, so the
        # writer is this call's without taking the lock.
        batch = _Batch(
            batches, encode_chunks(batches), batch_moves(batches), {r for r, _ in batches}
        )
        with self._errors("writing"):
            written = self._write_inline(writer, lambda conn: self._write_batches(conn, [batch]))
        if not written:
            raise anyio.WouldBlock
        self._committed(_PAGE + sum(len(c.body) for c in batch.chunks))
        for run_id in batch.run_ids:
            self.notifier.notify(run_id)
        if batch.error is not None:
            raise batch.error
        return [t for t in batch.outcomes if t is not None]


class SqliteRunStorage(SqlRunStorage[SqliteDatabase]):
    """`RunStorage` on a `SqliteDatabase`."""

    __slots__ = ()


class SqliteEventLogStorage(SqlEventLogStorage[SqliteDatabase]):
    """`EventLogStorage` on a `SqliteDatabase`; run status moves in the same transaction."""

    __slots__ = ()

    def stored_rows(self, run_id: str) -> StoredRunRows:
        """Run `run_id`'s stored event rows, read back from the file when first used: on any
        thread, open or closed, as long as the file is there (see `StoredRunRows`). Never
        blocks until then."""
        database = self.database
        return StoredRunRows(database.path, run_id, busy_timeout=database.busy_timeout)


class SqliteScheduleStorage(SqlScheduleStorage[SqliteDatabase]):
    """`ScheduleStorage` on a `SqliteDatabase`."""

    __slots__ = ()


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
