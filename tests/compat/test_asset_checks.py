"""Asset checks, written as Dagster's asset check docs show: `@asset_check` returning an
AssetCheckResult, `@asset(check_specs=)` yielding results beside the output,
`@multi_asset_check`, severities, blocking checks stopping downstream assets, and
`get_asset_check_evaluations()`."""

from __future__ import annotations

from typing import Any

import pytest

import dagloom as dg


@dg.asset
def orders() -> list[int]:
    return [1, 2, 3, -1]


@dg.asset
def order_totals(orders: list[int]) -> int:
    return sum(orders)


@dg.asset_check(asset=orders)
def orders_not_empty(orders: list[int]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=bool(orders), metadata={"rows": len(orders)})


@dg.asset_check(asset=orders, blocking=True)
def no_negative_orders(orders: list[int]) -> dg.AssetCheckResult:
    negative = [o for o in orders if o < 0]
    return dg.AssetCheckResult(passed=not negative, metadata={"negative": len(negative)})


def evaluations(result: Any) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_checks_run_with_their_asset_and_are_recorded() -> None:
    result = dg.materialize_to_memory([orders, orders_not_empty])
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.asset_key == dg.AssetKey("orders")
    assert evaluation.check_name == "orders_not_empty"
    assert evaluation.passed
    assert evaluation.metadata == {"rows": dg.MetadataValue.int(4)}
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR


def test_a_failed_blocking_check_stops_downstream_assets() -> None:
    result = dg.materialize_to_memory(
        [orders, order_totals, no_negative_orders], raise_on_error=False
    )
    assert not result.success
    assert evaluations(result) == {"no_negative_orders": False}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"orders"}
    assert [e.step_key for e in result.get_step_skipped_events()] == ["order_totals"]


def test_a_failed_non_blocking_check_lets_the_run_go_on() -> None:
    result = dg.materialize_to_memory([orders, order_totals, orders_not_empty])
    assert result.success
    assert result.output_for_node("order_totals") == 5


def test_check_specs_on_an_asset() -> None:
    @dg.asset(check_specs=[dg.AssetCheckSpec("has_rows", asset="items")])
    def items():
        data = [1, 2]
        yield dg.Output(data)
        yield dg.AssetCheckResult(passed=len(data) > 0, severity=dg.AssetCheckSeverity.WARN)

    result = dg.materialize_to_memory([items])
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.severity) == ("has_rows", dg.AssetCheckSeverity.WARN)


def test_multi_asset_check_reports_each_spec() -> None:
    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec("positive_sum", asset="orders"),
            dg.AssetCheckSpec("short", asset="orders"),
        ]
    )
    def order_checks(orders: list[int]):
        yield dg.AssetCheckResult(check_name="positive_sum", passed=sum(orders) > 0)
        yield dg.AssetCheckResult(check_name="short", passed=len(orders) < 3)

    result = dg.materialize_to_memory([orders, order_checks])
    assert evaluations(result) == {"positive_sum": True, "short": False}


def test_definitions_take_asset_checks_and_a_check_of_an_unknown_asset_is_refused() -> None:
    defs = dg.Definitions(assets=[orders, order_totals], asset_checks=[orders_not_empty])
    result = defs.get_implicit_global_asset_job_def().execute_in_process(
        resources={"io_manager": dg.InMemoryIOManager()}
    )
    assert evaluations(result) == {"orders_not_empty": True}

    @dg.asset_check(asset="missing")
    def about_nothing() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    with pytest.raises(dg.DefinitionError, match="'missing'"):
        dg.Definitions(assets=[orders], asset_checks=[about_nothing])


def test_a_check_spec_on_another_asset_is_refused() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'elsewhere'"):

        @dg.asset(check_specs=[dg.AssetCheckSpec("c", asset="elsewhere")])
        def here() -> int:
            return 1


def test_a_check_function_can_be_called_directly() -> None:
    assert no_negative_orders([1, 2]).passed


def test_selections_with_and_without_checks() -> None:
    everything = [orders, order_totals, orders_not_empty, no_negative_orders]
    graph_job = dg.define_asset_job("no_checks", selection=dg.AssetSelection.all().without_checks())
    defs = dg.Definitions(
        assets=[orders, order_totals],
        asset_checks=[orders_not_empty, no_negative_orders],
        jobs=[graph_job],
        resources={"io_manager": dg.InMemoryIOManager()},
    )
    result = defs.get_job_def("no_checks").execute_in_process()
    assert result.success and result.get_asset_check_evaluations() == []

    io = dg.InMemoryIOManager()
    dg.materialize(
        everything,
        selection=dg.AssetSelection.assets(orders).without_checks(),
        resources={"io_manager": io},
    )
    only_checks = dg.materialize(
        everything,
        selection=dg.AssetSelection.checks_for_assets(orders),
        resources={"io_manager": io},
        raise_on_error=False,
    )
    assert only_checks.get_asset_materialization_events() == []
    assert evaluations(only_checks) == {"orders_not_empty": True, "no_negative_orders": False}
    one = dg.materialize(
        everything,
        selection=dg.AssetSelection.checks(orders_not_empty),
        resources={"io_manager": io},
    )
    assert evaluations(one) == {"orders_not_empty": True}


def test_materialize_result_carries_its_check_results() -> None:
    @dg.asset(
        check_specs=[
            dg.AssetCheckSpec(name="has_rows", asset="scores"),
            dg.AssetCheckSpec(name="fresh", asset="scores", blocking=True),
        ]
    )
    def scores() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            metadata={"rows": 3},
            check_results=[
                dg.AssetCheckResult(check_name="has_rows", passed=True),
                dg.AssetCheckResult(check_name="fresh", passed=False),
            ],
        )

    @dg.asset(deps=[scores])
    def ranking() -> None:
        pass

    result = dg.materialize([scores, ranking], raise_on_error=False)
    found = {(e.asset_key, e.check_name, e.passed) for e in result.get_asset_check_evaluations()}
    assert found == {
        (dg.AssetKey("scores"), "has_rows", True),
        (dg.AssetKey("scores"), "fresh", False),
    }
    # The failed blocking check stops what reads the asset.
    assert not result.success
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [
        dg.AssetKey("scores")
    ]


def test_a_job_of_checks_alone_reads_the_stored_asset() -> None:
    # As in Dagster's asset check docs: the checks get their own job, apart from the asset.
    io = dg.InMemoryIOManager()
    checks_job = dg.define_asset_job(
        "orders_checks_job", selection=dg.AssetSelection.checks_for_assets(orders)
    )
    defs = dg.Definitions(
        assets=[orders],
        asset_checks=[orders_not_empty, no_negative_orders],
        jobs=[checks_job],
        resources={"io_manager": io},
    )
    dg.materialize([orders], resources={"io_manager": io})
    result = defs.get_job_def("orders_checks_job").execute_in_process(raise_on_error=False)
    assert result.get_asset_materialization_events() == []
    assert evaluations(result) == {"orders_not_empty": True, "no_negative_orders": False}
    # Only check steps ran; the failed blocking check fails its step, as in Dagster.
    assert [e.step_key for e in result.get_step_success_events()] == ["orders_orders_not_empty"]
    assert not result.success
