"""AutomationCondition as Dagster's documentation declares it: on assets, specs and checks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from dagloom import (
    AssetCheckResult,
    AssetKey,
    AssetOut,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    asset,
    asset_check,
    multi_asset,
)
from dagloom.definitions.automation_condition import condition_from_dict
from dagloom.errors import DagsterInvalidDefinitionError


def test_asset_declares_a_condition() -> None:
    @asset(automation_condition=AutomationCondition.eager())
    def orders() -> int:
        return 1

    assert orders.get_asset_spec().automation_condition == AutomationCondition.eager()


def test_multi_asset_outs_and_specs_carry_conditions() -> None:
    hourly = AutomationCondition.on_cron("0 * * * *")

    @multi_asset(
        outs={
            "a": AssetOut(automation_condition=AutomationCondition.on_missing()),
            "b": AssetOut(),
        },
        automation_condition=hourly,
    )
    def both() -> tuple[int, int]:
        return 1, 2

    specs = both.specs_by_key
    assert specs[AssetKey("a")].automation_condition == AutomationCondition.on_missing()
    assert specs[AssetKey("b")].automation_condition == hourly

    @multi_asset(specs=[AssetSpec("c", automation_condition=AutomationCondition.eager())])
    def one() -> None:
        return None

    assert one.get_asset_spec("c").automation_condition == AutomationCondition.eager()


def test_asset_check_declares_a_condition() -> None:
    @asset_check(
        asset="orders", automation_condition=AutomationCondition.cron_tick_passed("@daily")
    )
    def orders_ok() -> AssetCheckResult:
        return AssetCheckResult(passed=True)

    assert orders_ok.specs[0].automation_condition is not None


def test_operators_compose_and_label() -> None:
    cond = (
        AutomationCondition.any_deps_updated() & ~AutomationCondition.in_progress()
    ) | AutomationCondition.missing().since_last_handled()
    assert cond.kind == "or"
    assert cond.with_label("mine").name == "mine"
    conjunction = AutomationCondition.missing() & AutomationCondition.in_progress()
    assert len((conjunction & AutomationCondition.newly_updated()).children) == 3
    assert AutomationCondition.eager().name == "eager"
    assert AutomationCondition.on_cron("0 * * * *").name == "on_cron(0 * * * *, UTC)"
    assert str(~AutomationCondition.missing()) == "~missing"


def test_every_constructor_round_trips_through_its_dict() -> None:
    conditions = [
        AutomationCondition.eager(),
        AutomationCondition.on_cron("0 9 * * 1", "Europe/Paris"),
        AutomationCondition.on_missing(),
        AutomationCondition.any_deps_updated(),
        AutomationCondition.any_deps_missing(),
        AutomationCondition.any_deps_in_progress(),
        AutomationCondition.newly_missing(),
        AutomationCondition.missing(),
        AutomationCondition.in_progress(),
        AutomationCondition.in_latest_time_window(),
        AutomationCondition.cron_tick_passed("*/5 * * * *"),
        AutomationCondition.newly_requested(),
        AutomationCondition.newly_updated(),
        AutomationCondition.code_version_changed(),
        AutomationCondition.initial_evaluation(),
        AutomationCondition.any_deps_match(AutomationCondition.missing()).allow(
            AssetSelection.keys("a")
        ),
        AutomationCondition.all_deps_match(AutomationCondition.missing()).ignore(["b"]),
        AutomationCondition.missing().since(AutomationCondition.newly_requested()),
        AutomationCondition.missing().since_last_handled(),
        AutomationCondition.asset_matches("x", AutomationCondition.missing()),
    ]
    for cond in conditions:
        assert condition_from_dict(cond.to_dict()) == cond


def test_bad_conditions_name_the_asset() -> None:
    with pytest.raises(DagsterInvalidDefinitionError, match=r"asset 'orders'.*AutomationCondition"):

        @asset(automation_condition="eager")
        def orders() -> int:
            return 1

    with pytest.raises(DagsterInvalidDefinitionError, match="'0 0 30 2 \\*'"):
        AutomationCondition.on_cron("0 0 30 2 *")


def test_replace_swaps_named_sub_conditions() -> None:
    handled = AutomationCondition.newly_requested() | AutomationCondition.newly_updated()
    condition = AutomationCondition.on_missing().replace("handled", handled)
    assert handled in list(_walk(condition))
    assert '"label": "handled"' not in json.dumps(condition.to_dict())
    updated_on_schedule = AutomationCondition.newly_updated() & AutomationCondition.in_progress()
    eager = AutomationCondition.eager().replace("newly_updated", updated_on_schedule)
    # Both newly_updated nodes (deps updated; handled) are replaced.
    assert sum(c == updated_on_schedule for c in _walk(eager)) == 2


def _walk(condition: AutomationCondition) -> Iterator[AutomationCondition]:
    yield condition
    for child in condition.children:
        yield from _walk(child)
