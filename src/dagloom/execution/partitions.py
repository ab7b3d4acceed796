"""Which partitions a run targets, read from its tags, and what each asset of it reads.

A partitioned run carries its partition the way Dagster's runs do: the tag
`dagster/partition` for one key, or `dagster/asset_partition_range_start` / `_end` for a
range. Everything here is pure and sync; a step asks `RunPartitions` for the keys of the
asset it writes (the run's range, in that asset's definition) and of the assets it reads
(through each dependency's partition mapping).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagloom.definitions.partitions import (
    MultiPartitionsDefinition,
    PartitionKeyRange,
    PartitionsDefinition,
)
from dagloom.errors import DagloomError, DagsterInvalidInvocationError

if TYPE_CHECKING:
    from dagloom.definitions.asset_key import AssetKey
    from dagloom.definitions.asset_selection import AssetGraph

PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_SET_TAG = "dagster/partition_set"


def partition_tags(
    partition_key: str | None = None, partition_key_range: PartitionKeyRange | None = None
) -> dict[str, str]:
    """The run tags that mark a run as one partition, or a range of them."""
    if partition_key is not None and partition_key_range is not None:
        raise DagsterInvalidInvocationError("give partition_key or partition_key_range, not both")
    if partition_key is not None:
        return {PARTITION_TAG: str(partition_key)}
    if partition_key_range is not None:
        if partition_key_range.start == partition_key_range.end:
            return {PARTITION_TAG: partition_key_range.start}
        return {
            PARTITION_RANGE_START_TAG: partition_key_range.start,
            PARTITION_RANGE_END_TAG: partition_key_range.end,
        }
    return {}


def range_from_tags(tags: Mapping[str, str]) -> PartitionKeyRange | None:
    """The partition range a run's tags name (a single key is a one-key range), or None."""
    key = tags.get(PARTITION_TAG)
    if key is not None:
        return PartitionKeyRange(key, key)
    start = tags.get(PARTITION_RANGE_START_TAG)
    end = tags.get(PARTITION_RANGE_END_TAG)
    if start is not None and end is not None:
        return PartitionKeyRange(start, end)
    return None


def _as_key(partitions_def: PartitionsDefinition | None, key: str) -> str:
    if isinstance(partitions_def, MultiPartitionsDefinition):
        return partitions_def.get_partition_key_from_str(key)
    return key


@dataclass(frozen=True, slots=True)
class RunPartitions:
    """The partitions one run targets and the asset graph that says how assets map them.

    Keys are computed on demand and cached per asset; a run of one partition computes
    nothing more than the key itself.
    """

    key_range: PartitionKeyRange | None  # None: a run of no partition (reading partitions)
    graph: AssetGraph | None
    store: Any = None  # a DynamicPartitionsStore (the instance) for dynamic definitions
    job_partitions_def: PartitionsDefinition | None = None
    """The job's partitions (`@job(partitions_def=)`, a partitioned config): what an op's
    context lists and windows the run's keys in."""

    def job_keys(self) -> list[str] | None:
        """The run's keys in the job's partitions (None: the job has none, or the run is
        for no partition)."""
        part, key_range = self.job_partitions_def, self.key_range
        if part is None or key_range is None:
            return None
        if self.is_single:
            return [_as_key(part, key_range.start)]
        return [_as_key(part, k) for k in part.get_partition_keys_in_range(key_range, self.store)]

    @property
    def is_single(self) -> bool:
        return self.key_range is not None and self.key_range.start == self.key_range.end

    @property
    def run_partition_key(self) -> str | None:
        """The run's one partition key, or None (a range, or no partition)."""
        return self.key_range.start if self.key_range is not None and self.is_single else None

    def partitions_def(self, key: AssetKey) -> PartitionsDefinition | None:
        return None if self.graph is None else self.graph.partitions_def(key)

    def keys_for_asset(self, key: AssetKey) -> list[str] | None:
        """The partition keys of `key` this run writes (None: `key` is unpartitioned)."""
        partitions_def = self.partitions_def(key)
        if partitions_def is None:
            return None
        if self.key_range is None:
            raise DagloomError(
                f"asset {key.to_user_string()!r} is partitioned ({partitions_def}); "
                "materialize it for a partition key or range"
            )
        if self.is_single:
            return [_as_key(partitions_def, self.key_range.start)]
        keys = partitions_def.get_partition_keys_in_range(self.key_range, self.store)
        return [_as_key(partitions_def, k) for k in keys]

    def keys_for_input(self, downstream: AssetKey | None, upstream: AssetKey) -> list[str] | None:
        """The partition keys of `upstream` that `downstream`'s partitions in this run read
        (None: `upstream` is unpartitioned or not known here)."""
        up_def = self.partitions_def(upstream)
        if up_def is None or self.graph is None:
            return None
        if downstream is None or downstream not in self.graph.by_key:
            return self.keys_for_asset(upstream)
        mapping = self.graph.partition_mapping(downstream, upstream)
        if mapping is None:
            return None
        down_def = self.partitions_def(downstream)
        down_keys = self.keys_for_asset(downstream)
        keys = mapping.upstream_partition_keys(down_keys, down_def, up_def, self.store)
        return [_as_key(up_def, k) for k in keys]


def dynamic_partition_names_of(graph: AssetGraph | None) -> list[str]:
    """The stored dynamic partitions the assets of `graph` use, by name."""
    from dagloom.definitions.partitions import dynamic_partition_names

    if graph is None:
        return []
    return sorted({n for d in graph.assets_defs for n in dynamic_partition_names(d.partitions_def)})


def run_partitions(
    graph: AssetGraph | None,
    tags: Mapping[str, str],
    store: Any = None,
    job_partitions_def: PartitionsDefinition | None = None,
) -> RunPartitions | None:
    """The RunPartitions of a run with `tags` of a job partitioned by `job_partitions_def`;
    None when neither the run nor any asset it knows is partitioned."""
    key_range = range_from_tags(tags)
    if key_range is None and (
        graph is None or all(d.partitions_def is None for d in graph.assets_defs)
    ):
        return None
    return RunPartitions(key_range, graph, store, job_partitions_def)


__all__ = [
    "PARTITION_RANGE_END_TAG",
    "PARTITION_RANGE_START_TAG",
    "PARTITION_SET_TAG",
    "PARTITION_TAG",
    "RunPartitions",
    "dynamic_partition_names_of",
    "partition_tags",
    "range_from_tags",
    "run_partitions",
]
