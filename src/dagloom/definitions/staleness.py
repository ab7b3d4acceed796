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
from dagloom.definitions.data_version import input_data_versions
from dagloom.definitions.outputs import CODE_VERSION_TAG, DATA_VERSION_TAG


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


def _own_causes(
    node: AssetVersionNode,
    record: AssetVersionRecord,
    records: Mapping[AssetKey, AssetVersionRecord],
    stale_deps: set[AssetKey],
) -> list[StaleCause]:
    key = node.key
    tags = record.materialization_tags
    own_id = record.materialization_id or 0
    causes: list[StaleCause] = []
    if node.code_version is not None and tags.get(CODE_VERSION_TAG) != node.code_version:
        causes.append(StaleCause(key, StaleCauseCategory.CODE, "has a new code version"))
    read = input_data_versions(tags) if tags else {}
    for dep in node.deps:
        dep_record = records.get(dep, _EMPTY)
        recorded = read.get(dep.to_user_string())
        current = dep_record.current_data_version
        if recorded is not None and current is not None:
            if recorded != current:
                causes.append(
                    StaleCause(key, StaleCauseCategory.DATA, "has a new data version", dep)
                )
        elif (dep_record.last_updated_id or 0) > own_id:
            # No versions to compare: an update after this materialization is a change.
            causes.append(StaleCause(key, StaleCauseCategory.DATA, "has been updated", dep))
        if dep in stale_deps:
            causes.append(
                StaleCause(key, StaleCauseCategory.DEPENDENCIES, "is stale upstream", dep)
            )
    return causes


def compute_staleness(
    nodes: Mapping[AssetKey, AssetVersionNode],
    records: Mapping[AssetKey, AssetVersionRecord],
) -> dict[AssetKey, Staleness]:
    """The staleness of every asset of `nodes`, given the event log's `records` of them
    (and of upstream assets outside `nodes`, which count as external). Upstream assets are
    settled first, iteratively, so a chain of any length costs one pass."""
    out: dict[AssetKey, Staleness] = {}
    stale: set[AssetKey] = set()
    for key in _upstream_first(nodes):
        node = nodes[key]
        record = records.get(key, _EMPTY)
        if node.is_external:
            result = _FRESH
        elif record.materialization_id is None:
            result = _MISSING
        else:
            causes = _own_causes(node, record, records, stale)
            result = Staleness(StaleStatus.STALE, tuple(causes)) if causes else _FRESH
        if result.status == StaleStatus.STALE:
            stale.add(key)
        out[key] = result
    return out


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


def _upstream_first(nodes: Mapping[AssetKey, AssetVersionNode]) -> list[AssetKey]:
    """The keys of `nodes`, each after its upstream keys (a cycle is broken where found)."""
    order: list[AssetKey] = []
    done: set[AssetKey] = set()
    entered: set[AssetKey] = set()
    for root in nodes:
        if root in done:
            continue
        stack: list[tuple[AssetKey, int]] = [(root, 0)]
        entered.add(root)
        while stack:
            key, index = stack[-1]
            deps = nodes[key].deps
            if index < len(deps):
                stack[-1] = (key, index + 1)
                dep = deps[index]
                if dep in nodes and dep not in done and dep not in entered:
                    entered.add(dep)
                    stack.append((dep, 0))
                continue
            stack.pop()
            done.add(key)
            order.append(key)
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
