"""Which produced outputs a step process is sent: only what the step may read."""

from __future__ import annotations

from dagloom import DynamicOut, DynamicOutput, job, op
from dagloom.definitions.io_manager import OutputContext
from dagloom.execution.multiprocess import input_refs
from dagloom.execution.step import ExecutionState


@op(out=DynamicOut())
def spread() -> object:
    for i in range(3):
        yield DynamicOutput(i, mapping_key=str(i))


@op
def one() -> int:
    return 1


@op
def double(x: int) -> int:
    return 2 * x


@op
def inc(x: int) -> int:
    return x + 1


@op
def total(values: list[int], base: int) -> int:
    return sum(values) + base


@job
def fanned() -> None:
    total(spread().map(double).map(inc).collect(), one())


def _state(refs: list[tuple[str, str, str | None]]) -> ExecutionState:
    state = ExecutionState()
    for step_key, name, mapping_key in refs:
        state.record_output(OutputContext(step_key, name, "run", mapping_key=mapping_key))
    return state


def test_a_step_gets_only_its_upstream_outputs_and_a_mapped_one_only_its_element() -> None:
    plan = fanned.get_plan()
    elements = [("spread", "result", k) for k in ("2", "0", "1")]  # yield order
    doubled = [(f"double[{k}]", "result", None) for k in ("0", "1", "2")]
    added = [(f"inc[{k}]", "result", None) for k in ("1", "2")]  # inc[0] not done
    state = _state([("one", "result", None), *elements, *doubled, *added])

    assert input_refs(plan, state, "one") == []
    assert input_refs(plan, state, "double[1]") == [("spread", "result", "1")]
    assert input_refs(plan, state, "inc[0]") == [("double[0]", "result", None)]
    # collect: the mapping keys in yield order, then every instance that stored its output
    assert input_refs(plan, state, "total") == [
        *elements,
        *reversed(added),
        ("one", "result", None),
    ]


def test_an_output_not_produced_yet_is_not_sent() -> None:
    plan = fanned.get_plan()
    assert input_refs(plan, _state([]), "inc[0]") == []
    assert input_refs(plan, _state([]), "total") == []
