"""Plain outputs (in-memory IO manager; no asset, mapping key, metadata, config or
partitions) are kept as their values in the run's state, without a context, which is made
when something asks for it."""

from __future__ import annotations

from typing import Any

import dagloom as dg
from dagloom.definitions.io_manager import OutputContext
from dagloom.execution.step import PlainOutput


@dg.op
def one() -> int:
    return 1


@dg.op
def plus(x: int) -> int:
    return x + 1


@dg.op(out={"a": dg.Out(), "b": dg.Out()})
def two() -> tuple[int, int]:
    return 3, 4


@dg.op
def add(x: int, y: int) -> int:
    return x + y


@dg.job
def plain() -> None:
    a, b = two()
    add(plus(one()), add.alias("ab")(a, b))


def test_plain_outputs_are_kept_as_values_and_read_back() -> None:
    result = plain.execute_in_process()
    assert result.success
    state = result._state
    assert state is not None
    assert state.outputs[("one", "result")] == 1
    assert state.outputs[("two", "b")] == 4
    context = state.output(("two", "b"))
    assert isinstance(context, OutputContext)
    assert (context.step_key, context.name, context.run_id) == ("two", "b", result.run_id)
    assert context.job_name == "plain"
    assert result.output_for_node("add") == 9
    assert result.output_for_node("two", "b") == 4
    assert state.output(("nothing", "result")) is None


def test_values_that_look_like_something_else_are_boxed() -> None:
    @dg.op
    def nothing() -> None:
        return None

    @dg.op
    def context_like() -> Any:
        return OutputContext("s", "result", "r")

    @dg.op
    def takes(x: Any, y: Any) -> bool:
        return x is None and isinstance(y, OutputContext)

    @dg.job
    def odd() -> None:
        takes(nothing(), context_like())

    result = odd.execute_in_process()
    assert result.success
    assert result._state is not None
    assert isinstance(result._state.outputs[("nothing", "result")], PlainOutput)
    assert result.output_for_node("nothing") is None
    assert isinstance(result.output_for_node("context_like"), OutputContext)
    assert result.output_for_node("takes") is True


def test_a_hook_reads_a_plain_output() -> None:
    seen: list[Any] = []

    @dg.success_hook
    def note(context: dg.HookContext) -> None:
        seen.append(context.op_output_values)

    @dg.job(hooks={note})
    def hooked() -> None:
        plus(one())

    assert hooked.execute_in_process().success
    assert {"result": 2} in seen


def test_another_io_manager_gets_every_output_with_its_context() -> None:
    stored: dict[tuple[str, str], Any] = {}

    class Keeping(dg.IOManager):
        def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
            stored[(context.step_key, context.name)] = obj

        def load_input(self, context: dg.InputContext) -> Any:
            upstream = context.upstream_output
            assert upstream is not None
            return stored[(upstream.step_key, upstream.name)]

    @dg.job(resource_defs={"io_manager": dg.IOManagerDefinition.hardcoded_io_manager(Keeping())})
    def kept() -> None:
        plus(one())

    result = kept.execute_in_process()
    assert result.success
    assert stored == {("one", "result"): 1, ("plus", "result"): 2}
    assert result._state is not None
    assert isinstance(result._state.outputs[("one", "result")], OutputContext)
    assert result.output_for_node("plus") == 2
