"""Using an instance from a thread other than the one whose event loop entered it.

Storages belong to the event loop that opened them: aiosqlite's writer, asyncpg's pool and
the memory backend's watchers all wake tasks of that loop. A run executing on its own thread
(with its own loop) reaches them only through the owner loop: the instance's coroutine
methods hop there (`hop_to_owner_loop`), and its event sinks hand their rows there in
batches (`HandoffEventSink`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager, suppress
from typing import Any, Protocol, TypeVar

import anyio

from dagloom.errors import StorageError
from dagloom.execution.sink import EventSink
from dagloom.messages.row_log import RowLog
from dagloom.messages.rows import EventRow
from dagloom.storage.sink import BATCH_SIZE, MAX_DELAY

T = TypeVar("T")
C = TypeVar("C", bound=type)


class LoopOwned(Protocol):
    """An object whose coroutines must run on one event loop (None: whichever runs them)."""

    @property
    def owner_loop(self) -> asyncio.AbstractEventLoop | None: ...


def on_foreign_loop(owner: asyncio.AbstractEventLoop | None) -> bool:
    """Whether the running loop is not `owner` (so `owner`'s objects must be reached through
    `on_loop`); False when there is no owner. Never blocks; needs a running loop."""
    return owner is not None and owner is not asyncio.get_running_loop()


async def on_loop(owner: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on `owner`, another thread's running loop, and return its result here.

    The calling loop stays free while it waits. A call once started completes on `owner`:
    cancelling the caller does not cancel it, the caller's cancellation is delivered once the
    call has ended (so a storage write is never left half-known). Raises what `coro` raises;
    `RuntimeError` if `owner` is closed (the coroutine is then closed unrun).
    """
    try:
        future = asyncio.run_coroutine_threadsafe(coro, owner)
    except RuntimeError:
        coro.close()
        raise
    with anyio.CancelScope(shield=True):
        result = await asyncio.wrap_future(future)
    return result


def hop_to_owner_loop(cls: C) -> C:
    """Make every coroutine method of `cls` (a `LoopOwned`; dunders excepted) run on the
    instance's `owner_loop` when awaited on another loop, through `on_loop`.

    On the owner loop itself (or when there is no owner) the method runs as written, at the
    cost of one extra coroutine frame. Methods that return iterators are not coroutine
    methods and are left alone: they work on the owner loop only.
    """
    for name, method in list(vars(cls).items()):
        if name.startswith("__") or not inspect.iscoroutinefunction(method):
            continue
        setattr(cls, name, _hopping(method))
    return cls


class BackgroundOwner:
    """An event loop on a daemon thread of its own that keeps an async context (an instance)
    entered from `start` until `stop`: what lets synchronous code use an instance no
    `async with` opened, across several calls, as Dagster's instances are used."""

    __slots__ = ("_kept", "_stop", "_thread", "loop")

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stop: asyncio.Event | None = None
        self._kept: concurrent.futures.Future[None] | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def start(self, context: AbstractAsyncContextManager[Any]) -> None:
        """Enter `context` on the loop and return once it is entered; raises what entering
        raises (the loop is then stopped)."""
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def keep() -> None:
            self._stop = asyncio.Event()
            async with context:
                ready.set_result(None)
                await self._stop.wait()

        self._thread.start()
        self._kept = asyncio.run_coroutine_threadsafe(keep(), self.loop)
        concurrent.futures.wait([ready, self._kept], return_when=concurrent.futures.FIRST_COMPLETED)
        if not ready.done():
            self._end()
            self._kept.result()  # raises why entering failed

    def stop(self) -> None:
        """Leave the context (waiting for it to close) and end the thread; idempotent. Not
        to be called from the loop's own thread."""
        kept, self._kept = self._kept, None
        if kept is None:
            return
        if threading.current_thread() is self._thread:
            raise RuntimeError("an instance opened in the background is closed from its loop")
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        try:
            kept.result()
        finally:
            self._end()

    def _end(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()


def _hopping(
    method: Callable[..., Coroutine[Any, Any, Any]],
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(method)
    async def hop(self: LoopOwned, *args: Any, **kwargs: Any) -> Any:
        owner = self.owner_loop
        if owner is not None and on_foreign_loop(owner):
            return await on_loop(owner, method(self, *args, **kwargs))
        return await method(self, *args, **kwargs)

    return hop


class HandoffEventSink:
    """The event sink of a run executing on a thread other than its instance's owner loop:
    hands every row, in emit order, to a sink living on the owner loop.

    `emit` (on the run's thread) appends to a queue. The queue is handed over to the owner
    loop, and written there, `max_delay` seconds after its first row (a timer of the run's
    loop), or at once when it holds `batch_size` rows, or at `flush`: so watchers of a live
    run see its events within about `max_delay`, a busy run costs one cross-thread wake-up
    per hand-over, not per event, and a run shorter than `max_delay` costs just one, its
    final flush. `emit` never blocks nor raises. The target, made by `make_target` on the
    owner loop at the first hand-over, writes only when told to (full batches, flushes).

    `flush` returns once every row emitted before it is durable (it hands over what is queued
    and awaits the target's `flush` on the owner loop; the run's loop stays free meanwhile),
    and raises what that flush raises (`StorageError`). Calling it twice is safe. With `keep`
    the sink also keeps every row emitted in `rows`, on the run's thread.

    One thread emits, normally the run's loop's; rows emitted from any other thread are
    handed over at once, as a timer of that loop cannot be set from there. The queue (a
    `deque`, whose appends and pops are atomic) and the scheduled flag are the only state
    both threads touch.
    """

    __slots__ = (
        "_batch_size",
        "_here",
        "_here_thread",
        "_keep",
        "_make_target",
        "_max_delay",
        "_owner",
        "_queue",
        "_rows",
        "_scheduled",
        "_target",
        "_timer",
    )

    def __init__(
        self,
        owner: asyncio.AbstractEventLoop,
        make_target: Callable[[], EventSink],
        *,
        keep: bool = False,
        batch_size: int = BATCH_SIZE,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self._owner = owner
        self._make_target = make_target
        self._target: EventSink | None = None
        self._queue: deque[EventRow] = deque()
        self._scheduled = False
        self._keep = keep
        self._rows = RowLog()
        self._batch_size = max(1, batch_size)
        self._max_delay = max_delay
        try:
            self._here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._here = None
        self._here_thread = threading.get_ident()
        self._timer: asyncio.TimerHandle | None = None

    def emit(self, row: EventRow) -> None:
        # Append before reading the flag, and the owner clears the flag before it drains the
        # queue: a row is then either drained by a hand-over under way or schedules one.
        queue = self._queue
        queue.append(row)
        if self._keep:
            self._rows.append(row)
        if self._scheduled:
            return
        here = self._here
        if len(queue) >= self._batch_size:
            self._schedule(written=False)  # the target writes a full batch by itself
        elif here is None or threading.get_ident() != self._here_thread:
            self._schedule(written=True)
        elif self._timer is None:
            self._timer = here.call_later(self._max_delay, self._linger_ended)

    def _linger_ended(self) -> None:
        """On the run's loop, `max_delay` after a first row: hand the queue over, and have
        it written."""
        self._timer = None
        if self._queue and not self._scheduled:
            self._schedule(written=True)

    def _schedule(self, *, written: bool) -> None:
        self._scheduled = True
        # A task, not a bare callback: the target starts its writes in a task group,
        # which needs to know the loop's async library, as only a task tells.
        hand_over = self._hand_over_and_write() if written else self._hand_over_soon()
        self._owner.call_soon_threadsafe(self._owner.create_task, hand_over)

    def _hand_over(self) -> EventSink:
        """On the owner loop: move every queued row into the target; return the target."""
        target = self._target
        if target is None:
            target = self._target = self._make_target()
        self._scheduled = False
        queue = self._queue
        emit = target.emit
        while queue:
            emit(queue.popleft())
        return target

    async def _hand_over_soon(self) -> None:
        self._hand_over()

    async def _hand_over_and_write(self) -> None:
        # A target that failed keeps its error, and the run's own flush raises it.
        with suppress(StorageError):
            await self._hand_over().flush()

    async def _flush_on_owner(self) -> None:
        await self._hand_over().flush()

    async def flush(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()  # on the run's loop: what it would hand over goes now
        await on_loop(self._owner, self._flush_on_owner())

    def flush_blocking(self) -> None:
        """`flush`, waited for on the calling thread (any but the owner loop's): what op
        code reading storage calls first, so it reads its own run's events."""
        asyncio.run_coroutine_threadsafe(self._flush_on_owner(), self._owner).result()

    @property
    def rows(self) -> RowLog:
        """With `keep`, every row emitted so far, in order (the log itself, not a copy)."""
        return self._rows
