"""Samples from Dagster's partitions and asset checks guides, run as the docs show them with
only the import changed."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import dagloom as dg


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Assets materialized here are stored under a temporary DAGLOOM_HOME."""
    monkeypatch.setenv("DAGLOOM_HOME", str(tmp_path / "home"))


# -- asset checks ---------------------------------------------------------------------------


@dg.asset
def orders() -> list[int]:
    return [1, 2]


@dg.asset_check(asset=orders, description="Check for null order ids")
def orders_id_has_no_nulls(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    context.log.info(f"checking {[spec.name for spec in context.check_specs]}")
    return dg.AssetCheckResult(passed=True, metadata={"checks": len(context.check_specs)})


def test_a_check_takes_an_asset_check_execution_context() -> None:
    defs = dg.Definitions(assets=[orders], asset_checks=[orders_id_has_no_nulls])
    result = defs.get_implicit_global_asset_job_def().execute_in_process()
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "orders_id_has_no_nulls" and evaluation.passed
    assert evaluation.metadata["checks"] == dg.MetadataValue.int(1)


@dg.multi_asset(
    specs=[dg.AssetSpec("asset1"), dg.AssetSpec("asset2")],
    check_specs=[
        dg.AssetCheckSpec("check1", asset="asset1"),
        dg.AssetCheckSpec("check2", asset="asset2"),
    ],
    can_subset=True,
)
def subsettable_asset(context: dg.AssetExecutionContext) -> Iterator[Any]:
    if dg.AssetKey("asset1") in context.selected_asset_keys:
        yield dg.MaterializeResult(asset_key="asset1")
    if dg.AssetKey("asset2") in context.selected_asset_keys:
        yield dg.MaterializeResult(asset_key="asset2")
    if dg.AssetCheckKey(dg.AssetKey("asset1"), "check1") in context.selected_asset_check_keys:
        yield dg.AssetCheckResult(passed=True, asset_key="asset1", check_name="check1")
    if dg.AssetCheckKey(dg.AssetKey("asset2"), "check2") in context.selected_asset_check_keys:
        yield dg.AssetCheckResult(passed=True, asset_key="asset2", check_name="check2")


def test_a_subsettable_multi_asset_computes_the_selected_assets_and_checks() -> None:
    everything = dg.materialize([subsettable_asset])
    assert sorted(e.check_name for e in everything.get_asset_check_evaluations()) == [
        "check1",
        "check2",
    ]
    one = dg.materialize([subsettable_asset], selection=["asset1"])
    assert one.success
    assert [e.check_name for e in one.get_asset_check_evaluations()] == ["check1"]
    assert [m.asset_key for m in one.asset_materializations_for_node("subsettable_asset")] == [
        dg.AssetKey("asset1")
    ]
    job = dg.define_asset_job(
        "asset1_only", selection=dg.AssetSelection.assets("asset1").without_checks()
    )
    defs = dg.Definitions(assets=[subsettable_asset], jobs=[job])
    no_checks = defs.get_job_def("asset1_only").execute_in_process()
    assert no_checks.success and no_checks.get_asset_check_evaluations() == []


# -- built-in checks ------------------------------------------------------------------------


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_metadata_bounds_checks_read_the_latest_materialization() -> None:
    @dg.asset
    def my_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"my_metadata": int(context.get_tag("my_value"))})

    checks = dg.build_metadata_bounds_checks(
        assets=[my_asset], metadata_key="my_metadata", min_value=1, max_value=10
    )
    assert len(checks) == 1
    instance = dg.DagsterInstance.ephemeral()
    ok = dg.materialize([my_asset, *checks], instance=instance, tags={"my_value": "5"})
    assert _evaluations(ok) == {"my_metadata_bounds_check": True}
    high = dg.materialize([my_asset, *checks], instance=instance, tags={"my_value": "11"})
    assert high.success  # the check's default severity is WARN
    (evaluation,) = high.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="min_value or max_value"):
        dg.build_metadata_bounds_checks(assets=[my_asset], metadata_key="my_metadata")


def test_column_schema_change_checks_compare_the_last_two_materializations() -> None:
    @dg.asset
    def my_other_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        columns = [dg.TableColumn(name, "int") for name in context.get_tag("columns").split(",")]
        return dg.MaterializeResult(
            metadata={"dagster/column_schema": dg.TableSchema(columns=columns)}
        )

    schema_checks = dg.build_column_schema_change_checks(assets=[my_other_asset])
    defs = dg.Definitions(assets=[my_other_asset], asset_checks=schema_checks)
    job = defs.get_implicit_global_asset_job_def()
    instance = dg.DagsterInstance.ephemeral()
    first = job.execute_in_process(instance=instance, tags={"columns": "id,name"})
    assert _evaluations(first) == {"column_schema_change": True}  # nothing to compare with
    same = job.execute_in_process(instance=instance, tags={"columns": "id,name"})
    assert _evaluations(same) == {"column_schema_change": True}
    changed = job.execute_in_process(instance=instance, tags={"columns": "id,email"})
    (evaluation,) = changed.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["added_columns"].value == ["email"]
    assert evaluation.metadata["removed_columns"].value == ["name"]


def test_last_update_freshness_checks_fail_until_the_asset_is_materialized() -> None:
    @dg.asset
    def hourly_sales() -> int:
        return 1

    hourly_sales_freshness_check = dg.build_last_update_freshness_checks(
        assets=[hourly_sales], lower_bound_delta=timedelta(hours=2)
    )
    defs = dg.Definitions(assets=[hourly_sales], asset_checks=hourly_sales_freshness_check)
    instance = dg.DagsterInstance.ephemeral()
    checks_only = dg.define_asset_job(
        "checks_only", selection=dg.AssetSelection.checks_for_assets(hourly_sales)
    )
    defs = dg.Definitions(
        assets=[hourly_sales], asset_checks=hourly_sales_freshness_check, jobs=[checks_only]
    )
    stale = defs.get_job_def("checks_only").execute_in_process(instance=instance)
    assert _evaluations(stale) == {"freshness_check": False}
    dg.materialize([hourly_sales], instance=instance)
    fresh = defs.get_job_def("checks_only").execute_in_process(instance=instance)
    assert _evaluations(fresh) == {"freshness_check": True}
    (evaluation,) = fresh.get_asset_check_evaluations()
    assert "dagster/last_updated_timestamp" in evaluation.metadata
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="deadline_cron"):
        dg.build_last_update_freshness_checks(
            assets=[hourly_sales], lower_bound_delta=timedelta(hours=1), deadline_cron="nope"
        )


def test_time_partition_freshness_checks_want_the_partition_due_by_the_deadline() -> None:
    @dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2024-01-01"))
    def daily_sales() -> int:
        return 1

    checks = dg.build_time_partition_freshness_checks(
        assets=[daily_sales], deadline_cron="0 0 * * *"
    )
    defs = dg.Definitions(
        assets=[daily_sales],
        asset_checks=checks,
        jobs=[dg.define_asset_job("freshness", selection=dg.AssetSelection.all_asset_checks())],
    )
    instance = dg.DagsterInstance.ephemeral()
    missing = defs.get_job_def("freshness").execute_in_process(instance=instance)
    (evaluation,) = missing.get_asset_check_evaluations()
    assert not evaluation.passed
    expected = evaluation.metadata["dagster/expected_partition"].value
    assert expected == (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    dg.materialize([daily_sales], partition_key=expected, instance=instance)
    found = defs.get_job_def("freshness").execute_in_process(instance=instance)
    assert _evaluations(found) == {"freshness_check": True}

    @dg.asset
    def unpartitioned() -> int:
        return 1

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="unpartitioned"):
        dg.build_time_partition_freshness_checks(assets=[unpartitioned], deadline_cron="0 9 * * *")


def test_load_asset_checks_from_modules_with_a_prefix() -> None:
    module = types.ModuleType("checks_module")
    module.orders_id_has_no_nulls = orders_id_has_no_nulls  # type: ignore[attr-defined]
    module.orders = orders  # type: ignore[attr-defined]
    (loaded,) = dg.load_asset_checks_from_modules([module])
    assert loaded is orders_id_has_no_nulls
    (prefixed,) = dg.load_asset_checks_from_modules([module], asset_key_prefix="sales")
    assert prefixed.asset_keys == {dg.AssetKey(["sales", "orders"])}
    assets = dg.load_assets_from_modules([module], key_prefix="sales")
    defs = dg.Definitions(assets=assets, asset_checks=[prefixed])
    result = defs.get_implicit_global_asset_job_def().execute_in_process()
    assert _evaluations(result) == {"orders_id_has_no_nulls": True}


def test_a_sensor_for_freshness_checks_requests_a_run_of_the_checks_alone() -> None:
    @dg.asset
    def hourly_sales() -> int:
        return 1

    hourly_sales_freshness_check = dg.build_last_update_freshness_checks(
        assets=[hourly_sales], lower_bound_delta=timedelta(hours=2)
    )
    freshness_checks_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=hourly_sales_freshness_check
    )
    defs = dg.Definitions(
        assets=[hourly_sales],
        asset_checks=hourly_sales_freshness_check,
        sensors=[freshness_checks_sensor],
    )
    sensor_def = defs.get_sensor_def("freshness_checks_sensor")
    assert sensor_def.default_status == dg.DefaultSensorStatus.STOPPED
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
        request = sensor_def(context)
    assert request.asset_selection == []
    assert request.asset_check_keys == [
        dg.AssetCheckKey(dg.AssetKey("hourly_sales"), "freshness_check")
    ]
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="freshness_checks"):
        dg.build_sensor_for_freshness_checks(freshness_checks=[])


# -- partitioning ops -----------------------------------------------------------------------


@dg.daily_partitioned_config(start_date=datetime(2020, 1, 1))
def my_partitioned_config(start: datetime, _end: datetime) -> dict[str, Any]:
    return {"ops": {"process_data_for_date": {"config": {"date": start.strftime("%Y-%m-%d")}}}}


@dg.op(config_schema={"date": str})
def process_data_for_date(context: dg.OpExecutionContext) -> dict[str, Any]:
    date = context.op_config["date"]
    context.log.info(f"processing data for {date}")
    return {
        "key": context.partition_key,
        "keys": context.partition_keys,
        "window": context.partition_time_window,
    }


@dg.job(config=my_partitioned_config)
def do_stuff_partitioned() -> None:
    process_data_for_date()


def test_an_op_of_a_partitioned_config_job_sees_its_partition_and_time_window() -> None:
    result = do_stuff_partitioned.execute_in_process(partition_key="2020-01-01")
    assert result.success
    seen = result.output_for_node("process_data_for_date")
    assert seen["key"] == "2020-01-01" and seen["keys"] == ["2020-01-01"]
    assert seen["window"] == dg.TimeWindow(
        datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC)
    )


def test_an_op_of_a_multi_partitioned_job_gets_a_multi_partition_key() -> None:
    partitions = dg.MultiPartitionsDefinition(
        {
            "date": dg.DailyPartitionsDefinition(start_date="2024-01-01"),
            "region": dg.StaticPartitionsDefinition(["us", "eu"]),
        }
    )

    @dg.op
    def region_op(context: dg.OpExecutionContext) -> tuple[str, dg.TimeWindow]:
        return context.partition_key.keys_by_dimension["region"], context.partition_time_window

    @dg.job(partitions_def=partitions)
    def region_job() -> None:
        region_op()

    result = region_job.execute_in_process(partition_key="2024-01-02|eu")
    region, window = result.output_for_node("region_op")
    assert region == "eu"
    assert window.start == datetime(2024, 1, 2, tzinfo=UTC)


# -- partition mappings ---------------------------------------------------------------------


def test_specific_partitions_mapping_reads_the_named_upstream_partitions() -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    @dg.asset(partitions_def=daily)
    def upstream_daily(context: dg.AssetExecutionContext) -> str:
        return context.partition_key

    @dg.asset(
        ins={
            "upstream_daily": dg.AssetIn(
                partition_mapping=dg.SpecificPartitionsPartitionMapping(
                    ["2024-01-02", "2024-01-03"]
                )
            )
        }
    )
    def pinned(upstream_daily: dict[str, str]) -> list[str]:
        return sorted(upstream_daily)

    instance = dg.DagsterInstance.ephemeral()
    for key in ("2024-01-02", "2024-01-03"):
        assert dg.materialize([upstream_daily], partition_key=key, instance=instance).success
    result = dg.materialize([upstream_daily, pinned], selection=[pinned], instance=instance)
    assert result.output_for_node("pinned") == ["2024-01-02", "2024-01-03"]

    @dg.asset(
        ins={
            "upstream_daily": dg.AssetIn(
                partition_mapping=dg.SpecificPartitionsPartitionMapping(["1999-01-01"])
            )
        }
    )
    def too_early(upstream_daily: Any) -> None:
        return None

    failed = dg.materialize(
        [upstream_daily, too_early], selection=[too_early], instance=instance, raise_on_error=False
    )
    assert not failed.success


def test_multi_partition_mapping_maps_each_dimension() -> None:
    weekly_abc = dg.MultiPartitionsDefinition(
        {
            "abc": dg.StaticPartitionsDefinition(["a", "b", "c"]),
            "weekly": dg.WeeklyPartitionsDefinition("2023-01-01"),
        }
    )
    daily_123 = dg.MultiPartitionsDefinition(
        {
            "123": dg.StaticPartitionsDefinition(["1", "2", "3"]),
            "daily": dg.DailyPartitionsDefinition("2023-01-01"),
        }
    )

    @dg.asset(partitions_def=weekly_abc)
    def weekly_letters(context: dg.AssetExecutionContext) -> str:
        return str(context.partition_key)

    @dg.asset(
        partitions_def=daily_123,
        ins={
            "weekly_letters": dg.AssetIn(
                partition_mapping=dg.MultiPartitionMapping(
                    {
                        "abc": dg.DimensionPartitionMapping(
                            dimension_name="123",
                            partition_mapping=dg.StaticPartitionMapping(
                                {"a": "1", "b": "2", "c": "3"}
                            ),
                        ),
                        "weekly": dg.DimensionPartitionMapping(
                            dimension_name="daily",
                            partition_mapping=dg.TimeWindowPartitionMapping(),
                        ),
                    }
                )
            )
        },
    )
    def daily_numbers(context: dg.AssetExecutionContext, weekly_letters: str) -> list[str]:
        return [str(k) for k in context.asset_partition_keys_for_input("weekly_letters")]

    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([weekly_letters], partition_key="b|2023-01-01", instance=instance).success
    result = dg.materialize(
        [weekly_letters, daily_numbers],
        partition_key="2|2023-01-04",
        selection=[daily_numbers],
        instance=instance,
    )
    assert result.output_for_node("daily_numbers") == ["b|2023-01-01"]

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'nope' is not a dimension"):

        @dg.asset(
            partitions_def=daily_123,
            ins={
                "weekly_letters": dg.AssetIn(
                    partition_mapping=dg.MultiPartitionMapping(
                        {
                            "nope": dg.DimensionPartitionMapping(
                                "daily", dg.IdentityPartitionMapping()
                            )
                        }
                    )
                )
            },
        )
        def broken(weekly_letters: str) -> None:
            return None

        dg.Definitions(assets=[weekly_letters, broken])


# -- backfills ------------------------------------------------------------------------------


def test_a_single_run_backfill_of_an_asset_returning_none() -> None:
    windows: list[tuple[datetime, datetime]] = []

    @dg.asset(
        partitions_def=dg.DailyPartitionsDefinition(start_date="2020-01-01"),
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def events(context: dg.AssetExecutionContext) -> None:
        start_datetime, end_datetime = context.partition_time_window
        windows.append((start_datetime, end_datetime))

    defs = dg.Definitions(assets=[events])
    result = defs.get_implicit_global_asset_job_def().execute_in_process(
        tags={
            "dagster/asset_partition_range_start": "2020-01-01",
            "dagster/asset_partition_range_end": "2020-01-03",
        }
    )
    assert result.success
    assert windows == [(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 4, tzinfo=UTC))]
    partitions = [m.partition for m in result.asset_materializations_for_node("events")]
    assert partitions == ["2020-01-01", "2020-01-02", "2020-01-03"]


def test_checks_of_an_external_asset_run_without_materializing_it() -> None:
    @dg.asset_check(asset="raw_orders")
    def raw_orders_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    checks_job = dg.define_asset_job(
        "raw_orders_checks", selection=dg.AssetSelection.checks_for_assets("raw_orders")
    )
    all_checks = dg.define_asset_job("all_checks", selection=dg.AssetSelection.all_asset_checks())
    defs = dg.Definitions(
        assets=[dg.AssetSpec("raw_orders")],
        asset_checks=[raw_orders_fresh],
        jobs=[checks_job, all_checks],
    )
    for job in (
        defs.get_job_def("raw_orders_checks"),
        defs.get_job_def("all_checks"),
        defs.get_implicit_global_asset_job_def(),
    ):
        result = job.execute_in_process()
        assert _evaluations(result) == {"raw_orders_fresh": True}
        assert result.get_asset_materialization_events() == []


class PartitionedPickleIOManager(dg.ConfigurableIOManager):
    """An IO manager storing one file per partition, as the partitioned IO manager docs show."""

    base_dir: str

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        path = Path(self.base_dir) / context.asset_partition_key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj))

    def load_input(self, context: dg.InputContext) -> Any:
        return {
            key: json.loads((Path(self.base_dir) / key).read_text())
            for key in context.asset_partition_keys
        }


def test_output_for_node_of_a_partitioned_asset_loads_its_partition(tmp_path: Path) -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    @dg.asset(partitions_def=daily)
    def daily_totals(context: dg.AssetExecutionContext) -> int:
        return int(context.partition_key[-2:])

    resources = {"io_manager": PartitionedPickleIOManager(base_dir=str(tmp_path / "io"))}
    result = dg.materialize([daily_totals], partition_key="2024-01-02", resources=resources)
    assert result.output_for_node("daily_totals") == {"2024-01-02": 2}
    assert result.asset_value("daily_totals") == {"2024-01-02": 2}


def test_a_multi_partitioned_asset_with_a_time_dimension_windows_and_schedules() -> None:
    two_dimensional_partitions = dg.MultiPartitionsDefinition(
        {
            "date": dg.DailyPartitionsDefinition(start_date="2024-01-01"),
            "region": dg.StaticPartitionsDefinition(["us", "eu", "jp"]),
        }
    )
    windows: list[dg.TimeWindow] = []

    class WindowIOManager(dg.ConfigurableIOManager):
        def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
            windows.append(context.asset_partitions_time_window)
            assert context.partition_key.keys_by_dimension == {"date": "2024-01-02", "region": "eu"}

        def load_input(self, context: dg.InputContext) -> Any:
            return None

    @dg.asset(partitions_def=two_dimensional_partitions, io_manager_key="window_io")
    def daily_regional_sales_data(context: dg.AssetExecutionContext) -> str:
        return context.partition_key.keys_by_dimension["region"]

    result = dg.materialize(
        [daily_regional_sales_data],
        partition_key=dg.MultiPartitionKey({"date": "2024-01-02", "region": "eu"}),
        resources={"window_io": WindowIOManager()},
    )
    assert result.success
    assert windows == [
        dg.TimeWindow(datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC))
    ]

    sales_job = dg.define_asset_job("sales_job", selection=[daily_regional_sales_data])
    schedule = dg.build_schedule_from_partitioned_job(sales_job)
    defs = dg.Definitions(
        assets=[daily_regional_sales_data],
        jobs=[sales_job],
        schedules=[schedule],
        resources={"window_io": WindowIOManager()},
    )
    schedule_def = defs.get_schedule_def("sales_job_schedule")
    assert schedule_def.cron_schedule == "0 0 * * *"
    with dg.build_schedule_context(scheduled_execution_time=datetime(2024, 1, 5)) as context:
        data = schedule_def.evaluate_tick(context)
    assert sorted(r.partition_key for r in data.run_requests) == [
        "2024-01-04|eu",
        "2024-01-04|jp",
        "2024-01-04|us",
    ]


def test_a_time_partitioned_asset_reads_its_own_previous_partition() -> None:
    @dg.asset(
        partitions_def=dg.DailyPartitionsDefinition(start_date="2022-01-01"),
        ins={
            "asset1": dg.AssetIn(
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
                )
            )
        },
    )
    def asset1(asset1: int | None) -> int:
        return 1 if asset1 is None else asset1 + 1

    instance = dg.DagsterInstance.ephemeral()
    first = dg.materialize([asset1], partition_key="2022-01-01", instance=instance)
    assert first.output_for_node("asset1") == 1
    second = dg.materialize([asset1], partition_key="2022-01-02", instance=instance)
    assert second.output_for_node("asset1") == 2

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="depends on itself"):

        @dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2022-01-01"))
        def same_day(same_day: int) -> int:
            return same_day

        dg.Definitions(assets=[same_day])


def test_table_metadata_set_feeds_the_column_schema_change_check() -> None:
    @dg.asset
    def my_other_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        columns = [dg.TableColumn(name, "int") for name in context.get_tag("columns").split(",")]
        return dg.MaterializeResult(
            metadata={
                **dg.TableMetadataSet(column_schema=dg.TableSchema(columns=columns), row_count=2)
            }
        )

    schema_checks = dg.build_column_schema_change_checks(assets=[my_other_asset])
    instance = dg.DagsterInstance.ephemeral()
    for columns in ("id", "id,name"):
        result = dg.materialize(
            [my_other_asset, *schema_checks], instance=instance, tags={"columns": columns}
        )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["added_columns"].value == ["name"]
    (materialization,) = result.asset_materializations_for_node("my_other_asset")
    table = dg.TableMetadataSet.extract(materialization.metadata)
    assert table.row_count == 2
    assert [c.name for c in table.column_schema.columns] == ["id", "name"]
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="row_count"):
        dg.TableMetadataSet(row_count="many")  # type: ignore[arg-type]


def test_time_window_partitions_api_windows_and_cron() -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")
    assert daily.get_cron_schedule(hour_of_day=3, minute_of_hour=15) == "15 3 * * *"
    first = daily.get_first_partition_window()
    assert first == dg.TimeWindow(
        datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    )
    last = daily.get_last_partition_window(current_time=datetime(2024, 1, 5, tzinfo=UTC))
    assert last is not None and last.start == datetime(2024, 1, 4, tzinfo=UTC)
    window = dg.TimeWindow(datetime(2024, 1, 2, 12, tzinfo=UTC), datetime(2024, 1, 4, tzinfo=UTC))
    assert daily.get_partition_key_range_for_time_window(window) == dg.PartitionKeyRange(
        "2024-01-02", "2024-01-03"
    )
    before = dg.TimeWindow(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC))
    with pytest.raises(dg.DagsterUnknownPartitionError):
        daily.get_partition_key_range_for_time_window(before)
