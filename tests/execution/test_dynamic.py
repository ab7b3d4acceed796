"""DynamicOut and DynamicOutput: mapping ops over elements, chains of mapped ops, collecting
the results, and what the run result reports for mapped nodes."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from dagloom import DefinitionError, DynamicOut, DynamicOutput, graph, job, op
from dagloom.messages import EventType


@op(out=DynamicOut())
def files() -> Iterator[DynamicOutput[str]]:
    for name in ["a", "bb", "ccc"]:
        yield DynamicOutput(name, mapping_key=name)


@op
def length(name: str) -> int:
    return len(name)


@op
def square(n: int) -> int:
    return n * n


@op
def total(values: list[int]) -> int:
    return sum(values)


def test_map_then_collect_runs_the_op_once_per_element() -> None:
    @job
    def mapped():
        total(files().map(length).collect())

    result = mapped.execute_in_process()
    assert result.success
    assert result.output_for_node("total") == 6
    starts = [e.step_key for e in result.filter_events(EventType.STEP_START)]
    assert starts[0] == "files"
    assert sorted(starts[1:4]) == ["length[a]", "length[bb]", "length[ccc]"]
    assert starts[4] == "total"


def test_output_for_node_of_a_mapped_node_is_a_dict_by_mapping_key() -> None:
    @job
    def mapped():
        files().map(length)

    result = mapped.execute_in_process()
    assert result.output_for_node("length") == {"a": 1, "bb": 2, "ccc": 3}
    assert result.output_for_node("files") == {"a": "a", "bb": "bb", "ccc": "ccc"}


def test_chain_of_mapped_ops_keeps_each_element_apart() -> None:
    @job
    def chained():
        total(files().map(lambda f: square(length(f))).collect())

    result = chained.execute_in_process()
    assert result.output_for_node("square") == {"a": 1, "bb": 4, "ccc": 9}
    assert result.output_for_node("total") == 14
    for key in ["a", "bb", "ccc"]:
        step_events = [
            e.event_type for e in result.all_node_events if e.step_key == f"square[{key}]"
        ]
        assert EventType.STEP_SUCCESS in step_events


def test_collect_the_dynamic_output_itself() -> None:
    @op
    def joined(names: list[str]) -> str:
        return ",".join(names)

    @job
    def collecting():
        joined(files().collect())

    assert collecting.execute_in_process().output_for_node("joined") == "a,bb,ccc"


def test_collected_values_follow_yield_order() -> None:
    @op(out=DynamicOut())
    def backwards() -> Iterator[DynamicOutput[int]]:
        for n in [3, 1, 2]:
            yield DynamicOutput(n, mapping_key=f"k{n}")

    @op
    def as_list(values: list[int]) -> list[int]:
        return values

    @op
    async def slow_for_small(n: int) -> int:
        for _ in range(4 - n):
            await anyio.lowlevel.checkpoint()
        return n

    @job
    def ordered():
        as_list(backwards().map(slow_for_small).collect())

    assert ordered.execute_in_process().output_for_node("as_list") == [3, 1, 2]


def test_returning_a_list_of_dynamic_outputs() -> None:
    @op(out=DynamicOut())
    def listed() -> list[DynamicOutput[int]]:
        return [DynamicOutput(i, mapping_key=str(i)) for i in range(3)]

    @job
    def mapped():
        total(listed().map(square).collect())

    assert mapped.execute_in_process().output_for_node("total") == 0 + 1 + 4


def test_no_elements_means_no_mapped_steps_and_an_empty_collect() -> None:
    @op(out=DynamicOut())
    def nothing() -> Iterator[DynamicOutput[int]]:
        yield from ()

    @job
    def empty():
        total(nothing().map(square).collect())

    result = empty.execute_in_process()
    assert result.success
    assert result.output_for_node("total") == 0
    assert not [e for e in result.all_node_events if e.step_key.startswith("square")]


def test_one_failing_element_fails_its_step_and_skips_the_collector() -> None:
    @op
    def picky(name: str) -> int:
        if name == "bb":
            raise ValueError("no bb")
        return len(name)

    @job
    def mapped():
        total(files().map(picky).collect())

    result = mapped.execute_in_process(raise_on_error=False)
    assert not result.success
    assert result.failed_steps == ["picky[bb]"]
    assert result.is_node_failed("picky")
    assert result.output_for_node("picky") == {"a": 1, "ccc": 3}
    (skipped,) = result.get_step_skipped_events()
    assert skipped.step_key == "total"
    assert "picky[bb]" in skipped.step_skipped.upstream_step_keys


def test_dynamic_output_events_carry_the_mapping_key() -> None:
    @job
    def mapped():
        files().map(length)

    result = mapped.execute_in_process()
    outputs = [
        e.step_output.mapping_key
        for e in result.filter_events(EventType.STEP_OUTPUT)
        if e.step_key == "files"
    ]
    assert outputs == ["a", "bb", "ccc"]


def test_mapping_key_with_bad_characters_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="mapping_key"):
        DynamicOutput(1, mapping_key="has space")


def test_passing_a_dynamic_output_straight_to_an_op_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="map"):

        @job
        def bad():
            length(files())


def test_mapping_a_plain_output_is_a_definition_error() -> None:
    @op
    def plain() -> int:
        return 1

    with pytest.raises(DefinitionError, match="dynamic"):

        @job
        def bad():
            plain().map(square)


def test_returning_a_plain_value_from_a_dynamic_out_fails_the_step() -> None:
    @op(out=DynamicOut())
    def wrong() -> int:
        return 3

    @job
    def bad():
        wrong()

    result = bad.execute_in_process(raise_on_error=False)
    assert result.is_node_failed("wrong")


def test_mapped_steps_run_concurrently_when_async() -> None:
    @op(out=DynamicOut())
    def pair() -> Iterator[DynamicOutput[str]]:
        yield DynamicOutput("x", mapping_key="x")
        yield DynamicOutput("y", mapping_key="y")

    arrived = {"x": anyio.Event(), "y": anyio.Event()}

    @op
    async def meet(name: str) -> str:
        other = "y" if name == "x" else "x"
        arrived[name].set()
        with anyio.fail_after(5):
            await arrived[other].wait()
        return name

    @job
    def meeting():
        pair().map(meet)

    result = meeting.execute_in_process()
    assert result.output_for_node("meet") == {"x": "x", "y": "y"}


def test_a_graph_returning_a_dynamic_output_can_be_mapped_by_its_caller() -> None:
    @graph
    def listing():
        return files()

    @job
    def mapped():
        total(listing().map(length).collect())

    assert mapped.execute_in_process().output_for_node("total") == 6
