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


class HandoffSweeper:
    """Hands over, every `interval` seconds, the rows queued in the `HandoffEventSink`s of
    runs on other threads, from a task on the owner loop, and has them written: what makes a
    live run's events visible within about `interval` without the run's thread waking the
    owner loop for them, and whether or not the run's own loop is free (a sync op may hold
    it for as long as it runs).

    Sinks are listed (`add`, from any thread) while they may have rows to hand over and
    unlisted when flushed (`discard`, on the owner loop). The task runs while any sink is
    listed and ends `idle_rounds` intervals after the last one left; the first sink listed
    after that starts it again, from its thread (the one wake-up of the owner loop it costs).
    `close` (on the owner loop) ends it for good. Thread-safe where said.
    """

    __slots__ = (
        "_closed",
        "_idle_rounds",
        "_interval",
        "_lock",
        "_owner",
        "_running",
        "_sinks",
        "_task",
    )

    def __init__(
        self,
        owner: asyncio.AbstractEventLoop,
        *,
        interval: float = MAX_DELAY,
        idle_rounds: int = 4,
    ) -> None:
        self._owner = owner
        self._interval = interval
        self._idle_rounds = max(1, idle_rounds)
        self._sinks: set[HandoffEventSink] = set()
        self._lock = threading.Lock()
        self._running = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    def add(self, sink: HandoffEventSink) -> None:
        """List `sink`; start the sweeping task if it is not running. Any thread."""
        self._sinks.add(sink)
        with self._lock:
            if self._running or self._closed:
                return
            self._running = True
        try:
            self._owner.call_soon_threadsafe(self._start)
        except RuntimeError:  # the owner loop is closed: its instance is gone
            with self._lock:
                self._running = False

    def discard(self, sink: HandoffEventSink) -> None:
        """Unlist `sink`. On the owner loop."""
        self._sinks.discard(sink)

    def _start(self) -> None:
        if self._closed:
            with self._lock:
                self._running = False
            return
        self._task = self._owner.create_task(self._sweep())

    async def _sweep(self) -> None:
        idle = 0
        while True:
            await asyncio.sleep(self._interval)
            # A copy taken in one C call: other threads may list sinks meanwhile.
            for sink in list(self._sinks):
                sink.hand_over_queued()
            if self._sinks:
                idle = 0
                continue
            idle += 1
            if idle < self._idle_rounds:
                continue
            with self._lock:
                # A sink listed before this check is swept on; one listed after it sees
                # the task stopped and starts another.
                if not self._sinks:
                    self._running = False
                    self._task = None
                    return
            idle = 0

    def close(self) -> None:
        """Stop sweeping for good; rows still queued are handed over by their flush. On the
        owner loop; calling it twice is safe."""
        with self._lock:
            self._closed = True
            self._running = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()


class HandoffEventSink:
    """The event sink of a run executing on a thread other than its instance's owner loop:
    hands every row, in emit order, to a sink living on the owner loop.

    `emit` (on the run's thread) appends to a queue, which is handed over to the owner loop
    and written there by `sweeper`'s next round (within about its interval of the first
    row), at once when it holds `batch_size` rows, or at `flush`: so watchers of a live run
    see its events within about the sweeper's interval, a busy run costs one cross-thread
    wake-up per full batch, not per event, and a short run none but its final flush. `emit`
    never blocks nor raises. The target, made by `make_target` on the owner loop at the
    first hand-over, writes only when told to (full batches, flushes).

    `flush` returns once every row emitted before it is durable (it hands over what is queued
    and awaits the target's `flush` on the owner loop; the run's loop stays free meanwhile),
    and raises what that flush raises (`StorageError`). Calling it twice is safe. With `keep`
    the sink also keeps every row emitted in `rows`, on the run's thread.

    One thread emits. The queue (a `deque`, whose appends and pops are atomic) and the
    `_scheduled` and `_listed` flags are the only state both threads touch; every hand-over
    runs on the owner loop, so rows reach the target in emit order.
    """

    __slots__ = (
        "_batch_size",
        "_keep",
        "_listed",
        "_make_target",
        "_owner",
        "_queue",
        "_rows",
        "_scheduled",
        "_sweeper",
        "_target",
    )

    def __init__(
        self,
        owner: asyncio.AbstractEventLoop,
        make_target: Callable[[], EventSink],
        sweeper: HandoffSweeper,
        *,
        keep: bool = False,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._owner = owner
        self._make_target = make_target
        self._sweeper = sweeper
        self._target: EventSink | None = None
        self._queue: deque[EventRow] = deque()
        self._scheduled = False
        self._listed = False
        self._keep = keep
        self._rows = RowLog()
        self._batch_size = max(1, batch_size)

    def emit(self, row: EventRow) -> None:
        # Append before reading the flags, and the owner clears them before it drains the
        # queue: a row is then either drained by a hand-over under way or schedules one.
        queue = self._queue
        queue.append(row)
        if self._keep:
            self._rows.append(row)
        if len(queue) >= self._batch_size and not self._scheduled:
            self._scheduled = True
            # A task, not a bare callback: the target starts its writes in a task group,
            # which needs to know the loop's async library, as only a task tells.
            self._owner.call_soon_threadsafe(self._owner.create_task, self._hand_over_soon())
        elif not self._listed:
            self._listed = True
            self._sweeper.add(self)

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

    def hand_over_queued(self) -> None:
        """On the owner loop (the sweeper's round): hand the queued rows over, if any, and
        start writing them."""
        if self._queue:
            self._owner.create_task(self._write(self._hand_over()))

    @staticmethod
    async def _write(target: EventSink) -> None:
        # A target that failed keeps its error, and the run's own flush raises it.
        with suppress(StorageError):
            await target.flush()

    async def _flush_on_owner(self) -> None:
        try:
            await self._hand_over().flush()
        finally:
            self._listed = False
            self._sweeper.discard(self)
            if self._queue:  # emitted meanwhile, and seen listed: list it again
                self._listed = True
                self._sweeper.add(self)

    async def flush(self) -> None:
        await on_loop(self._owner, self._flush_on_owner())

    def flush_blocking(self) -> None:
        """`flush`, waited for on the calling thread (any but the owner loop's): what op
        code reading storage calls first, so it reads its own run's events."""
        asyncio.run_coroutine_threadsafe(self._flush_on_owner(), self._owner).result()

    @property
    def rows(self) -> RowLog:
        """With `keep`, every row emitted so far, in order (the log itself, not a copy)."""
        return self._rows
