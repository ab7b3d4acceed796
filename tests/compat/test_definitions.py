"""Definitions, written as Dagster's docs show: the `@definitions` decorator,
`Definitions.merge`, the lookup accessors, and DagsterInstance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dagloom as dg


@dg.asset
def raw_orders() -> list[int]:
    return [1, 2, 3]


@dg.asset
def order_count(raw_orders: list[int]) -> int:
    return len(raw_orders)


@dg.op
def hello() -> str:
    return "hello"


@dg.job
def hello_job() -> None:
    hello()


hello_schedule = dg.ScheduleDefinition(job=hello_job, cron_schedule="0 0 * * *")


@dg.sensor(job=hello_job)
def hello_sensor() -> dg.SkipReason:
    return dg.SkipReason("nothing new")


def test_the_definitions_decorator() -> None:
    @dg.definitions
    def defs() -> dg.Definitions:
        return dg.Definitions(assets=[raw_orders, order_count], jobs=[hello_job])

    assert isinstance(defs, dg.Definitions)
    assert defs.get_job_def("hello_job") is hello_job
    assert defs.resolve_job_def("hello_job").execute_in_process().output_for_node("hello") == (
        "hello"
    )


def test_the_definitions_decorator_rejects_what_is_not_definitions() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="not_defs"):

        @dg.definitions
        def not_defs() -> dg.Definitions:
            return [raw_orders]  # type: ignore[return-value]


def test_the_definitions_package_still_imports() -> None:
    from dagloom.definitions import Definitions

    assert Definitions is dg.Definitions
    assert dg.definitions.Definitions is dg.Definitions


def test_merge_and_lookups() -> None:
    assets = dg.Definitions(assets=[raw_orders, order_count])
    jobs = dg.Definitions(jobs=[hello_job], schedules=[hello_schedule], sensors=[hello_sensor])
    defs = dg.Definitions.merge(assets, jobs)
    assert defs.get_assets_def("order_count") is order_count
    assert defs.get_asset_def(dg.AssetKey("raw_orders")) is raw_orders
    assert defs.resolve_assets_def("raw_orders") is raw_orders
    assert defs.get_schedule_def(hello_schedule.name) is hello_schedule
    assert defs.resolve_schedule_def(hello_schedule.name) is hello_schedule
    assert defs.get_sensor_def("hello_sensor") is hello_sensor
    assert defs.resolve_sensor_def("hello_sensor") is hello_sensor
    assert [j.name for j in defs.resolve_all_job_defs()] == ["hello_job"]
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process()
    assert result.success
    assert result.asset_value("order_count") == 3


def test_merge_rejects_a_resource_defined_twice_differently() -> None:
    first = dg.Definitions(resources={"db": dg.ResourceDefinition.hardcoded_resource(1)})
    second = dg.Definitions(resources={"db": dg.ResourceDefinition.hardcoded_resource(2)})
    with pytest.raises(dg.DefinitionError, match="db"):
        dg.Definitions.merge(first, second)


def test_ephemeral_instance_for_materialize() -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert isinstance(instance, dg.DagloomInstance)
    result = dg.materialize_to_memory([raw_orders, order_count], instance=instance)
    assert result.success
    assert result.output_for_node("order_count") == 3


def test_instance_get_reads_the_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DAGLOOM_HOME", str(tmp_path))
    instance = dg.DagsterInstance.get()
    assert isinstance(instance, dg.DagsterInstance)
    assert Path(instance.home) == tmp_path


def test_a_schedule_targeting_an_asset_selection_makes_definitions_build_its_job() -> None:
    @dg.asset
    def customers() -> int:
        return 1

    @dg.asset
    def orders() -> int:
        return 2

    daily = dg.ScheduleDefinition(
        name="daily_refresh",
        target=dg.AssetSelection.assets(orders),
        cron_schedule="0 0 * * *",
    )

    @dg.schedule(cron_schedule="0 * * * *", target=dg.AssetSelection.assets(customers))
    def hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest()

    defs = dg.Definitions(assets=[customers, orders], schedules=[daily, hourly])
    job = defs.get_job_def(defs.get_schedule_def("daily_refresh").job.name)
    result = job.execute_in_process()
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [
        dg.AssetKey("orders")
    ]
    hourly_job = defs.get_job_def(defs.get_schedule_def("hourly").job_name)
    assert set(hourly_job.asset_layer.asset_keys) == {dg.AssetKey("customers")}  # type: ignore[union-attr]


def test_load_asset_value_reads_what_materialize_stored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGLOOM_HOME", str(tmp_path))

    @dg.asset
    def numbers() -> list[int]:
        return [1, 2, 3]

    class Lake(dg.IOManager):
        def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
            raise AssertionError("not stored here")

        def load_input(self, context: dg.InputContext) -> Any:
            return (context.asset_key.to_user_string(), context.dagster_type.typing_type)

    raw = dg.AssetSpec("raw").with_io_manager_key("lake")
    defs = dg.Definitions(assets=[numbers, raw], resources={"lake": Lake()})
    dg.materialize([numbers])
    assert defs.load_asset_value("numbers") == [1, 2, 3]
    assert defs.load_asset_value(dg.AssetKey("raw"), python_type=dict) == ("raw", dict)
    with pytest.raises(dg.DefinitionError, match="no asset 'nope'"):
        defs.load_asset_value("nope")
