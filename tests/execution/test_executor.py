"""The in-process executor: step order, concurrency limits, thread pools for sync ops,
generators, and how step failures are recorded."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from dagloom import Out, Output, job, op
from dagloom.messages import EventType


def test_sync_ops_run_one_at_a_time_in_dependency_order() -> None:
    order: list[str] = []

    @op
    def root() -> int:
        order.append("root")
        return 1

    @op
    def left(x: int) -> int:
        order.append("left")
        return x

    @op
    def right(x: int) -> int:
        order.append("right")
        return x

    @op
    def join(a: int, b: int) -> int:
        order.append("join")
        return a + b

    @job
    def diamond():
        value = root()
        join(left(value), right(value))

    result = diamond.execute_in_process()
    assert result.output_for_node("join") == 2
    assert order[0] == "root"
    assert order[-1] == "join"
    assert sorted(order[1:3]) == ["left", "right"]
    starts = [e.step_key for e in result.filter_events(EventType.STEP_START)]
    successes = [e.step_key for e in result.filter_events(EventType.STEP_SUCCESS)]
    assert starts == successes  # no sync step starts before the previous one ends


def test_sync_ops_run_on_the_callers_thread_by_default() -> None:
    caller = threading.get_ident()

    @op
    def where() -> int:
        return threading.get_ident()

    @job
    def locating():
        where()

    assert locating.execute_in_process().output_for_node("where") == caller


def test_sync_op_threads_runs_sync_ops_in_parallel_threads() -> None:
    # Each op waits at the barrier for the other: passes only if both run at once.
    barrier = threading.Barrier(2, timeout=5)
    caller = threading.get_ident()

    @op
    def first() -> int:
        barrier.wait()
        return threading.get_ident()

    @op
    def second() -> int:
        barrier.wait()
        return threading.get_ident()

    @job
    def parallel():
        first()
        second()

    result = parallel.execute_in_process({"execution": {"config": {"sync_op_threads": 2}}})
    assert result.success
    threads = {result.output_for_node("first"), result.output_for_node("second")}
    assert len(threads) == 2
    assert caller not in threads


def test_sync_op_threads_drains_generator_ops_in_the_thread() -> None:
    @op(out={"a": Out(), "b": Out()})
    def both() -> Iterator[Output[int]]:
        yield Output(1, output_name="a")
        yield Output(2, output_name="b")

    @job
    def gen():
        both()

    result = gen.execute_in_process({"execution": {"config": {"sync_op_threads": 1}}})
    assert result.output_for_node("both", "a") == 1
    assert result.output_for_node("both", "b") == 2


def _counting_ops(count: int, peak: list[int], active: list[int], wait_for: int | None):
    """`count` independent async ops that track how many run at once; with `wait_for`, each
    waits until that many are running together."""
    together = anyio.Event()

    def make(i: int):
        @op(name=f"work_{i}")
        async def work() -> int:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            if wait_for is not None and active[0] >= wait_for:
                together.set()
            with anyio.fail_after(5):
                if wait_for is not None:
                    await together.wait()
                for _ in range(3):
                    await anyio.lowlevel.checkpoint()
            active[0] -= 1
            return i

        return work

    return [make(i) for i in range(count)]


def test_max_concurrent_one_runs_async_ops_one_at_a_time() -> None:
    peak, active = [0], [0]
    ops = _counting_ops(4, peak, active, wait_for=None)

    @job
    def limited():
        for work in ops:
            work()

    result = limited.execute_in_process({"execution": {"config": {"max_concurrent": 1}}})
    assert result.success
    assert peak[0] == 1
    assert [result.output_for_node(f"work_{i}") for i in range(4)] == [0, 1, 2, 3]


def test_max_concurrent_caps_async_ops_in_flight() -> None:
    peak, active = [0], [0]
    ops = _counting_ops(5, peak, active, wait_for=2)

    @job
    def limited():
        for work in ops:
            work()

    result = limited.execute_in_process({"execution": {"config": {"max_concurrent": 2}}})
    assert result.success
    assert peak[0] == 2


def test_async_ops_run_together_without_a_limit() -> None:
    peak, active = [0], [0]
    ops = _counting_ops(4, peak, active, wait_for=4)

    @job
    def unlimited():
        for work in ops:
            work()

    assert unlimited.execute_in_process().success
    assert peak[0] == 4


def test_in_process_executor_config_nested_under_its_name_is_accepted() -> None:
    peak, active = [0], [0]
    ops = _counting_ops(3, peak, active, wait_for=None)

    @job
    def limited():
        for work in ops:
            work()

    limited.execute_in_process({"execution": {"config": {"in_process": {"max_concurrent": 1}}}})
    assert peak[0] == 1


def test_generator_op_yields_outputs_in_order() -> None:
    @op(out={"a": Out(), "b": Out()})
    def both() -> Iterator[Output[int]]:
        yield Output(1, output_name="a")
        yield Output(2, output_name="b")

    @job
    def gen():
        both()

    result = gen.execute_in_process()
    outputs = [e.step_output.output_name for e in result.filter_events(EventType.STEP_OUTPUT)]
    assert outputs == ["a", "b"]


def test_async_generator_op_yields_outputs() -> None:
    @op(out={"a": Out(), "b": Out()})
    async def both() -> AsyncIterator[Output[int]]:
        yield Output(1, output_name="a")
        await anyio.lowlevel.checkpoint()
        yield Output(2, output_name="b")

    @job
    def gen():
        both()

    result = gen.execute_in_process()
    assert result.output_for_node("both", "a") == 1
    assert result.output_for_node("both", "b") == 2


def test_output_to_an_undeclared_name_fails_the_step() -> None:
    @op
    def wrong() -> Output[int]:
        return Output(1, output_name="nope")

    @job
    def bad():
        wrong()

    result = bad.execute_in_process(raise_on_error=False)
    (failure,) = result.get_step_failure_events()
    assert "nope" in failure.step_failure.error.message


def test_wrong_number_of_returned_values_fails_the_step() -> None:
    @op(out={"a": Out(), "b": Out()})
    def three():
        return 1, 2, 3

    @job
    def bad():
        three()

    result = bad.execute_in_process(raise_on_error=False)
    assert result.is_node_failed("three")


def test_async_op_failure_is_recorded_and_downstream_skipped() -> None:
    @op
    async def explode() -> int:
        await anyio.lowlevel.checkpoint()
        raise LookupError("missing row")

    @op
    def after(x: int) -> int:
        return x

    @job
    def failing():
        after(explode())

    result = failing.execute_in_process(raise_on_error=False)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_failure.error.cls_name == "LookupError"
    assert failure.step_failure.error.message == "missing row"
    assert "explode" in failure.step_failure.error.stack
    (skipped,) = result.get_step_skipped_events()
    assert skipped.step_key == "after"
    assert list(skipped.step_skipped.upstream_step_keys) == ["explode"]
    with pytest.raises(LookupError):
        failing.execute_in_process()


def test_first_failed_step_error_is_raised_when_several_fail() -> None:
    @op
    def first_bad() -> None:
        raise KeyError("first")

    @op
    def second_bad() -> None:
        raise ValueError("second")

    @job
    def two_failures():
        first_bad()
        second_bad()

    result = two_failures.execute_in_process(raise_on_error=False)
    assert sorted(result.failed_steps) == ["first_bad", "second_bad"]
    with pytest.raises(KeyError):
        two_failures.execute_in_process()
