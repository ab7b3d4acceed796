"""Partitioned assets and jobs, written as Dagster's partitioning docs show: a daily asset
reading its upstream through a mapping, `context.partition_key` and friends, one file per
partition from the filesystem IO manager, `materialize(partition_key=)`,
`execute_in_process(partition_key=)`, partitioned config and the `dagster/partition` tag."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import dagloom as dg

daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-08")


@dg.asset(partitions_def=daily)
def raw_orders(context: dg.AssetExecutionContext) -> list[str]:
    window = context.partition_time_window
    return [f"order placed {window.start:%Y-%m-%d}", context.partition_key]


@dg.asset(partitions_def=daily)
def daily_orders(context: dg.AssetExecutionContext, raw_orders: list[str]) -> dict[str, Any]:
    return {
        "day": context.partition_key,
        "count": len(raw_orders),
        "read": context.asset_partition_keys_for_input("raw_orders"),
    }


@dg.asset(
    partitions_def=daily,
    ins={
        "raw_orders": dg.AssetIn(
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-2, end_offset=0)
        )
    },
)
def three_day_orders(raw_orders: dict[str, list[str]]) -> list[str]:
    return sorted(raw_orders)


@dg.asset
def all_orders(raw_orders: dict[str, list[str]]) -> int:
    return len(raw_orders)


def _io(tmp_path: Path) -> dict[str, Any]:
    return {"io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path))}


def test_materialize_one_partition_writes_one_file(tmp_path: Path) -> None:
    result = dg.materialize(
        [raw_orders, daily_orders], partition_key="2024-01-03", resources=_io(tmp_path)
    )
    assert result.success
    assert result.output_for_node("daily_orders") == {
        "day": "2024-01-03",
        "count": 2,
        "read": ["2024-01-03"],
    }
    assert (tmp_path / "raw_orders" / "2024-01-03").is_file()
    events = result.get_asset_materialization_events()
    assert {(e.asset_key.to_user_string(), e.partition) for e in events} == {
        ("raw_orders", "2024-01-03"),
        ("daily_orders", "2024-01-03"),
    }


def test_mapping_loads_exactly_the_mapped_partitions(tmp_path: Path) -> None:
    for key in ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"):
        dg.materialize([raw_orders], partition_key=key, resources=_io(tmp_path))
    result = dg.materialize(
        [raw_orders, three_day_orders],
        selection=[three_day_orders],
        partition_key="2024-01-04",
        resources=_io(tmp_path),
    )
    assert result.output_for_node("three_day_orders") == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
    ]


def test_unpartitioned_downstream_reads_every_partition(tmp_path: Path) -> None:
    for key in daily.get_partition_keys():
        dg.materialize([raw_orders], partition_key=key, resources=_io(tmp_path))
    result = dg.materialize(
        [raw_orders, all_orders], selection=[all_orders], resources=_io(tmp_path)
    )
    assert result.output_for_node("all_orders") == 7


def test_unknown_partition_key_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(dg.DagsterUnknownPartitionError, match="'2030-01-01'"):
        dg.materialize([raw_orders], partition_key="2030-01-01", resources=_io(tmp_path))


def test_partitioned_asset_without_a_key_fails_its_step(tmp_path: Path) -> None:
    result = dg.materialize([raw_orders], resources=_io(tmp_path), raise_on_error=False)
    assert not result.success


def test_asset_job_for_a_partition(tmp_path: Path) -> None:
    job = dg.define_asset_job("orders_job", selection=[raw_orders, daily_orders])
    defs = dg.Definitions(assets=[raw_orders, daily_orders], jobs=[job], resources=_io(tmp_path))
    resolved = defs.get_job_def("orders_job")
    assert resolved.partitions_def == daily
    result = resolved.execute_in_process(partition_key="2024-01-05")
    assert result.output_for_node("daily_orders")["day"] == "2024-01-05"


def test_assets_with_different_partitions_cannot_share_a_job() -> None:
    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["us", "eu"]))
    def regions() -> int:
        return 1

    job = dg.define_asset_job("mixed", selection=[raw_orders, regions])
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="different partitions"):
        dg.Definitions(assets=[raw_orders, regions], jobs=[job]).get_job_def("mixed")


def test_incompatible_mapping_fails_at_definition_time() -> None:
    @dg.asset(
        partitions_def=dg.StaticPartitionsDefinition(["x"]),
        ins={"raw_orders": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping())},
    )
    def by_region(raw_orders: Any) -> int:
        return 1

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="by_region"):
        dg.Definitions(assets=[raw_orders, by_region]).get_all_job_defs()


def test_static_partitions_and_context_fields(tmp_path: Path) -> None:
    regions = dg.StaticPartitionsDefinition(["us", "eu"])
    seen: dict[str, Any] = {}

    @dg.asset(partitions_def=regions)
    def sales(context: dg.AssetExecutionContext) -> str:
        seen["tag"] = context.get_tag("dagster/partition")
        seen["has"] = context.has_partition_key
        seen["range"] = context.partition_key_range
        seen["keys"] = context.partition_keys
        seen["for_output"] = context.asset_partition_key_for_output()
        seen["def"] = context.asset_partitions_def
        return context.partition_key

    dg.materialize([sales], partition_key="eu", resources=_io(tmp_path))
    assert seen == {
        "tag": "eu",
        "has": True,
        "range": dg.PartitionKeyRange("eu", "eu"),
        "keys": ["eu"],
        "for_output": "eu",
        "def": regions,
    }


def test_multi_partitioned_asset(tmp_path: Path) -> None:
    multi = dg.MultiPartitionsDefinition(
        {"date": daily, "color": dg.StaticPartitionsDefinition(["red", "blue"])}
    )

    @dg.asset(partitions_def=multi)
    def paint(context: dg.AssetExecutionContext) -> dict[str, str]:
        key = context.partition_key
        assert isinstance(key, dg.MultiPartitionKey)
        return key.keys_by_dimension

    key = dg.MultiPartitionKey({"date": "2024-01-02", "color": "blue"})
    result = dg.materialize([paint], partition_key=key, resources=_io(tmp_path))
    assert result.output_for_node("paint") == {"color": "blue", "date": "2024-01-02"}
    assert (tmp_path / "paint" / "blue" / "2024-01-02").is_file()


def test_io_manager_sees_partition_fields(tmp_path: Path) -> None:
    stored: dict[str, Any] = {}

    class Recorder(dg.IOManager):
        def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
            stored["key"] = context.asset_partition_key
            stored["run_key"] = context.partition_key
            stored["window"] = context.asset_partitions_time_window

        def load_input(self, context: dg.InputContext) -> Any:
            return None

    dg.materialize([raw_orders], partition_key="2024-01-02", resources={"io_manager": Recorder()})
    assert stored["key"] == stored["run_key"] == "2024-01-02"
    assert stored["window"].start == datetime.fromisoformat("2024-01-02T00:00:00+00:00")


@dg.op(config_schema={"date": str})
def process_day(context: dg.OpExecutionContext) -> str:
    return context.op_config["date"]


@dg.daily_partitioned_config(start_date=datetime(2024, 1, 1))
def day_config(start: datetime, _end: datetime) -> dict[str, Any]:
    return {"ops": {"process_day": {"config": {"date": start.strftime("%Y-%m-%d")}}}}


@dg.job(config=day_config)
def process_job() -> None:
    process_day()


def test_partitioned_config_gives_the_run_config() -> None:
    result = process_job.execute_in_process(partition_key="2024-01-09")
    assert result.output_for_node("process_day") == "2024-01-09"
    assert day_config(datetime(2024, 2, 1), datetime(2024, 2, 2)) == {
        "ops": {"process_day": {"config": {"date": "2024-02-01"}}}
    }


def test_static_partitioned_config() -> None:
    @dg.static_partitioned_config(partition_keys=["a", "b"])
    def letter_config(key: str) -> dict[str, Any]:
        return {"ops": {"process_day": {"config": {"date": key}}}}

    @dg.job(config=letter_config)
    def letters() -> None:
        process_day()

    assert letters.partitions_def is not None
    assert letters.partitions_def.get_partition_keys() == ["a", "b"]
    assert letters.execute_in_process(partition_key="b").output_for_node("process_day") == "b"
    with pytest.raises(dg.DagsterUnknownPartitionError, match="letters"):
        letters.execute_in_process(partition_key="c")


def test_partitioned_config_over_any_partitions_definition() -> None:
    regions = dg.StaticPartitionsDefinition(["eu", "us"])

    @dg.partitioned_config(
        partitions_def=regions, tags_for_partition_key_fn=lambda key: {"region": key}
    )
    def region_config(partition_key: str) -> dict[str, Any]:
        return {"ops": {"process_day": {"config": {"date": partition_key}}}}

    @dg.job(config=region_config)
    def per_region() -> None:
        process_day()

    assert per_region.partitions_def == regions
    result = per_region.execute_in_process(partition_key="us")
    assert result.output_for_node("process_day") == "us"
    assert result.dagster_run.tags["dagster/partition"] == "us"
    assert result.dagster_run.tags["region"] == "us"
    assert result.dagster_run.run_config == {"ops": {"process_day": {"config": {"date": "us"}}}}
    with pytest.raises(TypeError, match="PartitionsDefinition"):
        dg.partitioned_config(partitions_def=["eu"])  # type: ignore[arg-type]


def test_build_asset_context_with_a_partition() -> None:
    context = dg.build_asset_context(partition_key="2024-01-02")
    assert context.partition_key == "2024-01-02"
    assert context.has_partition_key


def test_schedule_from_a_partitioned_asset_job_runs_the_day_that_ended() -> None:
    job = dg.define_asset_job("orders_job", selection=[raw_orders], partitions_def=daily)
    schedule = dg.build_schedule_from_partitioned_job(job)
    assert schedule.cron_schedule == "0 0 * * *"
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 1, 3))
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2024-01-02"
    assert request.run_key == "2024-01-02"


def test_caught_up_ticks_run_each_missed_partition() -> None:
    from datetime import UTC

    from dagloom.definitions._cron import iter_cron_ticks

    job = dg.define_asset_job("orders_job", selection=[raw_orders], partitions_def=daily)
    schedule = dg.build_schedule_from_partitioned_job(job, hour_of_day=1)
    # The scheduler was down from midnight of the 2nd: it owes the 1 AM ticks since, and
    # each runs the day that had ended by then.
    ticks = iter_cron_ticks([str(schedule.cron_schedule)], UTC, datetime(2024, 1, 2, tzinfo=UTC))
    owed = [next(ticks) for _ in range(3)]
    keys = [
        schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=t))
        .run_requests[0]
        .partition_key
        for t in owed
    ]
    assert keys == ["2024-01-01", "2024-01-02", "2024-01-03"]


def test_schedule_from_a_partitioned_config_job_carries_its_config() -> None:
    schedule = dg.build_schedule_from_partitioned_job(process_job)
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 3, 2, 0, 5))
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2024-03-01"
    assert request.run_config == {"ops": {"process_day": {"config": {"date": "2024-03-01"}}}}


def test_a_run_request_for_a_partition_carries_the_partition_tag() -> None:
    from dagloom.code.snapshot import run_request_message

    message = run_request_message(dg.RunRequest(run_key="k", partition_key="2024-01-02"))
    assert message.tags["dagster/partition"] == "2024-01-02"


def test_schedule_from_an_unpartitioned_job_names_it() -> None:
    @dg.job
    def plain() -> None:
        process_day()

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'plain'"):
        dg.build_schedule_from_partitioned_job(plain)


def test_a_partitioned_graph_asset(tmp_path: Path) -> None:
    @dg.op
    def fetch(context: dg.OpExecutionContext) -> str:
        return context.partition_key

    @dg.op
    def shout(value: str) -> str:
        return value.upper() + "!"

    @dg.graph_asset(partitions_def=dg.StaticPartitionsDefinition(["us", "eu"]))
    def loud_region():
        return shout(fetch())

    result = dg.materialize([loud_region], partition_key="eu", resources=_io(tmp_path))
    assert result.output_for_node("loud_region") == "EU!"
    assert (tmp_path / "loud_region" / "eu").is_file()


def test_a_single_run_backfill_sees_its_range_and_time_windows() -> None:
    seen: dict[str, Any] = {}

    @dg.asset(partitions_def=daily, backfill_policy=dg.BackfillPolicy.single_run())
    def events(context: dg.AssetExecutionContext) -> dict[str, int]:
        seen["keys"] = context.partition_keys
        seen["range"] = context.partition_key_range
        seen["window"] = context.partition_time_window
        seen["output_window"] = context.asset_partitions_time_window_for_output()
        return {key: 1 for key in context.partition_keys}

    @dg.asset(partitions_def=daily)
    def per_day(context: dg.AssetExecutionContext, events: dict[str, int]) -> int:
        seen["input_window"] = context.asset_partitions_time_window_for_input("events")
        return sum(events.values())

    result = dg.materialize(
        [events, per_day],
        tags={
            "dagster/asset_partition_range_start": "2024-01-02",
            "dagster/asset_partition_range_end": "2024-01-04",
        },
        selection=[events],
    )
    assert result.success
    assert seen["keys"] == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert seen["range"] == dg.PartitionKeyRange("2024-01-02", "2024-01-04")
    window = dg.TimeWindow(
        datetime.fromisoformat("2024-01-02T00:00:00+00:00"),
        datetime.fromisoformat("2024-01-05T00:00:00+00:00"),
    )
    assert seen["window"] == window and seen["output_window"] == window
    assert dg.materialize([events, per_day], partition_key="2024-01-03").success
    assert seen["input_window"] == dg.TimeWindow(
        datetime.fromisoformat("2024-01-03T00:00:00+00:00"),
        datetime.fromisoformat("2024-01-04T00:00:00+00:00"),
    )


def test_time_windows_of_a_static_partition_name_the_output() -> None:
    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["a"]))
    def letters(context: dg.AssetExecutionContext) -> None:
        context.asset_partitions_time_window_for_output()

    with pytest.raises(dg.DagloomError, match="output 'result' is not partitioned by time"):
        dg.materialize([letters], partition_key="a")


def test_validate_loadable_accepts_definitions_and_refuses_other_things() -> None:
    dg.Definitions.validate_loadable(dg.Definitions(assets=[raw_orders, daily_orders]))
    with pytest.raises(dg.DefinitionError, match="validate_loadable"):
        dg.Definitions.validate_loadable([raw_orders])  # type: ignore[arg-type]
