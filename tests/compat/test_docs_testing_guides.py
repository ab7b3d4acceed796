"""Samples from Dagster's testing guides and ops/jobs/graphs guides, run as the docs show
them with only the import changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagloom as dg


@dg.op(out={"a_num": dg.Out(dagster_type=int)})
def emit_events_op() -> Iterator[Any]:
    a_num = 2
    yield dg.ExpectationResult(
        success=a_num > 0, label="positive", description="A num must be positive"
    )
    yield dg.AssetMaterialization(
        asset_key="persisted_string",
        description="Let us pretend we persisted the string somewhere",
    )
    yield dg.Output(value=a_num, output_name="a_num")


@dg.graph
def emit_events() -> None:
    emit_events_op()


def test_event_stream_of_an_op_reads_its_expectation_and_materialization() -> None:
    job_result = emit_events.to_job().execute_in_process()
    assert job_result.success
    assert job_result.output_for_node("emit_events_op", output_name="a_num") == 2
    events_for_step = job_result.events_for_node("emit_events_op")
    assert [se.event_type for se in events_for_step] == [
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_EXPECTATION_RESULT,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.STEP_OUTPUT,
        dg.DagsterEventType.HANDLED_OUTPUT,
        dg.DagsterEventType.STEP_SUCCESS,
    ]
    _, expectation_event, materialization_event, *_ = events_for_step
    expectation_result = expectation_event.event_specific_data.expectation_result
    assert isinstance(expectation_result, dg.ExpectationResult)
    assert expectation_result.success
    assert expectation_result.label == "positive"
    materialization = materialization_event.event_specific_data.materialization
    assert isinstance(materialization, dg.AssetMaterialization)
    assert materialization.label == "persisted_string"


def test_asset_event_labels_and_the_default_expectation_label() -> None:
    assert dg.AssetMaterialization(["warehouse", "orders"]).label == "warehouse orders"
    assert dg.AssetObservation("orders").label == "orders"
    assert dg.ExpectationResult(success=True).label == "result"
    by_key = dg.AssetMaterialization.file("/tmp/out.csv", asset_key=["lake", "out"])
    assert by_key.asset_key == dg.AssetKey(["lake", "out"])
    assert dg.AssetMaterialization.file("out.csv").asset_key == dg.AssetKey("out.csv")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["core", "fix", "index_metadata"], deps=["instruments", "weights"]),
        dg.AssetSpec(["core", "fix", "index_weights"], deps=["instruments", "weights"]),
    ]
)
def index_multi_asset(instruments: list[int], weights: list[int]) -> Iterator[Any]:
    yield dg.MaterializeResult(
        asset_key=["core", "fix", "index_metadata"], metadata={"num_rows": len(instruments)}
    )
    yield dg.MaterializeResult(
        asset_key=["core", "fix", "index_weights"], metadata={"num_rows": len(weights)}
    )


class MockDataIOManager(dg.IOManager):
    def __init__(self, instruments_df: list[int], weights_df: list[int]) -> None:
        self.instruments_df = instruments_df
        self.weights_df = weights_df

    def load_input(self, context: dg.InputContext) -> list[int]:
        asset_key_path = context.asset_key.path
        if asset_key_path == ["instruments"]:
            return self.instruments_df
        elif asset_key_path == ["weights"]:
            return self.weights_df
        raise ValueError(f"Unexpected asset key: {asset_key_path}")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        pass


def test_multi_asset_reads_source_assets_through_a_mocked_io_manager() -> None:
    """The guide's IO manager compares `context.asset_key.path` with a list."""
    defs = dg.Definitions(
        assets=[
            dg.SourceAsset(key="instruments"),
            dg.SourceAsset(key="weights"),
            index_multi_asset,
        ],
        resources={"io_manager": MockDataIOManager(instruments_df=[1, 2, 3], weights_df=[4])},
    )
    job = defs.get_implicit_global_asset_job_def()
    result = job.execute_in_process(
        asset_selection=[
            dg.AssetKey(["core", "fix", "index_metadata"]),
            dg.AssetKey(["core", "fix", "index_weights"]),
        ]
    )
    assert result.success
    rows = {
        m.asset_key.to_user_string(): m.metadata["num_rows"].value
        for m in result.asset_materializations_for_node("index_multi_asset")
    }
    assert rows == {"core/fix/index_metadata": 3, "core/fix/index_weights": 1}


def test_an_asset_key_path_equals_and_extends_with_lists() -> None:
    path = dg.AssetKey(["core", "fix"]).path
    assert path == ["core", "fix"] and path == ("core", "fix") and path != ["core"]
    # concatenation, as code written for Dagster builds paths (hence the RUF005 ignores)
    assert dg.AssetKey(path + ["x"]) == dg.AssetKey(["core", "fix", "x"])  # noqa: RUF005
    assert ["db"] + path == ["db", "core", "fix"]  # noqa: RUF005


@dg.op
def one() -> int:
    return 1


@dg.op
def add(a: int, b: int) -> int:
    return a + b


@dg.op
def add_ten(x: int) -> int:
    return x + 10


@dg.op
def fails(x: int) -> int:
    raise ValueError("no value")


@dg.op
def total(values: list[int]) -> int:
    return sum(values)


@dg.op(out=dg.DynamicOut())
def dynamic_values() -> Iterator[dg.DynamicOutput[int]]:
    for i in range(2):
        yield dg.DynamicOutput(i, mapping_key=f"num_{i}")


@dg.job
def other_arg() -> None:
    non_dynamic = one()
    dynamic_values().map(lambda val: add(val, non_dynamic))


@dg.job
def other_arg_ready_after_the_mapping() -> None:
    # `add_ten` ends after `dynamic_values` has fanned out: the mapped steps wait for it.
    non_dynamic = add_ten(one())
    total(dynamic_values().map(lambda val: add(val, non_dynamic)).collect())


@dg.job
def other_arg_that_fails() -> None:
    non_dynamic = fails(one())
    dynamic_values().map(lambda val: add(val, non_dynamic))


def test_a_mapped_op_also_reads_an_output_outside_the_mapping() -> None:
    result = other_arg.execute_in_process()
    assert result.success
    assert result.output_for_node("add") == {"num_0": 1, "num_1": 2}
    later = other_arg_ready_after_the_mapping.execute_in_process()
    assert later.output_for_node("total") == 11 + 12


def test_mapped_steps_are_skipped_when_the_output_outside_the_mapping_fails() -> None:
    result = other_arg_that_fails.execute_in_process(raise_on_error=False)
    assert not result.success
    skipped = {
        e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SKIPPED
    }
    assert skipped == {"add[num_0]", "add[num_1]"}


@dg.op(out={"int_out": dg.Out(), "str_out": dg.Out()})
def my_multiple_generic_output_op() -> tuple[dg.Output[int], dg.Output[str]]:
    return (dg.Output(5), dg.Output("foo", metadata={"size": 3}))


def test_a_returned_tuple_of_unnamed_outputs_fills_the_outputs_in_order() -> None:
    @dg.job
    def outputs() -> None:
        my_multiple_generic_output_op()

    result = outputs.execute_in_process()
    assert result.output_for_node("my_multiple_generic_output_op", "int_out") == 5
    assert result.output_for_node("my_multiple_generic_output_op", "str_out") == "foo"
    (str_out,) = [
        e
        for e in result.all_events
        if e.is_successful_output and e.step_output_data.output_name == "str_out"
    ]
    assert str_out.step_output_data.metadata == {"size": dg.IntMetadataValue(3)}


def my_op_factory(name: str = "default_name", ins: Any = None, **kwargs: Any) -> Any:
    @dg.op(name=name, ins=ins or {"start": dg.In(dg.Nothing)}, **kwargs)
    def my_inner_op(**kwargs: Any) -> Any:
        return kwargs

    return my_inner_op


def test_the_op_factory_pattern_takes_its_ins_through_kwargs() -> None:
    first = my_op_factory(name="first", description="the first", tags={"team": "a"})
    second = my_op_factory(name="second", ins={"x": dg.In(int), "y": dg.In(int)})

    @dg.job
    def factory_job() -> None:
        first()
        second(x=one(), y=add_ten(one()))

    result = factory_job.execute_in_process()
    assert result.output_for_node("first") == {}
    assert result.output_for_node("second") == {"x": 1, "y": 11}
    assert first.description == "the first" and first.tags == {"team": "a"}
    assert second(1, y=2) == {"x": 1, "y": 2}
