"""The automation loop over a real instance: an upstream asset's materialization makes an
eager downstream asset's run, the state survives a new loop, evaluations are recorded, and a
condition on an asset that cannot be launched is recorded as an error while the rest go on."""

from __future__ import annotations

import json
from typing import Any, cast

import dagloom as dg
from dagloom.daemon.automation_loop import (
    AUTOMATION_TAG,
    AutomationLoop,
    automation_graph,
    plan_automation_runs,
)
from dagloom.definitions import Definitions
from dagloom.definitions.asset_key import AssetKey
from dagloom.instance import DagloomInstance
from dagloom.messages import Run
from dagloom.storage.automation import AutomationStorage

from ..storage.contract import materialization
from ._fakes import InProcessLocation, storing_coordinator

T0 = 1_800_000_000.0


@dg.asset
def upstream() -> int:
    return 1


@dg.asset(automation_condition=dg.AutomationCondition.eager())
def downstream(upstream: int) -> int:
    return upstream + 1


@dg.asset(automation_condition=dg.AutomationCondition.eager())
def sibling(upstream: int) -> int:
    return upstream


external = dg.AssetSpec("outside", automation_condition=dg.AutomationCondition.on_missing())

DEFS = Definitions(assets=[upstream, downstream, sibling, external])


def loop(instance: DagloomInstance, coordinator: Any) -> AutomationLoop:
    location = InProcessLocation("here", DEFS)
    return AutomationLoop(instance, {"here": cast(Any, location)}, coordinator, owner="d")


async def run_after_outside_materialization(
    automation: AutomationLoop, instance: DagloomInstance, asset: str, partition: str = ""
) -> Run:
    """Ticks (launching nothing), stores a materialization of `asset` made outside any run,
    ticks 30 s later, and returns the one run that second tick launched."""
    await automation.tick(T0)
    assert automation.last_runs == []
    await instance.event_log_storage.store_events(
        [materialization("outside-run", [asset], partition=partition)]
    )
    await automation.tick(T0 + 30)
    [run_id] = automation.last_runs
    run = await instance.run_storage.get_run(run_id)
    assert run is not None
    return run


async def test_upstream_materialization_launches_eager_downstream_in_one_run() -> None:
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        automation = loop(instance, coord)
        run = await run_after_outside_materialization(automation, instance, "upstream")
        assert run.tags[AUTOMATION_TAG] == "true"
        assert sorted(tuple(k.path) for k in run.asset_selection) == [
            ("downstream",),
            ("sibling",),
        ]
        # Queued, so in progress: a new loop (a restarted daemon) requests nothing more.
        again = loop(instance, coord)
        await again.tick(T0 + 60)
        assert again.last_runs == []

        storage = instance.schedule_storage
        assert isinstance(storage, AutomationStorage)
        [latest, *_] = await storage.get_automation_evaluations("downstream")
        assert latest.num_requested == 0
        requested = [
            r for r in await storage.get_automation_evaluations("downstream") if r.num_requested
        ]
        assert requested[0].run_ids == (run.run_id,)
        assert json.loads(requested[0].body)["root"]["label"] == "eager"


async def test_condition_on_an_external_asset_is_an_error_naming_it() -> None:
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        automation = loop(instance, coord)
        await automation.tick(T0)
        assert automation.last_result is not None
        error = automation.last_result.evaluations[AssetKey("outside")].error
        assert error is not None and "'outside'" in error and "external asset" in error
        storage = instance.schedule_storage
        assert isinstance(storage, AutomationStorage)
        [record] = await storage.get_automation_evaluations("outside")
        assert "external asset" in json.loads(record.body)["error"]


def test_runs_are_grouped_by_location_job_and_partition() -> None:
    a, b, c = AssetKey("a"), AssetKey("b"), AssetKey("c")
    launch = {a: ("l1", "__ASSET_JOB"), b: ("l1", "__ASSET_JOB"), c: ("l2", "__ASSET_JOB")}
    runs = plan_automation_runs(
        {a: frozenset({"p1", "p2"}), b: frozenset({"p1"}), c: frozenset({None})}, launch
    )
    assert [(r.location_name, r.partition_key, r.asset_keys) for r in runs] == [
        ("l1", "p1", (a, b)),
        ("l1", "p2", (a,)),
        ("l2", None, (c,)),
    ]


def test_graph_from_snapshot_carries_conditions_and_launch_jobs() -> None:
    graph = automation_graph([InProcessLocation("here", DEFS).snapshot])
    by_key = {a.key: a for a in graph.assets}
    assert by_key[AssetKey("downstream")].condition == dg.AutomationCondition.eager()
    assert by_key[AssetKey("downstream")].deps == (AssetKey("upstream"),)
    assert by_key[AssetKey("upstream")].condition is None
    assert graph.launch[AssetKey("downstream")] == ("here", "__ASSET_JOB")
    assert AssetKey("outside") not in graph.launch


async def test_automation_condition_sensors_choose_assets_and_tag_runs() -> None:
    running = dg.AutomationConditionSensorDefinition(
        "nightly_automation",
        target=dg.AssetSelection.assets(downstream),
        run_tags={"team": "data"},
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    stopped = dg.AutomationConditionSensorDefinition("paused", target=["sibling"])
    defs = Definitions(assets=[upstream, downstream, sibling], sensors=[running, stopped])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        location = InProcessLocation("here", defs)
        automation = AutomationLoop(instance, {"here": cast(Any, location)}, coord, owner="d")
        run = await run_after_outside_materialization(automation, instance, "upstream")
        assert [tuple(k.path) for k in run.asset_selection] == [("downstream",)]
        assert run.tags["team"] == "data"
        assert run.tags["dagloom/sensor_name"] == "nightly_automation"
        assert automation.last_result is not None
        assert AssetKey("sibling") not in automation.last_result.evaluations
        # The sensor loop leaves automation condition sensors to the automation loop.
        from dagloom.daemon.sensors import SensorLoop

        sensors = SensorLoop(instance, {"here": cast(Any, location)}, coord, owner="d")
        await sensors.tick(T0 + 60)
        assert location.evaluations == 0


def test_state_entries_round_trip_and_only_changed_ones_are_rewritten() -> None:
    from dagloom.daemon._automation import AssetCursor
    from dagloom.daemon.automation_loop import join_state, split_state

    a = AssetCursor(10.0, 5, frozenset({None}), "1", "h", {"0.1": frozenset({"p"})}, "t", 7, True)
    b = AssetCursor(10.0, 5, frozenset(), None, "h", {}, "u")
    stored = split_state({AssetKey("a"): a, AssetKey(["x", "b"]): b})
    assert set(stored) == {"", "a", "x/b"}
    assert join_state(stored) == {AssetKey("a"): a, AssetKey(["x", "b"]): b}
    later = AssetCursor(40.0, 9, frozenset(), None, "h", {}, "u")
    again = split_state({AssetKey("a"): a, AssetKey(["x", "b"]): later}, join_state(stored))
    assert set(again) == {""}  # neither entry changed, only the tick
    assert json.loads(again[""]) == {"evaluation_time": 40.0, "max_storage_id": 9}


async def test_partitioned_assets_run_per_partition() -> None:
    colors = dg.StaticPartitionsDefinition(["red", "blue"])

    @dg.asset(partitions_def=colors)
    def paint() -> int:
        return 1

    @dg.asset(partitions_def=colors, automation_condition=dg.AutomationCondition.eager())
    def dried(paint: int) -> int:
        return paint

    defs = Definitions(assets=[paint, dried])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        location = InProcessLocation("here", defs)
        automation = AutomationLoop(instance, {"here": cast(Any, location)}, coord, owner="d")
        run = await run_after_outside_materialization(automation, instance, "paint", "blue")
        assert run.tags["dagster/partition"] == "blue"
        assert [tuple(k.path) for k in run.asset_selection] == [("dried",)]
        await automation.tick(T0 + 60)  # blue in progress, red's upstream missing
        assert automation.last_runs == []


async def test_a_second_daemon_leaves_the_round_to_the_lease_holder() -> None:
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        location = cast(Any, InProcessLocation("here", DEFS))
        first = AutomationLoop(instance, {"here": location}, coord, owner="d1")
        second = AutomationLoop(instance, {"here": location}, coord, owner="d2")
        await first.tick(T0)
        await instance.event_log_storage.store_events(
            [materialization("outside-run", ["upstream"], partition="")]
        )
        await second.tick(T0 + 30)
        assert second.last_result is None and second.last_runs == []
        await first.tick(T0 + 30)
        assert len(first.last_runs) == 1


def test_time_partitioned_assets_gain_the_windows_that_started_since_the_code_loaded() -> None:
    from datetime import UTC, datetime, timedelta

    from dagloom.daemon.automation_loop import TimeWindows

    hourly = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00")

    @dg.asset(partitions_def=hourly, automation_condition=dg.AutomationCondition.eager())
    def readings() -> int:
        return 1

    snapshot = InProcessLocation("here", Definitions(assets=[readings])).snapshot
    graph = automation_graph([snapshot])
    [asset] = graph.assets
    assert asset.partition_keys is not None and asset.partition_end_times is not None
    later = datetime.now(UTC) + timedelta(hours=3)
    windows = TimeWindows()
    [moved] = windows.current(graph, later.timestamp()).assets
    assert moved.partition_keys == tuple(hourly.get_partition_keys(current_time=later))
    assert moved.partition_end_times is not None
    assert moved.partition_keys[: len(asset.partition_keys)] == asset.partition_keys
    assert len(moved.partition_keys) >= len(asset.partition_keys) + 3
    assert moved.partition_end_times[-1] - moved.partition_end_times[-2] == 3600
    assert windows.current(graph, later.timestamp()) is not graph


async def test_partitions_are_matched_through_the_dependency_partition_mapping() -> None:
    days = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-05")
    day_before = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)

    @dg.asset(partitions_def=days)
    def sales() -> int:
        return 1

    @dg.asset(
        partitions_def=days,
        ins={"sales": dg.AssetIn(partition_mapping=day_before)},
        automation_condition=dg.AutomationCondition.any_deps_updated(),
    )
    def next_day_plan(sales: int) -> int:
        return sales

    location = InProcessLocation("here", Definitions(assets=[sales, next_day_plan]))
    [asset] = [a for a in automation_graph([location.snapshot]).assets if a.condition]
    assert asset.dep_mappings == {AssetKey("sales"): day_before}
    assert asset.partitions_def == days
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        automation = AutomationLoop(instance, {"here": cast(Any, location)}, coord, owner="d")
        await automation.tick(T0)
        await instance.event_log_storage.store_events(
            [materialization("outside-run", ["sales"], partition="2026-01-02")]
        )
        await automation.tick(T0 + 30)
        [run_id] = automation.last_runs
        run = await instance.run_storage.get_run(run_id)
        assert run is not None and run.tags["dagster/partition"] == "2026-01-03"
        assert [tuple(k.path) for k in run.asset_selection] == [("next_day_plan",)]


def test_a_sensor_is_due_once_its_minimum_interval_passed() -> None:
    from dagloom.daemon.automation_loop import due_sensors

    fast, slow = ("here", "fast"), ("here", "slow")
    intervals = {fast: 30.0, slow: 300.0}
    assert due_sensors(intervals, {}, T0) == {fast, slow}
    evaluated = {fast: T0, slow: T0}
    assert due_sensors(intervals, evaluated, T0 + 29) == set()
    assert due_sensors(intervals, evaluated, T0 + 30) == {fast}
    evaluated[fast] = T0 + 30
    assert due_sensors(intervals, evaluated, T0 + 59) == set()
    evaluated[fast] = T0 + 280
    assert due_sensors(intervals, evaluated, T0 + 299) == set()
    assert due_sensors(intervals, evaluated, T0 + 300) == {slow}


def test_a_sensor_last_evaluated_when_its_latest_asset_did() -> None:
    from dagloom.daemon._automation import AssetCursor
    from dagloom.daemon.automation_loop import sensor_evaluations

    def cursor(at: float) -> AssetCursor:
        return AssetCursor(at, 0, frozenset(), None, "", {})

    sensor = ("here", "slow")
    of = {AssetKey("a"): sensor, AssetKey("b"): sensor, AssetKey("c"): ("here", "other")}
    cursors = {AssetKey("a"): cursor(T0), AssetKey("b"): cursor(T0 + 60)}
    assert sensor_evaluations(of, cursors) == {sensor: T0 + 60}


def test_assets_of_a_sensor_not_due_are_left_out_of_the_round() -> None:
    from dagloom.daemon.automation_loop import graph_for_sensors

    slow = dg.AutomationConditionSensorDefinition(
        "slow",
        target=dg.AssetSelection.assets(downstream),
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    defs = Definitions(assets=[upstream, downstream, sibling], sensors=[slow])
    graph = automation_graph([InProcessLocation("here", defs).snapshot], {("here", "slow"): True})
    assert graph.sensor_intervals == {("here", "slow"): 300.0}
    assert graph.sensor_of_asset == {AssetKey("downstream"): ("here", "slow")}
    assert graph_for_sensors(graph, frozenset({("here", "slow")})) is graph
    waiting = graph_for_sensors(graph, frozenset())
    conditions = {a.key.to_user_string(): a.condition is not None for a in waiting.assets}
    assert conditions == {"upstream": False, "downstream": False, "sibling": True}


async def test_an_automation_sensor_evaluates_at_most_every_minimum_interval() -> None:
    slow = dg.AutomationConditionSensorDefinition(
        "slow",
        target=dg.AssetSelection.assets(downstream),
        minimum_interval_seconds=120,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    defs = Definitions(assets=[upstream, downstream, sibling], sensors=[slow])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        location = InProcessLocation("here", defs)
        automation = AutomationLoop(instance, {"here": cast(Any, location)}, coord, owner="d")
        await automation.tick(T0)
        await instance.event_log_storage.store_events(
            [materialization("outside-run", ["upstream"], partition="")]
        )
        await automation.tick(T0 + 30)
        assert automation.last_result is not None
        assert AssetKey("downstream") not in automation.last_result.evaluations
        selections = []
        for run_id in automation.last_runs:
            run = await instance.run_storage.get_run(run_id)
            assert run is not None
            selections.append([tuple(k.path) for k in run.asset_selection])
        assert selections == [[("sibling",)]]  # the default sensor's asset goes at once
        await automation.tick(T0 + 120)
        [run_id] = automation.last_runs
        run = await instance.run_storage.get_run(run_id)
        assert run is not None and [tuple(k.path) for k in run.asset_selection] == [("downstream",)]
        # A restarted daemon takes the sensor's last evaluation from the stored state.
        await instance.schedule_storage.release_lease("automation", "d")
        again = AutomationLoop(instance, {"here": cast(Any, location)}, coord, owner="d2")
        await again.tick(T0 + 150)
        assert again.last_result is not None
        assert AssetKey("downstream") not in again.last_result.evaluations
        await again.tick(T0 + 240)
        assert again.last_result is not None
        assert AssetKey("downstream") in again.last_result.evaluations


def test_multi_partitions_are_rebuilt_from_the_snapshot_for_mappings() -> None:
    from dagloom.daemon._automation import AssetRecords, evaluate_automation

    days = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-03")
    regions = dg.StaticPartitionsDefinition(["eu", "us"])
    both = dg.MultiPartitionsDefinition({"date": days, "region": regions})

    @dg.asset(partitions_def=both)
    def sales() -> int:
        return 1

    @dg.asset(partitions_def=both, automation_condition=dg.AutomationCondition.any_deps_updated())
    def checked_sales(sales: int) -> int:
        return sales

    location = InProcessLocation("here", Definitions(assets=[sales, checked_sales]))
    graph = automation_graph([location.snapshot])
    by_key = {a.key.to_user_string(): a for a in graph.assets}
    assert by_key["sales"].partitions_def == both
    assert by_key["checked_sales"].partitions_def == both
    keys = by_key["sales"].partition_keys
    assert keys is not None
    first = evaluate_automation(graph.assets, {}, {}, T0)
    eu_day_two = next(k for k in keys if "2026-01-02" in k and "eu" in k)
    records = {AssetKey("sales"): AssetRecords(materialized={eu_day_two: 1})}
    result = evaluate_automation(graph.assets, records, first.cursors, T0 + 30)
    assert result.requested == {AssetKey("checked_sales"): frozenset({eu_day_two})}
