"""@graph: nesting, graph inputs and outputs, to_job, and explicit dependency graphs."""

from __future__ import annotations

from typing import Any

import pytest

from dagloom import (
    Config,
    DefinitionError,
    DependencyDefinition,
    GraphDefinition,
    MultiDependencyDefinition,
    Out,
    graph,
    job,
    op,
)
from dagloom.definitions import NodeInvocation


class Step(Config):
    step: int


@op
def one() -> int:
    return 1


@op
def add_one(x: int) -> int:
    return x + 1


@op
def double(x: int) -> int:
    return x * 2


@op
def add(a: int, b: int) -> int:
    return a + b


def test_graph_to_job_runs_its_ops() -> None:
    @graph
    def pipeline():
        double(add_one(one()))

    result = pipeline.to_job().execute_in_process()
    assert result.success
    assert result.job_name == "pipeline"
    assert result.output_for_node("double") == 4


def test_to_job_takes_a_name_tags_and_resources() -> None:
    @graph
    def pipeline():
        one()

    built = pipeline.to_job(name="renamed", tags={"team": "data"})
    assert built.name == "renamed"
    assert built.tags == {"team": "data"}
    assert built.execute_in_process().output_for_node("one") == 1


def test_graph_input_is_bound_to_the_callers_output() -> None:
    @graph
    def increment_twice(value):
        return add_one(add_one(value))

    @job
    def outer():
        double(increment_twice(one()))

    result = outer.execute_in_process()
    assert result.output_for_node("increment_twice.add_one_2") == 3
    assert result.output_for_node("double") == 6


def test_nested_graph_nodes_are_named_by_their_path() -> None:
    @graph
    def inner(x):
        return add_one(x)

    @graph
    def middle(x):
        return inner(x)

    @job
    def nesting():
        middle(one())

    assert nesting.node_names == ["one", "middle.inner.add_one"]
    result = nesting.execute_in_process()
    assert result.output_for_node("middle.inner.add_one") == 2


def test_graph_with_several_outputs_returns_a_dict_of_outputs() -> None:
    @op(out={"low": Out(), "high": Out()})
    def split():
        return 2, 20

    @graph(out={"low": Out(), "high": Out()})
    def splitter():
        low, high = split()
        return {"low": add_one(low), "high": add_one.alias("inc_high")(high)}

    @job
    def combined():
        parts = splitter()
        add(parts.low, parts.high)

    result = combined.execute_in_process()
    assert result.output_for_node("add") == 3 + 21


def test_calls_with_several_outputs_return_named_tuples_of_handles() -> None:
    @op(out={"low": Out(), "high": Out()})
    def split():
        return 2, 20

    @graph(out={"low": Out(), "high": Out()})
    def splitter():
        low, high = split()
        return {"low": add_one(low), "high": add_one.alias("inc_high")(high)}

    @graph
    def nothing():
        one()

    seen: dict[str, Any] = {}

    @job
    def combined():
        seen["op"] = split.alias("split_again")()
        seen["graph"] = splitter()
        seen["none"] = nothing()

    assert type(seen["op"]).__name__ == "split_outputs"
    assert seen["op"]._fields == ("low", "high")
    assert (seen["op"].low.node, seen["op"].high.output) == ("split_again", "high")
    assert type(seen["graph"]).__name__ == "splitter_outputs"
    assert seen["graph"]._fields == ("low", "high")
    assert (seen["graph"].low.node, seen["graph"].high.node) == (
        "splitter.add_one",
        "splitter.inc_high",
    )
    assert seen["none"] is None
    assert combined.graph_outputs[("splitter", "high")] == ("splitter.inc_high", "result")


def test_same_graph_used_twice_gets_distinct_prefixes() -> None:
    @graph
    def inc(x):
        return add_one(x)

    @job
    def twice():
        add(inc(one()), inc(one()))

    result = twice.execute_in_process()
    assert "inc.add_one" in twice.node_names
    assert "inc_2.add_one" in twice.node_names
    assert result.output_for_node("add") == 4


def test_config_for_an_op_inside_a_graph_is_nested_under_the_graph() -> None:
    @op
    def stepper(config: Step, x: int) -> int:
        return x + config.step

    @graph
    def stepping(x):
        return stepper(x)

    @job
    def outer():
        stepping(one())

    result = outer.execute_in_process(
        {"ops": {"stepping": {"ops": {"stepper": {"config": {"step": 10}}}}}}
    )
    assert result.output_for_node("stepping.stepper") == 11


def test_output_for_node_of_a_graph_returns_the_graph_output() -> None:
    @graph
    def inc(x):
        return add_one(x)

    @job
    def outer():
        inc(one())

    assert outer.execute_in_process().output_for_node("inc") == 2


def test_graph_called_outside_a_job_body_is_a_definition_error() -> None:
    @graph
    def g():
        one()

    with pytest.raises(DefinitionError, match="to_job"):
        g()


def test_graph_missing_an_input_when_called_is_a_definition_error() -> None:
    @graph
    def needs(x):
        return add_one(x)

    with pytest.raises(DefinitionError, match="missing inputs"):

        @job
        def bad():
            needs()


def test_from_dependencies_wires_ops_by_name() -> None:
    built = GraphDefinition.from_dependencies(
        "explicit",
        [one, add_one, double],
        {
            "add_one": {"x": DependencyDefinition("one")},
            "double": {"x": DependencyDefinition("add_one")},
        },
    )
    result = built.to_job().execute_in_process()
    assert result.output_for_node("double") == 4


def test_multi_dependency_definition_fans_in_a_list() -> None:
    @op
    def total(values: list[int]) -> int:
        return sum(values)

    @op
    def ten() -> int:
        return 10

    built = GraphDefinition.from_dependencies(
        "fan_in",
        [one, ten, total],
        {
            "total": {
                "values": MultiDependencyDefinition(
                    [DependencyDefinition("one"), DependencyDefinition("ten")]
                )
            }
        },
    )
    assert built.to_job().execute_in_process().output_for_node("total") == 11


def test_fan_in_list_in_a_job_body_passes_a_list() -> None:
    @op
    def total(values: list[int]) -> int:
        return sum(values)

    @job
    def fanning():
        total([one(), one(), add_one(one())])

    assert fanning.execute_in_process().output_for_node("total") == 4


def test_dependency_cycle_is_a_definition_error_naming_the_nodes() -> None:
    with pytest.raises(DefinitionError) as caught:
        GraphDefinition.from_dependencies(
            "cyclic",
            [one, add_one, double],
            {
                "add_one": {"x": DependencyDefinition("double")},
                "double": {"x": DependencyDefinition("add_one")},
            },
        )
    assert "cycle" in str(caught.value)
    assert "add_one" in str(caught.value)
    assert "double" in str(caught.value)
    assert "'one'" not in str(caught.value)


def test_dependency_on_an_unknown_node_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="missing"):
        GraphDefinition.from_dependencies(
            "dangling", [add_one], {"add_one": {"x": DependencyDefinition("missing")}}
        )


def test_dependencies_naming_an_op_outside_node_defs_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="'ghost', which is not among") as caught:
        GraphDefinition.from_dependencies(
            "unknown_key",
            [one, add_one],
            {
                "add_one": {"x": DependencyDefinition("one")},
                NodeInvocation("ghost", alias="g"): {},
                "phantom": {},
            },
        )
    assert "phantom" not in str(caught.value)


def test_dependencies_may_use_an_op_under_an_alias() -> None:
    built = GraphDefinition.from_dependencies(
        "aliased",
        [one, add_one],
        {NodeInvocation("add_one", alias="plus"): {"x": DependencyDefinition("one")}},
    )
    assert sorted(built.nodes) == ["one", "plus"]
    assert built.to_job().execute_in_process().output_for_node("plus") == 2


def test_dependency_on_an_unknown_input_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="nope"):
        GraphDefinition.from_dependencies(
            "bad_input", [one, add_one], {"add_one": {"nope": DependencyDefinition("one")}}
        )


def test_a_node_with_one_input_holds_it_in_a_read_only_mapping_a_fan_out_shares() -> None:
    import pickle

    from dagloom.definitions.node import FromOutput, OneBinding

    @op
    def emit_one() -> int:
        return 1

    @op
    def bump(x: int) -> int:
        return x + 1

    @job
    def fanned() -> None:
        one = emit_one()
        for i in range(3):
            bump.alias(f"bump_{i}")(one)
        bump.alias("chained")(bump.alias("first")(one))

    nodes = fanned.nodes
    inputs = nodes["bump_0"].inputs
    assert isinstance(inputs, OneBinding)
    assert inputs is nodes["bump_1"].inputs is nodes["bump_2"].inputs
    assert inputs == {"x": FromOutput("emit_one", "result")}
    assert dict(inputs) == {"x": FromOutput("emit_one", "result")}
    assert list(inputs.items()) == [("x", FromOutput("emit_one", "result"))]
    assert list(inputs.keys()) == ["x"] and list(inputs.values()) == [inputs["x"]]
    assert "x" in inputs and "y" not in inputs and len(inputs) == 1
    assert inputs.get("y") is None
    with pytest.raises(KeyError):
        inputs["y"]
    assert repr(inputs) == repr({"x": FromOutput("emit_one", "result")})
    assert pickle.loads(pickle.dumps(inputs)) == inputs
    assert nodes["chained"].inputs == {"x": FromOutput("first", "result")}
    assert fanned.execute_in_process().output_for_node("chained") == 3
