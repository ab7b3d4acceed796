"""Ops and graphs, written as Dagster's docs on ops, graphs, dynamic graphs and op events show
them: order-only inputs, graph ins and outs, chained mapping, the op context, op selection."""

from __future__ import annotations

import os
from typing import Any

import pytest

import dagloom as dg
from dagloom.messages import LogLevel

# -- Nothing: order-only dependencies -------------------------------------------------------

CALLS: list[str] = []


@dg.op
def create_table_1() -> None:
    CALLS.append("create_table_1")


@dg.op(ins={"start": dg.In(dg.Nothing)})
def create_table_2() -> None:
    CALLS.append("create_table_2")


@dg.job
def nothing_dependency() -> None:
    create_table_2(start=create_table_1())


def test_nothing_input_orders_ops_without_passing_a_value() -> None:
    CALLS.clear()
    result = nothing_dependency.execute_in_process()
    assert result.success
    assert CALLS == ["create_table_1", "create_table_2"]
    assert not result.filter_events(dg.DagsterEventType.LOADED_INPUT)


def test_nothing_input_beside_a_value_input_and_fanned_in() -> None:
    @dg.op
    def one() -> int:
        return 1

    @dg.op
    def side_effect() -> None:
        CALLS.append("side_effect")

    @dg.op(ins={"value": dg.In(int), "after": dg.In(dg.Nothing)})
    def add_ten(value: int) -> int:
        CALLS.append("add_ten")
        return value + 10

    @dg.job
    def mixed() -> None:
        add_ten(value=one(), after=[side_effect(), side_effect.alias("again")()])

    CALLS.clear()
    result = mixed.execute_in_process()
    assert result.output_for_node("add_ten") == 11
    assert CALLS == ["side_effect", "side_effect", "add_ten"]


def test_nothing_input_is_skipped_when_its_upstream_fails() -> None:
    @dg.op
    def broken() -> None:
        raise ValueError("no table")

    @dg.job
    def after_broken() -> None:
        create_table_2(start=broken())

    result = after_broken.execute_in_process(raise_on_error=False)
    assert result.is_node_failed("broken")
    assert result.is_node_skipped("create_table_2")


def test_an_out_of_type_nothing_feeds_a_nothing_input() -> None:
    @dg.op(out=dg.Out(dg.Nothing))
    def load_raw() -> None:
        CALLS.append("load_raw")

    @dg.job
    def nothing_out() -> None:
        create_table_2(start=load_raw())

    CALLS.clear()
    assert nothing_out.execute_in_process().success
    assert CALLS == ["load_raw", "create_table_2"]


def test_nothing_input_cannot_be_a_parameter() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match=r"bad_op.*Nothing"):

        @dg.op(ins={"start": dg.In(dg.Nothing)})
        def bad_op(start: None) -> None:
            del start


# -- Graph ins and outs ---------------------------------------------------------------------


@dg.op
def return_one() -> int:
    return 1


@dg.op
def add_one(number: int) -> int:
    return number + 1


@dg.op
def multiply_by_two(number: int) -> int:
    return number * 2


@dg.graph(out={"plus": dg.GraphOut(), "times": dg.GraphOut()})
def two_outputs(number: int) -> tuple[int, int]:
    return add_one(number), multiply_by_two(number)


@dg.graph(ins={"number": dg.GraphIn(description="what to add to")})
def add_twice(number: int) -> int:
    return add_one(add_one(number))


def test_graph_out_names_the_outputs_of_a_graph() -> None:
    @dg.job
    def uses_outputs() -> None:
        plus, times = two_outputs(return_one())
        add_one.alias("after_plus")(plus)
        add_one.alias("after_times")(times)

    result = uses_outputs.execute_in_process()
    assert result.output_for_node("after_plus") == 3
    assert result.output_for_node("after_times") == 3
    assert result.output_for_node("two_outputs", "plus") == 2
    assert result.output_for_node("two_outputs", "times") == 2


def test_graph_in_describes_a_graph_input() -> None:
    @dg.job
    def adds() -> None:
        add_twice(return_one())

    assert adds.execute_in_process().output_for_node("add_twice") == 3


def test_graph_in_must_name_a_parameter() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match=r"bad_graph.*missing"):

        @dg.graph(ins={"missing": dg.GraphIn()})
        def bad_graph(number: int) -> int:
            return add_one(number)


# -- Dynamic outputs: chained map and the mapping key ---------------------------------------


@dg.op(out=dg.DynamicOut())
def files_in_directory():
    for name in ("a", "b", "c"):
        yield dg.DynamicOutput(name, mapping_key=name)


@dg.op
def process_file(context: dg.OpExecutionContext, name: str) -> str:
    return f"{name}:{context.get_mapping_key()}"


@dg.op
def shout(text: str) -> str:
    return text.upper()


@dg.op
def summarize(values: list[str]) -> str:
    return ",".join(values)


@dg.job
def chained() -> None:
    summarize(files_in_directory().map(process_file).map(shout).collect())


def test_chained_map_runs_each_op_once_per_mapping_key() -> None:
    result = chained.execute_in_process()
    assert result.success
    assert result.output_for_node("summarize") == "A:A,B:B,C:C"
    assert result.output_for_node("shout") == {"a": "A:A", "b": "B:B", "c": "C:C"}


def test_get_mapping_key_is_none_outside_a_mapping() -> None:
    seen: list[str | None] = []

    @dg.op
    def plain(context: dg.OpExecutionContext) -> None:
        seen.append(context.get_mapping_key())

    @dg.job
    def one_op() -> None:
        plain()

    one_op.execute_in_process()
    assert seen == [None]


# -- The op context: run, log_event ---------------------------------------------------------


def test_context_run_has_the_run_id_and_tags() -> None:
    seen: dict[str, object] = {}

    @dg.op
    def reads_run(context: dg.OpExecutionContext) -> None:
        seen["run_id"] = context.run.run_id
        seen["tags"] = dict(context.run.tags)
        seen["job"] = context.run.job_name

    @dg.job(tags={"team": "data"})
    def tagged() -> None:
        reads_run()

    result = tagged.execute_in_process(tags={"source": "test"})
    assert seen["run_id"] == result.run_id
    assert seen["job"] == "tagged"
    assert seen["tags"] == {"team": "data", "source": "test"}


def test_log_event_records_materializations_and_expectations() -> None:
    @dg.op
    def reports(context: dg.OpExecutionContext) -> int:
        context.log_event(dg.AssetMaterialization(asset_key="my_table", metadata={"rows": 3}))
        context.log_event(dg.ExpectationResult(success=True, label="non_empty"))
        return 3

    @dg.job
    def reporting() -> None:
        reports()

    result = reporting.execute_in_process()
    materializations = result.asset_materializations_for_node("reports")
    assert [m.asset_key for m in materializations] == [dg.AssetKey("my_table")]
    expectations = result.filter_events(dg.DagsterEventType.STEP_EXPECTATION_RESULT)
    assert len(expectations) == 1
    assert "non_empty" in (expectations[0].message or "")


def test_log_event_rejects_other_objects() -> None:
    @dg.op
    def logs_wrong(context: dg.OpExecutionContext) -> None:
        context.log_event("not an event")

    @dg.job
    def wrong() -> None:
        logs_wrong()

    with pytest.raises(dg.DagsterInvalidInvocationError, match="logs_wrong"):
        wrong.execute_in_process()


def test_yielded_expectation_result_is_an_event_not_a_failure() -> None:
    @dg.op
    def checks_data():
        yield dg.ExpectationResult(success=False, label="positive", description="found -1")
        yield dg.Output(1)

    @dg.job
    def checking() -> None:
        checks_data()

    result = checking.execute_in_process()
    assert result.success
    (event,) = result.filter_events(dg.DagsterEventType.STEP_EXPECTATION_RESULT)
    assert event.step_key == "checks_data"
    assert "found -1" in (event.message or "")


# -- Definitions introspection and helpers --------------------------------------------------


def test_input_defs_and_output_defs() -> None:
    @dg.op(
        ins={"start": dg.In(dg.Nothing)},
        out={"first": dg.Out(int), "second": dg.Out(str, is_required=False)},
    )
    def two(number: int):
        yield dg.Output(number, "first")

    assert [d.name for d in two.input_defs] == ["number", "start"]
    assert two.input_defs[0].dagster_type is int
    assert two.input_defs[1].dagster_type is dg.Nothing
    assert [d.name for d in two.output_defs] == ["first", "second"]
    assert two.output_defs[1].is_required is False
    assert two.output_dict["first"].dagster_type is int


def test_file_relative_path() -> None:
    path = dg.file_relative_path(__file__, "data/rows.csv")
    assert path == os.path.join(os.path.dirname(__file__), "data/rows.csv")


# -- Op selection ---------------------------------------------------------------------------


def test_op_selection_runs_only_the_selected_ops() -> None:
    @dg.job
    def three() -> None:
        multiply_by_two(add_one(return_one()))

    result = three.execute_in_process(op_selection=["*add_one"])
    assert result.success
    assert result.output_for_node("add_one") == 2
    assert [e.step_key for e in result.get_step_success_events()] == ["return_one", "add_one"]


def test_op_selection_of_an_unknown_op_names_it() -> None:
    @dg.job
    def small() -> None:
        return_one()

    with pytest.raises(dg.DagloomInvalidSelectionError, match="nope"):
        small.execute_in_process(op_selection=["nope"])


# -- Graph-backed assets --------------------------------------------------------------------


@dg.asset
def upstream_asset() -> int:
    return 1


@dg.op
def add_one_to(input_num: int) -> int:
    return input_num + 1


@dg.op
def double_it(input_num: int) -> int:
    return input_num * 2


@dg.graph_asset
def middle_asset(upstream_asset: int) -> int:
    return double_it(add_one_to(upstream_asset))


@dg.asset
def downstream_asset(middle_asset: int) -> int:
    return middle_asset + 7


@dg.op(out={"one": dg.Out(), "two": dg.Out()})
def split(number: int) -> tuple[int, int]:
    return number + 1, number + 2


@dg.graph_multi_asset(outs={"first_asset": dg.AssetOut(), "second_asset": dg.AssetOut()})
def two_assets(upstream_asset: int) -> dict[str, int]:
    one, two = split(upstream_asset)
    return {"first_asset": one, "second_asset": two}


def test_graph_asset_runs_each_op_as_a_step_and_materializes_once() -> None:
    result = dg.materialize(
        [upstream_asset, middle_asset, downstream_asset],
        resources={"io_manager": dg.mem_io_manager},
    )
    assert result.success
    assert [e.step_key for e in result.get_step_success_events()] == [
        "upstream_asset",
        "middle_asset.add_one_to",
        "middle_asset.double_it",
        "downstream_asset",
    ]
    keys = [e.asset_key for e in result.get_asset_materialization_events()]
    assert keys == [
        dg.AssetKey("upstream_asset"),
        dg.AssetKey("middle_asset"),
        dg.AssetKey("downstream_asset"),
    ]
    assert result.output_for_node("middle_asset") == 4
    assert result.output_for_node("downstream_asset") == 11
    assert middle_asset.key == dg.AssetKey("middle_asset")
    assert middle_asset.dependency_keys == {dg.AssetKey("upstream_asset")}


def test_graph_multi_asset_materializes_each_returned_output() -> None:
    result = dg.materialize(
        [upstream_asset, two_assets], resources={"io_manager": dg.mem_io_manager}
    )
    assert result.success
    assert two_assets.keys == {dg.AssetKey("first_asset"), dg.AssetKey("second_asset")}
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {
        dg.AssetKey("upstream_asset"),
        dg.AssetKey("first_asset"),
        dg.AssetKey("second_asset"),
    }
    assert result.output_for_node("two_assets", "second_asset") == 3


def test_graph_asset_reads_an_upstream_asset_outside_the_selection() -> None:
    class Stored(dg.InMemoryIOManager):
        pass

    storage = Stored()
    assert dg.materialize([upstream_asset], resources={"io_manager": storage}).success
    result = dg.materialize([middle_asset], resources={"io_manager": storage})
    assert result.success
    assert result.output_for_node("middle_asset") == 4


def test_graph_asset_in_definitions_and_asset_jobs() -> None:
    defs = dg.Definitions(
        assets=[upstream_asset, middle_asset, downstream_asset],
        jobs=[dg.define_asset_job("all_assets")],
        resources={"io_manager": dg.mem_io_manager},
    )
    result = defs.get_job_def("all_assets").execute_in_process()
    assert result.success
    assert result.output_for_node("downstream_asset") == 11


def test_a_graph_asset_cannot_be_called_directly() -> None:
    with pytest.raises(dg.DagsterInvalidInvocationError, match="middle_asset"):
        middle_asset(1)


def test_graph_asset_ins_and_deps_name_upstream_assets() -> None:
    @dg.asset
    def raw_numbers() -> int:
        return 5

    @dg.asset
    def setup_table() -> None:
        return None

    @dg.graph_asset(ins={"numbers": dg.AssetIn("raw_numbers")}, deps=[setup_table])
    def prepared(numbers: int) -> int:
        return add_one_to(numbers)

    assert prepared.dependency_keys == {dg.AssetKey("raw_numbers"), dg.AssetKey("setup_table")}
    result = dg.materialize(
        [raw_numbers, setup_table, prepared], resources={"io_manager": dg.mem_io_manager}
    )
    assert result.success
    assert result.output_for_node("prepared") == 6
    steps = [e.step_key for e in result.get_step_success_events()]
    assert steps.index("setup_table") < steps.index("prepared.add_one_to")


def test_graph_asset_ins_must_name_a_parameter() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="bad_graph_asset"):

        @dg.graph_asset(ins={"missing": dg.AssetIn("raw")})
        def bad_graph_asset(numbers: int) -> int:
            return add_one_to(numbers)


def test_get_dagster_logger_records_log_messages_of_the_step_that_logs() -> None:
    import logging

    @dg.op
    def sync_op() -> int:
        logger = dg.get_dagster_logger()
        logger.info("sync says %s", "hi")
        return 1

    @dg.op
    async def async_op(n: int) -> int:
        dg.get_dagster_logger("mine").warning("async says hi")
        return n + 1

    @dg.op
    def generator_op(n: int) -> Any:
        dg.get_dagster_logger().debug("generator says hi")
        yield dg.Output(n)

    @dg.job
    def logging_job() -> None:
        generator_op(async_op(sync_op()))

    result = logging_job.execute_in_process()
    logged = {
        (e.step_key, e.message, e.level)
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.LOG_MESSAGE
    }
    assert ("sync_op", "sync says hi", LogLevel.INFO) in logged
    assert ("async_op", "async says hi", LogLevel.WARNING) in logged
    assert ("generator_op", "generator says hi", LogLevel.DEBUG) in logged
    assert dg.get_dagster_logger("mine").name == "dagster.builtin.mine"
    assert logging.getLogger("dagster.builtin").level == logging.DEBUG


def test_get_dagster_logger_outside_a_step_records_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @dg.op
    def quiet() -> int:
        return 1

    @dg.job
    def quiet_job() -> None:
        quiet()

    with caplog.at_level("INFO", logger="dagster.builtin"):
        dg.get_dagster_logger().info("before the run")
    result = quiet_job.execute_in_process()
    assert "before the run" in caplog.text
    assert not any(e.event_type == dg.DagsterEventType.LOG_MESSAGE for e in result.all_events)
