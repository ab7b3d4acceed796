"""Running a coroutine on a thread of its own, with its own event loop: how a run executes
without blocking the loop that hosts the actors."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import queue
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Generic, TypeVar

import anyio

from dagloom.errors import DagloomError

T = TypeVar("T")

SWITCH_INTERVAL = 0.0001
"""Seconds a thread may hold the GIL while another waits for it, while runs execute on their
own threads (the interpreter's default is 0.005). Each time a thread gives the GIL up (a
system call, a wait) while another runs Python, it waits up to this long to get it back: a
request to the loop serving the actors does so ~6 times, a run's loop at every iteration.
Measured on 2 cores: GetRun while an op spins took ~25 ms at 5 ms, ~4 ms at 0.5 ms; a
one-op launch in-process took ~1.5 ms more than on one loop at 0.5 ms, ~0.5 ms at 0.1 ms.
Threads that do not compete for the GIL pay nothing for it.
"""

_switch_lock = threading.Lock()
_switch_users = 0
_switch_before = 0.0


@contextlib.contextmanager
def _short_switch_interval() -> Iterator[None]:
    """Lower the interpreter's switch interval to `SWITCH_INTERVAL` while any run thread
    lives; the last one out restores the interval it found. Thread-safe."""
    global _switch_users, _switch_before
    with _switch_lock:
        if _switch_users == 0:
            _switch_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_before, SWITCH_INTERVAL))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_before)


class _Canceled(Exception):
    """The thread's coroutine ended canceled, and not by `OwnThread.cancel`."""


class OwnThread(Generic[T]):
    """One thread running `fn()` in an asyncio loop of its own, and what both sides know of it.

    The caller makes the loop and closes it once the thread has ended: making and closing
    a loop are system calls that release the GIL, and a thread that gives the GIL up while
    the caller's loop is busy waits up to a switch interval to get it back (measured: ~0.5 ms
    of a launch each). The loop lives only for `fn`: tasks `fn` left behind are cancelled
    when it ends, the loop's default executor is joined, and `anyio.to_thread`'s worker
    threads, idle by then, are told to exit (anyio stops them with the loop's root task).
    State read by both threads is guarded by `_lock`, except the outcome, which the thread
    writes before it sets `_done`.
    """

    __slots__ = (
        "_caller",
        "_cancel_asked",
        "_done",
        "_fn",
        "_lock",
        "_loop",
        "_outcome",
        "_running",
        "_scope",
    )

    def __init__(
        self,
        fn: Callable[[], Awaitable[T]],
        caller: asyncio.AbstractEventLoop,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._fn = fn
        self._caller = caller
        # Made here, off the thread, unless a pooled thread brings its own (see RunThreads).
        self._loop = loop if loop is not None else asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._running = False  # whether `_scope` may be cancelled through `_loop`
        self._scope: anyio.CancelScope | None = None
        self._cancel_asked = False
        self._done = anyio.Event()  # of the caller's loop
        self._outcome: tuple[T] | BaseException | None = None

    def main(self, *, wind_down: bool = True, done: Callable[[], None] | None = None) -> None:
        """The thread's body: run `fn` to its end, call `done` (if given), then tell the
        caller's loop, last. With `wind_down` false (a pooled loop, kept for the next `fn`)
        only the tasks `fn` left behind are ended; the loop's async generators and default
        executor stay."""
        try:
            self._outcome = (_run_until_complete(self._loop, self._root(), wind_down),)
        except asyncio.CancelledError:
            # A cancellation from the thread's loop must not pass for one of the caller's.
            self._outcome = _Canceled()
        except (SystemExit, KeyboardInterrupt) as exc:
            # Nor may an exit asked for on this thread end the caller's process.
            error = DagloomError(f"{threading.current_thread().name} raised {exc!r}")
            error.__cause__ = exc
            self._outcome = error
        except BaseException as exc:  # handed to the caller's loop, which raises it
            self._outcome = exc
        finally:
            try:
                if done is not None:
                    done()
            finally:
                self._caller.call_soon_threadsafe(self._done.set)

    async def _root(self) -> T:
        with anyio.CancelScope() as scope:
            with self._lock:
                self._scope = scope
                self._running = True
                if self._cancel_asked:
                    scope.cancel()
            try:
                return await self._fn()
            finally:
                with self._lock:
                    self._running = False
                    self._scope = None
        raise _Canceled

    def cancel(self) -> None:
        """Cancel `fn` at its next checkpoint (at once if it has not started); thread-safe,
        never blocks, safe to call twice or after `fn` ended."""
        with self._lock:
            self._cancel_asked = True
            if self._running and self._scope is not None:
                self._loop.call_soon_threadsafe(self._scope.cancel)

    def close(self) -> None:
        """Close the thread's loop; call once the thread has ended. Idempotent."""
        self._loop.close()

    async def wait(self) -> T:
        """Block until the thread has run `fn`; return its result or raise its exception.

        Cancelling the wait cancels `fn` and waits, shielded, for the thread's end before
        the cancellation propagates.
        """
        try:
            await self._done.wait()
        finally:
            if not self._done.is_set():
                self.cancel()
                with anyio.CancelScope(shield=True):
                    await self._done.wait()
        outcome = self._outcome
        if isinstance(outcome, _Canceled):
            raise DagloomError("the thread's work ended canceled, though nothing canceled it")
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome[0]


def _run_until_complete(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], wind_down: bool = True
) -> T:
    """Run `coro` in `loop` on this thread, in a context of its own, then cancel the tasks it
    left behind; with `wind_down`, also wind the loop down as `asyncio.run` does (async
    generators finalized, the default executor's threads joined), without its signal
    handling and without closing the loop."""
    asyncio.set_event_loop(loop)
    try:
        # A fresh context: what one coroutine sets in context variables never reaches the
        # next one a pooled thread runs.
        return loop.run_until_complete(loop.create_task(coro, context=contextvars.Context()))
    finally:
        try:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            if wind_down:
                _wind_down(loop)
        finally:
            asyncio.set_event_loop(None)


def _wind_down(loop: asyncio.AbstractEventLoop) -> None:
    """Finalize `loop`'s async generators and join its default executor's threads."""
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())


async def run_on_own_thread(fn: Callable[[], Awaitable[T]], *, name: str) -> T:
    """Run `fn()` on a new thread named `name`, in an event loop of its own, and return its
    result or raise its exception.

    The calling loop stays free meanwhile; whatever `fn` does (sync code included) blocks
    only its own thread. Cancelling the caller cancels `fn` (its loop's root scope, from
    this loop, thread-safely), waits for the thread to end, and then raises the caller's
    cancellation: what `fn` does when cancelled (record a run CANCELED, close resources)
    is done by then. A sync call that never returns cannot be cancelled, so neither can this
    wait. No thread outlives the call. While it lives, the interpreter hands the GIL over
    every `SWITCH_INTERVAL` seconds, so an op spinning on the CPU delays this loop by about
    that much per wake-up rather than 5 ms. Objects of the caller's loop are reached from `fn`
    through `dagloom.instance._threads.on_loop`; an instance hops by itself.
    """
    own = OwnThread(fn, asyncio.get_running_loop())
    try:
        thread = threading.Thread(target=own.main, name=name, daemon=True)
        with _short_switch_interval():
            thread.start()
            try:
                return await own.wait()
            finally:
                # The thread told this loop it was done as its last act: this join ends at
                # once.
                thread.join()
    finally:
        own.close()


IDLE_SECONDS = 60.0
"""Seconds a pooled run thread waits for its next coroutine before it ends."""


class _Slot:
    """One thread of a `RunThreads` pool, with its loop and its inbox of work."""

    __slots__ = ("inbox", "loop", "thread")

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[OwnThread[Any] | None] = queue.SimpleQueue()
        self.loop = asyncio.new_event_loop()
        self.thread: threading.Thread | None = None


class RunThreads:
    """Threads, each with an event loop of its own, that run one coroutine at a time for
    `run` and are kept for the next: what `run_on_own_thread` does, without a thread and a
    loop made and ended per call (measured on 2 cores: ~0.5 ms of CPU per one-op run in a
    warm-pool worker, a fifth of its cost).

    Each coroutine still has a thread and a loop to itself while it runs (a sync call in it
    blocks only that thread), starts in a fresh `contextvars.Context`, and has the tasks it
    left behind cancelled when it ends; cancelling `run` cancels it as `run_on_own_thread`
    does. Between coroutines a thread is idle, named `idle_name`; one idle for
    `IDLE_SECONDS` ends, so the pool is as large as the most coroutines run at once lately.
    `close` ends the idle threads and waits for them; call it once no `run` is in flight
    (idempotent; `run` after it starts threads afresh). Thread-safe.
    """

    def __init__(
        self, *, idle_name: str = "dagloom run (idle)", idle_seconds: float = IDLE_SECONDS
    ) -> None:
        self._idle_name = idle_name
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._idle: list[_Slot] = []  # most recently used last: reused first
        self._all: set[_Slot] = set()

    async def run(self, fn: Callable[[], Awaitable[T]], *, name: str) -> T:
        """Run `fn()` on an idle thread of the pool (a new one if none is idle), named
        `name` meanwhile, and return its result or raise its exception; see the class and
        `run_on_own_thread` for what cancelling it does."""
        with self._lock:
            slot = self._idle.pop() if self._idle else None
            if slot is None:
                slot = _Slot()
                self._all.add(slot)
                thread = threading.Thread(
                    target=self._serve, args=(slot,), name=self._idle_name, daemon=True
                )
                slot.thread = thread
                thread.start()
        own = OwnThread(fn, asyncio.get_running_loop(), slot.loop)
        assert slot.thread is not None
        slot.thread.name = name
        with _short_switch_interval():
            slot.inbox.put(own)
            return await own.wait()

    def _serve(self, slot: _Slot) -> None:
        """A pooled thread's body: run what its inbox brings until told to stop (None) or
        idle for too long, then wind its loop down and close it."""
        try:
            while True:
                try:
                    own = slot.inbox.get(timeout=self._idle_seconds)
                except queue.Empty:
                    with self._lock:
                        if slot in self._idle:  # nobody took it meanwhile: end
                            self._idle.remove(slot)
                            self._all.discard(slot)
                            return
                    continue  # taken just now: its work is on the way
                if own is None:
                    return
                own.main(wind_down=False, done=functools.partial(self._idle_again, slot))
        finally:
            try:
                asyncio.set_event_loop(slot.loop)
                _wind_down(slot.loop)
            finally:
                asyncio.set_event_loop(None)
                slot.loop.close()

    def _idle_again(self, slot: _Slot) -> None:
        assert slot.thread is not None
        slot.thread.name = self._idle_name
        with self._lock:
            if slot in self._all:
                self._idle.append(slot)

    def close(self) -> None:
        """End every thread of the pool and wait for them (blocks briefly: idle threads end
        at once, after winding their loops down). Idempotent."""
        with self._lock:
            slots = list(self._all)
            self._all.clear()
            self._idle.clear()
        for slot in slots:
            slot.inbox.put(None)
        for slot in slots:
            if slot.thread is not None:
                slot.thread.join()
