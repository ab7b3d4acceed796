"""@job and execute_in_process: results, failures, op selection, inputs from run config."""

from __future__ import annotations

import pytest

from dagloom import (
    ConfigError,
    DagloomInvalidSelectionError,
    DefinitionError,
    job,
    op,
)
from dagloom.definitions.job import JobDefinition
from dagloom.execution import plan as plan_module
from dagloom.execution.plan import ExecutionPlan, select_nodes
from dagloom.execution.run import subset_job
from dagloom.messages import EventType


class Boom(Exception):
    """What a failing op raises."""


calls: list[str] = []


@op
def start() -> int:
    calls.append("start")
    return 1


@op
def middle(x: int) -> int:
    calls.append("middle")
    return x + 1


@op
def end(x: int) -> int:
    calls.append("end")
    return x * 10


@op
def side(x: int) -> int:
    calls.append("side")
    return -x


@job(tags={"team": "numbers"}, description="line")
def line():
    value = middle(start())
    end(value)
    side(value)


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    calls.clear()


def test_job_collects_nodes_in_dependency_order() -> None:
    assert line.name == "line"
    assert line.description == "line"
    assert line.tags == {"team": "numbers"}
    assert line.node_names == ["start", "middle", "end", "side"]


def test_execute_in_process_returns_outputs_and_success() -> None:
    result = line.execute_in_process()
    assert result.success
    assert result.output_for_node("end") == 20
    assert result.output_for_node("side") == -2
    assert result.is_node_success("middle")
    assert calls[:2] == ["start", "middle"]
    assert sorted(calls[2:]) == ["end", "side"]


def test_output_for_unknown_node_raises() -> None:
    from dagloom import DagloomError

    result = line.execute_in_process()
    with pytest.raises(DagloomError, match="nope"):
        result.output_for_node("nope")


def test_a_job_body_parameter_passed_to_no_op_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match=r"parameters \['x'\] are passed to no op"):

        @job
        def bad(x):
            start()


def test_job_tags_and_run_tags_are_visible_to_ops() -> None:
    @op
    def read_tags(context) -> dict[str, str]:
        return dict(context.run_tags)

    @job(tags={"a": "1"})
    def tagged():
        read_tags()

    result = tagged.execute_in_process(tags={"b": "2"})
    assert result.output_for_node("read_tags") == {"a": "1", "b": "2"}


def test_raise_on_error_reraises_the_users_exception() -> None:
    @op
    def explode() -> int:
        raise Boom("kaput")

    @job
    def failing():
        explode()

    with pytest.raises(Boom, match="kaput"):
        failing.execute_in_process()


def test_raise_on_error_false_returns_failed_result_with_failure_and_skips() -> None:
    @op
    def explode(x: int) -> int:
        raise Boom("kaput")

    @op
    def after(x: int) -> int:
        return x

    @op
    def after_after(x: int) -> int:
        return x

    @job
    def failing():
        after_after(after(explode(start())))

    result = failing.execute_in_process(raise_on_error=False)
    assert not result.success
    assert result.failed_steps == ["explode"]
    assert result.is_node_failed("explode")
    assert result.is_node_success("start")

    (failure,) = result.filter_events(EventType.STEP_FAILURE)
    assert failure.step_key == "explode"
    assert failure.step_failure.error.cls_name == "Boom"
    assert failure.step_failure.error.message == "kaput"
    assert "raise Boom" in failure.step_failure.error.stack
    assert failure.step_failure.user_failure is False

    skipped = result.filter_events(EventType.STEP_SKIPPED)
    assert [e.step_key for e in skipped] == ["after", "after_after"]
    assert list(skipped[0].step_skipped.upstream_step_keys) == ["explode"]
    assert list(skipped[1].step_skipped.upstream_step_keys) == ["after"]

    run_failure = result.get_run_failure_event()
    assert list(run_failure.run_failure.failed_step_keys) == ["explode"]
    assert result.filter_events(EventType.RUN_SUCCESS) == []


def test_failure_in_one_branch_lets_independent_branches_finish() -> None:
    @op
    def explode(x: int) -> int:
        raise Boom("kaput")

    @job
    def branches():
        value = start()
        explode(value)
        side(value)

    result = branches.execute_in_process(raise_on_error=False)
    assert not result.success
    assert result.is_node_success("side")
    assert result.output_for_node("side") == -1


def test_exception_cause_chain_is_recorded() -> None:
    @op
    def wrapped() -> None:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise Boom("outer") from exc

    @job
    def chained():
        wrapped()

    result = chained.execute_in_process(raise_on_error=False)
    error = result.get_step_failure_events()[0].step_failure.error
    assert error.cls_name == "Boom"
    assert error.cause.cls_name == "KeyError"


def test_op_selection_runs_only_the_selected_ops() -> None:
    result = line.execute_in_process(op_selection=["start", "middle"])
    assert result.success
    assert calls == ["start", "middle"]
    assert result.output_for_node("middle") == 2
    assert {e.step_key for e in result.filter_events(EventType.STEP_START)} == {
        "start",
        "middle",
    }


def test_op_selection_with_upstream_star_includes_ancestors() -> None:
    result = line.execute_in_process(op_selection=["*end"])
    assert sorted(calls) == ["end", "middle", "start"]
    assert result.output_for_node("end") == 20


def test_op_selection_with_downstream_plus_includes_children() -> None:
    line.execute_in_process(op_selection=["start++"])
    assert sorted(calls) == ["end", "middle", "side", "start"]


def test_op_selection_of_op_with_unselected_upstream_takes_input_from_run_config() -> None:
    result = line.execute_in_process(
        op_selection=["end"], run_config={"ops": {"end": {"inputs": {"x": 5}}}}
    )
    assert calls == ["end"]
    assert result.output_for_node("end") == 50


def test_op_selection_naming_an_unknown_op_raises_invalid_selection() -> None:
    with pytest.raises(DagloomInvalidSelectionError, match="nope"):
        line.execute_in_process(op_selection=["nope"])


def test_input_without_source_comes_from_run_config() -> None:
    @op
    def greet(name: str) -> str:
        return f"hi {name}"

    @job
    def greeting():
        greet()

    result = greeting.execute_in_process({"ops": {"greet": {"inputs": {"name": "ada"}}}})
    assert result.output_for_node("greet") == "hi ada"
    result = greeting.execute_in_process({"ops": {"greet": {"inputs": {"name": {"value": "bob"}}}}})
    assert result.output_for_node("greet") == "hi bob"


def test_input_without_source_or_default_is_a_config_error_at_launch() -> None:
    @op
    def greet(name: str) -> str:
        calls.append("greet")
        return name

    @job
    def greeting():
        greet()

    with pytest.raises(ConfigError) as caught:
        greeting.execute_in_process()
    assert caught.value.key_paths == ["ops.greet.inputs.name"]
    assert calls == []


def test_input_default_is_used_when_nothing_is_wired() -> None:
    @op
    def greet(name: str = "world") -> str:
        return f"hi {name}"

    @job
    def greeting():
        greet()

    assert greeting.execute_in_process().output_for_node("greet") == "hi world"


def test_job_default_config_is_used_and_run_config_overrides_it() -> None:
    @op(config_schema={"n": int})
    def config_n(context) -> int:
        return context.op_config["n"]

    @job(config={"ops": {"config_n": {"config": {"n": 1}}}})
    def configured():
        config_n()

    assert configured.execute_in_process().output_for_node("config_n") == 1
    overridden = configured.execute_in_process({"ops": {"config_n": {"config": {"n": 2}}}})
    assert overridden.output_for_node("config_n") == 2


def test_job_definition_is_reusable_across_runs() -> None:
    first = line.execute_in_process()
    second = line.execute_in_process()
    assert first.run_id != second.run_id
    assert first.output_for_node("end") == second.output_for_node("end") == 20


def test_job_requiring_a_missing_resource_fails_at_launch() -> None:
    @op(required_resource_keys={"db"})
    def query(context) -> None:
        calls.append("query")

    @job
    def querying():
        query()

    with pytest.raises(DefinitionError, match="db"):
        querying.execute_in_process()
    assert calls == []


def test_with_resources_reuses_the_compiled_plan() -> None:
    plan = line.get_plan()
    bound = line.with_resources({"db": object()})
    assert bound.get_plan() is plan
    assert bound.with_replaced_attrs(resource_defs={}).get_plan() is plan


def test_a_job_with_other_nodes_compiles_its_own_plan() -> None:
    plan = line.get_plan()
    subset = subset_job(line, select_nodes(line, ["start", "middle"]))
    assert subset.get_plan() is not plan
    assert list(subset.get_plan().steps) == ["start", "middle"]


def test_run_with_resources_does_not_recompile_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    line.get_plan()
    compiled: list[str] = []
    real = plan_module.compile_plan

    def counting(job_def: JobDefinition) -> ExecutionPlan:
        compiled.append(job_def.name)
        return real(job_def)

    monkeypatch.setattr(plan_module, "compile_plan", counting)
    assert line.execute_in_process(resources={"db": object()}).success
    assert compiled == []
    line.execute_in_process(op_selection=["start"], resources={"db": object()})
    assert compiled == ["line"]


def test_node_order_lists_each_node_after_the_nodes_it_reads() -> None:
    @op
    def top() -> int:
        return 1

    @op
    def twice(x: int) -> int:
        return 2 * x

    @op
    def add(a: int, b: int) -> int:
        return a + b

    @job
    def diamond() -> None:
        t = top()
        add(twice.alias("left")(t), twice.alias("right")(t))

    order = diamond.node_order
    assert sorted(order) == sorted(diamond.nodes)
    assert order.index("top") < order.index("left") < order.index("add")
    assert order.index("right") < order.index("add")
    assert list(diamond.get_plan().steps) == order
