"""run_on_own_thread: a coroutine on a thread and loop of its own, cancellable from the
caller's loop, leaving no thread behind; RunThreads: the same on threads kept between runs."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import threading

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from dagloom.errors import DagloomError
from dagloom.execution.run_thread import SWITCH_INTERVAL, RunThreads, run_on_own_thread
from tests.actors._runs import CrossThreadEvent

NAME = "dagloom run test"


def own_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == NAME]


async def test_the_coroutine_runs_on_another_thread_and_loop_and_returns_its_result() -> None:
    caller = (threading.get_ident(), asyncio.get_running_loop())

    async def where() -> tuple[int, asyncio.AbstractEventLoop]:
        await anyio.lowlevel.checkpoint()
        return threading.get_ident(), asyncio.get_running_loop()

    with anyio.fail_after(30):
        ident, loop = await run_on_own_thread(where, name=NAME)
    assert ident != caller[0] and loop is not caller[1]
    assert loop.is_closed()
    assert own_threads() == []


async def test_the_callers_loop_stays_free_while_the_coroutine_blocks_in_sync_code() -> None:
    blocked = CrossThreadEvent()
    release = threading.Event()

    async def block() -> str:
        blocked.set()
        release.wait()  # a sync call: blocks this thread's loop, and only it
        return "released"

    async def release_once_blocked() -> None:
        await blocked.wait()
        # This task runs on the caller's loop while `block` holds its own loop.
        release.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(release_once_blocked)
            assert await run_on_own_thread(block, name=NAME) == "released"
    assert own_threads() == []


async def test_an_exception_of_the_coroutine_is_raised_to_the_caller() -> None:
    async def fail() -> None:
        raise ValueError("from the thread")

    with anyio.fail_after(30), pytest.raises(ValueError, match="from the thread"):
        await run_on_own_thread(fail, name=NAME)
    assert own_threads() == []


async def test_cancelling_the_caller_cancels_the_coroutine_and_waits_for_its_cleanup() -> None:
    """The coroutine blocks in async code; the caller's cancellation reaches it across the
    thread boundary, its cleanup runs on its own loop, and only then does the caller's
    cancellation propagate, with the thread gone."""
    waiting = CrossThreadEvent()
    cleaned: list[str] = []

    async def wait_forever() -> None:
        try:
            waiting.set()
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()  # cleanup may await on its own loop
                cleaned.append(threading.current_thread().name)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(run_on_own_thread, wait_forever, name=NAME))
            await waiting.wait()
            tg.cancel_scope.cancel()
    assert cleaned == [NAME]
    assert own_threads() == []


async def test_a_caller_cancelled_at_once_is_not_lost_whenever_the_coroutine_starts() -> None:
    """However far the thread got when the cancellation came (not started, or already
    waiting), the coroutine is cancelled: a lost cancellation would wait forever here."""

    async def wait_forever() -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(30):
        with anyio.CancelScope() as scope:
            scope.cancel()
            await run_on_own_thread(wait_forever, name=NAME)
    assert scope.cancelled_caught
    assert own_threads() == []


async def test_an_exit_asked_for_on_the_thread_does_not_exit_the_caller() -> None:
    async def exit_now() -> None:
        sys.exit(3)

    with anyio.fail_after(30), pytest.raises(DagloomError, match="SystemExit") as raised:
        await run_on_own_thread(exit_now, name=NAME)
    assert isinstance(raised.value.__cause__, SystemExit)


async def test_a_cancellation_raised_inside_the_coroutine_is_not_the_callers() -> None:
    async def raise_cancelled() -> None:
        raise asyncio.CancelledError

    with anyio.fail_after(30), pytest.raises(DagloomError, match="canceled"):
        await run_on_own_thread(raise_cancelled, name=NAME)


async def test_the_switch_interval_is_short_while_a_run_thread_lives_then_restored() -> None:
    before = sys.getswitchinterval()

    async def read_interval() -> float:
        return sys.getswitchinterval()

    with anyio.fail_after(30):
        during = await run_on_own_thread(read_interval, name=NAME)
    assert during == pytest.approx(min(before, SWITCH_INTERVAL))
    assert sys.getswitchinterval() == before


IDLE = "dagloom run test (idle)"


def pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in (NAME, IDLE)]


async def test_a_pooled_thread_runs_the_next_coroutine_in_a_fresh_context() -> None:
    """The second coroutine runs on the thread and loop the first one used, named for it
    while it runs, and sees nothing the first set in context variables."""
    threads = RunThreads(idle_name=IDLE)
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def where(value: str) -> tuple[int, asyncio.AbstractEventLoop, str, str]:
        seen = var.get()
        var.set(value)
        await anyio.lowlevel.checkpoint()
        return (
            threading.get_ident(),
            asyncio.get_running_loop(),
            seen,
            threading.current_thread().name,
        )

    try:
        with anyio.fail_after(30):
            first = await threads.run(functools.partial(where, "first"), name=NAME)
            second = await threads.run(functools.partial(where, "second"), name=NAME)
        assert first[0] == second[0] and first[1] is second[1]
        assert first[1] is not asyncio.get_running_loop()
        assert (first[2], second[2]) == ("unset", "unset")
        assert (first[3], second[3]) == (NAME, NAME)
        assert [t.name for t in pool_threads()] == [IDLE]
    finally:
        threads.close()
    assert pool_threads() == []
    assert first[1].is_closed()


async def test_coroutines_run_at_once_each_get_a_thread_and_tasks_left_are_cancelled() -> None:
    threads = RunThreads(idle_name=IDLE)
    both = [CrossThreadEvent(), CrossThreadEvent()]
    left: list[asyncio.Task[None]] = []

    async def wait_for_the_other(mine: int) -> int:
        both[mine].set()
        await both[1 - mine].wait()
        left.append(asyncio.get_running_loop().create_task(anyio.sleep_forever()))
        return threading.get_ident()

    try:
        with anyio.fail_after(30):
            idents: list[int] = []

            async def one(mine: int) -> None:
                idents.append(
                    await threads.run(functools.partial(wait_for_the_other, mine), name=NAME)
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(one, 0)
                tg.start_soon(one, 1)
        assert len(set(idents)) == 2
        assert [task.cancelled() for task in left] == [True, True]
        assert [t.name for t in pool_threads()] == [IDLE, IDLE]
    finally:
        threads.close()
    assert pool_threads() == []


async def test_cancelling_a_pooled_run_cancels_the_coroutine_and_the_thread_serves_again() -> None:
    threads = RunThreads(idle_name=IDLE)
    waiting = CrossThreadEvent()

    async def wait_forever() -> None:
        waiting.set()
        await anyio.sleep_forever()

    async def ident() -> int:
        return threading.get_ident()

    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(functools.partial(threads.run, wait_forever, name=NAME))
                await waiting.wait()
                tg.cancel_scope.cancel()
            assert [t.name for t in pool_threads()] == [IDLE]
            (thread,) = pool_threads()
            assert await threads.run(ident, name=NAME) == thread.ident
    finally:
        threads.close()
    assert pool_threads() == []


async def test_a_pooled_thread_idle_for_its_time_ends() -> None:
    threads = RunThreads(idle_name=IDLE, idle_seconds=0.01)

    async def nothing() -> None:
        return None

    try:
        with anyio.fail_after(30):
            await threads.run(nothing, name=NAME)
            for thread in pool_threads():
                await anyio.to_thread.run_sync(thread.join)
        assert pool_threads() == []
        with anyio.fail_after(30):
            await threads.run(nothing, name=NAME)  # a new thread serves after that
    finally:
        threads.close()
    assert pool_threads() == []
