"""run_on_own_thread: a coroutine on a thread and loop of its own, cancellable from the
caller's loop, leaving nothing of it behind: the thread waits for the next call, idle."""

from __future__ import annotations

import asyncio
import functools
import sys
import threading

import anyio
import anyio.lowlevel
import pytest

from dagloom.errors import DagloomError
from dagloom.execution.run_thread import IDLE_NAME, SWITCH_INTERVAL, run_on_own_thread
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
    assert not loop.is_running()
    assert own_threads() == []


async def test_the_next_call_reuses_the_idle_thread_and_loop_with_nothing_of_the_last() -> None:
    """A task the first call left behind is cancelled (its cleanup ran) before the call
    returns; the thread bears the call's name while it runs, the idle name after."""
    cleaned = CrossThreadEvent()
    names: list[str] = []

    async def leave_a_task() -> tuple[int, asyncio.AbstractEventLoop]:
        async def forever() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                cleaned.set()

        asyncio.get_running_loop().create_task(forever())
        await anyio.lowlevel.checkpoint()
        names.append(threading.current_thread().name)
        return threading.get_ident(), asyncio.get_running_loop()

    async def where() -> tuple[int, asyncio.AbstractEventLoop]:
        names.append(threading.current_thread().name)
        return threading.get_ident(), asyncio.get_running_loop()

    with anyio.fail_after(30):
        first = await run_on_own_thread(leave_a_task, name=NAME)
        assert cleaned.is_set()
        idle = [t for t in threading.enumerate() if t.ident == first[0]]
        assert [t.name for t in idle] == [IDLE_NAME]
        second = await run_on_own_thread(where, name=NAME)
    assert second == first
    assert names == [NAME, NAME]
    assert asyncio.all_tasks(first[1]) == set()


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
