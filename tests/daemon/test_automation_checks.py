"""Automation conditions on asset checks, evaluated tick by tick with an injected clock: a
check is unpartitioned, its asset is its dependency, and its records are its executions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import dagloom as dg
from dagloom import AutomationCondition
from dagloom.daemon._automation import (
    AssetCursor,
    AssetRecords,
    AutomationAsset,
    AutomationTickResult,
    EntityKey,
    check_entity,
    evaluate_automation,
    topological_order,
)
from dagloom.daemon.automation_loop import (
    AutomationLoop,
    checks_launched,
    join_state,
    plan_automation_runs,
    split_state,
)
from dagloom.definitions.asset_checks import AssetCheckKey
from dagloom.definitions.asset_key import AssetKey
from dagloom.instance import DagloomInstance
from dagloom.storage.automation import AutomationStorage

from ..storage.contract import materialization
from ._fakes import InProcessLocation, storing_coordinator

ORDERS = AssetKey("orders")
NOT_EMPTY = AssetCheckKey(ORDERS, "not_empty")
T0 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC).timestamp()  # midnight, for the cron test


class Sim:
    """Ticks assets and checks: executions change between ticks, cursors carry over through
    their stored form."""

    def __init__(self, entities: Sequence[AutomationAsset]) -> None:
        self.entities = list(entities)
        self.cursors: dict[EntityKey, AssetCursor] = {}
        self.executed: dict[EntityKey, int] = {}
        self.running: set[EntityKey] = set()
        self.storage_id = 0
        self.now = T0

    def execute(self, key: EntityKey) -> None:
        self.storage_id += 1
        self.executed[key] = self.storage_id

    def tick(self, minutes: float = 1) -> AutomationTickResult:
        self.now += minutes * 60
        records: Mapping[EntityKey, AssetRecords] = {
            e.key: AssetRecords(
                materialized={None: self.executed[e.key]} if e.key in self.executed else {},
                in_progress=frozenset({None}) if e.key in self.running else frozenset(),
            )
            for e in self.entities
        }
        result = evaluate_automation(self.entities, records, self.cursors, self.now)
        self.cursors = join_state(split_state(result.cursors))
        return result


def test_an_eager_check_runs_when_missing_and_after_each_asset_update() -> None:
    sim = Sim([AutomationAsset(ORDERS), check_entity(NOT_EMPTY, AutomationCondition.eager())])
    # Its asset was never materialized: nothing to check yet.
    assert sim.tick().requested == {}
    sim.execute(ORDERS)
    assert set(sim.tick().requested) == {NOT_EMPTY}
    sim.execute(NOT_EMPTY)
    assert sim.tick().requested == {}
    assert sim.tick().requested == {}
    sim.execute(ORDERS)
    result = sim.tick()
    assert result.requested == {NOT_EMPTY: frozenset({None})}
    evaluation = result.evaluations[NOT_EMPTY]
    assert evaluation.asset_key == NOT_EMPTY
    assert evaluation.to_dict()["asset_key"] == ["orders"]
    assert evaluation.to_dict()["check_name"] == "not_empty"


def test_an_eager_check_waits_while_its_asset_is_in_progress() -> None:
    sim = Sim([AutomationAsset(ORDERS), check_entity(NOT_EMPTY, AutomationCondition.eager())])
    assert sim.tick().requested == {}  # the first evaluation handles what came before
    sim.execute(ORDERS)
    sim.running.add(ORDERS)
    assert sim.tick().requested == {}
    sim.running.clear()
    assert set(sim.tick().requested) == {NOT_EMPTY}


def test_a_check_is_requested_with_its_asset_on_the_same_tick() -> None:
    raw = AssetKey("raw")
    sim = Sim(
        [
            AutomationAsset(raw),
            AutomationAsset(ORDERS, AutomationCondition.eager(), deps=(raw,)),
            check_entity(NOT_EMPTY, AutomationCondition.eager()),
        ]
    )
    sim.execute(raw)
    sim.execute(ORDERS)
    sim.execute(NOT_EMPTY)
    assert sim.tick().requested == {}
    sim.execute(raw)
    result = sim.tick()
    assert set(result.requested) == {ORDERS, NOT_EMPTY}
    labels = str(result.evaluations[NOT_EMPTY].to_dict()["root"])
    assert "will_be_requested" in labels


def test_a_cron_check_runs_once_per_cron_tick_after_its_asset_updates() -> None:
    condition = AutomationCondition.on_cron("0 * * * *")
    sim = Sim([AutomationAsset(ORDERS), check_entity(NOT_EMPTY, condition)])
    sim.execute(ORDERS)
    assert sim.tick(10).requested == {}  # 00:10
    assert sim.tick(55).requested == {}  # 01:05: the hour passed, the asset is older
    sim.execute(ORDERS)
    assert set(sim.tick(10).requested) == {NOT_EMPTY}  # 01:15
    sim.execute(NOT_EMPTY)
    assert sim.tick(10).requested == {}  # 01:25
    sim.execute(ORDERS)
    assert sim.tick(10).requested == {}  # 01:35: handled for 01:00's tick
    assert sim.tick(30).requested == {}  # 02:05: not updated since 02:00
    sim.execute(ORDERS)
    assert set(sim.tick(5).requested) == {NOT_EMPTY}  # 02:10


def test_a_check_that_cannot_be_launched_records_why_and_the_rest_go_on() -> None:
    other = AssetCheckKey(ORDERS, "positive")
    sim = Sim(
        [
            AutomationAsset(ORDERS),
            check_entity(NOT_EMPTY, AutomationCondition.eager(), launch_problem="in no job"),
            check_entity(other, AutomationCondition.eager()),
        ]
    )
    sim.tick()
    sim.execute(ORDERS)
    result = sim.tick()
    assert set(result.requested) == {other}
    assert result.evaluations[NOT_EMPTY].error == "asset check 'orders:not_empty': in no job"


def test_checks_follow_their_asset_and_extra_deps_in_the_evaluation_order() -> None:
    extra = AssetKey("customers")
    entities = [
        check_entity(NOT_EMPTY, AutomationCondition.eager(), additional_deps=[extra]),
        AutomationAsset(ORDERS),
        AutomationAsset(extra),
    ]
    order = topological_order(entities)
    assert order.index(NOT_EMPTY) > max(order.index(ORDERS), order.index(extra))


def test_check_cursors_round_trip_through_the_stored_state() -> None:
    sim = Sim([AutomationAsset(ORDERS), check_entity(NOT_EMPTY, AutomationCondition.eager())])
    sim.tick()
    sim.execute(ORDERS)
    result = sim.tick()
    stored = split_state(result.cursors)
    assert "orders//not_empty" in stored
    assert join_state(stored)[NOT_EMPTY].requested == frozenset({None})


def test_requested_checks_run_in_their_assets_run_or_say_why_not() -> None:
    other = AssetCheckKey(AssetKey("customers"), "unique")
    requested: dict[EntityKey, frozenset[str | None]] = {
        ORDERS: frozenset({None}),
        NOT_EMPTY: frozenset({None}),
        other: frozenset({None}),
    }
    runs = plan_automation_runs(requested, {ORDERS: ("loc", "__ASSET_JOB")})
    assert [r.asset_keys for r in runs] == [(ORDERS,)]
    ran, refused = checks_launched(requested, {ORDERS: ["run-1"]}, {})
    assert ran == {NOT_EMPTY: ["run-1"]}
    assert set(refused) == {other}
    assert "'customers:unique'" in refused[other]
    assert "computed by its asset's op" in refused[other]


def test_a_check_requested_without_its_asset_is_planned_in_a_run_of_checks_alone() -> None:
    customers = AssetKey("customers")
    unique = AssetCheckKey(customers, "unique")
    fresh = AssetCheckKey(customers, "fresh")
    requested: dict[EntityKey, frozenset[str | None]] = {
        ORDERS: frozenset({None}),
        NOT_EMPTY: frozenset({None}),
        unique: frozenset({None}),
        fresh: frozenset({None}),
    }
    launch = {
        ORDERS: ("loc", "__ASSET_JOB"),
        NOT_EMPTY: ("loc", "__ASSET_JOB"),  # its asset is requested: runs with it
        customers: ("loc", "__ASSET_JOB"),
        unique: ("loc", "__ASSET_JOB"),
        fresh: ("loc", "__ASSET_JOB"),
    }
    orders_run, checks_run = plan_automation_runs(requested, launch)
    assert (orders_run.asset_keys, orders_run.check_keys) == ((ORDERS,), ())
    assert (checks_run.asset_keys, checks_run.check_keys) == ((), (fresh, unique))
    assert checks_run.partition_key is None and checks_run.keys == (fresh, unique)
    # Run ids already credited to a check (its own run) are not credited again.
    ran, refused = checks_launched(
        requested, {ORDERS: ["run-1"], unique: ["run-2"], fresh: ["run-2"]}, {}
    )
    assert ran == {NOT_EMPTY: ["run-1"]} and refused == {}


LOOP_T0 = 1_800_000_000.0


@dg.asset
def raw_orders() -> list[int]:
    return [1, 2]


@dg.asset(automation_condition=dg.AutomationCondition.eager())
def orders(raw_orders: list[int]) -> list[int]:
    return raw_orders


@dg.asset_check(asset=orders, automation_condition=dg.AutomationCondition.eager())
def orders_not_empty(orders: list[int]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=bool(orders))


@dg.asset_check(asset=raw_orders, automation_condition=dg.AutomationCondition.eager())
def raw_orders_positive(raw_orders: list[int]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=all(o > 0 for o in raw_orders))


async def test_the_loop_runs_a_requested_check_with_its_asset_or_alone_and_records_it() -> None:
    defs = dg.Definitions(
        assets=[raw_orders, orders], asset_checks=[orders_not_empty, raw_orders_positive]
    )
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        location = InProcessLocation("here", defs)
        automation = AutomationLoop(instance, {"here": cast(Any, location)}, coord, owner="d")
        await automation.tick(LOOP_T0)
        assert automation.last_runs == []
        await instance.event_log_storage.store_events(
            [materialization("outside-run", ["raw_orders"], partition="")]
        )
        await automation.tick(LOOP_T0 + 30)
        run_id, checks_run_id = automation.last_runs
        run = await instance.run_storage.get_run(run_id)
        assert run is not None
        assert [tuple(k.path) for k in run.asset_selection] == [("orders",)]
        assert list(run.asset_check_selection) == []  # its asset's checks
        # raw_orders was not requested: its check runs alone, materializing nothing.
        checks_run = await instance.run_storage.get_run(checks_run_id)
        assert checks_run is not None and list(checks_run.asset_selection) == []
        assert [(tuple(c.asset_key.path), c.name) for c in checks_run.asset_check_selection] == [
            (("raw_orders",), "raw_orders_positive")
        ]
        result = automation.last_result
        assert result is not None
        checked = AssetCheckKey(AssetKey("orders"), "orders_not_empty")
        alone = AssetCheckKey(AssetKey("raw_orders"), "raw_orders_positive")
        assert set(result.requested) == {AssetKey("orders"), checked, alone}

        storage = instance.schedule_storage
        assert isinstance(storage, AutomationStorage)
        [latest, *_] = await storage.get_automation_evaluations("orders:orders_not_empty")
        assert latest.num_requested == 1 and latest.run_ids == (run_id,)
        assert json.loads(latest.body)["check_name"] == "orders_not_empty"
        [alone_record, *_] = await storage.get_automation_evaluations(
            "raw_orders:raw_orders_positive"
        )
        assert alone_record.run_ids == (checks_run_id,)
        assert json.loads(alone_record.body)["error"] is None
        # The cursors of checks survive a new loop (a restarted daemon).
        again = AutomationLoop(instance, {"here": cast(Any, location)}, coord, owner="d")
        await again.tick(LOOP_T0 + 60)
        assert again.last_runs == []


async def test_the_loop_reads_each_checks_latest_execution_across_rounds() -> None:
    from dagloom.messages import AssetCheckEvaluationData, AssetKeyMessage, EventType

    from ..storage.contract import ev

    def check(n: int, name: str) -> Any:
        return ev(
            f"r{n}",
            EventType.ASSET_CHECK_EVALUATION,
            "s",
            asset_check_evaluation=AssetCheckEvaluationData(
                asset_key=AssetKeyMessage(path=["orders"]), check_name=name, passed=True
            ),
        )

    defs = dg.Definitions(assets=[raw_orders, orders], asset_checks=[orders_not_empty])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        location = InProcessLocation("here", defs)
        automation = AutomationLoop(instance, {"here": cast(Any, location)}, coord, owner="d")
        await automation.tick(LOOP_T0)
        graph = automation._graph[1] if automation._graph else None
        assert graph is not None
        events = instance.event_log_storage
        key = AssetCheckKey(AssetKey("orders"), "orders_not_empty")

        async def executions() -> dict[str | None, int] | None:
            await automation._check_executions(graph)
            return automation._materialized.get(key)

        assert await executions() is None
        await events.store_events([check(1, "orders_not_empty"), check(2, "other")])
        first = await executions()
        assert first is not None
        # More new evaluations than one read's first page, the check's own the oldest.
        await events.store_events([check(3, "orders_not_empty")])
        await events.store_events([check(n, "other") for n in range(4, 60)])
        latest = await executions()
        assert latest is not None and latest[None] > first[None]
        assert await executions() == latest  # nothing new: unchanged


@dg.asset
def readings() -> list[int]:
    return [3, 4]


@dg.asset_check(asset=readings, automation_condition=dg.AutomationCondition.on_cron("0 * * * *"))
def readings_positive(readings: list[int]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=all(r > 0 for r in readings))


async def test_a_cron_check_without_its_asset_requested_runs_alone(tmp_path: Path) -> None:
    """The check's condition requests it on the hour once its asset updated; its asset has
    no condition, so the loop launches a run of the check alone: the check executes (its
    evaluation is stored) and the asset is not materialized again."""
    from dagloom.definitions.asset_job import materialize_async
    from dagloom.messages import EventType

    from ..actors._runs import definitions_stack, wait_for_end

    io_manager = dg.FilesystemIOManager(base_dir=str(tmp_path))
    defs = dg.Definitions(
        assets=[readings], asset_checks=[readings_positive], resources={"io_manager": io_manager}
    )
    check = AssetCheckKey(AssetKey("readings"), "readings_positive")
    async with DagloomInstance.ephemeral() as instance, definitions_stack(instance, defs) as coord:
        location = InProcessLocation("here", defs)
        automation = AutomationLoop(instance, {"here": cast(Any, location)}, coord, owner="d")
        await automation.tick(LOOP_T0 + 600)  # 00:10
        await automation.tick(LOOP_T0 + 3900)  # 01:05: the hour passed, nothing updated
        assert automation.last_runs == []
        await materialize_async([readings], instance=instance, resources={"io_manager": io_manager})
        await automation.tick(LOOP_T0 + 4500)  # 01:15
        [run_id] = automation.last_runs
        result = automation.last_result
        assert result is not None and set(result.requested) == {check}
        run = await wait_for_end(instance, run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert list(run.asset_selection) == []
        records = await instance.get_events(run_id)
        types = [r.event.event_type for r in records if r.event is not None]
        assert EventType.ASSET_CHECK_EVALUATION in types
        assert EventType.ASSET_MATERIALIZATION not in types
        [evaluation] = [
            r.event.asset_check_evaluation
            for r in records
            if r.event is not None and r.event.asset_check_evaluation is not None
        ]
        assert evaluation.check_name == "readings_positive" and evaluation.passed
        storage = instance.schedule_storage
        assert isinstance(storage, AutomationStorage)
        [latest, *_] = await storage.get_automation_evaluations("readings:readings_positive")
        assert latest.run_ids == (run_id,)
        # The next round sees the check executed: not requested again within the hour.
        await automation.tick(LOOP_T0 + 5100)
        assert automation.last_runs == []
