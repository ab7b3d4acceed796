"""Running a coroutine on a thread of its own, with its own event loop: how a run executes
without blocking the loop that hosts the actors."""

from __future__ import annotations

import asyncio
import contextlib
import os
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


IDLE_SECONDS = 30.0
"""How long a run thread with nothing to run waits for the next run before it ends."""

MAX_IDLE = 8
"""Run threads kept waiting for the next run at most; one more that ends its run ends."""

IDLE_NAME = "dagloom idle run thread"
"""The name of a run thread between runs (while it executes one, it bears the run's)."""


class OwnThread(Generic[T]):
    """One execution of `fn()` on a run thread's event loop, and what both sides know of it.

    The loop is the thread's, made once and reused run after run: making and closing a loop
    and starting a thread cost about half a millisecond a run, and are system calls that
    release the GIL (a thread giving it up while the caller's loop is busy waits up to a
    switch interval to get it back). Nothing of a run stays on the loop for the next: tasks
    `fn` left behind are cancelled when it ends and its async generators closed, and
    `anyio.to_thread`'s worker threads, idle by then, are told to exit (anyio stops them
    with the loop's root task, each run's). State read by both threads is guarded by
    `_lock`, except the outcome and `reusable`, which the thread writes before it sets
    `_done`.
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
        "reusable",
    )

    def __init__(
        self,
        fn: Callable[[], Awaitable[T]],
        caller: asyncio.AbstractEventLoop,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._fn = fn
        self._caller = caller
        self._loop = loop
        self._lock = threading.Lock()
        self._running = False  # whether `_scope` may be cancelled through `_loop`
        self._scope: anyio.CancelScope | None = None
        self._cancel_asked = False
        self._done = anyio.Event()  # of the caller's loop
        self._outcome: tuple[T] | BaseException | None = None
        self.reusable = True
        """Whether the thread may run another `fn` after this one (not after an exit
        asked for on it, nor after its loop failed)."""

    def main(self) -> None:
        """On the run thread: run `fn` to its end, then tell the caller's loop, last."""
        try:
            self._outcome = (_run_until_complete(self._loop, self._root()),)
        except asyncio.CancelledError:
            # A cancellation from the thread's loop must not pass for one of the caller's.
            self._outcome = _Canceled()
        except (SystemExit, KeyboardInterrupt) as exc:
            # Nor may an exit asked for on this thread end the caller's process.
            error = DagloomError(f"{threading.current_thread().name} raised {exc!r}")
            error.__cause__ = exc
            self._outcome = error
            self.reusable = False
        except BaseException as exc:  # handed to the caller's loop, which raises it
            self._outcome = exc
        finally:
            if self._loop.is_running() or self._loop.is_closed():
                self.reusable = False
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


def _run_until_complete(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` in `loop` on this thread and wind down what it left on the loop as
    `asyncio.run` does (tasks left behind are cancelled, async generators closed), without
    its signal handling and leaving the loop open for the next run."""
    try:
        return loop.run_until_complete(coro)
    finally:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        # `shutdown_asyncgens` would close them, and every later one unfinalized with them.
        generators: Any = getattr(loop, "_asyncgens", None)
        if generators:
            closing = list(generators)
            generators.clear()
            loop.run_until_complete(
                asyncio.gather(*(g.aclose() for g in closing), return_exceptions=True)
            )


class _RunThread:
    """A daemon thread with an event loop of its own that runs one `OwnThread` at a time,
    waiting `IDLE_SECONDS` at most for the next before it ends."""

    __slots__ = ("_jobs", "loop", "thread")

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[OwnThread[Any] | None] = queue.SimpleQueue()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name=IDLE_NAME, daemon=True)
        self.thread.start()

    def submit(self, own: OwnThread[Any]) -> None:
        self._jobs.put(own)

    def stop(self) -> None:
        """End the thread after what was submitted; never blocks."""
        self._jobs.put(None)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            while True:
                try:
                    own = self._jobs.get(timeout=IDLE_SECONDS)
                except queue.Empty:
                    if _POOL.retire(self):
                        return
                    continue  # handed out meanwhile: its run is on the way
                if own is None:
                    return
                own.main()
                if not own.reusable:
                    return
        finally:
            asyncio.set_event_loop(None)
            if not self.loop.is_running():
                self.loop.close()


class _RunThreads:
    """The run threads waiting for a run (at most `MAX_IDLE`); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_RunThread] = []

    def take(self) -> _RunThread:
        """An idle run thread, or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _RunThread()

    def give_back(self, worker: _RunThread) -> None:
        """Keep `worker`, whose run has ended, for the next run, or end it if enough are
        kept."""
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(worker)
                return
        worker.stop()

    def forget(self) -> None:
        """In a forked child: the idle threads were not forked with it."""
        self._lock = threading.Lock()
        self._idle = []

    def retire(self, worker: _RunThread) -> bool:
        """On `worker`'s thread, idle too long: whether it may end (True, and it is handed
        out no more) or was just handed out (False)."""
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
                return True
            return False


_POOL = _RunThreads()
os.register_at_fork(after_in_child=_POOL.forget)


async def run_on_own_thread(fn: Callable[[], Awaitable[T]], *, name: str) -> T:
    """Run `fn()` on a run thread named `name` (for the run), in an event loop of its own,
    and return its result or raise its exception.

    The calling loop stays free meanwhile; whatever `fn` does (sync code included) blocks
    only its own thread. Cancelling the caller cancels `fn` (its loop's root scope, from
    this loop, thread-safely), waits for `fn` to end, and then raises the caller's
    cancellation: what `fn` does when cancelled (record a run CANCELED, close resources)
    is done by then. A sync call that never returns cannot be cancelled, so neither can this
    wait. The thread and its loop are kept for the next call once `fn` has ended (named
    `IDLE_NAME` meanwhile; see `OwnThread`), and end after `IDLE_SECONDS` without one. While
    a call runs, the interpreter hands the GIL over every `SWITCH_INTERVAL` seconds, so an
    op spinning on the CPU delays this loop by about that much per wake-up rather than 5 ms.
    Objects of the caller's loop are reached from `fn` through
    `dagloom.instance._threads.on_loop`; an instance hops by itself.
    """
    worker = _POOL.take()
    own = OwnThread(fn, asyncio.get_running_loop(), worker.loop)
    worker.thread.name = name
    with _short_switch_interval():
        worker.submit(own)
        try:
            return await own.wait()
        finally:
            if own.reusable:
                worker.thread.name = IDLE_NAME
                _POOL.give_back(worker)
            else:
                # The thread told this loop it was done as its last act: this join ends at
                # once.
                worker.thread.join()
