"""Results and events, written as Dagster's testing docs show: run in process, then read the
result's outputs and events."""

from __future__ import annotations

import pytest

import dagloom as dg


@dg.op
def return_five() -> int:
    return 5


@dg.op
def add_one(arg: int) -> int:
    return arg + 1


@dg.job
def do_stuff() -> None:
    add_one(return_five())


@dg.op
def explode() -> int:
    raise ValueError("bad data")


@dg.op
def after_explode(value: int) -> int:
    return value


@dg.job
def fails() -> None:
    after_explode(explode())


def test_output_for_node_and_success() -> None:
    result = do_stuff.execute_in_process()
    assert result.success
    assert result.output_for_node("return_five") == 5
    assert result.output_for_node("add_one", output_name="result") == 6


def test_output_value_of_a_single_op_job() -> None:
    @dg.job
    def just_five() -> None:
        return_five()

    assert just_five.execute_in_process().output_value() == 5


def test_step_success_events_are_dagster_events() -> None:
    result = do_stuff.execute_in_process()
    events = result.get_step_success_events()
    assert [e.step_key for e in events] == ["return_five", "add_one"]
    for event in events:
        assert isinstance(event, dg.DagsterEvent)
        assert event.event_type == dg.DagsterEventType.STEP_SUCCESS
        assert event.event_type_value == "STEP_SUCCESS"
        assert event.is_step_success
        assert not event.is_step_failure
        assert not event.is_failure
        assert event.job_name == "do_stuff"
    assert events[1].node_name == "add_one"


def test_run_identity_and_success_event() -> None:
    result = do_stuff.execute_in_process()
    assert result.dagster_run.run_id == result.run_id
    assert result.dagster_run.job_name == "do_stuff"
    assert result.dagster_run.is_success
    assert result.get_job_success_event().event_type == dg.DagsterEventType.RUN_SUCCESS


def test_events_for_node_and_filter_events() -> None:
    result = do_stuff.execute_in_process()
    types = [e.event_type for e in result.events_for_node("add_one")]
    assert types[0] == dg.DagsterEventType.STEP_START
    assert types[-1] == dg.DagsterEventType.STEP_SUCCESS
    assert dg.DagsterEventType.LOADED_INPUT in types
    starts = result.filter_events(dg.DagsterEventType.STEP_START)
    assert {e.node_name for e in starts} == {"return_five", "add_one"}
    assert all(e.step_key for e in result.all_node_events)
    assert len(result.all_node_events) < len(result.all_events)


def test_a_failed_step_is_reported_as_dagster_reports_it() -> None:
    result = fails.execute_in_process(raise_on_error=False)
    assert not result.success
    assert result.is_node_failed("explode")
    assert not result.is_node_success("after_explode")
    assert result.is_node_untouched("not_a_node")
    (failure,) = result.get_step_failure_events()
    assert failure.is_step_failure
    assert failure.is_failure
    assert failure.node_name == "explode"
    assert "bad data" in failure.event_specific_data.error.message
    job_failure = result.get_job_failure_event()
    assert job_failure.is_failure
    assert job_failure.step_key is None
    assert not result.dagster_run.is_success


def test_materialize_reports_materializations_with_metadata() -> None:
    @dg.asset
    def orders() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"num_rows": 3})

    @dg.asset(deps=[orders])
    def order_summary() -> None:
        return None

    result = dg.materialize([orders, order_summary])
    assert result.success
    events = result.get_asset_materialization_events()
    assert [e.asset_key for e in events] == [dg.AssetKey("orders"), dg.AssetKey("order_summary")]
    first = events[0]
    assert first.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    assert first.materialization.asset_key == dg.AssetKey("orders")
    assert first.materialization.metadata["num_rows"].value == 3
    assert first.materialization.partition is None
    assert first.step_materialization_data.materialization.asset_key == dg.AssetKey("orders")
    assert first.event_specific_data.materialization.asset_key == dg.AssetKey("orders")
    (summary,) = result.asset_materializations_for_node("order_summary")
    assert summary.asset_key == dg.AssetKey(["order_summary"])
    assert result.get_asset_observation_events() == []


def test_events_that_are_not_materializations_have_no_asset_key() -> None:
    result = do_stuff.execute_in_process()
    (start, *_) = result.filter_events("STEP_START")
    assert start.asset_key is None
    assert start.event_specific_data is None


def test_step_failure_data_reads_the_error_and_user_failure() -> None:
    @dg.op
    def start() -> int:
        return 1

    @dg.op
    def check_rows(rows: int) -> None:
        raise dg.Failure(
            description="too few rows",
            metadata={"rows": rows, "docs": dg.MetadataValue.url("https://example.com")},
        )

    @dg.op
    def crash() -> None:
        raise KeyError("missing")

    @dg.job
    def checks() -> None:
        check_rows(start())
        crash()

    result = checks.execute_in_process(raise_on_error=False)
    failures = {e.step_key: e for e in result.get_step_failure_events()}
    user = failures["check_rows"].step_failure_data
    assert user.error is not None and user.error.cls_name == "Failure"
    assert user.user_failure_data is not None
    assert user.user_failure_data.description == "too few rows"
    assert user.user_failure_data.metadata == {
        "rows": dg.IntMetadataValue(1),
        "docs": dg.MetadataValue.url("https://example.com"),
    }
    assert failures["check_rows"].event_specific_data.user_failure_data is not None
    crashed = failures["crash"].step_failure_data
    assert crashed.error is not None and crashed.error.cls_name == "KeyError"
    assert crashed.user_failure_data is None
    (output,) = [e for e in result.events_for_node("start") if e.is_successful_output]
    assert output.step_output_data.output_name == "result"


def test_dagster_error_is_the_root_of_raised_errors() -> None:
    with pytest.raises(dg.DagsterError):
        dg.AssetKey([])
    assert issubclass(dg.DagsterInvalidDefinitionError, dg.DagsterError)
