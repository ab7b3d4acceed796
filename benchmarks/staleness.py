"""Staleness: how long deciding every asset's stale status takes for a large asset graph,
against reading the records it is decided from, measured in the same run on SQLite.

The graph has `--assets` assets in layers of 50: the first layer external (observed), each
later asset reading two assets of the layer before. Every asset has a materialization (or an
observation) tagged with its data version and the input data versions it read; one external
asset in ten has since been observed at a new version, so a good part of the graph is stale.

Workloads:

    compute         `compute_staleness(nodes, records)`: the pure decision, records in hand.
    read_staleness  `read_staleness(instance, nodes)`: the records read and the decision, as
                    `dagloom asset list` and the GraphQL `staleStatus` field pay for it.
    records_floor   `read_version_records(instance, keys)`: the reads alone (the asset
                    index, 500 keys per query), the floor.
    per_key_reads   the same records read two queries per asset (latest materialization,
                    latest observation), as without the bulk read.

Per partition (`--partitions P`, 0 to skip): a daily-partitioned asset reading the same
day of a daily-partitioned upstream, both materialized for P days, the upstream again for one
day in ten since.

    partition_compute   `compute_partition_staleness`: every day of the downstream decided,
                        records in hand.
    read_partitions     `read_partition_staleness`: the per-partition reads and the decision,
                        as GraphQL's `staleStatusByPartition` pays for it.
    partitions_floor    `read_partition_version_records`: the reads alone (one query per
                        asset), the floor.

    python -m benchmarks staleness [--assets N] [--partitions P] [--repeat R]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks._common import median_ms

ASSETS = 5_000
LAYER = 50
REPEAT = 5
PARTITIONS = 1_000


def graph(assets: int) -> dict[Any, Any]:
    """The benchmark's asset graph: key -> AssetVersionNode."""
    from dagloom.definitions.asset_key import AssetKey
    from dagloom.definitions.staleness import AssetVersionNode

    keys = [AssetKey(f"a{i}") for i in range(assets)]
    nodes = {}
    for i, key in enumerate(keys):
        if i < LAYER:
            nodes[key] = AssetVersionNode(key, is_external=True)
        else:
            base = (i // LAYER - 1) * LAYER
            deps = (keys[base + i % LAYER], keys[base + (i + 1) % LAYER])
            nodes[key] = AssetVersionNode(key, deps=deps, code_version="1")
    return nodes


def events(nodes: dict[Any, Any]) -> list[Any]:
    """The reported events behind the benchmark's records, in order."""
    from dagloom.definitions.outputs import AssetMaterialization, AssetObservation
    from dagloom.execution.reporting import runless_event

    out = []
    for key, node in nodes.items():
        if node.is_external:
            tags = {"dagster/data_version": "v1"}
            out.append(runless_event(AssetObservation(key, tags=tags)))
            continue
        tags = {"dagster/code_version": "1", "dagster/data_version": "v1"}
        for dep in node.deps:
            tags[f"dagster/input_data_version/{dep.to_user_string()}"] = "v1"
        out.append(runless_event(AssetMaterialization(key, tags=tags)))
    for i, key in enumerate(list(nodes)[:LAYER]):
        if i % 10 == 0:  # the source changed since
            tags = {"dagster/data_version": "v2"}
            out.append(runless_event(AssetObservation(key, tags=tags)))
    return out


async def measure(assets: int, repeat: int) -> dict[str, float]:
    from dagloom.definitions.staleness import StaleStatus, compute_staleness
    from dagloom.instance import DagloomInstance
    from dagloom.instance.asset_versions import (
        read_staleness,
        read_version_record,
        read_version_records,
    )

    nodes = graph(assets)
    with tempfile.TemporaryDirectory(prefix="dagloom-staleness-") as tmp:
        async with DagloomInstance.open(Path(tmp)) as instance:
            stored = events(nodes)
            for i in range(0, len(stored), 500):
                await instance.store_events(stored[i : i + 500])
            keys = sorted(nodes)
            records = await read_version_records(instance, keys)
            result = compute_staleness(nodes, records)
            stale = sum(1 for s in result.values() if s.status == StaleStatus.STALE)
            if not 0 < stale < assets:
                raise RuntimeError(f"expected part of the graph stale, got {stale}")

            async def decide() -> Any:
                return compute_staleness(nodes, records)

            out = {
                "compute": await median_ms(decide, repeat * 4),
                "read_staleness": await median_ms(lambda: read_staleness(instance, nodes), repeat),
                "records_floor": await median_ms(
                    lambda: read_version_records(instance, keys), repeat
                ),
            }

            async def per_key() -> Any:
                return {key: await read_version_record(instance, key) for key in keys}

            out["per_key_reads"] = await median_ms(per_key, max(repeat // 2, 1))
            out["stale_assets"] = float(stale)
            return out


async def measure_partitions(days: int, repeat: int) -> dict[str, float]:
    import datetime

    import dagloom as dg
    from dagloom.definitions.asset_key import AssetKey
    from dagloom.definitions.outputs import AssetMaterialization
    from dagloom.definitions.staleness import (
        AssetVersionNode,
        StaleStatus,
        compute_partition_staleness,
        partition_closure,
        partition_reads,
    )
    from dagloom.execution.reporting import runless_event
    from dagloom.instance import DagloomInstance
    from dagloom.instance.asset_versions import (
        read_partition_staleness,
        read_partition_version_records,
    )

    start = datetime.date(2000, 1, 1)
    end = start + datetime.timedelta(days=days)
    daily = dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_date=end.isoformat())
    keys = tuple(daily.get_partition_keys())
    up, down = AssetKey("up"), AssetKey("down")
    nodes = {
        up: AssetVersionNode(up, partitions_def=daily, partition_keys=keys),
        down: AssetVersionNode(
            down, deps=(up,), code_version="1", partitions_def=daily, partition_keys=keys
        ),
    }
    stored = []
    for day in keys:
        stored.append(
            runless_event(
                AssetMaterialization(up, partition=day, tags={"dagster/data_version": day})
            )
        )
        tags = {"dagster/code_version": "1", "dagster/input_data_version/up": day}
        stored.append(runless_event(AssetMaterialization(down, partition=day, tags=tags)))
    for day in keys[::10]:
        tags = {"dagster/data_version": f"{day}-again"}
        stored.append(runless_event(AssetMaterialization(up, partition=day, tags=tags)))
    wanted = [(down, day) for day in keys]
    needed = set(partition_closure(nodes, wanted))
    for item in list(needed):
        needed.update(partition_reads(nodes, item))
    with tempfile.TemporaryDirectory(prefix="dagloom-staleness-") as tmp:
        async with DagloomInstance.open(Path(tmp)) as instance:
            for i in range(0, len(stored), 500):
                await instance.store_events(stored[i : i + 500])
            records = await read_partition_version_records(instance, needed)
            result = compute_partition_staleness(nodes, records, wanted)
            stale = sum(1 for w in wanted if result[w].status == StaleStatus.STALE)
            if stale != len(keys[::10]):
                raise RuntimeError(f"expected {len(keys[::10])} stale partitions, got {stale}")

            async def decide() -> Any:
                return compute_partition_staleness(nodes, records, wanted)

            return {
                "partition_compute": await median_ms(decide, repeat * 4),
                "read_partitions": await median_ms(
                    lambda: read_partition_staleness(instance, nodes, wanted), repeat
                ),
                "partitions_floor": await median_ms(
                    lambda: read_partition_version_records(instance, needed), repeat
                ),
            }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks staleness", description=__doc__)
    parser.add_argument("--assets", type=int, default=ASSETS)
    parser.add_argument("--partitions", type=int, default=PARTITIONS)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    ns = parser.parse_args(argv)
    results = anyio.run(measure, ns.assets, ns.repeat)
    stale = int(results.pop("stale_assets"))
    floor = results["records_floor"]
    print(f"{'workload':<17} {'median ms':>10} {'ratio to floor':>15}")
    for name, ms in results.items():
        print(f"{name:<17} {ms:>10.2f} {ms / floor:>14.3f}x")
    print(f"{ns.assets} assets ({stale} stale), layers of {LAYER}, SQLite")
    if ns.partitions:
        parts = anyio.run(measure_partitions, ns.partitions, ns.repeat)
        floor = parts["partitions_floor"]
        for name, ms in parts.items():
            print(f"{name:<17} {ms:>10.2f} {ms / floor:>14.3f}x")
        print(f"{ns.partitions} daily partitions of 2 assets, one in ten stale, SQLite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
