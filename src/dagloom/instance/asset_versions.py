"""Reads of the data versions the event log holds: what staleness and data version tags need.

Each asset's latest materialization and latest observation are read through the asset index,
many assets per query; nothing else of the event log is decoded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.staleness import (
    AssetVersionNode,
    AssetVersionRecord,
    PartitionedKey,
    Staleness,
    compute_partition_staleness,
    compute_staleness,
    partition_closure,
    partition_reads,
)
from dagloom.messages import EventRecord, EventType

if TYPE_CHECKING:
    from dagloom.instance._instance import DagloomInstance


def _record(found: EventRecord | None) -> tuple[int, dict[str, str]] | None:
    if found is None or found.event is None or found.event.asset_materialization is None:
        return None
    return found.storage_id, dict(found.event.asset_materialization.tags)


async def read_version_record(instance: DagloomInstance, key: AssetKey) -> AssetVersionRecord:
    """What the event log says of `key`'s versions: its latest materialization's and latest
    observation's storage ids and tags."""
    return (await read_version_records(instance, [key]))[key]


async def read_version_records(
    instance: DagloomInstance, keys: Iterable[AssetKey]
) -> dict[AssetKey, AssetVersionRecord]:
    """`read_version_record` of each key, all read together (`get_latest_asset_events`)."""
    wanted = list(keys)
    found = await instance.event_log_storage.get_latest_asset_events(
        [list(k.path) for k in wanted], VERSION_EVENT_TYPES
    )
    return version_records(found, wanted)


VERSION_EVENT_TYPES = (EventType.ASSET_MATERIALIZATION, EventType.ASSET_OBSERVATION)
"""The event types whose latest records hold an asset's versions."""


def version_records(
    found: Mapping[tuple[tuple[str, ...], EventType], EventRecord], keys: Iterable[AssetKey]
) -> dict[AssetKey, AssetVersionRecord]:
    """Each of `keys`' version record, from the latest events `get_latest_asset_events` read
    of `VERSION_EVENT_TYPES` (keyed by asset path and type). Pure."""
    out: dict[AssetKey, AssetVersionRecord] = {}
    for key in keys:
        path = key.path
        materialized = _record(found.get((path, EventType.ASSET_MATERIALIZATION)))
        seen = _record(found.get((path, EventType.ASSET_OBSERVATION)))
        if materialized is None and seen is None:
            out[key] = _NONE
            continue
        out[key] = AssetVersionRecord(
            materialization_id=materialized[0] if materialized else None,
            materialization_tags=materialized[1] if materialized else {},
            observation_id=seen[0] if seen else None,
            observation_tags=seen[1] if seen else {},
        )
    return out


_NONE = AssetVersionRecord()


async def latest_data_versions(
    instance: DagloomInstance, keys: Iterable[AssetKey]
) -> dict[AssetKey, str]:
    """Each of `keys` that has a data version -> its current one (of its newest
    materialization or observation)."""
    out: dict[AssetKey, str] = {}
    for key, record in (await read_version_records(instance, keys)).items():
        version = record.current_data_version
        if version is not None:
            out[key] = version
    return out


async def read_staleness(
    instance: DagloomInstance, nodes: Mapping[AssetKey, AssetVersionNode]
) -> dict[AssetKey, Staleness]:
    """The staleness of every asset of `nodes`, from the instance's records of them and of
    their upstream assets."""
    keys = set(nodes) | {dep for node in nodes.values() for dep in node.deps}
    records = await read_version_records(instance, keys)
    return compute_staleness(nodes, records)


async def read_partition_version_records(
    instance: DagloomInstance, items: Iterable[PartitionedKey]
) -> dict[PartitionedKey, AssetVersionRecord]:
    """The version record of each (asset, partition) of `items` (None: the unpartitioned
    asset): one read per partitioned asset, one for all the unpartitioned ones."""
    wanted = list(dict.fromkeys(items))
    partitions: dict[AssetKey, list[str]] = {}
    whole: list[AssetKey] = []
    for key, partition in wanted:
        if partition is None:
            whole.append(key)
        else:
            partitions.setdefault(key, []).append(partition)
    out: dict[PartitionedKey, AssetVersionRecord] = {}
    if whole:
        for key, record in (await read_version_records(instance, whole)).items():
            out[(key, None)] = record
    events = instance.event_log_storage
    for key, keys in partitions.items():
        found = await events.get_latest_partition_events(list(key.path), VERSION_EVENT_TYPES, keys)
        for partition in keys:
            made = _record(found.get((partition, EventType.ASSET_MATERIALIZATION)))
            seen = _record(found.get((partition, EventType.ASSET_OBSERVATION)))
            out[(key, partition)] = AssetVersionRecord(
                materialization_id=made[0] if made else None,
                materialization_tags=made[1] if made else {},
                observation_id=seen[0] if seen else None,
                observation_tags=seen[1] if seen else {},
            )
    return out


async def read_partition_staleness(
    instance: DagloomInstance,
    nodes: Mapping[AssetKey, AssetVersionNode],
    wanted: Iterable[PartitionedKey],
) -> dict[PartitionedKey, Staleness]:
    """The staleness of each of `wanted` (and of the partitions upstream of them), from the
    instance's records of every (asset, partition) they read."""
    wanted = list(wanted)
    closure = partition_closure(nodes, wanted)
    needed = set(closure)
    for item in closure:
        needed.update(partition_reads(nodes, item))
    records = await read_partition_version_records(instance, needed)
    return compute_partition_staleness(nodes, records, wanted)


__all__ = [
    "VERSION_EVENT_TYPES",
    "latest_data_versions",
    "read_partition_staleness",
    "read_partition_version_records",
    "read_staleness",
    "read_version_record",
    "read_version_records",
    "version_records",
]
