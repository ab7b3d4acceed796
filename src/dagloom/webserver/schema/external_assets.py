"""External assets in the GraphQL API: Dagster's `reportRunlessAssetEvents` mutation, and the
staleness and kind fields of `AssetNode` (`staleStatus`, `staleCauses`, `isObservable`, ...)."""

from __future__ import annotations

import enum
from dataclasses import replace
from typing import Any

import strawberry

from dagloom.definitions.asset_key import AssetKey as DefinitionsAssetKey
from dagloom.definitions.staleness import (
    AssetVersionNode,
    AssetVersionRecord,
    StaleCauseCategory,
    Staleness,
    StaleStatus,
    compute_staleness,
)
from dagloom.errors import DagloomError
from dagloom.execution.reporting import ReportKind, build_report
from dagloom.instance.asset_versions import (
    read_partition_staleness,
    read_partition_version_records,
    read_version_records,
)
from dagloom.messages.rpc import AssetSnapshot, LocationSnapshot
from dagloom.webserver._auth import audit
from dagloom.webserver._operations import guarded
from dagloom.webserver.schema._unions import named_union
from dagloom.webserver.schema.errors import PythonError, UnauthorizedError
from dagloom.webserver.schema.runs import AssetKey, AssetKeyInput

StaleStatusEnum = strawberry.enum(StaleStatus, name="StaleStatus")
StaleCauseCategoryEnum = strawberry.enum(StaleCauseCategory, name="StaleCauseCategory")


@strawberry.type
class StaleCause:
    key: AssetKey
    category: StaleCauseCategoryEnum  # type: ignore[valid-type]
    reason: str
    dependency: AssetKey | None = None
    partitionKey: str | None = None
    dependencyPartitionKey: str | None = None


def _version_nodes(
    snapshot: LocationSnapshot, *, partitions: bool = False
) -> dict[DefinitionsAssetKey, AssetVersionNode]:
    """The staleness view of a location's assets (an asset without an op is external), with
    their partitions when `partitions` (for per-partition staleness)."""
    from dagloom.daemon.automation_loop import snapshot_partitions

    nodes: dict[DefinitionsAssetKey, AssetVersionNode] = {}
    for asset in snapshot.assets:
        if asset.key is None:
            continue
        key = DefinitionsAssetKey(list(asset.key.path))
        node = AssetVersionNode(
            key,
            deps=tuple(DefinitionsAssetKey(list(d.path)) for d in asset.deps),
            code_version=asset.code_version or None,
            is_external=not asset.op_name,
            partition_keys=snapshot_partition_keys(snapshot, asset),
        )
        if partitions and asset.partitions_index:
            try:
                definition, _, mappings = snapshot_partitions(snapshot, asset)
            except (ValueError, TypeError, DagloomError):
                definition, mappings = None, {}  # partitions then match by key
            node = replace(node, partitions_def=definition, dep_mappings=mappings)
        nodes[key] = node
    return nodes


def snapshot_partition_keys(
    snapshot: LocationSnapshot, asset: AssetSnapshot
) -> tuple[str, ...] | None:
    """The partition keys a snapshot lists for an asset; None for an unpartitioned one."""
    if not asset.partitions_index:
        return None
    return tuple(snapshot.partitions_defs[asset.partitions_index - 1].keys)


def external_selection_refusal(snapshot: LocationSnapshot, selected: Any) -> str | None:
    """Why a run cannot be launched for the asset keys `selected` (AssetKeyInputs), when it
    names external assets (no run materializes them); None when it names none."""
    wanted = {tuple(k.path) for k in selected}
    external = sorted(
        "/".join(a.key.path)
        for a in snapshot.assets
        if a.key is not None and not a.op_name and tuple(a.key.path) in wanted
    )
    if not external:
        return None
    return (
        f"asset selection names external asset(s) {external}: they are made outside this code "
        "location and never materialized by a run; report their materializations instead "
        f"(POST /report_asset_materialization/{external[0]})"
    )


def _upstream_closure(
    nodes: dict[DefinitionsAssetKey, AssetVersionNode], key: DefinitionsAssetKey
) -> dict[DefinitionsAssetKey, AssetVersionNode]:
    """`key` and every asset upstream of it."""
    seen = {key}
    frontier = [key]
    while frontier:
        current = frontier.pop()
        node = nodes.get(current)
        for dep in node.deps if node is not None else ():
            if dep not in seen:
                seen.add(dep)
                frontier.append(dep)
    return {k: nodes[k] for k in seen if k in nodes}


async def staleness_of(
    context: Any, location_name: str, snapshot: AssetSnapshot
) -> Staleness | None:
    """The staleness of one asset of a location; its upstream assets' records are read once
    per operation (`context.version_records`), however many asset nodes ask."""
    view = await context.location(location_name)
    if view.snapshot is None or snapshot.key is None:
        return None
    key = DefinitionsAssetKey(list(snapshot.key.path))
    closure = _upstream_closure(_version_nodes(view.snapshot), key)
    records = context.version_records
    needed = {*closure, *(d for n in closure.values() for d in n.deps)} - set(records)
    if needed:
        records.update(await read_version_records(context.instance, needed))
    return compute_staleness(closure, records).get(key)


async def partition_staleness_of(
    context: Any, location_name: str, snapshot: AssetSnapshot, partitions: list[str] | None
) -> list[tuple[str, Staleness]] | None:
    """The staleness of each of `partitions` of one partitioned asset of a location (every
    partition the snapshot lists when None), in that order; None for an asset that is not
    partitioned (or a location not loaded)."""
    view = await context.location(location_name)
    if view.snapshot is None or snapshot.key is None:
        return None
    key = DefinitionsAssetKey(list(snapshot.key.path))
    nodes = _version_nodes(view.snapshot, partitions=True)
    node = nodes.get(key)
    if node is None or node.partition_keys is None:
        return None
    wanted = list(node.partition_keys) if partitions is None else list(partitions)
    found = await read_partition_staleness(context.instance, nodes, [(key, p) for p in wanted])
    return [(p, found[(key, p)]) for p in wanted]


def _cause(c: Any) -> StaleCause:
    return StaleCause(
        key=AssetKey(path=list(c.key.path)),
        category=c.category,
        reason=c.reason,
        dependency=AssetKey(path=list(c.dependency.path)) if c.dependency else None,
        partitionKey=c.partition,
        dependencyPartitionKey=c.dependency_partition,
    )


@strawberry.type
class AssetNodeStaleness:
    """The staleness and kind fields of `AssetNode` (which inherits them)."""

    snapshot: strawberry.Private[AssetSnapshot]
    location_name: strawberry.Private[str]

    async def _staleness(self, info: strawberry.Info, partition: str | None) -> Staleness | None:
        """The asset's staleness, or its `partition`'s when it is partitioned."""
        if partition is not None and self.snapshot.partitions_index:
            found = await partition_staleness_of(
                info.context, self.location_name, self.snapshot, [partition]
            )
            if found is not None:
                return found[0][1]
        return await staleness_of(info.context, self.location_name, self.snapshot)

    @strawberry.field(
        description="FRESH, STALE (its code version or an upstream data version changed "
        "since it was last materialized) or MISSING (never materialized). With `partition`, "
        "that partition's, against the upstream partitions its partition mappings read; "
        "without, the asset's as a whole (its latest materialization of any partition)."
    )
    async def staleStatus(
        self, info: strawberry.Info, partition: str | None = None
    ) -> StaleStatusEnum | None:  # type: ignore[valid-type]
        found = await self._staleness(info, partition)
        return found.status if found is not None else None

    @strawberry.field(
        description="Why the asset (or its `partition`) is stale; empty unless it is."
    )
    async def staleCauses(
        self, info: strawberry.Info, partition: str | None = None
    ) -> list[StaleCause]:
        found = await self._staleness(info, partition)
        return [] if found is None else [_cause(c) for c in found.causes]

    @strawberry.field(
        description="The stale status of each of `partitions` (every partition when "
        "omitted), in that order; empty for an asset that is not partitioned."
    )
    async def staleStatusByPartition(
        self, info: strawberry.Info, partitions: list[str] | None = None
    ) -> list[StaleStatusEnum]:  # type: ignore[valid-type]
        found = await partition_staleness_of(
            info.context, self.location_name, self.snapshot, partitions
        )
        return [] if found is None else [s.status for _, s in found]

    @strawberry.field(
        description="Why each of `partitions` (every partition when omitted) is stale, in "
        "that order; null for an asset that is not partitioned."
    )
    async def staleCausesByPartition(
        self, info: strawberry.Info, partitions: list[str] | None = None
    ) -> list[list[StaleCause]] | None:
        found = await partition_staleness_of(
            info.context, self.location_name, self.snapshot, partitions
        )
        if found is None:
            return None
        return [[_cause(c) for c in s.causes] for _, s in found]

    @strawberry.field(
        description="Its current data version: that of its newest materialization or "
        "observation (None when that event carries none); of `partition`, when given."
    )
    async def dataVersion(self, info: strawberry.Info, partition: str | None = None) -> str | None:
        if self.snapshot.key is None:
            return None
        key = DefinitionsAssetKey(list(self.snapshot.key.path))
        if partition is not None and self.snapshot.partitions_index:
            return (await self._partition_versions(info, [partition]))[0]
        records = info.context.version_records
        if key not in records:
            records.update(await read_version_records(info.context.instance, [key]))
        record: AssetVersionRecord = records[key]
        return record.current_data_version

    @strawberry.field(
        description="The current data version of each of `partitions` (every partition "
        "when omitted), in that order; empty for an asset that is not partitioned."
    )
    async def dataVersionByPartition(
        self, info: strawberry.Info, partitions: list[str] | None = None
    ) -> list[str | None]:
        if not self.snapshot.partitions_index:
            return []
        return await self._partition_versions(info, partitions)

    async def _partition_versions(
        self, info: strawberry.Info, partitions: list[str] | None
    ) -> list[str | None]:
        if self.snapshot.key is None:
            return []
        key = DefinitionsAssetKey(list(self.snapshot.key.path))
        if partitions is None:
            view = await info.context.location(self.location_name)
            if view.snapshot is None:
                return []
            node = _version_nodes(view.snapshot, partitions=True).get(key)
            partitions = list(node.partition_keys or ()) if node is not None else []
        records = await read_partition_version_records(
            info.context.instance, [(key, p) for p in partitions]
        )
        return [records[(key, p)].current_data_version for p in partitions]

    @strawberry.field(description="Whether a run materializes it (false: an external asset).")
    def isMaterializable(self) -> bool:
        return bool(self.snapshot.op_name)

    @strawberry.field(description="Whether it is an external asset with an observation function.")
    def isObservable(self) -> bool:
        return self.snapshot.observable

    @strawberry.field
    def isExecutable(self) -> bool:
        return bool(self.snapshot.op_name) or self.snapshot.observable

    @strawberry.field(description="The code version the definitions declare for it.")
    def opVersion(self) -> str | None:
        return self.snapshot.code_version or None


# -- reporting ------------------------------------------------------------------------------


@strawberry.enum
class AssetEventType(enum.Enum):
    ASSET_MATERIALIZATION = "ASSET_MATERIALIZATION"
    ASSET_OBSERVATION = "ASSET_OBSERVATION"


@strawberry.input
class ReportRunlessAssetEventsParams:
    eventType: AssetEventType
    assetKey: AssetKeyInput
    partitionKeys: list[str | None] | None = None
    description: str | None = None


@strawberry.type
class ReportRunlessAssetEventsSuccess:
    assetKey: AssetKey


ReportRunlessAssetEventsResult = named_union(
    "ReportRunlessAssetEventsResult",
    (ReportRunlessAssetEventsSuccess, UnauthorizedError, PythonError),
)

_KINDS = {
    AssetEventType.ASSET_MATERIALIZATION: ReportKind.MATERIALIZATION,
    AssetEventType.ASSET_OBSERVATION: ReportKind.OBSERVATION,
}


@strawberry.type
class ExternalAssetsMutation:
    @strawberry.mutation(
        extensions=guarded("report_runless_asset_events"),
        description="Record materializations or observations of an asset made outside "
        "dagloom, one per partition key given (one for the whole asset otherwise).",
    )
    async def reportRunlessAssetEvents(
        self, info: strawberry.Info, eventParams: ReportRunlessAssetEventsParams
    ) -> ReportRunlessAssetEventsResult:  # type: ignore[valid-type]
        params = eventParams
        try:
            key = DefinitionsAssetKey(list(params.assetKey.path))
            kind = _KINDS[params.eventType]
            partitions = params.partitionKeys or [None]
            events = [
                build_report(kind, key, {"description": params.description, "partition": p})
                for p in partitions
            ]
        except DagloomError as exc:
            return PythonError(message=str(exc), className=type(exc).__name__)
        for event in events:
            await info.context.instance.report_runless_asset_event(event)
        await audit(info.context, f"report_asset_{kind.value}", f"asset:{key.to_user_string()}")
        return ReportRunlessAssetEventsSuccess(assetKey=AssetKey(path=list(key.path)))


__all__ = [
    "AssetNodeStaleness",
    "ExternalAssetsMutation",
    "external_selection_refusal",
    "staleness_of",
]
