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
