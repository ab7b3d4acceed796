"""`assetsLatestInfo`: each asset's latest materialization, the runs that target it and its
status mark on the asset graph, for thousands of assets in a few storage reads."""

from __future__ import annotations

from typing import Any

import strawberry

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
    the workspace's order; one batched materialization read and two run reads in all."""
    parents: dict[AssetPath, list[AssetPath]] = {}
    job_assets: dict[tuple[str, str], list[AssetPath]] = {}
    for view in await context.all_locations():
        if view.snapshot is None:
            continue
        for asset in view.snapshot.assets:
            key = tuple(asset.key.path) if asset.key is not None else ()
            parents.setdefault(key, [tuple(d.path) for d in asset.deps])
            for job in asset.job_names:
                job_assets.setdefault((view.name, job), []).append(key)
    wanted = [tuple(k.path) for k in asset_keys] if asset_keys else list(parents)
    wanted = list(dict.fromkeys(wanted))
    read = set(wanted)
    for key in wanted:
        read.update(parents.get(key, ()))
    latest = await context.instance.get_latest_materializations(list(read))
    unfinished = [s for s in RunStatusMessage if s not in FINISHED_STATUSES]
    runs: list[RunMessage] = await context.instance.get_runs(RunsFilter(statuses=unfinished))
    runs += await context.instance.get_runs(limit=RECENT_RUNS)
    targeted = runs_by_asset(runs, job_assets, wanted)

    def at(key: AssetPath) -> float | None:
        record = latest.get(key)
        return record.event.timestamp if record is not None and record.event else None

    return [
        AssetLatestInfo(
            key=key,
            runs=targeted[key],
            record=latest.get(key),
            state=asset_status(at(key), [at(p) for p in parents.get(key, ())], targeted[key]),
        )
        for key in wanted
    ]


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
