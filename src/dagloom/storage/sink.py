"""StorageEventSink: the executor's `EventSink` that writes a run's event rows to an
`EventLogStorage` in batches."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Protocol

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from dagloom.errors import StorageError
from dagloom.messages.rows import EventRow

BATCH_SIZE = 500
"""Events buffered before a background write starts: 500 rows per transaction is ~25x to
~400x faster than one."""

MAX_DELAY = 0.05
"""Seconds an event may wait in the buffer before a write starts anyway, so watchers of a
live run see it within about this long even when fewer than BATCH_SIZE events come."""


class RowStore(Protocol):
    """Where a sink writes: `EventLogStorage.store_rows`, or the instance's writer over a
    run storage apart from its event log."""

    async def store_rows(self, run_id: str, rows: Sequence[EventRow], /) -> object: ...


class StorageEventSink:
    """Buffers the event rows of run `run_id` as they are emitted and writes them to `storage`
    in batches, in emit order.

    `emit` never blocks and never raises: once `batch_size` events are buffered, or
    `max_delay` seconds after the first buffered one, it starts one background write in
    `task_group`; events emitted while a write is in flight go in the next one. `flush`
    returns once every event emitted before it is durable, and raises `StorageError` if they
    could not be written (they stay buffered, and the next `flush` tries again). Calling
    `flush` twice is safe. A lifecycle event whose run transition storage refuses is dropped
    there (see `EventLogStorage.store_events`), and logged, not raised.

    With `keep`, the sink also keeps every row emitted in `rows` (a run's executor gets its
    result's events there, without a second sink).
    """

    __slots__ = (
        "_batch_size",
        "_error",
        "_idle",
        "_keep",
        "_linger_scope",
        "_lingering",
        "_max_delay",
        "_rows",
        "_run_id",
        "_storage",
        "_task_group",
        "_wake_at",
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
    ) -> None:
        self._storage = storage
        self._run_id = run_id
        self._task_group = task_group
        self._batch_size = max(1, batch_size)
        self._keep = keep
        # Every event emitted and not yet dropped; those before `_written` are durable (and
        # dropped after each write, unless kept).
        self._rows: list[EventRow] = []
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
            self._start_writing()
            self._task_group.start_soon(self._drain_soon)
        elif not self._lingering and self._max_delay is not None:
            self._lingering = True
            self._task_group.start_soon(self._linger, self._max_delay)
        self._set_wake_at()

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

    async def _drain_soon(self) -> None:
        # Let the emitting task run on to its next wait first: what it emits until then (at
        # the end of a run: its end event, just before `flush`) joins this write instead of
        # needing a transaction of its own.
        await anyio.lowlevel.checkpoint()
        await self._drain()

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch = self._rows[self._written :]
                try:
                    # A batch taken for writing is written even if the caller is cancelled,
                    # so no event is lost between buffer and database.
                    with anyio.CancelScope(shield=True):
                        await self._storage.store_rows(self._run_id, batch)
                except StorageError as exc:
                    self._error = exc
                    return
                self._error = None
                self._written += len(batch)
                if not self._keep:
                    del self._rows[: self._written]
                    self._written = 0
        finally:
            self._writing = False
            self._set_wake_at()
            self._idle.set()

    async def flush(self) -> None:
        while self._writing:
            await self._idle.wait()
        if self.pending:
            self._start_writing()
            await self._drain()
        if self._error is not None:
            raise self._error
        if self._linger_scope is not None:
            self._linger_scope.cancel()

    @property
    def rows(self) -> list[EventRow]:
        """With `keep`, every row emitted so far, in order (the list itself, not a copy)."""
        return self._rows

    @property
    def pending(self) -> int:
        """Events emitted but not yet durable."""
        return len(self._rows) - self._written
