"""Automation conditions evaluated tick by tick over hand-made records and an injected clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from dagloom import AutomationCondition
from dagloom.daemon._automation import (
    AssetCursor,
    AssetRecords,
    AutomationAsset,
    AutomationTickResult,
    EvaluationNode,
    evaluate_automation,
)
from dagloom.definitions.asset_key import AssetKey
from dagloom.errors import DagsterInvalidDefinitionError

A, B, C = AssetKey("a"), AssetKey("b"), AssetKey("c")
T0 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC).timestamp()


class Sim:
    """Ticks a set of assets: records change between ticks, cursors carry over."""

    def __init__(self, assets: Sequence[AutomationAsset]) -> None:
        self.assets = list(assets)
        self.cursors: dict[AssetKey, AssetCursor] = {}
        self.materialized: dict[AssetKey, dict[str | None, int]] = {}
        self.in_progress: dict[AssetKey, frozenset[str | None]] = {}
        self.storage_id = 0
        self.now = T0

    def materialize(self, key: AssetKey, partition: str | None = None) -> None:
        self.storage_id += 1
        self.materialized.setdefault(key, {})[partition] = self.storage_id

    def tick(self, minutes: float = 1) -> AutomationTickResult:
        self.now += minutes * 60
        records: Mapping[AssetKey, AssetRecords] = {
            a.key: AssetRecords(
                materialized=dict(self.materialized.get(a.key, {})),
                in_progress=self.in_progress.get(a.key, frozenset()),
            )
            for a in self.assets
        }
        result = evaluate_automation(self.assets, records, self.cursors, self.now)
        # Round-trip the cursors through their stored form, as the daemon does.
        self.cursors = {k: AssetCursor.from_dict(c.to_dict()) for k, c in result.cursors.items()}
        return result


def requested(result: AutomationTickResult) -> set[str]:
    return {k.to_user_string() for k in result.requested}


def test_eager_requests_downstream_once_after_upstream_updates() -> None:
    sim = Sim([AutomationAsset(A), AutomationAsset(B, AutomationCondition.eager(), deps=(A,))])
    assert requested(sim.tick()) == set()  # a missing: b waits
    sim.materialize(A)
    assert requested(sim.tick()) == {"b"}
    assert requested(sim.tick()) == set()  # handled: requested last tick
    sim.materialize(B)
    assert requested(sim.tick()) == set()
    sim.materialize(A)
    assert requested(sim.tick()) == {"b"}


def test_eager_waits_while_an_upstream_is_in_progress() -> None:
    sim = Sim([AutomationAsset(A), AutomationAsset(B, AutomationCondition.eager(), deps=(A,))])
    sim.materialize(A)
    sim.tick()
    sim.materialize(A)
    sim.in_progress[A] = frozenset({None})
    assert requested(sim.tick()) == set()
    sim.in_progress[A] = frozenset()
    assert requested(sim.tick()) == {"b"}  # the update is remembered across the wait


def test_eager_chain_requests_whole_chain_on_one_tick() -> None:
    eager = AutomationCondition.eager()
    sim = Sim(
        [
            AutomationAsset(A),
            AutomationAsset(B, eager, deps=(A,)),
            AutomationAsset(C, eager, deps=(B,)),
        ]
    )
    sim.materialize(A)
    sim.materialize(B)
    sim.materialize(C)
    sim.tick()
    sim.materialize(A)
    assert requested(sim.tick()) == {"b", "c"}  # c sees b will_be_requested


def test_on_cron_fires_after_tick_once_deps_updated() -> None:
    sim = Sim(
        [
            AutomationAsset(A),
            AutomationAsset(B, AutomationCondition.on_cron("0 * * * *"), deps=(A,)),
        ]
    )
    sim.materialize(A)
    assert requested(sim.tick(10)) == set()  # 00:10, initial evaluation
    assert requested(sim.tick(55)) == set()  # 01:05: hour passed, a not updated since
    sim.materialize(A)
    assert requested(sim.tick(5)) == {"b"}  # 01:10
    assert requested(sim.tick(5)) == set()  # handled
    sim.materialize(A)
    assert requested(sim.tick(5)) == set()  # no new cron tick yet
    assert requested(sim.tick(60)) == set()  # 02:20: tick passed; a updated before it
    sim.materialize(A)
    assert requested(sim.tick(1)) == {"b"}


ON_MISSING_FROM_THE_START = AutomationCondition.on_missing().replace(
    "handled", AutomationCondition.newly_requested() | AutomationCondition.newly_updated()
)


def test_on_missing_requests_partitions_added_later_once() -> None:
    sim = Sim([AutomationAsset(A, AutomationCondition.on_missing(), partition_keys=("x", "y"))])
    sim.materialize(A, "x")
    assert requested(sim.tick()) == set()  # y was missing before the condition applied
    sim.assets = [
        AutomationAsset(A, AutomationCondition.on_missing(), partition_keys=("x", "y", "z"))
    ]
    assert sim.tick().requested[A] == frozenset({"z"})
    assert requested(sim.tick()) == set()


def test_on_missing_with_handled_replaced_requests_missing_asset_once() -> None:
    sim = Sim([AutomationAsset(A, ON_MISSING_FROM_THE_START)])
    assert requested(sim.tick()) == {"a"}
    assert requested(sim.tick()) == set()
    assert requested(sim.tick()) == set()


def test_on_missing_waits_for_missing_deps() -> None:
    sim = Sim([AutomationAsset(A), AutomationAsset(B, ON_MISSING_FROM_THE_START, deps=(A,))])
    assert requested(sim.tick()) == set()
    sim.materialize(A)
    assert requested(sim.tick()) == {"b"}
    assert requested(sim.tick()) == set()


def test_leaf_conditions() -> None:
    sim = Sim(
        [
            AutomationAsset(A, AutomationCondition.missing()),
            AutomationAsset(B, AutomationCondition.initial_evaluation()),
            AutomationAsset(C, AutomationCondition.newly_missing()),
        ]
    )
    assert requested(sim.tick()) == {"a", "b", "c"}
    assert requested(sim.tick()) == {"a"}


def test_newly_updated_and_newly_requested() -> None:
    updated = AutomationAsset(A, AutomationCondition.newly_updated())
    sim = Sim([updated])
    sim.tick()
    sim.materialize(A)
    assert requested(sim.tick()) == {"a"}
    assert requested(sim.tick()) == set()

    # Requested every other tick: newly_requested is true the tick after a request.
    alternating = Sim([AutomationAsset(A, ~AutomationCondition.newly_requested())])
    assert [requested(alternating.tick()) for _ in range(4)] == [{"a"}, set(), {"a"}, set()]


def test_code_version_changed() -> None:
    sim = Sim([AutomationAsset(A, AutomationCondition.code_version_changed(), code_version="1")])
    assert requested(sim.tick()) == set()
    sim.assets = [AutomationAsset(A, AutomationCondition.code_version_changed(), code_version="2")]
    assert requested(sim.tick()) == {"a"}
    assert requested(sim.tick()) == set()


def test_cron_tick_passed_and_since() -> None:
    cond = AutomationCondition.cron_tick_passed("*/30 * * * *").since(
        AutomationCondition.newly_updated()
    )
    sim = Sim([AutomationAsset(A, cond)])
    assert requested(sim.tick(10)) == set()
    assert requested(sim.tick(25)) == {"a"}  # 00:35, passed 00:30
    assert requested(sim.tick(1)) == {"a"}  # still true: no update since
    sim.materialize(A)
    assert requested(sim.tick(1)) == set()  # reset


def test_deps_match_operators_and_asset_matches() -> None:
    sim = Sim(
        [
            AutomationAsset(A),
            AutomationAsset(B),
            AutomationAsset(
                C,
                AutomationCondition.all_deps_match(~AutomationCondition.missing()),
                deps=(A, B),
            ),
        ]
    )
    sim.materialize(A)
    assert requested(sim.tick()) == set()
    sim.materialize(B)
    assert requested(sim.tick()) == {"c"}

    any_missing = AutomationCondition.any_deps_missing()
    ignoring = AutomationCondition.any_deps_match(AutomationCondition.missing()).ignore(["a"])
    matches = AutomationCondition.asset_matches("a", AutomationCondition.missing())
    sim = Sim(
        [
            AutomationAsset(A),
            AutomationAsset(B, any_missing, deps=(A,)),
            AutomationAsset(C, ignoring | matches, deps=(A,)),
        ]
    )
    assert requested(sim.tick()) == {"b", "c"}
    sim.materialize(A)
    assert requested(sim.tick()) == set()


def test_any_deps_in_progress() -> None:
    sim = Sim(
        [
            AutomationAsset(A),
            AutomationAsset(B, AutomationCondition.any_deps_in_progress(), deps=(A,)),
        ]
    )
    assert requested(sim.tick()) == set()
    sim.in_progress[A] = frozenset({None})
    assert requested(sim.tick()) == {"b"}


def test_per_partition_evaluation() -> None:
    days = ("2026-01-01", "2026-01-02", "2026-01-03")
    ends = tuple(T0 + 86400 * (i + 1) for i in range(3))
    sim = Sim(
        [
            AutomationAsset(A, partition_keys=days, partition_end_times=ends),
            AutomationAsset(
                B,
                AutomationCondition.any_deps_updated().since_last_handled(),
                deps=(A,),
                partition_keys=days,
                partition_end_times=ends,
            ),
            AutomationAsset(
                C,
                AutomationCondition.eager(),
                deps=(A,),
                partition_keys=days,
                partition_end_times=ends,
            ),
        ]
    )
    sim.tick()
    sim.materialize(A, "2026-01-02")
    sim.materialize(A, "2026-01-03")
    result = sim.tick()
    assert result.requested[B] == frozenset({"2026-01-02", "2026-01-03"})
    assert result.requested[C] == frozenset({"2026-01-03"})  # eager: latest window only
    lookback = AutomationCondition.in_latest_time_window(timedelta(days=1))
    sim = Sim([AutomationAsset(A, lookback, partition_keys=days, partition_end_times=ends)])
    assert sim.tick().requested[A] == frozenset({"2026-01-02", "2026-01-03"})


def test_evaluation_tree_explains_the_decision() -> None:
    sim = Sim([AutomationAsset(A), AutomationAsset(B, AutomationCondition.eager(), deps=(A,))])
    sim.tick()
    sim.materialize(A)
    result = sim.tick()
    root = result.evaluations[B].root
    assert root is not None and root.label == "eager" and root.value

    def labels(node: EvaluationNode) -> list[str]:
        return [node.label, *(x for c in node.children for x in labels(c))]

    assert "any_deps_updated" in labels(root)
    assert "a: newly_updated_or_requested" in labels(root)
    assert result.evaluations[B].to_dict()["root"]["label"] == "eager"
    # Unchanged trees are reported as unchanged, so the loop stores only what changed.
    assert B in sim.tick().changed  # newly_requested became true
    assert B in sim.tick().changed  # ... and false again
    assert B not in sim.tick().changed
    assert requested(sim.tick()) == set()  # b not materialized yet, but not requested again


def test_launch_problem_is_recorded_and_others_go_on() -> None:
    sim = Sim(
        [
            AutomationAsset(A, AutomationCondition.missing(), launch_problem="not in any job"),
            AutomationAsset(B, AutomationCondition.missing()),
            AutomationAsset(
                C, AutomationCondition.asset_matches("zzz", AutomationCondition.missing())
            ),
        ]
    )
    result = sim.tick()
    assert requested(result) == {"b"}
    assert result.evaluations[A].error == "asset 'a': not in any job"
    error = result.evaluations[C].error
    assert error is not None and "'zzz'" in error and "'c'" in error


def test_state_survives_restart_through_cursor_dicts() -> None:
    sim = Sim([AutomationAsset(A), AutomationAsset(B, AutomationCondition.eager(), deps=(A,))])
    sim.tick()
    sim.materialize(A)
    sim.in_progress[A] = frozenset({None})
    sim.tick()
    stored = {k: c.to_dict() for k, c in sim.cursors.items()}
    restarted = Sim(sim.assets)
    restarted.cursors = {k: AssetCursor.from_dict(v) for k, v in stored.items()}
    restarted.materialized, restarted.storage_id, restarted.now = (
        sim.materialized,
        sim.storage_id,
        sim.now,
    )
    assert requested(restarted.tick()) == {"b"}


def test_changed_condition_starts_over() -> None:
    sim = Sim([AutomationAsset(A, AutomationCondition.initial_evaluation())])
    assert requested(sim.tick()) == {"a"}
    assert requested(sim.tick()) == set()
    sim.assets = [AutomationAsset(A, AutomationCondition.initial_evaluation().with_label("new"))]
    assert requested(sim.tick()) == {"a"}


def test_bad_cron_and_bad_operands_name_the_problem() -> None:
    with pytest.raises(DagsterInvalidDefinitionError, match="not a cron"):
        AutomationCondition.on_cron("not a cron")
    with pytest.raises(DagsterInvalidDefinitionError, match="Nowhere/Land"):
        AutomationCondition.cron_tick_passed("0 * * * *", "Nowhere/Land")
    with pytest.raises(DagsterInvalidDefinitionError, match="expected an AutomationCondition"):
        AutomationCondition.missing() & "x"  # type: ignore[operator]


def test_idle_ticks_reuse_the_previous_result_until_an_input_changes() -> None:
    eager = AutomationCondition.eager()
    sim = Sim(
        [
            AutomationAsset(A),
            AutomationAsset(B, eager, deps=(A,)),
            AutomationAsset(C, eager, deps=(B,)),
        ]
    )
    for key in (A, B, C):
        sim.materialize(key)
    results = [sim.tick() for _ in range(5)]
    assert all(not r.requested for r in results)
    assert results[-1].evaluations[C].reused and not results[0].evaluations[C].reused
    sim.materialize(A)
    result = sim.tick()
    assert requested(result) == {"b", "c"} and not result.evaluations[B].reused
    sim.in_progress[B] = sim.in_progress[C] = frozenset({None})
    for _ in range(4):
        assert requested(sim.tick()) == set()
    sim.in_progress[B] = sim.in_progress[C] = frozenset()
    sim.materialize(B)
    sim.materialize(C)
    assert requested(sim.tick()) == set()  # b and c updated: handled


def test_idle_cron_ticks_still_see_the_schedule_fire() -> None:
    sim = Sim([AutomationAsset(A, AutomationCondition.cron_tick_passed("0 * * * *"))])
    assert [bool(sim.tick(10).requested) for _ in range(12)] == [
        False,  # 00:10, initial evaluation
        False,
        False,
        False,
        False,
        True,  # 01:00
        False,
        False,
        False,
        False,
        False,
        True,  # 02:00
    ]


def test_a_condition_that_fails_unexpectedly_is_recorded_and_others_go_on() -> None:
    broken = AutomationCondition("cron_tick_passed", cron_schedule="0 * * * *", cron_timezone="")
    sim = Sim([AutomationAsset(A, broken), AutomationAsset(B, AutomationCondition.missing())])
    sim.tick()
    result = sim.tick(60)
    assert requested(result) == {"b"}
    error = result.evaluations[A].error
    assert error is not None and error.startswith("asset 'a': ")


def test_newly_requested_on_a_dependency_reads_its_previous_request() -> None:
    follows = AutomationCondition.any_deps_match(AutomationCondition.newly_requested())
    sim = Sim(
        [
            AutomationAsset(A, ON_MISSING_FROM_THE_START),
            AutomationAsset(B, follows, deps=(A,)),
        ]
    )
    assert requested(sim.tick()) == {"a"}
    assert requested(sim.tick()) == {"b"}  # a was requested on the previous tick
    assert requested(sim.tick()) == set()
