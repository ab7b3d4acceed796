"""Conditions evaluated per partition through each dependency's partition mapping, tick by
tick over hand-made records."""

from __future__ import annotations

from collections.abc import Mapping

from dagloom import AutomationCondition
from dagloom.daemon._automation import AutomationAsset, AutomationTickResult
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.partition_mapping import (
    AllPartitionMapping,
    IdentityPartitionMapping,
    LastPartitionMapping,
    MultiToSingleDimensionPartitionMapping,
    PartitionMapping,
    StaticPartitionMapping,
    TimeWindowPartitionMapping,
)
from dagloom.definitions.partitions import (
    DailyPartitionsDefinition,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
)
from tests.daemon.test_automation import Sim

UP, DOWN = AssetKey("up"), AssetKey("down")
DAYS = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-06")


def partitioned(
    key: AssetKey,
    definition: PartitionsDefinition | None,
    condition: AutomationCondition | None = None,
    mapping: PartitionMapping | None = None,
) -> AutomationAsset:
    return AutomationAsset(
        key,
        condition,
        deps=(UP,) if key == DOWN else (),
        partition_keys=None if definition is None else tuple(definition.get_partition_keys()),
        partitions_def=definition,
        dep_mappings={UP: mapping} if mapping is not None else {},
    )


def requested(result: AutomationTickResult) -> Mapping[str, set[str | None]]:
    return {k.to_user_string(): set(v) for k, v in result.requested.items()}


def test_time_window_offset_requests_the_next_day_after_an_update() -> None:
    previous_day = TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
    sim = Sim(
        [
            partitioned(UP, DAYS),
            partitioned(DOWN, DAYS, AutomationCondition.any_deps_updated(), previous_day),
        ]
    )
    assert requested(sim.tick()) == {}
    sim.materialize(UP, "2026-01-02")
    assert requested(sim.tick()) == {"down": {"2026-01-03"}}
    assert requested(sim.tick()) == {}
    sim.materialize(UP, "2026-01-04")
    sim.materialize(UP, "2026-01-01")
    assert requested(sim.tick()) == {"down": {"2026-01-02", "2026-01-05"}}


def test_time_window_offset_reading_before_the_first_day_reads_nothing() -> None:
    previous_day = TimeWindowPartitionMapping(
        start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
    )
    sim = Sim(
        [
            partitioned(UP, DAYS),
            partitioned(DOWN, DAYS, AutomationCondition.any_deps_missing(), previous_day),
        ]
    )
    # The first day reads no upstream day, so none of its deps is missing.
    assert requested(sim.tick()) == {
        "down": {"2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"}
    }
    sim.materialize(UP, "2026-01-03")
    assert requested(sim.tick()) == {"down": {"2026-01-02", "2026-01-03", "2026-01-05"}}


def test_static_mapping_requests_the_partition_reading_the_updated_one() -> None:
    regions = StaticPartitionsDefinition(["us-east", "us-west", "eu"])
    areas = StaticPartitionsDefinition(["us", "eu"])
    mapping = StaticPartitionMapping({"us-east": "us", "us-west": "us", "eu": "eu"})
    sim = Sim(
        [
            partitioned(UP, regions),
            partitioned(DOWN, areas, AutomationCondition.any_deps_updated(), mapping),
        ]
    )
    sim.tick()
    sim.materialize(UP, "us-west")
    assert requested(sim.tick()) == {"down": {"us"}}
    sim.materialize(UP, "eu")
    assert requested(sim.tick()) == {"down": {"eu"}}


def test_eager_through_static_mapping_waits_for_every_partition_read() -> None:
    regions = StaticPartitionsDefinition(["us-east", "us-west", "eu"])
    areas = StaticPartitionsDefinition(["us", "eu"])
    mapping = StaticPartitionMapping({"us-east": "us", "us-west": "us", "eu": "eu"})
    sim = Sim(
        [
            partitioned(UP, regions),
            partitioned(DOWN, areas, AutomationCondition.eager(), mapping),
        ]
    )
    sim.tick()
    sim.materialize(UP, "us-west")
    sim.materialize(UP, "eu")
    # "us" also reads us-east, still missing: only "eu" goes.
    assert requested(sim.tick()) == {"down": {"eu"}}
    sim.materialize(DOWN, "eu")
    sim.materialize(UP, "us-east")
    assert requested(sim.tick()) == {"down": {"us"}}


def test_all_partition_mapping_requests_every_partition() -> None:
    sim = Sim(
        [
            partitioned(UP, StaticPartitionsDefinition(["p", "q"])),
            partitioned(
                DOWN,
                StaticPartitionsDefinition(["x", "y"]),
                AutomationCondition.any_deps_updated(),
                AllPartitionMapping(),
            ),
        ]
    )
    sim.tick()
    sim.materialize(UP, "q")
    assert requested(sim.tick()) == {"down": {"x", "y"}}


def test_last_partition_mapping_reads_only_the_last_partition() -> None:
    sim = Sim(
        [
            partitioned(UP, StaticPartitionsDefinition(["p", "q"])),
            partitioned(DOWN, None, AutomationCondition.eager(), LastPartitionMapping()),
        ]
    )
    sim.tick()
    sim.materialize(UP, "p")
    assert requested(sim.tick()) == {}
    sim.materialize(UP, "q")
    assert requested(sim.tick()) == {"down": {None}}
    sim.materialize(DOWN)
    sim.materialize(UP, "p")
    assert requested(sim.tick()) == {}


def test_unpartitioned_downstream_reads_every_partition_by_default() -> None:
    sim = Sim(
        [
            partitioned(UP, StaticPartitionsDefinition(["p", "q"])),
            partitioned(DOWN, None, AutomationCondition.eager()),
        ]
    )
    sim.tick()
    sim.materialize(UP, "p")
    assert requested(sim.tick()) == {}  # q is still missing
    sim.materialize(UP, "q")
    assert requested(sim.tick()) == {"down": {None}}


def test_identity_mapping_matches_same_keys() -> None:
    keys = StaticPartitionsDefinition(["x", "y"])
    sim = Sim(
        [
            partitioned(UP, keys),
            partitioned(DOWN, keys, AutomationCondition.eager(), IdentityPartitionMapping()),
        ]
    )
    sim.tick()
    sim.materialize(UP, "x")
    assert requested(sim.tick()) == {"down": {"x"}}


def test_multi_to_single_dimension_requests_the_dimension_key() -> None:
    regions = StaticPartitionsDefinition(["r1", "r2"])
    multi = MultiPartitionsDefinition(
        {"date": StaticPartitionsDefinition(["d1", "d2"]), "region": regions}
    )
    sim = Sim(
        [
            partitioned(UP, multi),
            partitioned(
                DOWN,
                regions,
                AutomationCondition.any_deps_updated(),
                MultiToSingleDimensionPartitionMapping(partition_dimension_name="region"),
            ),
        ]
    )
    sim.tick()
    up_keys = partitioned(UP, multi).partition_keys
    assert up_keys is not None
    key = next(k for k in up_keys if "d2" in k and "r2" in k)
    sim.materialize(UP, key)
    assert requested(sim.tick()) == {"down": {"r2"}}
