"""Async ops: they run concurrently on the event loop, jobs run inside a running loop with
execute_in_process_async, and the blocking entry points refuse to run inside one."""

from __future__ import annotations

import anyio
import pytest

from dagloom import asset, build_op_context, job, materialize_to_memory, op


def _meeting_ops():
    """Two async ops that each wait for the other to have started: they finish only if they
    run at the same time."""
    left_here = anyio.Event()
    right_here = anyio.Event()

    @op
    async def left() -> str:
        left_here.set()
        with anyio.fail_after(5):
            await right_here.wait()
        return "left"

    @op
    async def right() -> str:
        right_here.set()
        with anyio.fail_after(5):
            await left_here.wait()
        return "right"

    return left, right


def test_independent_async_ops_run_concurrently() -> None:
    left, right = _meeting_ops()

    @op
    def both(a: str, b: str) -> str:
        return a + b

    @job
    def meeting():
        both(left(), right())

    result = meeting.execute_in_process()
    assert result.success
    assert result.output_for_node("both") == "leftright"


async def test_execute_in_process_async_runs_in_the_running_loop() -> None:
    left, right = _meeting_ops()

    @job
    def meeting():
        left()
        right()

    with anyio.fail_after(10):
        result = await meeting.execute_in_process_async()
    assert result.success
    assert result.output_for_node("left") == "left"


async def test_async_op_can_await_something_the_test_sets() -> None:
    gate = anyio.Event()
    started = anyio.Event()

    @op
    async def waits() -> str:
        started.set()
        await gate.wait()
        return "released"

    @job
    def gated():
        waits()

    async def release() -> None:
        await started.wait()
        gate.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(release)
            result = await gated.execute_in_process_async()
    assert result.output_for_node("waits") == "released"


async def test_execute_in_process_inside_a_running_loop_raises_runtime_error() -> None:
    @op
    def noop() -> None: ...

    @job
    def plain():
        noop()

    with pytest.raises(RuntimeError, match="execute_in_process"):
        plain.execute_in_process()


async def test_materialize_inside_a_running_loop_raises_runtime_error() -> None:
    @asset
    def thing() -> int:
        return 1

    with pytest.raises(RuntimeError, match="materialize"):
        materialize_to_memory([thing])


async def test_cancelling_the_caller_cancels_the_run_and_records_it() -> None:
    from dagloom.execution.run import execute_job_in_process
    from dagloom.execution.sink import ListEventSink
    from dagloom.messages import EventType

    sink = ListEventSink()
    started = anyio.Event()
    finished: list[str] = []

    @op
    async def forever() -> None:
        started.set()
        await anyio.Event().wait()
        finished.append("forever")

    @job
    def hanging():
        forever()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: execute_job_in_process(hanging, sink=sink))
            await started.wait()
            tg.cancel_scope.cancel()
    assert finished == []
    types = [r[0] for r in sink.rows]
    assert types[0] == EventType.RUN_START
    assert types[-1] == EventType.RUN_CANCELED
    assert EventType.STEP_SUCCESS not in types


def test_sync_and_async_ops_mix_in_one_job() -> None:
    @op
    def number() -> int:
        return 2

    @op
    async def doubled(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return x * 2

    @op
    def plus_one(x: int) -> int:
        return x + 1

    @job
    def mixed():
        plus_one(doubled(number()))

    assert mixed.execute_in_process().output_for_node("plus_one") == 5


async def test_async_op_called_directly_returns_an_awaitable() -> None:
    @op
    async def fetch(n: int) -> int:
        await anyio.lowlevel.checkpoint()
        return n + 1

    assert await fetch(1) == 2
    assert await fetch(build_op_context(), 2) == 3


async def test_async_asset_materializes() -> None:
    @asset
    async def remote() -> list[int]:
        await anyio.lowlevel.checkpoint()
        return [1, 2]

    from dagloom.definitions.asset_job import materialize_async

    result = await materialize_async([remote], in_memory=True)
    assert result.asset_value("remote") == [1, 2]
