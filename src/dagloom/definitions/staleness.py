"""Staleness: whether an asset's last materialization still matches its code and inputs.

An asset is STALE when its code version changed since it was last materialized, when an
upstream asset's data version differs from the one that materialization read (its
`dagster/input_data_version/<key>` tag), when an upstream asset without versions to compare
was updated after it, or when an upstream asset is itself stale. It is MISSING before its
first materialization and FRESH otherwise; an external asset (made elsewhere, only
reported or observed) is always FRESH. Pure: the event log's records are read elsewhere
(`dagloom.instance.asset_versions`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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

    def describe(self) -> str:
        """The cause as one line: `b: has a new data version (upstream a)`."""
        dep = f" ({self.dependency.to_user_string()})" if self.dependency is not None else ""
        return f"{self.key.to_user_string()}{dep}: {self.reason}"


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
            recorded = (
                tags.get(INPUT_DATA_VERSION_TAG_PREFIX + dep.to_user_string()) if tags else None
            )
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


def version_nodes(graph: AssetGraph) -> dict[AssetKey, AssetVersionNode]:
    """The staleness view of an asset graph: every computed and external asset."""
    nodes: dict[AssetKey, AssetVersionNode] = {}
    for key, assets_def in graph.by_key.items():
        nodes[key] = AssetVersionNode(
            key,
            deps=tuple(sorted(graph.upstream.get(key, ()))),
            code_version=assets_def.spec_for(key).code_version,
        )
    for key, spec in graph.external_specs.items():
        if key not in nodes:
            nodes[key] = AssetVersionNode(key, deps=spec.dep_keys, is_external=True)
    return nodes


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
    "StaleCause",
    "StaleCauseCategory",
    "StaleStatus",
    "Staleness",
    "compute_staleness",
    "version_nodes",
]
