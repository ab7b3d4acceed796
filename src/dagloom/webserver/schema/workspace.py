"""Code locations and what they define, as GraphQL types with Dagster's names:
`WorkspaceLocationEntry`, `RepositoryLocation`, `Repository`, `Job` (and `Pipeline`) and
`AssetNode` (schedules and sensors are in `instigators`).

Everything here comes from code-location snapshots and storage; nothing imports user code.
"""

from __future__ import annotations

import enum
from typing import Any, cast

import orjson
import strawberry
from strawberry.scalars import JSON

from dagloom.messages.rpc import (
    AssetSnapshot,
    JobSnapshot,
    LocationSnapshot,
)
from dagloom.webserver._context import LocationView
from dagloom.webserver.schema._unions import named_union
from dagloom.webserver.schema.asset_partitions import AssetNodePartitions
from dagloom.webserver.schema.automation import AssetNodeAutomation
from dagloom.webserver.schema.errors import PythonError
from dagloom.webserver.schema.external_assets import AssetNodeStaleness
from dagloom.webserver.schema.instigators import Schedule, Sensor
from dagloom.webserver.schema.runs import AssetKey, PipelineTag, event_object
from dagloom.webserver.schema.runs import MaterializationEvent as MaterializationEventType

REPOSITORY_NAME = "__repository__"
"""Dagster's name for the one repository a `Definitions` object makes; each code location
holds one."""


def is_repository_name(name: str | None, location: str) -> bool:
    """Whether a client's repository name means a location's repository (Dagster's
    `__repository__`, or the location's own name)."""
    return not name or name in (REPOSITORY_NAME, location)


# -- ops and jobs --------------------------------------------------------------------------


@strawberry.type
class SolidDefinition:
    name: str
    description: str | None
    configSchema: JSON | None = strawberry.field(
        description="The JSON Schema of the op's `config`; null when it takes none."
    )


@strawberry.type
class OutputDefinition:
    name: str


@strawberry.type
class InputDefinition:
    name: str


@strawberry.type
class SolidRef:
    name: str


@strawberry.type
class Output:
    solid: SolidRef
    definition: OutputDefinition


@strawberry.type
class Input:
    definition: InputDefinition
    dependsOn: list[Output]


@strawberry.type(description="A node of a job's op graph (Dagster's `Solid`).")
class Solid:
    name: str
    definition: SolidDefinition
    inputs: list[Input]
    outputs: list[OutputDefinition]
    isAsync: bool
    after: list[SolidRef] = strawberry.field(
        description="Nodes that must finish first, passing no data."
    )


def _solids(job: JobSnapshot) -> list[Solid]:
    return [
        Solid(
            name=node.name,
            definition=SolidDefinition(
                name=node.op_name,
                description=node.description or None,
                configSchema=_schema(node.config_schema_json),
            ),
            inputs=[
                Input(
                    definition=InputDefinition(name=inp.name),
                    dependsOn=[
                        Output(
                            solid=SolidRef(name=up),
                            definition=OutputDefinition(name=inp.upstream_output or "result"),
                        )
                        for up in inp.upstream_nodes
                    ],
                )
                for inp in node.inputs
            ],
            outputs=[OutputDefinition(name=o) for o in node.outputs],
            isAsync=node.is_async,
            after=[SolidRef(name=n) for n in node.after_nodes],
        )
        for node in job.nodes
    ]


def _schema(text: str) -> JSON | None:
    return cast(JSON, orjson.loads(text)) if text else None


def run_config_json_schema(job: JobSnapshot) -> dict[str, Any]:
    """The JSON Schema of a job's run config: `ops.<node>.config` for each node whose op
    takes config (required when its schema has required fields)."""
    ops: dict[str, Any] = {}
    required: list[str] = []
    for node in job.nodes:
        if not node.config_schema_json:
            continue
        config = orjson.loads(node.config_schema_json)
        entry: dict[str, Any] = {"type": "object", "properties": {"config": config}}
        if config.get("required"):
            entry["required"] = ["config"]
            required.append(node.name)
        ops[node.name] = entry
    ops_schema: dict[str, Any] = {"type": "object", "properties": ops}
    if required:
        ops_schema["required"] = required
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "ops": ops_schema,
            "resources": {"type": "object"},
            "execution": {"type": "object"},
        },
    }
    if required:
        schema["required"] = ["ops"]
    return schema


@strawberry.interface
class IPipelineSnapshot:
    snapshot: strawberry.Private[JobSnapshot]
    location_name: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(f"{self.location_name}:{self.snapshot.name}")

    @strawberry.field
    def name(self) -> str:
        return self.snapshot.name

    @strawberry.field
    def description(self) -> str | None:
        return self.snapshot.description or None

    @strawberry.field
    def tags(self) -> list[PipelineTag]:
        return [PipelineTag(key=k, value=v) for k, v in sorted(self.snapshot.tags.items())]

    @strawberry.field
    def pipelineSnapshotId(self) -> str:
        return self.snapshot.snapshot_id

    @strawberry.field
    def isJob(self) -> bool:
        return True

    @strawberry.field
    def isAssetJob(self) -> bool:
        return bool(self.snapshot.asset_keys)

    @strawberry.field
    def executor(self) -> str:
        return self.snapshot.executor

    @strawberry.field
    def solids(self) -> list[Solid]:
        return _solids(self.snapshot)

    @strawberry.field
    def assetKeys(self) -> list[AssetKey]:
        return [AssetKey(path=list(k.path)) for k in self.snapshot.asset_keys]

    @strawberry.field(description="The JSON Schema of the job's run config (`ops.*.config`).")
    def runConfigJsonSchema(self) -> JSON:
        return cast(JSON, run_config_json_schema(self.snapshot))


@strawberry.type
class Pipeline(IPipelineSnapshot):
    pass


@strawberry.type
class Job(IPipelineSnapshot):
    pass


# -- assets --------------------------------------------------------------------------------

MAX_MATERIALIZATIONS = 1000


@strawberry.type
class AssetNode(AssetNodePartitions, AssetNodeStaleness, AssetNodeAutomation):
    snapshot: strawberry.Private[AssetSnapshot]
    location_name: strawberry.Private[str]
    dependents: strawberry.Private[list[tuple[str, ...]]]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(f"{self.location_name}:{'/'.join(self._key())}")

    def _key(self) -> list[str]:
        return list(self.snapshot.key.path) if self.snapshot.key is not None else []

    @strawberry.field
    def assetKey(self) -> AssetKey:
        return AssetKey(path=self._key())

    @strawberry.field
    def groupName(self) -> str:
        return self.snapshot.group_name or "default"

    @strawberry.field
    def description(self) -> str | None:
        return self.snapshot.description or None

    @strawberry.field
    def kinds(self) -> list[str]:
        return list(self.snapshot.kinds)

    @strawberry.field
    def opName(self) -> str | None:
        return self.snapshot.op_name or None

    @strawberry.field
    def jobNames(self) -> list[str]:
        return list(self.snapshot.job_names)

    @strawberry.field
    def repositoryLocationName(self) -> str:
        return self.location_name

    @strawberry.field
    def dependencyKeys(self) -> list[AssetKey]:
        return [AssetKey(path=list(d.path)) for d in self.snapshot.deps]

    @strawberry.field
    def dependedByKeys(self) -> list[AssetKey]:
        return [AssetKey(path=list(k)) for k in self.dependents]

    @strawberry.field(description="The asset's materializations, newest first.")
    async def assetMaterializations(
        self, info: strawberry.Info, limit: int | None = 1
    ) -> list[MaterializationEventType]:
        size = min(max(limit or 1, 1), MAX_MATERIALIZATIONS)
        records = await info.context.instance.get_materializations(self._key(), limit=size)
        return [event_object(r) for r in records]

    @strawberry.field
    async def latestMaterialization(self, info: strawberry.Info) -> MaterializationEventType | None:
        record = await info.context.instance.get_latest_materialization(self._key())
        return event_object(record) if record is not None else None


def asset_nodes(location: str, snapshot: LocationSnapshot) -> list[AssetNode]:
    dependents: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for asset in snapshot.assets:
        key = tuple(asset.key.path) if asset.key is not None else ()
        for dep in asset.deps:
            dependents.setdefault(tuple(dep.path), []).append(key)
    return [
        AssetNode(
            snapshot=a,
            location_name=location,
            dependents=dependents.get(tuple(a.key.path) if a.key is not None else (), []),
        )
        for a in snapshot.assets
    ]


@strawberry.type
class AssetGroup:
    groupName: str
    assetKeys: list[AssetKey]


# -- repositories and locations ------------------------------------------------------------


@strawberry.type
class RepositoryLocationRef:
    name: str


@strawberry.type
class Repository:
    snapshot: strawberry.Private[LocationSnapshot]
    location_name: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(f"{REPOSITORY_NAME}@{self.location_name}")

    @strawberry.field
    def name(self) -> str:
        return REPOSITORY_NAME

    @strawberry.field
    def location(self) -> RepositoryLocationRef:
        return RepositoryLocationRef(name=self.location_name)

    @strawberry.field
    def pipelines(self) -> list[Pipeline]:
        return [Pipeline(snapshot=j, location_name=self.location_name) for j in self.snapshot.jobs]

    @strawberry.field
    def jobs(self) -> list[Job]:
        return [Job(snapshot=j, location_name=self.location_name) for j in self.snapshot.jobs]

    @strawberry.field
    def schedules(self) -> list[Schedule]:
        return [
            Schedule(snapshot=s, location_name=self.location_name) for s in self.snapshot.schedules
        ]

    @strawberry.field
    def sensors(self) -> list[Sensor]:
        return [Sensor(snapshot=s, location_name=self.location_name) for s in self.snapshot.sensors]

    @strawberry.field
    def assetNodes(self) -> list[AssetNode]:
        return asset_nodes(self.location_name, self.snapshot)

    @strawberry.field
    def assetGroups(self) -> list[AssetGroup]:
        groups: dict[str, list[AssetKey]] = {}
        for asset in self.snapshot.assets:
            key = AssetKey(path=list(asset.key.path) if asset.key is not None else [])
            groups.setdefault(asset.group_name or "default", []).append(key)
        return [AssetGroup(groupName=g, assetKeys=k) for g, k in sorted(groups.items())]

    @strawberry.field
    def resourceKeys(self) -> list[str]:
        return list(self.snapshot.resource_keys)


@strawberry.type
class RepositoryLocation:
    snapshot: strawberry.Private[LocationSnapshot]
    location_name: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.location_name)

    @strawberry.field
    def name(self) -> str:
        return self.location_name

    @strawberry.field
    def isReloadSupported(self) -> bool:
        return True

    @strawberry.field
    def repositories(self) -> list[Repository]:
        return [Repository(snapshot=self.snapshot, location_name=self.location_name)]


@strawberry.enum
class RepositoryLocationLoadStatus(enum.Enum):
    LOADING = "LOADING"
    LOADED = "LOADED"


RepositoryLocationOrLoadError = named_union(
    "RepositoryLocationOrLoadError", (RepositoryLocation, PythonError)
)


@strawberry.type
class WorkspaceLocationEntry:
    view: strawberry.Private[LocationView]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.view.name)

    @strawberry.field
    def name(self) -> str:
        return self.view.name

    @strawberry.field
    def loadStatus(self) -> RepositoryLocationLoadStatus:
        return RepositoryLocationLoadStatus.LOADED

    @strawberry.field
    def updatedTimestamp(self) -> float:
        return self.view.snapshot.loaded_at if self.view.snapshot is not None else 0.0

    @strawberry.field
    def locationOrLoadError(self) -> RepositoryLocationOrLoadError | None:  # type: ignore[valid-type]
        return location_or_error(self.view)


def location_or_error(view: LocationView) -> RepositoryLocation | PythonError:
    """The location, or why it cannot be served: its code did not import (the load error),
    or its actor does not answer."""
    if view.snapshot is None:
        return PythonError(message=view.unavailable, className="ActorUnavailableError")
    if view.snapshot.load_error is not None:
        return PythonError.from_info(view.snapshot.load_error)
    return RepositoryLocation(snapshot=view.snapshot, location_name=view.name)


@strawberry.type
class Workspace:
    locationEntries: list[WorkspaceLocationEntry]


@strawberry.type
class RepositoryConnection:
    nodes: list[Repository]
