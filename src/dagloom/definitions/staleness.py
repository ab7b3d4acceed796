"""Staleness: whether an asset's last materialization still matches its code and inputs.

An asset is STALE when its code version changed since it was last materialized, when an
upstream asset's data version differs from the one that materialization read (its
`dagster/input_data_version/<key>` tag), when an upstream asset without versions to compare
was updated after it, or when an upstream asset is itself stale. It is MISSING before its
first materialization and FRESH otherwise; an external asset (made elsewhere, only
reported or observed) is always FRESH. Pure: the event log's records are read elsewhere
(`dagloom.instance.asset_versions`).

A partition of a partitioned asset is decided by the same rule over its own latest
materialization and the upstream partitions it reads through each dependency's partition
mapping (`compute_partition_staleness`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.asset_selection import AssetGraph
from dagloom.definitions.outputs import (
    CODE_VERSION_TAG,
    DATA_VERSION_TAG,
    INPUT_DATA_VERSION_TAG_PREFIX,
)


class StaleStatus(enum.StrEnum):
    """Dagster's staleness of an asset."""

    MISSING = "MISSING"
    STALE = "STALE"
    FRESH = "FRESH"


class StaleCauseCategory(enum.StrEnum):
    """What kind of change made an asset stale."""

    CODE = "CODE"
    DATA = "DATA"
    DEPENDENCIES = "DEPENDENCIES"


@dataclass(frozen=True, slots=True)
class StaleCause:
    """One reason `key` is stale; `dependency` names the upstream asset it concerns."""

    key: AssetKey
    category: StaleCauseCategory
    reason: str
    dependency: AssetKey | None = None
    partition: str | None = None  # the partition of `key` that is stale
    dependency_partition: str | None = None  # the partition of `dependency` concerned

    def describe(self) -> str:
        """The cause as one line: `b: has a new data version (upstream a)`, with the
        partitions in brackets when there are some (`b[2024-01-02] (a[2024-01-02]): ...`)."""
        own = _with_partition(self.key, self.partition)
        dep = ""
        if self.dependency is not None:
            dep = f" ({_with_partition(self.dependency, self.dependency_partition)})"
        return f"{own}{dep}: {self.reason}"


def _with_partition(key: AssetKey, partition: str | None) -> str:
    text = key.to_user_string()
    return text if partition is None else f"{text}[{partition}]"


@dataclass(frozen=True, slots=True)
class AssetVersionRecord:
    """What the event log holds of one asset's versions: its latest materialization and
    latest observation (storage ids and tags); None ids when there is none."""

    materialization_id: int | None = None
    materialization_tags: Mapping[str, str] = field(default_factory=dict)
    observation_id: int | None = None
    observation_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def last_updated_id(self) -> int | None:
        """The storage id of the newer of its latest materialization and observation."""
        ids = [i for i in (self.materialization_id, self.observation_id) if i is not None]
        return max(ids) if ids else None

    @property
    def current_data_version(self) -> str | None:
        """The data version of the newer of its latest materialization and observation
        (None when that event carries none)."""
        if self.observation_id is not None and (
            self.materialization_id is None or self.observation_id > self.materialization_id
        ):
            return self.observation_tags.get(DATA_VERSION_TAG)
        if self.materialization_id is not None:
            return self.materialization_tags.get(DATA_VERSION_TAG)
        return None


@dataclass(frozen=True, slots=True)
class AssetVersionNode:
    """What the definitions say of one asset: its code version, its upstream keys, and
    whether it is external (never materialized here)."""

    key: AssetKey
    deps: Sequence[AssetKey] = ()
    code_version: str | None = None
    is_external: bool = False
    # Partitioned assets: their partitions definition (None when it cannot be rebuilt, e.g.
    # dynamic partitions: then a dependency's partitions are matched by key), their keys,
    # and the partition mapping given for each dependency (absent: inferred).
    partitions_def: Any = None
    partition_keys: tuple[str, ...] | None = None
    dep_mappings: Mapping[AssetKey, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Staleness:
    """An asset's stale status and, when STALE, why."""

    status: StaleStatus
    causes: tuple[StaleCause, ...] = ()


_FRESH = Staleness(StaleStatus.FRESH)
_MISSING = Staleness(StaleStatus.MISSING)
_EMPTY = AssetVersionRecord()


def compute_staleness(
    nodes: Mapping[AssetKey, AssetVersionNode],
    records: Mapping[AssetKey, AssetVersionRecord],
) -> dict[AssetKey, Staleness]:
    """The staleness of every asset of `nodes`, given the event log's `records` of them
    (and of upstream assets outside `nodes`, which count as external). Upstream assets are
    settled first, iteratively, so a chain of any length costs one pass. Assets are worked
    on by index: each key is hashed about twice, each dependency once (5,000 assets: see
    `python -m benchmarks staleness`)."""
    keys = list(nodes)
    node_list = list(nodes.values())
    index = {key: i for i, key in enumerate(keys)}
    deps = [[index.get(d, -1) for d in node.deps] for node in node_list]
    # A partitioned asset's latest materialization read the upstream partitions of its own
    # partition, whose versions an upstream asset's newest one does not say: between two
    # partitioned assets, an update after it is what counts (per partition, see
    # `compute_partition_staleness`).
    partitioned = [node.partition_keys is not None for node in node_list]
    record_list = [records.get(key, _EMPTY) for key in keys]
    # What each asset's record says: its current data version and when it last changed.
    current = [r.current_data_version for r in record_list]
    updated = [_updated_id(r) for r in record_list]
    outside: dict[AssetKey, tuple[str | None, int]] = {}
    out: dict[AssetKey, Staleness] = {}
    stale = [False] * len(keys)
    for i in _upstream_first(deps):
        key = keys[i]
        node = node_list[i]
        record = record_list[i]
        if node.is_external:
            out[key] = _FRESH
            continue
        own_id = record.materialization_id
        if own_id is None:
            out[key] = _MISSING
            continue
        tags = record.materialization_tags
        causes: list[StaleCause] = []
        if node.code_version is not None and tags.get(CODE_VERSION_TAG) != node.code_version:
            causes.append(StaleCause(key, StaleCauseCategory.CODE, "has a new code version"))
        for dep, j in zip(node.deps, deps[i], strict=True):
            if j >= 0:
                dep_current, dep_updated = current[j], updated[j]
            else:
                seen = outside.get(dep)
                if seen is None:
                    dep_record = records.get(dep, _EMPTY)
                    seen = outside[dep] = (dep_record.current_data_version, _updated_id(dep_record))
                dep_current, dep_updated = seen
            recorded = None
            if tags and not (j >= 0 and partitioned[i] and partitioned[j]):
                recorded = tags.get(INPUT_DATA_VERSION_TAG_PREFIX + dep.to_user_string())
            if recorded is not None and dep_current is not None:
                if recorded != dep_current:
                    causes.append(
                        StaleCause(key, StaleCauseCategory.DATA, "has a new data version", dep)
                    )
            elif dep_updated > own_id:
                # No versions to compare: an update after this materialization is a change.
                causes.append(StaleCause(key, StaleCauseCategory.DATA, "has been updated", dep))
            if j >= 0 and stale[j]:
                causes.append(
                    StaleCause(key, StaleCauseCategory.DEPENDENCIES, "is stale upstream", dep)
                )
        if causes:
            stale[i] = True
            out[key] = Staleness(StaleStatus.STALE, tuple(causes))
        else:
            out[key] = _FRESH
    return out


def _updated_id(record: AssetVersionRecord) -> int:
    """The storage id of the newer of `record`'s materialization and observation (0: none)."""
    m, o = record.materialization_id, record.observation_id
    if m is None:
        return o or 0
    return m if o is None or m > o else o


PartitionedKey = tuple[AssetKey, str | None]
"""An asset and one of its partitions (None: the unpartitioned asset)."""


def upstream_partitions(
    nodes: Mapping[AssetKey, AssetVersionNode],
    downstream: AssetKey,
    upstream: AssetKey,
    partition: str | None,
) -> tuple[str | None, ...]:
    """The partitions of `upstream` that `partition` of `downstream` reads through the
    dependency's partition mapping: `(None,)` when `upstream` is not partitioned (or not in
    `nodes`), every upstream partition for an unpartitioned downstream, none when the
    mapping names partitions `upstream` lacks."""
    from dagloom.definitions.partition_mapping import infer_partition_mapping
    from dagloom.errors import DagloomError

    up = nodes.get(upstream)
    if up is None or up.partition_keys is None:
        return (None,)
    down = nodes[downstream]
    given = down.dep_mappings.get(upstream)
    if given is None and partition is not None and up.partitions_def == down.partitions_def:
        # One partitions definition and no mapping given: each partition reads its own.
        return (
            (partition,) if up.partitions_def is not None or partition in up.partition_keys else ()
        )
    if up.partitions_def is None or (
        down.partition_keys is not None and down.partitions_def is None
    ):
        # Definitions not rebuilt from the snapshot: partitions match by key.
        if partition is None:
            return up.partition_keys
        return (partition,) if partition in up.partition_keys else ()
    try:
        mapping = infer_partition_mapping(
            given,
            up.partitions_def,
            down.partitions_def,
            where=f"asset {downstream.to_user_string()!r} reading {upstream.to_user_string()!r}",
        )
        assert mapping is not None
        keys = mapping.upstream_partition_keys(
            None if partition is None else [partition], down.partitions_def, up.partitions_def
        )
    except DagloomError:  # DagsterUnknownPartitionError among them: reads none
        return ()
    return tuple(keys)


def partition_closure(
    nodes: Mapping[AssetKey, AssetVersionNode],
    wanted: Iterable[PartitionedKey],
    reads: dict[PartitionedKey, list[PartitionedKey]] | None = None,
) -> list[PartitionedKey]:
    """`wanted` and every partition upstream of them (through the partition mappings), each
    after the partitions it reads: the order `compute_partition_staleness` decides in, and
    the records it needs (with the reads of those outside `nodes`). `reads`, when given,
    receives each listed partition's `partition_reads`."""
    reads = {} if reads is None else reads

    def read(item: PartitionedKey) -> list[PartitionedKey]:
        found = reads.get(item)
        if found is None:
            found = reads[item] = list(partition_reads(nodes, item))
        return found

    order: list[PartitionedKey] = []
    state: dict[PartitionedKey, int] = {}  # 1: entered, 2: done
    for root in wanted:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, read(root), 0)]
        while stack:
            item, ups, at = stack[-1]
            if at < len(ups):
                stack[-1] = (item, ups, at + 1)
                up = ups[at]
                if up[0] in nodes and up not in state:
                    state[up] = 1
                    stack.append((up, read(up), 0))
                continue
            stack.pop()
            state[item] = 2
            order.append(item)
    return order


def partition_reads(
    nodes: Mapping[AssetKey, AssetVersionNode], item: PartitionedKey
) -> Iterable[PartitionedKey]:
    """The (asset, partition)s `item` reads: each dependency's partitions its mapping names
    (none for an external asset, which reads nothing here)."""
    key, partition = item
    node = nodes.get(key)
    if node is None or node.is_external:
        return ()
    return [
        (dep, up) for dep in node.deps for up in upstream_partitions(nodes, key, dep, partition)
    ]


def compute_partition_staleness(
    nodes: Mapping[AssetKey, AssetVersionNode],
    records: Mapping[PartitionedKey, AssetVersionRecord],
    wanted: Iterable[PartitionedKey],
) -> dict[PartitionedKey, Staleness]:
    """The staleness of each of `wanted` and of every partition upstream of them, given the
    event log's `records` of each (asset, partition) `partition_closure` lists (and of
    those it reads outside `nodes`, which count as external).

    The rule of `compute_staleness`, per partition: MISSING before the partition's first
    materialization; STALE when the asset's code version changed since, when an upstream
    partition it reads has another data version than the one that materialization read
    (compared when it reads one partition of that upstream, the one its
    `dagster/input_data_version/<key>` tag is of), when such an upstream partition without
    versions to compare was updated after it, or when one is itself stale."""
    out: dict[PartitionedKey, Staleness] = {}
    reads: dict[PartitionedKey, list[PartitionedKey]] = {}
    for item in partition_closure(nodes, wanted, reads):
        key, partition = item
        node = nodes[key]
        record = records.get(item, _EMPTY)
        if node.is_external:
            out[item] = _FRESH
            continue
        own_id = record.materialization_id
        if own_id is None:
            out[item] = _MISSING
            continue
        tags = record.materialization_tags
        causes: list[StaleCause] = []
        if node.code_version is not None and tags.get(CODE_VERSION_TAG) != node.code_version:
            causes.append(
                StaleCause(key, StaleCauseCategory.CODE, "has a new code version", None, partition)
            )
        read_of: dict[AssetKey, list[str | None]] = {}
        for dep_key, dep_partition in reads[item]:
            read_of.setdefault(dep_key, []).append(dep_partition)
        for dep in node.deps:
            ups = read_of.get(dep, ())
            recorded = None
            if tags and len(ups) == 1:
                recorded = tags.get(INPUT_DATA_VERSION_TAG_PREFIX + dep.to_user_string())
            for up in ups:
                dep_record = records.get((dep, up), _EMPTY)
                current = dep_record.current_data_version
                if recorded is not None and current is not None:
                    if recorded != current:
                        causes.append(
                            StaleCause(
                                key,
                                StaleCauseCategory.DATA,
                                "has a new data version",
                                dep,
                                partition,
                                up,
                            )
                        )
                elif _updated_id(dep_record) > own_id:
                    causes.append(
                        StaleCause(
                            key, StaleCauseCategory.DATA, "has been updated", dep, partition, up
                        )
                    )
                upstream_state = out.get((dep, up))
                if upstream_state is not None and upstream_state.status == StaleStatus.STALE:
                    causes.append(
                        StaleCause(
                            key,
                            StaleCauseCategory.DEPENDENCIES,
                            "is stale upstream",
                            dep,
                            partition,
                            up,
                        )
                    )
        out[item] = Staleness(StaleStatus.STALE, tuple(causes)) if causes else _FRESH
    return out


def version_nodes(graph: AssetGraph) -> dict[AssetKey, AssetVersionNode]:
    """The staleness view of an asset graph: every computed and external asset."""
    nodes: dict[AssetKey, AssetVersionNode] = {}
    for key, assets_def in graph.by_key.items():
        partitions_def = assets_def.partitions_def
        nodes[key] = AssetVersionNode(
            key,
            deps=tuple(sorted(graph.upstream.get(key, ()))),
            code_version=assets_def.spec_for(key).code_version,
            partitions_def=partitions_def,
            partition_keys=(None if partitions_def is None else _static_keys(partitions_def)),
            dep_mappings=dict(assets_def.partition_mappings),
        )
    for key, spec in graph.external_specs.items():
        if key not in nodes:
            nodes[key] = AssetVersionNode(key, deps=spec.dep_keys, is_external=True)
    return nodes


def _static_keys(partitions_def: Any) -> tuple[str, ...]:
    """The keys of a partitions definition as of now (none for one that needs an instance
    to list them, such as dynamic partitions)."""
    from dagloom.errors import DagloomError

    try:
        return tuple(partitions_def.get_partition_keys())
    except DagloomError:  # dynamic partitions: listed by the instance, not here
        return ()


def _upstream_first(deps: list[list[int]]) -> list[int]:
    """The indices of the assets whose upstream indices are `deps` (-1: outside the graph),
    each after its upstream ones (a cycle is broken where found)."""
    order: list[int] = []
    state = [0] * len(deps)  # 0: not seen, 1: entered, 2: done
    for root in range(len(deps)):
        if state[root]:
            continue
        stack = [(root, 0)]
        state[root] = 1
        while stack:
            i, at = stack[-1]
            ups = deps[i]
            if at < len(ups):
                stack[-1] = (i, at + 1)
                j = ups[at]
                if j >= 0 and not state[j]:
                    state[j] = 1
                    stack.append((j, 0))
                continue
            stack.pop()
            state[i] = 2
            order.append(i)
    return order


__all__ = [
    "AssetVersionNode",
    "AssetVersionRecord",
    "PartitionedKey",
    "StaleCause",
    "StaleCauseCategory",
    "StaleStatus",
    "Staleness",
    "compute_partition_staleness",
    "compute_staleness",
    "partition_closure",
    "partition_reads",
    "upstream_partitions",
    "version_nodes",
]
