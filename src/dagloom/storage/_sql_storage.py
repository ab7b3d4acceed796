"""The SQL backends' shared half: the database lifecycle and the three storages over it.

A backend subclasses `SqlDatabase` with what only its driver knows (connecting, reading the
schema version, locking, committing event batches) and hands out `SqlConnection`s that run the
`?`-placeholder statements of `_sql`; everything else here is written once for SQLite and
Postgres.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import anyio
import orjson

from dagloom._counters import PROCESS
from dagloom.auth import Role, StoredToken
from dagloom.auth.audit import AuditEntry
from dagloom.errors import (
    LeaseLostError,
    RunNotFoundError,
    SchemaVersionError,
    StorageError,
    StorageUnavailableError,
)
from dagloom.messages import (
    Backfill,
    BackfillStatus,
    DaemonHeartbeat,
    Event,
    EventRecord,
    EventType,
    InstigatorState,
    InstigatorType,
    Run,
    RunStatus,
    Tick,
    TickStatus,
)
from dagloom.messages.rows import EventRow, rows_by_run
from dagloom.storage import _sql
from dagloom.storage._codec import (
    Chunk,
    asset_key_text,
    decode_chunk,
    decode_record,
    encode_chunks,
)
from dagloom.storage._retry import RETRY_TIMEOUT, retrying
from dagloom.storage._watch import RunEventNotifier, watch_event_batches
from dagloom.storage.automation import AutomationEvaluationRecord
from dagloom.storage.base import (
    RUN_DURATION_BUCKETS,
    RUN_STATUS_BY_EVENT,
    DerivedEventReads,
    Fence,
    Lease,
    PartitionMaterialization,
    PartitionRunRecord,
    RunMove,
    RunsFilter,
    RunStats,
    RunStatusChange,
    RunStorage,
    RunTransition,
    SchemaInfo,
    batch_moves,
    bucketed,
    check_duration_buckets,
    event_status_change,
    refuse_transition,
    without_refused,
)
from dagloom.storage.migrations import Migration, latest, outdated_message, pending


class SqlConnection(Protocol):
    """A driver connection inside a transaction, running statements with `?` placeholders."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return how many rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a query and return its rows."""
        ...


CHUNKS_PER_READ = 8
"""Chunks fetched per query by a `get_events` with a limit (a watcher reads 1000 events)."""


def chunk_inserts(
    chunks: Sequence[Chunk], first: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The `INSERT_CHUNK` and `INSERT_ASSET_EVENT` rows of `chunks`, given consecutive storage
    ids from `first` on, in order."""
    chunk_rows: list[tuple[Any, ...]] = []
    asset_rows: list[tuple[Any, ...]] = []
    for chunk in chunks:
        chunk_rows.append((chunk.run_id, first, first + chunk.count - 1, chunk.body))
        for a in chunk.assets:
            asset_rows.append(
                (first + a.index, chunk.run_id, a.event_type, a.asset_key, a.partition, a.body)
            )
        first += chunk.count
    return chunk_rows, asset_rows


async def insert_chunks(tx: SqlConnection, chunks: Sequence[Chunk]) -> None:
    """Give `chunks` consecutive storage ids, in order, and insert them and their asset events.

    The ids are taken from `event_storage_ids` inside `tx`, which holds that row (and, on
    SQLite, the file) until commit: ids are committed in the order they are given, so a
    watcher's cursor never passes an event that commits later.
    """
    total = sum(c.count for c in chunks)
    if not total:
        return
    taken = await tx.fetch(_sql.ALLOCATE_STORAGE_IDS, (total,))
    chunk_rows, asset_rows = chunk_inserts(chunks, int(taken[0][0]) - total + 1)
    await tx.executemany(_sql.INSERT_CHUNK, chunk_rows)
    if asset_rows:
        await tx.executemany(_sql.INSERT_ASSET_EVENT, asset_rows)


async def transition(tx: SqlConnection, change: RunStatusChange) -> RunTransition | None:
    """Move a run as `change` asks, if `RUN_TRANSITIONS` allows it from its stored status:
    one compare-and-set statement inside `tx` (and, when refused, one read of the status that
    won). None when no such run is stored."""
    sql = _sql.transition_run(change)
    if sql is not None and await tx.execute(sql, _sql.status_row(change)):
        return RunTransition(applied=True, status=change.status)
    found = await tx.fetch(_sql.RUN_STATUS, (change.run_id,))
    return refuse_transition(change, RunStatus(found[0][0])) if found else None


def kept_chunks(
    batches: Sequence[tuple[str, Sequence[EventRow]]],
    chunks: Sequence[Chunk],
    moves: Sequence[RunMove],
    outcomes: Sequence[RunTransition | None],
    *,
    only_stored_runs: bool = False,
) -> Sequence[Chunk]:
    """The chunks to insert once the `moves` of these batches had these outcomes: `chunks`
    (their encoding) as they are, or the batches encoded again without the refused rows
    (see `without_refused`)."""
    kept = without_refused(batches, moves, outcomes, only_stored_runs=only_stored_runs)
    return chunks if kept is None else encode_chunks(kept)


async def delete_run_events(tx: SqlConnection, run_id: str) -> None:
    """Delete a run's chunks and its asset index entries."""
    await tx.execute("DELETE FROM event_chunks WHERE run_id = ?", (run_id,))
    await tx.execute("DELETE FROM asset_events WHERE run_id = ?", (run_id,))


class _Closeable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=_Closeable)
"""A backend's raw driver connection."""
R = TypeVar("R")

Statements = Sequence[tuple[str, Sequence[Sequence[Any]]]]
"""SQL statements, each with the parameter rows it runs once for, in order."""


class SqlDatabase(abc.ABC, Generic[C]):
    """One SQL database shared by a backend's three storages.

    `open`/`close` are counted, so each storage over the database opens and closes it; `close`
    is idempotent and, once begun, finishes even if cancelled. `open` creates the schema in an
    empty database and raises `SchemaVersionError` for a schema of another version (and
    `StorageError` for a database it cannot use). Use from one event loop.

    Every driver error leaves as a `StorageError`. Reads (`fetch`), `write` and
    `store_batches` retry a `StorageUnavailableError` (connection lost, locked, disk full)
    with backoff for `retry_timeout` seconds after the first failure, reconnecting as they
    go, then raise it; a `transaction` retries getting its connection and beginning, not the
    statements of its body, which may have run once already.
    """

    migrations: ClassVar[Sequence[Migration]]
    row_lock: ClassVar[str] = ""
    """Appended to a SELECT of a row the transaction rewrites, to lock it until commit."""

    def __init__(self, *, poll_interval: float, retry_timeout: float = RETRY_TIMEOUT) -> None:
        self.poll_interval = poll_interval
        self.retry_timeout = retry_timeout
        self.notifier = RunEventNotifier()
        self._opened = 0

    # -- what each backend supplies ----------------------------------------------------------

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the data lives, for messages (no password)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line naming the backend and where it keeps its data."""

    @abc.abstractmethod
    def _errors(self, doing: str) -> AbstractContextManager[None]:
        """Turn the driver's errors while `doing` into one-line `StorageError`s."""

    @abc.abstractmethod
    async def _connect(self) -> C:
        """A new connection of its own; `StorageError` when the database is unusable."""

    @abc.abstractmethod
    async def _read_version(self, conn: C) -> int:
        """The stored schema version (0 for an empty database); `StorageError` for a database
        that holds another application's tables."""

    @abc.abstractmethod
    def _schema_transaction(self, conn: C) -> AbstractAsyncContextManager[SqlConnection]:
        """A transaction on `conn` that no other process can migrate alongside."""

    @abc.abstractmethod
    async def _open(self) -> None:
        """Connect and check the schema (with `_check_schema`); undo it all on failure."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Close every connection `_open` made."""

    @abc.abstractmethod
    def rejected_as_duplicate(self, cause: BaseException | None) -> bool:
        """Whether the driver error under a failed write says it broke a unique key."""

    @abc.abstractmethod
    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """`fetch` once, without retrying."""

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[SqlConnection]:
        """A connection inside a write transaction, committed on success and rolled back on
        error. Once begun, it finishes even if the caller is cancelled."""

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a query (with `?` placeholders) outside any write transaction; its rows.
        Retried as the class docstring says."""
        return await self._retrying("reading", lambda: self._fetch(sql, params))

    async def fetch_small(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """`fetch` for a query that reads a few rows through an index (a run by its id, a
        page of a run's chunks): one a backend may answer without leaving the event loop's
        thread. The same rows and errors as `fetch`."""
        return await self.fetch(sql, params)

    async def write(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """Run each statement once per parameter row, all in one write transaction. Retried
        as the class docstring says (a failed attempt rolled back or never reached the
        database)."""
        await self._retrying("writing", lambda: self._write(statements))

    def _transaction_once(self) -> AbstractAsyncContextManager[SqlConnection]:
        """A `transaction` that does not retry beginning, for an operation retried whole."""
        return self.transaction()

    async def _write(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """`write` once, without retrying."""
        async with self._transaction_once() as tx:
            for sql, rows in statements:
                await tx.executemany(sql, rows)

    async def store_batches(
        self, batches: Sequence[tuple[str, Sequence[EventRow]]], *, fence: Fence | None = None
    ) -> list[RunTransition]:
        """Store (run_id, rows) batches and move the runs their lifecycle events concern, in
        one transaction, then wake the runs' watchers; see `EventLogStorage.store_events`.

        Retried as the class docstring says. A connection lost during COMMIT leaves it
        unknown whether the batch was stored, so each retry first looks for the batch's first
        chunk (same run, same bytes); if it is there, the transaction committed with that
        chunk whole, its transitions applied, and the batch is not stored again.

        With `fence`, the lease's token is checked in the same transaction (the leases table
        is in this database): `LeaseLostError` and nothing stored when it is stale.
        """
        outcomes = await self.store_batch_outcomes(batches, fence=fence)
        return [t for t in outcomes if t is not None]

    async def store_batch_outcomes(
        self,
        batches: Sequence[tuple[str, Sequence[EventRow]]],
        *,
        fence: Fence | None = None,
        inserts: Statements = (),
        only_stored_runs: bool = False,
    ) -> list[RunTransition | None]:
        """`store_batches` with one outcome per lifecycle event, None for a run not stored.

        `inserts` (statements with their parameter rows, as `write` takes) are run first in
        the same transaction, e.g. the rows of a new run its events then move; when they
        fail (a duplicate key), nothing of this call is stored. With `only_stored_runs`, the
        events of a run that is not stored are not stored either."""
        moves = batch_moves(batches)
        chunks = encode_chunks(batches)
        failed = False

        async def attempt() -> list[RunTransition | None]:
            nonlocal failed
            if failed and await self._stored_already(chunks):
                return [RunTransition(applied=True, status=change.status) for *_, change in moves]
            try:
                return await self._store_chunks(
                    batches, chunks, moves, fence, inserts, only_stored_runs
                )
            except StorageUnavailableError:
                failed = True
                raise

        return await self._retrying("writing events", attempt)

    def store_batches_nowait(
        self, batches: Sequence[tuple[str, Sequence[EventRow]]]
    ) -> list[RunTransition]:
        """`store_batches` done at once, without waiting for anything, or not at all:
        `anyio.WouldBlock` (nothing written) when it cannot be. A backend whose writes are
        round trips to a server always raises it, as this default does."""
        raise anyio.WouldBlock

    async def _stored_already(self, chunks: Sequence[Chunk]) -> bool:
        """Whether the transaction that writes `chunks` committed (it wrote all or none)."""
        first = next((c for c in chunks if c.count), None)
        if first is None:
            return False
        found = await self._fetch(
            "SELECT 1 FROM event_chunks WHERE run_id = ? AND body = ? LIMIT 1",
            (first.run_id, first.body),
        )
        if found:
            for run_id in {c.run_id for c in chunks}:
                self.notifier.notify(run_id)
        return bool(found)

    async def _retrying(self, operation: str, attempt: Callable[[], Awaitable[R]]) -> R:
        """`attempt()`, retried on `StorageUnavailableError` for `retry_timeout` seconds."""
        return await retrying(
            attempt, timeout=self.retry_timeout, operation=operation, location=self.location
        )

    @abc.abstractmethod
    async def _store_chunks(
        self,
        batches: Sequence[tuple[str, Sequence[EventRow]]],
        chunks: Sequence[Chunk],
        moves: Sequence[RunMove],
        fence: Fence | None = None,
        inserts: Statements = (),
        only_stored_runs: bool = False,
    ) -> list[RunTransition | None]:
        """`store_batches` once encoded (`chunks`), in one transaction: the check of `fence`
        (if any; `LeaseLostError` and nothing written when stale), the `inserts` (nothing of
        this call written when they fail), the compare-and-set
        of each of `moves` in order (`transition`), then the chunks of what was not refused
        (`kept_chunks`, passed `only_stored_runs`) with their asset events
        (`insert_chunks`); then wake the runs' watchers. One outcome per move."""

    # -- shared ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (first call) and check the schema; see the class docstring."""
        self._opened += 1
        if self._opened > 1:
            return
        try:
            await self._open()
        except BaseException:
            self._opened = 0
            raise

    async def close(self) -> None:
        """Close the connections when the last opener closes; idempotent."""
        if self._opened == 0:
            return
        self._opened -= 1
        if self._opened:
            return
        with anyio.CancelScope(shield=True):
            await self._close()

    async def schema_info(self) -> SchemaInfo:
        """The stored schema version (0 for an empty database) and the latest known."""
        conn = await self._connect()
        try:
            with self._errors("reading the schema version"):
                found = await self._read_version(conn)
        finally:
            await conn.close()
        return SchemaInfo(self.location, found, latest(self.migrations))

    async def migrate(self) -> SchemaInfo:
        """Apply pending migrations in one transaction; a newer schema raises."""
        conn = await self._connect()
        try:
            version = await self._settle_schema(conn, "migrating the schema", upgrade=True)
        finally:
            await conn.close()
        expected = latest(self.migrations)
        if version > expected:
            raise self._version_error(version)
        return SchemaInfo(self.location, version, expected)

    async def _check_schema(self, conn: C) -> None:
        """Create the schema in an empty database; raise unless it is at the latest version."""
        found = await self._settle_schema(conn, "checking the schema", upgrade=False)
        if found != latest(self.migrations):
            raise self._version_error(found)

    async def _settle_schema(self, conn: C, doing: str, *, upgrade: bool) -> int:
        """Apply the pending migrations, in one transaction, and return the version reached.

        Without `upgrade` only an empty database is migrated; a schema newer than the latest
        is never touched.
        """
        with self._errors(doing):
            async with self._schema_transaction(conn) as tx:
                found = await self._read_version(conn)
                if found > latest(self.migrations) or (found and not upgrade):
                    return found
                return await self._apply(tx, found)

    async def _apply(self, tx: SqlConnection, current: int) -> int:
        version = current
        for migration in pending(self.migrations, current):
            for statement in migration.statements:
                await tx.execute(statement)
            if migration.convert is not None:
                await migration.convert(tx)
            for statement in migration.cleanup:
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO dagloom_schema (version, migrated_at) VALUES (?, ?)",
                (migration.version, time.time()),
            )
            version = migration.version
        return version

    def _require(self, resource: R | None) -> R:
        """`resource` (a connection or pool `_open` made); `StorageError` when not open."""
        if resource is None:
            raise StorageError("the storage is not open", location=self.location)
        return resource

    def _version_error(self, found: int) -> SchemaVersionError:
        expected = latest(self.migrations)
        return SchemaVersionError(
            outdated_message(self.location, found, expected),
            location=self.location,
            found=found,
            expected=expected,
        )


D = TypeVar("D", bound=SqlDatabase[Any])


class SqlStorage(Generic[D]):
    """A storage over a `SqlDatabase`: opening, closing and migrating go to the database."""

    __slots__ = ("database",)

    def __init__(self, database: D) -> None:
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


def run_inserts(run: Run, row: Sequence[Any]) -> Statements:
    """The statements storing new `run` whose `_sql.run_row` is `row`, with its tags and
    partitions."""
    return [
        (_sql.INSERT_RUN, [row]),
        (_sql.INSERT_TAG, [(run.run_id, k, v) for k, v in run.tags.items()]),
        (_sql.INSERT_RUN_PARTITIONS, _sql.run_partition_rows(run)),
    ]


@contextlib.asynccontextmanager
async def _adding(database: SqlDatabase[Any], run: Run) -> AsyncIterator[None]:
    """Around storing new `run`: a duplicate key says which run is already stored."""
    try:
        yield
    except StorageError as exc:
        if database.rejected_as_duplicate(exc.__cause__):
            raise StorageError(
                f"a run with id {run.run_id!r} is already stored", location=database.location
            ) from exc
        raise


class SqlRunStorage(SqlStorage[D]):
    """`RunStorage` on a `SqlDatabase`."""

    __slots__ = ()

    async def add_run(self, run: Run) -> Run:
        row = _sql.run_row(run)
        async with _adding(self.database, run):
            await self.database.write(run_inserts(run, row))
        # The run as a read would return it, without the read: the row converters round-trip.
        return _sql.row_run(row)

    async def get_run(self, run_id: str) -> Run | None:
        rows = await self.database.fetch_small(f"{_sql.RUN_SELECT} WHERE run_id = ?", (run_id,))
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

    async def get_partition_runs(
        self, asset_key: Sequence[str], statuses: Sequence[RunStatus]
    ) -> list[PartitionRunRecord]:
        if not statuses:
            return []
        marks = ", ".join("?" for _ in statuses)
        rows = await self.database.fetch(
            "SELECT r.run_id, r.status, r.create_time, p.range_start, p.range_end "
            "FROM run_partitions p JOIN runs r ON r.run_id = p.run_id "
            f"WHERE p.asset_key = ? AND r.status IN ({marks}) ORDER BY r.id",
            (asset_key_text(list(asset_key)), *(int(s) for s in statuses)),
        )
        return [
            PartitionRunRecord(run_id, RunStatus(status), create_time, start, end)
            for run_id, status, create_time, start, end in rows
        ]

    async def get_runs_count(self, filters: RunsFilter | None = None) -> int:
        where, params = _sql.runs_where(filters)
        rows = await self.database.fetch(f"SELECT COUNT(*) FROM runs{where}", params)
        return int(rows[0][0])

    async def get_run_stats(
        self, duration_buckets: Sequence[float] = RUN_DURATION_BUCKETS
    ) -> RunStats:
        bounds = check_duration_buckets(duration_buckets)
        rows = await self.database.fetch(_sql.run_stats_query(len(bounds)), bounds)
        counts: dict[tuple[str, RunStatus], int] = {}
        per_bucket: dict[str, list[tuple[int, int, float]]] = {}
        for kind, job, key, n, total in rows:
            if kind == 0:
                counts[(job, RunStatus(key))] = int(n)
            else:
                per_bucket.setdefault(job, []).append((int(key), int(n), float(total)))
        return RunStats(
            counts=counts,
            durations={job: bucketed(bounds, found) for job, found in per_bucket.items()},
        )

    async def add_backfill(self, backfill: Backfill) -> None:
        try:
            async with self.database.transaction() as tx:
                await tx.execute(
                    "INSERT INTO backfills (backfill_id, status, create_time, body) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        backfill.backfill_id,
                        int(backfill.status),
                        backfill.create_time,
                        bytes(backfill),
                    ),
                )
        except StorageError as exc:
            if self.database.rejected_as_duplicate(exc.__cause__):
                raise StorageError(
                    f"a backfill with id {backfill.backfill_id!r} is already stored",
                    location=self.database.location,
                ) from exc
            raise

    async def get_backfill(self, backfill_id: str) -> Backfill | None:
        rows = await self.database.fetch(
            "SELECT body FROM backfills WHERE backfill_id = ?", (backfill_id,)
        )
        return Backfill.parse(bytes(rows[0][0])) if rows else None

    async def get_backfills(
        self, statuses: Sequence[BackfillStatus] = (), *, limit: int | None = None
    ) -> list[Backfill]:
        sql = "SELECT body FROM backfills"
        params: list[Any] = [int(s) for s in statuses]
        if statuses:
            sql += f" WHERE status IN ({', '.join('?' for _ in statuses)})"
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [Backfill.parse(bytes(row[0])) for row in await self.database.fetch(sql, params)]

    async def update_backfill(self, backfill: Backfill) -> None:
        async with self.database.transaction() as tx:
            changed = await tx.execute(
                "UPDATE backfills SET status = ?, body = ? WHERE backfill_id = ?",
                (int(backfill.status), bytes(backfill), backfill.backfill_id),
            )
        if not changed:
            raise StorageError(
                f"no backfill with id {backfill.backfill_id!r}", location=self.database.location
            )

    async def handle_run_events(self, events: Sequence[Event]) -> list[RunTransition | None]:
        if not any(e.event_type in RUN_STATUS_BY_EVENT for e in events):
            return [None] * len(events)
        async with self.database.transaction() as tx:
            return [
                await transition(tx, event_status_change(e))
                if e.event_type in RUN_STATUS_BY_EVENT
                else None
                for e in events
            ]

    async def add_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        async with self.database.transaction() as tx:
            rows = await tx.fetch(
                f"SELECT tags FROM runs WHERE run_id = ?{self.database.row_lock}", (run_id,)
            )
            if not rows:
                raise RunNotFoundError(run_id)
            merged = {**orjson.loads(rows[0][0]), **tags}
            await tx.execute(
                "UPDATE runs SET tags = ? WHERE run_id = ?", (orjson.dumps(merged).decode(), run_id)
            )
            await tx.executemany(_sql.UPSERT_TAG, [(run_id, k, v) for k, v in tags.items()])

    async def delete_run(self, run_id: str) -> None:
        async with self.database.transaction() as tx:
            if await tx.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)) == 0:
                raise RunNotFoundError(run_id)
            await tx.execute("DELETE FROM run_tags WHERE run_id = ?", (run_id,))
            await tx.execute("DELETE FROM run_partitions WHERE run_id = ?", (run_id,))
            await delete_run_events(tx, run_id)

    async def add_job_snapshot(self, job_name: str, snapshot: bytes) -> str:
        snapshot_id = hashlib.sha256(snapshot).hexdigest()
        async with self.database.transaction() as tx:
            await tx.execute(
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


class _PartitionIndex:
    """What `get_materialized_partitions` last read of one asset: each partition's latest
    materialization, the highest storage id seen and how many index rows there were, so the
    next read fetches only newer rows (and notices rows deleted since, by the count)."""

    __slots__ = ("last", "latest", "rows")

    def __init__(self, last: int, rows: int, latest: dict[str, PartitionMaterialization]) -> None:
        self.last = last
        self.rows = rows
        self.latest = latest


_PARTITION_INDEX_ASSETS = 256


class SqlEventLogStorage(SqlStorage[D], DerivedEventReads):
    """`EventLogStorage` on a `SqlDatabase`; run status moves in the same transaction."""

    __slots__ = ("_partition_index",)

    def __init__(self, database: D) -> None:
        super().__init__(database)
        self._partition_index: dict[str, _PartitionIndex] = {}

    async def store_events(self, events: Sequence[Event]) -> list[RunTransition]:
        if not events:
            return []
        transitions = await self.database.store_batches(rows_by_run(events))
        PROCESS.events_written += len(events)
        return transitions

    async def transition_runs(
        self, events: Sequence[Event], *, fence: Fence | None = None
    ) -> list[RunTransition | None]:
        """Move each event's run as its lifecycle event says (one event per run, each a
        compare-and-set as in `store_events`) in one transaction, storing the events whose
        move applied; with `fence`, checked in the same transaction (`LeaseLostError` and
        nothing written when stale; the fence's lease must be in this database, see
        `fences_with`). One outcome per event, None for a run that is not stored."""
        if not events:
            return []
        outcomes = await self.database.store_batch_outcomes(
            rows_by_run(events), fence=fence, only_stored_runs=True
        )
        PROCESS.events_written += sum(1 for t in outcomes if t is not None and t.applied)
        return outcomes

    async def add_run_with_event(self, run: Run, event: Event) -> tuple[Run, RunTransition]:
        """Store new `run` (as `SqlRunStorage.add_run`, whose database this must be, see
        `updates_run_status_in`) and move it by its lifecycle `event` (as `store_events`),
        in one transaction: both or neither are stored."""
        row = _sql.run_row(run)
        async with _adding(self.database, run):
            outcomes = await self.database.store_batch_outcomes(
                rows_by_run([event]), inserts=run_inserts(run, row)
            )
        PROCESS.events_written += 1
        moved = outcomes[0]
        assert moved is not None, "the run was stored in the same transaction"
        return _sql.row_run(row), moved

    def fences_with(self, schedule_storage: object) -> bool:
        """Whether `schedule_storage` keeps its leases in this storage's database, so
        `transition_runs` can check their fences in its own transaction."""
        return getattr(schedule_storage, "database", None) is self.database

    async def store_rows(self, run_id: str, rows: Sequence[EventRow]) -> list[RunTransition]:
        if not rows:
            return []
        transitions = await self.database.store_batches([(run_id, rows)])
        PROCESS.events_written += len(rows)
        return transitions

    def store_rows_nowait(self, run_id: str, rows: Sequence[EventRow]) -> list[RunTransition]:
        """`store_rows` done at once on the calling thread, or not at all: raises
        `anyio.WouldBlock`, having written nothing, when the database cannot write without
        waiting (see `store_batches_nowait`). Not retried: a `StorageError` is raised as is,
        with nothing written."""
        if not rows:
            return []
        transitions = self.database.store_batches_nowait([(run_id, rows)])
        PROCESS.events_written += len(rows)
        return transitions

    def updates_run_status_in(self, run_storage: RunStorage) -> bool:
        return isinstance(run_storage, SqlRunStorage) and run_storage.database is self.database

    async def get_events(
        self,
        run_id: str,
        *,
        after: int | None = None,
        limit: int | None = None,
        event_types: Sequence[EventType] = (),
    ) -> list[EventRecord]:
        wanted = frozenset(int(t) for t in event_types)
        out: list[EventRecord] = []
        # Without a limit every chunk is read at once; with one, a few chunks at a time.
        page = None if limit is None else CHUNKS_PER_READ
        cursor = after
        while True:
            sql, params = _sql.chunks_query(run_id, cursor, page)
            # A page is a few chunks by the run's index; all of them may be many more.
            read = self.database.fetch if page is None else self.database.fetch_small
            chunks = await read(sql, params)
            for first, _last, body in chunks:
                decode_chunk(run_id, first, body, out, after=after, event_types=wanted, limit=limit)
            if page is None or len(chunks) < page or (limit is not None and len(out) >= limit):
                return out
            cursor = chunks[-1][1]

    def watch_run_event_batches(
        self, run_id: str, *, after: int | None = None, stop_at_end: bool = True
    ) -> AsyncIterator[list[EventRecord]]:
        return watch_event_batches(
            self,
            self.database.notifier,
            run_id,
            after=after,
            stop_at_end=stop_at_end,
            poll_interval=self.database.poll_interval,
            retry_timeout=self.database.retry_timeout,
        )

    def wake_run_watchers(self, run_id: str) -> None:
        self.database.notifier.notify(run_id)

    async def get_events_stored(self) -> int:
        rows = await self.database.fetch("SELECT last_storage_id FROM event_storage_ids")
        return int(rows[0][0]) if rows else 0

    async def get_asset_keys(self) -> list[tuple[str, ...]]:
        rows = await self.database.fetch("SELECT DISTINCT asset_key FROM asset_events")
        return sorted(tuple(row[0].split("/")) for row in rows)

    async def get_materializations(
        self,
        asset_key: Sequence[str],
        *,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[EventRecord]:
        return await self._asset_records(asset_key, EventType.ASSET_MATERIALIZATION, limit, before)

    async def get_observations(
        self,
        asset_key: Sequence[str],
        *,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[EventRecord]:
        return await self._asset_records(asset_key, EventType.ASSET_OBSERVATION, limit, before)

    async def get_asset_check_evaluations(
        self, asset_key: Sequence[str], *, limit: int | None = None
    ) -> list[EventRecord]:
        return await self._asset_records(asset_key, EventType.ASSET_CHECK_EVALUATION, limit, None)

    async def get_latest_asset_events(
        self, asset_keys: Sequence[Sequence[str]], event_types: Sequence[EventType]
    ) -> dict[tuple[tuple[str, ...], EventType], EventRecord]:
        # One query per 500 keys: 5,000 keys read 6-10x faster than with two queries per
        # key (python -m benchmarks staleness, SQLite).
        texts = list(dict.fromkeys(asset_key_text(list(k)) for k in asset_keys))
        types = [int(t) for t in event_types]
        out: dict[tuple[tuple[str, ...], EventType], EventRecord] = {}
        step = _sql.LATEST_BATCH
        for begin in range(0, len(texts), step):
            sql, params = _sql.latest_asset_events_query(texts[begin : begin + step], types)
            for storage_id, run_id, body, key, event_type in await self.database.fetch(sql, params):
                record = decode_record(storage_id, run_id, body)
                out[(tuple(key.split("/")), EventType(event_type))] = record
        return out

    async def get_latest_partition_events(
        self,
        asset_key: Sequence[str],
        event_types: Sequence[EventType],
        partitions: Sequence[str] | None = None,
    ) -> dict[tuple[str, EventType], EventRecord]:
        text = asset_key_text(list(asset_key))
        types = [int(t) for t in event_types]
        chunks: list[Sequence[str] | None] = [None]
        if partitions is not None:
            wanted = list(dict.fromkeys(partitions))
            step = _sql.LATEST_BATCH
            chunks = [wanted[i : i + step] for i in range(0, len(wanted), step)]
        out: dict[tuple[str, EventType], EventRecord] = {}
        for chunk in chunks:
            sql, params = _sql.latest_partition_events_query(text, types, chunk)
            for storage_id, run_id, body, partition, event_type in await self.database.fetch(
                sql, params
            ):
                out[(partition, EventType(event_type))] = decode_record(storage_id, run_id, body)
        return out

    async def _asset_records(
        self,
        asset_key: Sequence[str],
        event_type: EventType,
        limit: int | None,
        before: int | None,
    ) -> list[EventRecord]:
        """An asset's events of one type, newest first, older than the `before` storage_id."""
        sql, params = _sql.materializations_query(
            asset_key_text(list(asset_key)), int(event_type), limit, before
        )
        return [decode_record(*row) for row in await self.database.fetch(sql, params)]

    async def get_materialized_partitions(
        self, asset_key: Sequence[str]
    ) -> dict[str, PartitionMaterialization]:
        # Incremental over what this storage read last time: only rows newer than the last
        # storage id seen are fetched (asset_events_by_key), with the count of the asset's
        # index rows (covering index asset_events_by_partition) in the same statement; a
        # count that does not add up means rows were deleted, and the asset is read whole.
        text = asset_key_text(list(asset_key))
        seen = self._partition_index.get(text)
        if seen is not None:
            found = await self._partition_rows_after(text, seen.last)
            if found is not None and found[0] == seen.rows + len(found[1]):
                return dict(self._index_partitions(text, seen, *found).latest)
        found = await self._partition_rows_after(text, 0)
        assert found is not None
        return dict(self._index_partitions(text, None, *found).latest)

    async def _partition_rows_after(
        self, text: str, after: int
    ) -> tuple[int, list[tuple[str, int, str]]] | None:
        kind = int(EventType.ASSET_MATERIALIZATION)
        rows = await self.database.fetch(
            "SELECT partition, storage_id, run_id FROM asset_events "
            "WHERE asset_key = ? AND event_type = ? AND partition IS NOT NULL "
            "AND storage_id > ? "
            "UNION ALL SELECT NULL, COUNT(*), NULL FROM asset_events "
            "WHERE asset_key = ? AND event_type = ? AND partition IS NOT NULL",
            (text, kind, after, text, kind),
        )
        count: int | None = None
        newer: list[tuple[str, int, str]] = []
        for partition, storage_id, run_id in rows:
            if partition is None:
                count = int(storage_id)
            else:
                newer.append((partition, int(storage_id), run_id))
        if count is None:
            return None
        newer.sort(key=lambda row: row[1])
        return count, newer

    def _index_partitions(
        self,
        text: str,
        seen: _PartitionIndex | None,
        count: int,
        newer: list[tuple[str, int, str]],
    ) -> _PartitionIndex:
        """`seen` with `newer` (in storage order) applied; kept for the next read unless
        another read replaced `seen` meanwhile."""
        if seen is not None and not newer:
            return seen
        latest = {} if seen is None else dict(seen.latest)
        for partition, storage_id, run_id in newer:
            latest[partition] = PartitionMaterialization(storage_id, run_id)
        last = newer[-1][1] if newer else 0
        entry = _PartitionIndex(max(last, 0 if seen is None else seen.last), count, latest)
        index = self._partition_index
        if index.get(text) is seen:
            index.pop(text, None)
            while len(index) >= _PARTITION_INDEX_ASSETS:
                index.pop(next(iter(index)))
            index[text] = entry
        return entry

    async def get_materialized_partition_keys(self, asset_key: Sequence[str]) -> set[str]:
        # The covering index asset_events_by_partition alone, one entry per key read.
        rows = await self.database.fetch(
            "SELECT DISTINCT partition FROM asset_events "
            "WHERE asset_key = ? AND event_type = ? AND partition IS NOT NULL",
            (asset_key_text(list(asset_key)), int(EventType.ASSET_MATERIALIZATION)),
        )
        return {row[0] for row in rows}

    async def get_latest_materialization_ids(
        self, after: int = 0
    ) -> dict[tuple[str, ...], dict[str | None, int]]:
        """Each asset key -> each partition (None: unpartitioned) -> the storage id of its
        latest materialization, over the materializations stored after storage id `after`
        (0: all): one query for every asset, for the automation loop's snapshot."""
        rows = await self.database.fetch(
            "SELECT asset_key, partition, MAX(storage_id) FROM asset_events "
            "WHERE event_type = ? AND storage_id > ? GROUP BY asset_key, partition",
            (int(EventType.ASSET_MATERIALIZATION), after),
        )
        out: dict[tuple[str, ...], dict[str | None, int]] = {}
        for key, partition, storage_id in rows:
            out.setdefault(tuple(key.split("/")), {})[partition] = int(storage_id)
        return out

    async def add_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> None:
        async with self.database.transaction() as tx:
            await tx.executemany(
                "INSERT INTO dynamic_partitions (partitions_def_name, partition) VALUES (?, ?) "
                "ON CONFLICT (partitions_def_name, partition) DO NOTHING",
                [(partitions_def_name, key) for key in dict.fromkeys(partition_keys)],
            )

    async def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        async with self.database.transaction() as tx:
            await tx.execute(
                "DELETE FROM dynamic_partitions WHERE partitions_def_name = ? AND partition = ?",
                (partitions_def_name, partition_key),
            )

    async def get_dynamic_partitions(self, partitions_def_name: str) -> list[str]:
        rows = await self.database.fetch(
            "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = ? ORDER BY id",
            (partitions_def_name,),
        )
        return [row[0] for row in rows]

    async def delete_events(self, run_id: str) -> None:
        async with self.database.transaction() as tx:
            await delete_run_events(tx, run_id)


def _lease(rows: Sequence[Sequence[Any]]) -> Lease | None:
    """The lease in the first of these (name, owner, expires_at, token) rows, if any (a
    released one, with no owner, is none)."""
    if not rows or not rows[0][1]:
        return None
    name, owner, expires_at, token = rows[0]
    return Lease(name=name, owner=owner, expires_at=expires_at, token=token)


class SqlScheduleStorage(SqlStorage[D]):
    """`ScheduleStorage` on a `SqlDatabase`."""

    __slots__ = ()

    async def set_instigator_state(self, state: InstigatorState) -> None:
        async with self.database.transaction() as tx:
            await tx.execute(
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
        async with self.database.transaction() as tx:
            await tx.execute("DELETE FROM instigators WHERE origin_id = ?", (origin_id,))

    async def set_sensor_cursor(
        self, origin_id: str, cursor: str, *, fence: Fence | None = None
    ) -> None:
        async with self.database.transaction() as tx:
            await self._fenced(tx, fence)
            rows = await tx.fetch(
                f"SELECT body FROM instigators WHERE origin_id = ?{self.database.row_lock}",
                (origin_id,),
            )
            if not rows:
                raise StorageError(f"no instigator state for {origin_id!r}")
            state = InstigatorState.parse(rows[0][0])
            state.cursor = cursor
            await tx.execute(
                "UPDATE instigators SET body = ? WHERE origin_id = ?", (bytes(state), origin_id)
            )

    async def _fenced(self, tx: SqlConnection, fence: Fence | None) -> None:
        """`LeaseLostError` unless `fence` (if any) is current, locking the lease's row until
        the transaction ends so the lease cannot pass on before the write commits."""
        if fence is None:
            return
        rows = await tx.fetch(
            f"SELECT token FROM leases WHERE name = ?{self.database.row_lock}", (fence.name,)
        )
        current = rows[0][0] if rows else None
        if current != fence.token:
            raise LeaseLostError(fence.name, fence.token, current)

    async def check_fence(self, fence: Fence) -> None:
        async with self.database.transaction() as tx:
            await self._fenced(tx, fence)

    async def create_tick(self, tick: Tick, *, fence: Fence | None = None) -> Tick:
        stored = Tick.parse(bytes(tick))
        stored.tick_id = 0
        async with self.database.transaction() as tx:
            await self._fenced(tx, fence)
            rows = await tx.fetch(
                "INSERT INTO ticks (origin_id, status, timestamp, body) VALUES (?, ?, ?, ?) "
                "RETURNING id",
                (stored.origin_id, int(stored.status), stored.timestamp, bytes(stored)),
            )
            stored.tick_id = rows[0][0]
        return stored

    async def update_tick(self, tick: Tick, *, fence: Fence | None = None) -> None:
        async with self.database.transaction() as tx:
            await self._fenced(tx, fence)
            changed = await tx.execute(
                "UPDATE ticks SET origin_id = ?, status = ?, timestamp = ?, body = ? WHERE id = ?",
                (tick.origin_id, int(tick.status), tick.timestamp, bytes(tick), tick.tick_id),
            )
            if changed == 0:
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
        async with self.database.transaction() as tx:
            return await tx.execute(
                "DELETE FROM ticks WHERE origin_id = ? AND timestamp < ?", (origin_id, before)
            )

    async def acquire_lease(
        self, name: str, owner: str, *, duration: float, now: float
    ) -> Lease | None:
        async with self.database.transaction() as tx:
            rows = await tx.fetch(_sql.ACQUIRE_LEASE, (name, owner, now + duration, now))
        return _lease(rows)

    async def release_lease(self, name: str, owner: str) -> bool:
        async with self.database.transaction() as tx:
            return await tx.execute(_sql.RELEASE_LEASE, (name, owner)) > 0

    async def purge_leases(self, before: float) -> int:
        async with self.database.transaction() as tx:
            return await tx.execute(_sql.PURGE_LEASES, (before,))

    async def get_lease(self, name: str) -> Lease | None:
        return _lease(
            await self.database.fetch(
                "SELECT name, owner, expires_at, token FROM leases WHERE name = ?", (name,)
            )
        )

    async def add_daemon_heartbeat(self, heartbeat: DaemonHeartbeat) -> None:
        async with self.database.transaction() as tx:
            await tx.execute(
                "INSERT INTO daemon_heartbeats (daemon_type, body) VALUES (?, ?) "
                "ON CONFLICT (daemon_type) DO UPDATE SET body = excluded.body",
                (heartbeat.daemon_type, bytes(heartbeat)),
            )

    async def get_daemon_heartbeats(self) -> dict[str, DaemonHeartbeat]:
        rows = await self.database.fetch("SELECT daemon_type, body FROM daemon_heartbeats")
        return {row[0]: DaemonHeartbeat.parse(row[1]) for row in rows}

    # -- API tokens (`dagloom.auth.TokenStorage`) -----------------------------------------

    async def add_api_token(self, token: StoredToken) -> None:
        async with self.database.transaction() as tx:
            await tx.execute(
                "INSERT INTO api_tokens (token_id, name, role, secret_hash, created_at, "
                "expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token.token_id,
                    token.name,
                    int(token.role),
                    token.secret_hash,
                    token.created_at,
                    token.expires_at,
                    token.revoked_at,
                ),
            )

    async def get_api_token(self, token_id: str) -> StoredToken | None:
        rows = await self.database.fetch(f"{_TOKEN_COLUMNS} WHERE token_id = ?", (token_id,))
        return _token(rows[0]) if rows else None

    async def get_api_tokens(self) -> list[StoredToken]:
        rows = await self.database.fetch(f"{_TOKEN_COLUMNS} ORDER BY created_at, token_id")
        return [_token(row) for row in rows]

    async def revoke_api_token(self, token_id: str, now: float) -> StoredToken | None:
        async with self.database.transaction() as tx:
            await tx.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                (now, token_id),
            )
            rows = await tx.fetch(f"{_TOKEN_COLUMNS} WHERE token_id = ?", (token_id,))
        return _token(rows[0]) if rows else None

    # -- the audit log (`dagloom.auth.audit.AuditStorage`) ------------------------------------

    async def add_audit_entry(self, entry: AuditEntry) -> None:
        async with self.database.transaction() as tx:
            await tx.execute(
                "INSERT INTO audit_log (timestamp, user_name, action, target, via) "
                "VALUES (?, ?, ?, ?, ?)",
                (entry.timestamp, entry.user, entry.action, entry.target, entry.via),
            )

    async def get_audit_entries(self, *, limit: int = 100) -> list[AuditEntry]:
        rows = await self.database.fetch(
            "SELECT entry_id, timestamp, user_name, action, target, via FROM audit_log "
            "ORDER BY entry_id DESC LIMIT ?",
            (limit,),
        )
        return [
            AuditEntry(
                entry_id=row[0],
                timestamp=row[1],
                user=row[2],
                action=row[3],
                target=row[4],
                via=row[5],
            )
            for row in rows
        ]

    # -- automation (`dagloom.storage.automation.AutomationStorage`) --------------------------

    async def get_automation_state(self) -> dict[str, str]:
        rows = await self.database.fetch("SELECT asset_key, body FROM automation_state")
        return {row[0]: row[1] for row in rows}

    async def store_automation_tick(
        self,
        state: Mapping[str, str],
        records: Sequence[AutomationEvaluationRecord],
        *,
        fence: Fence | None = None,
    ) -> None:
        async with self.database.transaction() as tx:
            await self._fenced(tx, fence)
            if state:
                await tx.executemany(
                    "INSERT INTO automation_state (asset_key, body) VALUES (?, ?) "
                    "ON CONFLICT (asset_key) DO UPDATE SET body = excluded.body",
                    list(state.items()),
                )
            if records:
                await tx.executemany(
                    "INSERT INTO automation_evaluations "
                    "(asset_key, timestamp, num_requested, run_ids, body) VALUES (?, ?, ?, ?, ?)",
                    [
                        (r.asset_key, r.timestamp, r.num_requested, " ".join(r.run_ids), r.body)
                        for r in records
                    ],
                )

    async def get_automation_evaluations(
        self, asset_key: str, *, limit: int = 20, before: int | None = None
    ) -> list[AutomationEvaluationRecord]:
        rows = await self.database.fetch(
            "SELECT id, asset_key, timestamp, num_requested, run_ids, body "
            "FROM automation_evaluations WHERE asset_key = ? AND id < ? "
            "ORDER BY id DESC LIMIT ?",
            (asset_key, before if before is not None else 2**62, limit),
        )
        return [
            AutomationEvaluationRecord(
                asset_key=row[1],
                timestamp=row[2],
                num_requested=row[3],
                run_ids=tuple(row[4].split()),
                body=row[5],
                record_id=int(row[0]),
            )
            for row in rows
        ]

    async def purge_automation_evaluations(self, before: float) -> int:
        async with self.database.transaction() as tx:
            return await tx.execute(
                "DELETE FROM automation_evaluations WHERE timestamp < ?", (before,)
            )


_TOKEN_COLUMNS = (
    "SELECT token_id, name, role, secret_hash, created_at, expires_at, revoked_at FROM api_tokens"
)


def _token(row: Sequence[Any]) -> StoredToken:
    return StoredToken(
        token_id=row[0],
        name=row[1],
        role=Role(row[2]),
        secret_hash=row[3],
        created_at=row[4],
        expires_at=row[5],
        revoked_at=row[6],
    )
