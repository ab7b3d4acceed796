"""StorageEventSink: the executor's `EventSink` that writes a run's event rows to an
`EventLogStorage` in batches."""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from dagloom.errors import StorageError
from dagloom.messages.row_log import RowLog
from dagloom.messages.rows import EventRow

BATCH_SIZE = 500
"""Events buffered before a background write starts: 500 rows per transaction is ~25x to
~400x faster than one."""

MAX_BATCH = 4 * BATCH_SIZE
"""Events in one background write at most, however far writes have fallen behind: each
transaction, and the encoded body it holds while it writes, stays bounded."""

MAX_DELAY = 0.05
"""Seconds an event may wait in the buffer before a write starts anyway, so watchers of a
live run see it within about this long even when fewer than BATCH_SIZE events come."""

WRITE_TIMEOUT = 600.0
"""Seconds one batch write, or a `flush`, may take before the sink gives up on storage.
Above any backend's own bound (SQLite waits up to its 120 s busy timeout per attempt, and
storage retries a failed write for 30 s), so it only ends a wait that would never end."""


class RowStore(Protocol):
    """Where a sink writes: `EventLogStorage.store_rows`, or the instance's writer over a
    run storage apart from its event log.

    A store may also have `store_rows_nowait(run_id, rows)`: the same write done at once on
    the calling thread, or not at all (raising `anyio.WouldBlock`); the sink then writes a
    full batch in `emit` itself when it can (see `StorageEventSink`)."""

    async def store_rows(self, run_id: str, rows: Sequence[EventRow], /) -> object: ...


class StorageEventSink:
    """Buffers the event rows of run `run_id` as they are emitted and writes them to `storage`
    in batches, in emit order.

    `emit` never blocks and never raises: once `batch_size` events are buffered, or
    `max_delay` seconds after the first buffered one, it starts one background write in
    `task_group`; events emitted while a write is in flight go in later ones, `MAX_BATCH`
    at most each. When `storage` has `store_rows_nowait` (SQLite, on its loop's thread), a
    full batch is written in `emit` itself when that needs no waiting, and in the background
    otherwise: a background write waits for the emitting task's checkpoints (every ~10 ms
    of a run of sync steps), long enough for a busy run to buffer tens of thousands of
    events, and each one the collector scans until written. `flush`
    returns once every event emitted before it is durable. Calling `flush` twice is safe. A
    lifecycle event whose run transition storage refuses is dropped there (see
    `EventLogStorage.store_events`), and logged, not raised.

    Storage retries a failed write itself; a write that still fails (or an error of any kind
    from `storage`, or a write or flush outlasting `write_timeout` seconds) fails the sink
    for good: no more writes start, and every pending and later `flush` raises that
    `StorageError` (`error` holds it). Cancelling `flush` stops its wait; a batch already
    taken for writing is still written.

    With `keep`, the sink also keeps every row emitted in `rows` (a run's executor gets its
    result's events there, without a second sink): once written, in a `RowLog`, which keeps
    them compactly.
    """

    __slots__ = (
        "_batch_size",
        "_error",
        "_idle",
        "_keep",
        "_kept",
        "_linger_scope",
        "_lingering",
        "_max_delay",
        "_rows",
        "_run_id",
        "_storage",
        "_store_nowait",
        "_task_group",
        "_wake_at",
        "_write_timeout",
        "_writing",
        "_written",
    )

    def __init__(
        self,
        storage: RowStore,
        task_group: TaskGroup,
        run_id: str,
        *,
        batch_size: int = BATCH_SIZE,
        max_delay: float | None = MAX_DELAY,
        keep: bool = False,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self._storage = storage
        self._store_nowait: Callable[[str, Sequence[EventRow]], object] | None = getattr(
            storage, "store_rows_nowait", None
        )
        self._write_timeout = write_timeout
        self._run_id = run_id
        self._task_group = task_group
        self._batch_size = max(1, batch_size)
        self._keep = keep
        # Every event emitted and not yet dropped; those before `_written` are durable (and
        # dropped after each write; with `keep`, moved to `_kept` first).
        self._rows: list[EventRow] = []
        self._kept = RowLog()
        self._written = 0
        self._writing = False
        self._idle = anyio.Event()
        self._idle.set()
        self._error: StorageError | None = None
        self._max_delay = max_delay
        self._lingering = False
        self._linger_scope: anyio.CancelScope | None = None
        self._wake_at = 1

    def emit(self, row: EventRow) -> None:
        # The executor emits ~5 events per step: emit only appends until the list reaches
        # `_wake_at`, the length at which `_wake` has something to do.
        rows = self._rows
        rows.append(row)
        if len(rows) >= self._wake_at:
            self._wake()

    def _wake(self) -> None:
        """Start a write when a batch is full, or the linger timer on a first event."""
        if self._writing or self._error is not None:
            pass
        elif self.pending >= self._batch_size:
            if not self._write_now(self._rows):
                self._start_writing()
                self._start_soon(self._drain_soon)
        elif not self._lingering and self._max_delay is not None:
            self._lingering = True
            self._start_soon(self._linger, self._max_delay)
        self._set_wake_at()

    def _write_now(self, batch: list[EventRow]) -> bool:
        """Write `batch` (the first rows not yet written) at once through `store_rows_nowait`
        and drop it from the buffer; False, with nothing written, when the store cannot."""
        store_nowait = self._store_nowait
        if store_nowait is None:
            return False
        try:
            store_nowait(self._run_id, batch)
        except Exception:
            # WouldBlock, or a failure: `emit` never raises, and a background write tries
            # again, retrying and failing the sink as it does for any write.
            return False
        self._written += len(batch)
        if self._keep:
            self._kept.extend(batch)
        del self._rows[: self._written]
        self._written = 0
        return True

    def _start_soon(self, task: Callable[..., Coroutine[Any, Any, None]], *args: object) -> None:
        """Start `task` in the task group; a group that no longer takes tasks fails the sink
        (its writes could never happen)."""
        try:
            self._task_group.start_soon(task, *args)
        except RuntimeError as exc:
            self._lingering = False
            self._fail(
                StorageError(
                    f"cannot write the events of run {self._run_id}: the sink's task group "
                    f"is closed ({exc})",
                    operation="writing events",
                )
            )
            self._stop_writing()

    def _set_wake_at(self) -> None:
        """The list length at which `emit` calls `_wake` again, given the state now."""
        if self._writing or self._error is not None:
            self._wake_at = sys.maxsize
        elif self._lingering or self._max_delay is None:
            self._wake_at = self._written + self._batch_size
        else:
            self._wake_at = self._written + 1

    async def _linger(self, delay: float) -> None:
        """Write what is buffered `delay` seconds from now, if nothing else has by then (a
        `flush` that leaves nothing buffered ends the wait early)."""
        with anyio.CancelScope() as self._linger_scope:
            try:
                await anyio.sleep(delay)
            finally:
                self._lingering = False
                self._linger_scope = None
                self._set_wake_at()
        if self.pending and not self._writing and self._error is None:
            self._start_writing()
            await self._drain()

    def _start_writing(self) -> None:
        self._writing = True
        self._wake_at = sys.maxsize
        self._idle = anyio.Event()

    def _stop_writing(self) -> None:
        self._writing = False
        self._set_wake_at()
        self._idle.set()

    def _fail(self, error: StorageError) -> None:
        """Fail the sink for good with `error` (the first failure is the one kept)."""
        if self._error is None:
            self._error = error
        self._set_wake_at()

    async def _drain_soon(self) -> None:
        # Let the emitting task run on to its next wait first: what it emits until then (at
        # the end of a run: its end event, just before `flush`) joins this write instead of
        # needing a transaction of its own. Cancelled at that checkpoint (the task group is
        # ending), the write never starts, and a `flush` must not wait for it.
        try:
            await anyio.lowlevel.checkpoint()
        except BaseException:
            self._stop_writing()
            raise
        await self._drain()

    async def _drain(self) -> None:
        try:
            while self.pending and self._error is None:
                batch = self._rows[self._written : self._written + MAX_BATCH]
                if self._write_now(batch):
                    continue
                try:
                    # A batch taken for writing is written even if the caller is cancelled,
                    # so no event is lost between buffer and database.
                    with anyio.CancelScope(shield=True), anyio.fail_after(self._write_timeout):
                        await self._storage.store_rows(self._run_id, batch)
                except StorageError as exc:
                    self._fail(exc)
                    return
                except Exception as exc:
                    # The storage boundary of a background task: anything else storage
                    # raises (a timeout included) fails the sink, not the task group.
                    self._fail(self._error_from(exc))
                    return
                self._written += len(batch)
                if self._keep:
                    self._kept.extend(batch)
                del self._rows[: self._written]
                self._written = 0
        finally:
            self._stop_writing()

    def _error_from(self, exc: BaseException) -> StorageError:
        if isinstance(exc, TimeoutError):
            what = f"not stored within {self._write_timeout:g} s"
        else:
            what = f"could not be written: {type(exc).__name__}: {exc}"
        error = StorageError(
            f"events of run {self._run_id} {what}",
            operation="writing events",
        )
        error.__cause__ = exc
        return error

    async def flush(self) -> None:
        try:
            with anyio.fail_after(self._write_timeout):
                while self._writing:
                    await self._idle.wait()
        except TimeoutError as exc:
            self._fail(self._error_from(exc))
        if self.pending and self._error is None:
            self._start_writing()
            await self._drain()
        if self._error is not None:
            raise self._error
        if self._linger_scope is not None:
            self._linger_scope.cancel()

    @property
    def error(self) -> StorageError | None:
        """The error that failed the sink, or None while it works."""
        return self._error

    @property
    def rows(self) -> Sequence[EventRow]:
        """With `keep`, every row emitted so far, in order: the sink's own `RowLog` when
        every row is written, else a snapshot of it followed by the rows not yet written.
        Without `keep`, the rows not yet written."""
        if not self._keep:
            return self._rows
        if not self._rows:
            return self._kept
        return self._kept.snapshot(self._rows)

    @property
    def pending(self) -> int:
        """Events emitted but not yet durable."""
        return len(self._rows) - self._written
