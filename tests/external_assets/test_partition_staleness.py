"""The pure per-partition staleness: each partition against the upstream partitions its
partition mapping reads."""

from __future__ import annotations

import dagloom as dg
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.staleness import (
    AssetVersionNode,
    AssetVersionRecord,
    StaleCauseCategory,
    StaleStatus,
    compute_partition_staleness,
    partition_closure,
    upstream_partitions,
)

UP, DOWN, TOTAL = AssetKey("up"), AssetKey("down"), AssetKey("total")
DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")
KEYS = tuple(DAYS.get_partition_keys())  # 2024-01-01 .. 2024-01-03
D1, D2, D3 = KEYS


def _nodes(**mappings: object) -> dict[AssetKey, AssetVersionNode]:
    return {
        UP: AssetVersionNode(UP, partitions_def=DAYS, partition_keys=KEYS),
        DOWN: AssetVersionNode(
            DOWN,
            deps=(UP,),
            code_version="1",
            partitions_def=DAYS,
            partition_keys=KEYS,
            dep_mappings={UP: mappings["down"]} if "down" in mappings else {},
        ),
        TOTAL: AssetVersionNode(TOTAL, deps=(DOWN,), code_version="1"),
    }


def _made(storage_id: int, data: str, **read: str) -> AssetVersionRecord:
    tags = {"dagster/code_version": "1", "dagster/data_version": data}
    tags.update({f"dagster/input_data_version/{k}": v for k, v in read.items()})
    return AssetVersionRecord(materialization_id=storage_id, materialization_tags=tags)


def test_partitions_read_the_upstream_partitions_their_mapping_names() -> None:
    nodes = _nodes(down=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1))
    assert upstream_partitions(nodes, DOWN, UP, D2) == (D1,)
    assert upstream_partitions(nodes, DOWN, UP, D1) == ()  # no day before the first
    assert upstream_partitions(nodes, TOTAL, DOWN, None) == KEYS
    assert upstream_partitions(_nodes(), DOWN, AssetKey("elsewhere"), D1) == (None,)
    order = partition_closure(nodes, [(DOWN, D3)])
    assert order == [(UP, D2), (DOWN, D3)]


def test_a_partition_is_stale_when_the_upstream_partition_it_read_changed() -> None:
    nodes = _nodes()
    records = {
        (UP, D1): _made(1, "u1"),
        (UP, D2): _made(2, "u2"),
        (DOWN, D1): _made(3, "d1", up="u1"),
        (DOWN, D2): _made(4, "d2", up="u2"),
    }
    wanted = [(DOWN, k) for k in KEYS]
    found = compute_partition_staleness(nodes, records, wanted)
    assert [found[w].status for w in wanted] == [
        StaleStatus.FRESH,
        StaleStatus.FRESH,
        StaleStatus.MISSING,
    ]
    # Day 2 of `up` has a new data version: day 2 of `down` only.
    records[(UP, D2)] = _made(5, "u2b")
    found = compute_partition_staleness(nodes, records, wanted)
    assert found[(DOWN, D1)].status is StaleStatus.FRESH
    [cause] = found[(DOWN, D2)].causes
    assert (cause.category, cause.reason) == (StaleCauseCategory.DATA, "has a new data version")
    assert (cause.partition, cause.dependency, cause.dependency_partition) == (D2, UP, D2)
    assert cause.describe() == f"down[{D2}] (up[{D2}]): has a new data version"


def test_a_partition_is_stale_after_a_code_change_or_an_update_without_versions() -> None:
    nodes = _nodes()
    no_versions = AssetVersionRecord(materialization_id=6)
    records = {
        (UP, D1): no_versions,
        (DOWN, D1): AssetVersionRecord(
            materialization_id=3, materialization_tags={"dagster/code_version": "0"}
        ),
    }
    found = compute_partition_staleness(nodes, records, [(DOWN, D1)])
    reasons = [(c.category, c.reason) for c in found[(DOWN, D1)].causes]
    assert reasons == [
        (StaleCauseCategory.CODE, "has a new code version"),
        (StaleCauseCategory.DATA, "has been updated"),
    ]


def test_an_unpartitioned_asset_reading_every_partition_is_stale_when_one_is() -> None:
    nodes = _nodes()
    records = {
        (UP, D1): _made(1, "u1"),
        (UP, D2): _made(5, "u2b"),  # since day 2 of down read "u2"
        (DOWN, D1): _made(2, "d1", up="u1"),
        (DOWN, D2): _made(3, "d2", up="u2"),
        (TOTAL, None): _made(4, "t", down="d2"),
    }
    found = compute_partition_staleness(nodes, records, [(TOTAL, None)])
    assert found[(DOWN, D2)].status is StaleStatus.STALE
    causes = found[(TOTAL, None)].causes
    assert [(c.category, c.dependency_partition) for c in causes] == [
        (StaleCauseCategory.DEPENDENCIES, D2)
    ]


@dg.asset(partitions_def=DAYS)
def daily_up(context: dg.AssetExecutionContext) -> str:
    return context.partition_key


@dg.asset(partitions_def=DAYS, code_version="1")
def daily_down(daily_up: str) -> str:
    return daily_up.upper()


async def test_materialized_partitions_record_what_they_read_and_go_stale_alone() -> None:
    """A run of one partition records the data version of the upstream partition it read
    (not the upstream's newest partition's), so re-materializing one upstream partition
    makes only the partition that read it stale."""
    from dagloom.definitions.asset_job import materialize_async
    from dagloom.definitions.asset_selection import AssetGraph
    from dagloom.definitions.staleness import version_nodes
    from dagloom.instance import DagloomInstance
    from dagloom.instance.asset_versions import read_partition_staleness, read_staleness

    assets = [daily_up, daily_down]
    nodes = version_nodes(AssetGraph(assets))
    down = AssetKey("daily_down")
    wanted = [(down, k) for k in KEYS]
    async with DagloomInstance.ephemeral() as instance:

        async def run(selection: list[str], partition: str) -> None:
            await materialize_async(
                assets, instance=instance, selection=selection, partition_key=partition
            )

        async def statuses() -> list[StaleStatus]:
            found = await read_partition_staleness(instance, nodes, wanted)
            return [found[w].status for w in wanted]

        async def whole() -> StaleStatus:
            return (await read_staleness(instance, nodes))[down].status

        await run(["daily_up"], D1)
        await run(["daily_up"], D2)
        await run(["daily_down"], D1)  # reads day 1, though day 2 is newer upstream
        # As a whole: its latest materialization read day 1, not the newest upstream day.
        assert await whole() is StaleStatus.FRESH
        await run(["daily_up", "daily_down"], D2)
        assert await statuses() == [StaleStatus.FRESH, StaleStatus.FRESH, StaleStatus.MISSING]
        await run(["daily_up"], D2)  # a new data version of day 2 (no code version)
        assert await statuses() == [StaleStatus.FRESH, StaleStatus.STALE, StaleStatus.MISSING]
        assert await whole() is StaleStatus.STALE  # upstream updated since its latest
