"""`assetsLatestInfo`: each asset's latest materialization, the runs that target it and its
status mark on the asset graph, for thousands of assets in a few storage reads. The STALE
mark is `compute_staleness`'s, as the asset page's `staleStatus`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry

from dagloom.definitions.asset_key import AssetKey as DefinitionsAssetKey
from dagloom.definitions.staleness import AssetVersionNode, StaleStatus, compute_staleness
from dagloom.instance.asset_versions import VERSION_EVENT_TYPES, version_records
from dagloom.messages import EventType
from dagloom.messages import Run as RunMessage
from dagloom.messages import RunStatus as RunStatusMessage
from dagloom.storage.base import FINISHED_STATUSES, RunsFilter
from dagloom.webserver._asset_status import (
    AssetPath,
    AssetRuns,
    asset_status,
    runs_by_asset,
)
from dagloom.webserver._asset_status import AssetStatus as AssetStatusValue
from dagloom.webserver._context import GraphQLContext
from dagloom.webserver._operations import guarded
from dagloom.webserver.schema.external_assets import snapshot_partition_keys
from dagloom.webserver.schema.runs import AssetKey, AssetKeyInput, Run, event_object
from dagloom.webserver.schema.runs import MaterializationEvent as MaterializationEventType

RECENT_RUNS = 500
"""Finished runs read to find each asset's latest run: an asset last targeted by an older run
shows no latest run (so no failure mark), only its materialization."""

AssetStatus = strawberry.enum(
    AssetStatusValue,
    name="AssetStatus",
    description="An asset's mark on the asset graph (a dagloom field; Dagster's UI derives it).",
)


@strawberry.type(description="An asset's latest materialization and the runs that target it.")
class AssetLatestInfo:
    key: strawberry.Private[AssetPath]
    runs: strawberry.Private[AssetRuns]
    record: strawberry.Private[Any]
    state: strawberry.Private[AssetStatusValue]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID("/".join(self.key))

    @strawberry.field
    def assetKey(self) -> AssetKey:
        return AssetKey(path=list(self.key))

    @strawberry.field
    def latestMaterialization(self) -> MaterializationEventType | None:
        return event_object(self.record) if self.record is not None else None

    @strawberry.field(description="The newest run that targeted the asset, finished or not.")
    def latestRun(self) -> Run | None:
        return Run(run=self.runs.latest) if self.runs.latest is not None else None

    @strawberry.field
    def unstartedRunIds(self) -> list[str]:
        return list(self.runs.unstarted)

    @strawberry.field
    def inProgressRunIds(self) -> list[str]:
        return list(self.runs.in_progress)

    @strawberry.field
    def status(self) -> AssetStatus:  # type: ignore[valid-type]
        return self.state


async def assets_latest_info(
    context: GraphQLContext, asset_keys: list[AssetKeyInput]
) -> list[AssetLatestInfo]:
    """The latest info of each of `asset_keys` (every asset of the workspace when empty), in
    the workspace's order; one batched read of the latest materializations and observations
    (what staleness is decided from) and two run reads in all."""
    views = [v for v in await context.all_locations() if v.snapshot is not None]
    graph = _workspace_graph([(v.name, v.snapshot) for v in views])
    nodes, job_assets, keys = graph.nodes, graph.job_assets, graph.keys
    wanted = [tuple(k.path) for k in asset_keys] if asset_keys else list(nodes)
    wanted = list(dict.fromkeys(wanted))
    closure = _upstream_closure(nodes, wanted)
    read = set(closure) | {d.path for p in closure for d in nodes[p].deps}
    found = await context.instance.event_log_storage.get_latest_asset_events(
        list(read), VERSION_EVENT_TYPES
    )
    staleness = compute_staleness(
        {nodes[p].key: nodes[p] for p in closure},
        version_records(found, (keys[p] for p in read)),
    )
    unfinished = [s for s in RunStatusMessage if s not in FINISHED_STATUSES]
    runs: list[RunMessage] = await context.instance.get_runs_async(RunsFilter(statuses=unfinished))
    runs += await context.instance.get_runs_async(limit=RECENT_RUNS)
    targeted = runs_by_asset(runs, job_assets, wanted)
    out = []
    for path in wanted:
        record = found.get((path, EventType.ASSET_MATERIALIZATION))
        at = record.event.timestamp if record is not None and record.event else None
        decided = staleness.get(keys[path]) if path in nodes else None
        stale = decided is not None and decided.status == StaleStatus.STALE
        state = asset_status(at, stale, targeted[path])
        out.append(AssetLatestInfo(key=path, runs=targeted[path], record=record, state=state))
    return out


@dataclass(frozen=True, slots=True)
class _WorkspaceGraph:
    """The workspace's assets as the marks need them: each asset's staleness node (an asset
    in two locations: the first one's), each job's assets, and the keys by path."""

    snapshots: tuple[Any, ...]  # held, so the ids in the cache key stay theirs
    nodes: dict[AssetPath, AssetVersionNode]
    job_assets: dict[tuple[str, str], list[AssetPath]]
    keys: dict[AssetPath, DefinitionsAssetKey]


_GRAPHS: dict[tuple[tuple[str, int], ...], _WorkspaceGraph] = {}
_GRAPHS_KEPT = 4
"""Workspace graphs kept: a snapshot changes only on a reload, and building the graph of
5,000 assets (their keys checked) costs about as much as deciding their staleness."""


def _workspace_graph(locations: Sequence[tuple[str, Any]]) -> _WorkspaceGraph:
    """The `_WorkspaceGraph` of `locations` ((name, snapshot) pairs), built once per set of
    snapshots. Pure but for its cache; never blocks."""
    cache_key = tuple((name, id(snapshot)) for name, snapshot in locations)
    found = _GRAPHS.get(cache_key)
    if found is not None:
        return found
    nodes: dict[AssetPath, AssetVersionNode] = {}
    job_assets: dict[tuple[str, str], list[AssetPath]] = {}
    keys: dict[AssetPath, DefinitionsAssetKey] = {}

    def key_of(path: AssetPath) -> DefinitionsAssetKey:
        found = keys.get(path)
        if found is None:
            found = keys[path] = DefinitionsAssetKey(path)
        return found

    for name, snapshot in locations:
        for asset in snapshot.assets:
            if asset.key is None:
                continue
            path = tuple(asset.key.path)
            if path not in nodes:
                nodes[path] = AssetVersionNode(
                    key_of(path),
                    deps=tuple(key_of(tuple(d.path)) for d in asset.deps),
                    code_version=asset.code_version or None,
                    is_external=not asset.op_name,
                    partition_keys=snapshot_partition_keys(snapshot, asset),
                )
            for job in asset.job_names:
                job_assets.setdefault((name, job), []).append(path)
    graph = _WorkspaceGraph(tuple(s for _, s in locations), nodes, job_assets, keys)
    if len(_GRAPHS) >= _GRAPHS_KEPT:
        del _GRAPHS[next(iter(_GRAPHS))]
    _GRAPHS[cache_key] = graph
    return graph


def _upstream_closure(
    nodes: Mapping[AssetPath, AssetVersionNode], wanted: Iterable[AssetPath]
) -> list[AssetPath]:
    """The assets of `wanted` known to `nodes`, and every known asset upstream of them: what
    their staleness is decided over (an upstream asset's own staleness counts)."""
    seen: set[AssetPath] = set()
    frontier = [p for p in wanted if p in nodes]
    seen.update(frontier)
    while frontier:
        path = frontier.pop()
        for dep in nodes[path].deps:
            if dep.path in nodes and dep.path not in seen:
                seen.add(dep.path)
                frontier.append(dep.path)
    return [p for p in nodes if p in seen]


@strawberry.type
class AssetLatestQuery:
    @strawberry.field(extensions=guarded("view_assets"))
    async def assetsLatestInfo(
        self, info: strawberry.Info, assetKeys: list[AssetKeyInput]
    ) -> list[AssetLatestInfo]:
        """Each asset's latest materialization, the runs that target it and its status (every
        asset of the workspace when `assetKeys` is empty)."""
        return await assets_latest_info(info.context, assetKeys)


__all__ = ["AssetLatestInfo", "AssetLatestQuery", "assets_latest_info"]
