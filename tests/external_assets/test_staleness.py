"""The pure staleness function, record by record."""

from __future__ import annotations

from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.staleness import (
    AssetVersionNode,
    AssetVersionRecord,
    StaleCauseCategory,
    StaleStatus,
    compute_staleness,
)

A, B, C = AssetKey("a"), AssetKey("b"), AssetKey("c")


def _materialized(storage_id: int, **tags: str) -> AssetVersionRecord:
    return AssetVersionRecord(materialization_id=storage_id, materialization_tags=tags)


def _b_read(version: str, code: str = "1") -> AssetVersionRecord:
    return AssetVersionRecord(
        materialization_id=10,
        materialization_tags={
            "dagster/code_version": code,
            "dagster/input_data_version/a": version,
            "dagster/data_version": "b1",
        },
    )


NODES = {
    A: AssetVersionNode(A, is_external=True),
    B: AssetVersionNode(B, deps=(A,), code_version="1"),
    C: AssetVersionNode(C, deps=(B,)),
}


def test_an_asset_never_materialized_is_missing_and_an_external_one_fresh() -> None:
    result = compute_staleness(NODES, {})

    assert result[A].status == StaleStatus.FRESH
    assert result[B].status == StaleStatus.MISSING
    assert result[C].status == StaleStatus.MISSING


def test_fresh_when_the_upstream_data_version_is_the_one_read() -> None:
    records = {
        A: AssetVersionRecord(observation_id=5, observation_tags={"dagster/data_version": "x"}),
        B: _b_read("x"),
    }

    assert compute_staleness(NODES, records)[B].status == StaleStatus.FRESH


def test_stale_when_an_upstream_observation_saw_a_new_data_version() -> None:
    records = {
        A: AssetVersionRecord(observation_id=20, observation_tags={"dagster/data_version": "y"}),
        B: _b_read("x"),
        C: _materialized(30, **{"dagster/input_data_version/b": "b1"}),
    }

    result = compute_staleness(NODES, records)

    assert result[B].status == StaleStatus.STALE
    [cause] = result[B].causes
    assert (cause.category, cause.dependency) == (StaleCauseCategory.DATA, A)
    assert "new data version" in cause.describe()
    # c read b's current version, but b is stale: c is stale through it.
    assert result[C].status == StaleStatus.STALE
    assert [c.category for c in result[C].causes] == [StaleCauseCategory.DEPENDENCIES]


def test_stale_when_the_code_version_changed() -> None:
    records = {B: _b_read("x", code="0")}

    result = compute_staleness(NODES, records)[B]

    assert result.status == StaleStatus.STALE
    assert [c.category for c in result.causes] == [StaleCauseCategory.CODE]


def test_an_upstream_update_without_recorded_versions_counts_by_order() -> None:
    nodes = {B: AssetVersionNode(B), C: AssetVersionNode(C, deps=(B,))}
    before = {B: _materialized(1), C: _materialized(2)}
    after = {B: _materialized(3), C: _materialized(2)}

    assert compute_staleness(nodes, before)[C].status == StaleStatus.FRESH
    assert compute_staleness(nodes, after)[C].status == StaleStatus.STALE


def test_the_newest_of_materialization_and_observation_gives_the_current_version() -> None:
    record = AssetVersionRecord(
        materialization_id=4,
        materialization_tags={"dagster/data_version": "m"},
        observation_id=9,
        observation_tags={"dagster/data_version": "o"},
    )

    assert record.current_data_version == "o"
    assert record.last_updated_id == 9


def test_a_long_chain_is_settled_without_recursion() -> None:
    keys = [AssetKey(f"n{i}") for i in range(5000)]
    nodes = {
        key: AssetVersionNode(key, deps=(keys[i - 1],) if i else ()) for i, key in enumerate(keys)
    }
    records = {key: _materialized(i + 1) for i, key in enumerate(keys)}
    records[keys[0]] = _materialized(10_000)  # the root changed after everything

    result = compute_staleness(nodes, records)

    assert result[keys[0]].status == StaleStatus.FRESH
    assert all(result[k].status == StaleStatus.STALE for k in keys[1:])
