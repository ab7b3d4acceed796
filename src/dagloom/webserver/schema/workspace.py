"""Code locations and what they define, as GraphQL types with Dagster's names:
`WorkspaceLocationEntry`, `RepositoryLocation`, `Repository`, `Job` (and `Pipeline`),
`AssetNode`, `Schedule`, `Sensor`, `InstigationState`, `InstigationTick`.

Everything here comes from code-location snapshots and storage; nothing imports user code.
"""

from __future__ import annotations

import enum
import itertools
import time
from datetime import UTC, datetime
from typing import Any, cast

import orjson
import strawberry
from strawberry.scalars import JSON

from dagloom.daemon._instigators import is_running, origin_id, schedule_state, sensor_state
from dagloom.definitions._cron import iter_cron_ticks, load_timezone
from dagloom.messages import InstigatorState, InstigatorType, Tick
from dagloom.messages.rpc import (
    AssetSnapshot,
    JobSnapshot,
    LocationSnapshot,
    ScheduleSnapshot,
    SensorSnapshot,
)
from dagloom.webserver._context import LocationView
from dagloom.webserver.schema._unions import named_union
from dagloom.webserver.schema.errors import PythonError
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


# -- schedules and sensors -----------------------------------------------------------------


@strawberry.enum
class InstigationType(enum.Enum):
    SCHEDULE = "SCHEDULE"
    SENSOR = "SENSOR"


@strawberry.enum
class InstigationStatus(enum.Enum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    DECLARED_IN_CODE = "DECLARED_IN_CODE"


@strawberry.enum
class InstigationTickStatus(enum.Enum):
    STARTED = "STARTED"
    SKIPPED = "SKIPPED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


@strawberry.type
class InstigationTick:
    tick: strawberry.Private[Tick]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.tick.tick_id))

    @strawberry.field
    def tickId(self) -> str:
        return str(self.tick.tick_id)

    @strawberry.field
    def status(self) -> InstigationTickStatus | None:
        name = self.tick.status.name
        return InstigationTickStatus[name] if name in InstigationTickStatus.__members__ else None

    @strawberry.field
    def timestamp(self) -> float:
        return self.tick.timestamp

    @strawberry.field
    def endTimestamp(self) -> float | None:
        return self.tick.end_time or None

    @strawberry.field
    def runIds(self) -> list[str]:
        return list(self.tick.run_ids)

    @strawberry.field
    def runKeys(self) -> list[str]:
        return list(self.tick.run_keys)

    @strawberry.field
    def skipReason(self) -> str | None:
        return self.tick.skip_reason or None

    @strawberry.field
    def cursor(self) -> str | None:
        return self.tick.cursor or None

    @strawberry.field
    def error(self) -> PythonError | None:
        return PythonError.from_info(self.tick.error) if self.tick.error is not None else None


MAX_TICKS = 1000


@strawberry.type
class InstigationState:
    state: strawberry.Private[InstigatorState]

    @strawberry.field(description="The origin id it is stored under (used to stop it).")
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.state.origin_id)

    @strawberry.field
    def selectorId(self) -> str:
        return self.state.origin_id

    @strawberry.field
    def name(self) -> str:
        return self.state.name

    @strawberry.field
    def repositoryLocationName(self) -> str:
        return self.state.code_location

    @strawberry.field
    def instigationType(self) -> InstigationType:
        return InstigationType[self.state.instigator_type.name]

    @strawberry.field(description="RUNNING or STOPPED, the default applied when declared in code.")
    def status(self) -> InstigationStatus:
        return InstigationStatus.RUNNING if is_running(self.state) else InstigationStatus.STOPPED

    @strawberry.field
    def isDeclaredInCode(self) -> bool:
        return self.state.status.name in ("DECLARED_IN_CODE", "UNSPECIFIED")

    @strawberry.field
    def cursor(self) -> str | None:
        return self.state.cursor or None

    @strawberry.field
    async def ticks(self, info: strawberry.Info, limit: int | None = 20) -> list[InstigationTick]:
        size = min(max(limit or 20, 1), MAX_TICKS)
        ticks = await info.context.instance.schedule_storage.get_ticks(
            self.state.origin_id, limit=size
        )
        return [InstigationTick(tick=t) for t in ticks]


async def stored_state(info: strawberry.Info, fallback: InstigatorState) -> InstigatorState:
    """The stored state of a schedule or sensor, or `fallback` (its definition's default)
    when no daemon has recorded it yet."""
    state = await info.context.instance.schedule_storage.get_instigator_state(fallback.origin_id)
    return state if state is not None else fallback


@strawberry.type
class FutureInstigationTick:
    timestamp: float


@strawberry.type
class DryRunInstigationTicks:
    results: list[FutureInstigationTick]
    cursor: float


@strawberry.type
class Schedule:
    snapshot: strawberry.Private[ScheduleSnapshot]
    location_name: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(
            origin_id(InstigatorType.SCHEDULE, self.location_name, self.snapshot.name)
        )

    @strawberry.field
    def name(self) -> str:
        return self.snapshot.name

    @strawberry.field
    def cronSchedule(self) -> str:
        return " | ".join(self.snapshot.cron_schedules)

    @strawberry.field
    def cronSchedules(self) -> list[str]:
        return list(self.snapshot.cron_schedules)

    @strawberry.field
    def executionTimezone(self) -> str | None:
        return self.snapshot.execution_timezone or None

    @strawberry.field
    def pipelineName(self) -> str:
        return self.snapshot.job_name

    @strawberry.field
    def description(self) -> str | None:
        return self.snapshot.description or None

    @strawberry.field
    def defaultStatus(self) -> InstigationStatus:
        return (
            InstigationStatus.RUNNING
            if self.snapshot.default_running
            else InstigationStatus.STOPPED
        )

    @strawberry.field
    async def scheduleState(self, info: strawberry.Info) -> InstigationState:
        fallback = schedule_state(self.location_name, self.snapshot, now=time.time())
        return InstigationState(state=await stored_state(info, fallback))

    @strawberry.field(description="The next tick times after `cursor` (default: now).")
    def futureTicks(
        self, limit: int | None = 5, cursor: float | None = None
    ) -> DryRunInstigationTicks:
        size = min(max(limit or 5, 1), 100)
        tz = load_timezone(self.snapshot.execution_timezone or None)
        start = datetime.fromtimestamp(cursor if cursor is not None else time.time(), UTC)
        ticks = list(
            itertools.islice(iter_cron_ticks(list(self.snapshot.cron_schedules), tz, start), size)
        )
        stamps = [t.timestamp() for t in ticks]
        return DryRunInstigationTicks(
            results=[FutureInstigationTick(timestamp=s) for s in stamps],
            cursor=stamps[-1] if stamps else start.timestamp(),
        )


@strawberry.type
class Target:
    pipelineName: str


@strawberry.type
class Sensor:
    snapshot: strawberry.Private[SensorSnapshot]
    location_name: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(
            origin_id(InstigatorType.SENSOR, self.location_name, self.snapshot.name)
        )

    @strawberry.field
    def name(self) -> str:
        return self.snapshot.name

    @strawberry.field
    def description(self) -> str | None:
        return self.snapshot.description or None

    @strawberry.field
    def minIntervalSeconds(self) -> int:
        return self.snapshot.minimum_interval_seconds

    @strawberry.field
    def targets(self) -> list[Target]:
        return [Target(pipelineName=n) for n in self.snapshot.job_names]

    @strawberry.field
    def defaultStatus(self) -> InstigationStatus:
        return (
            InstigationStatus.RUNNING
            if self.snapshot.default_running
            else InstigationStatus.STOPPED
        )

    @strawberry.field
    async def sensorState(self, info: strawberry.Info) -> InstigationState:
        fallback = sensor_state(self.location_name, self.snapshot, now=time.time())
        return InstigationState(state=await stored_state(info, fallback))

    @strawberry.field(description="When the sensor is next due: its last tick plus its interval.")
    async def nextTick(self, info: strawberry.Info) -> FutureInstigationTick | None:
        fallback = sensor_state(self.location_name, self.snapshot, now=time.time())
        state = await stored_state(info, fallback)
        if not is_running(state):
            return None
        last = state.last_tick_time or time.time()
        return FutureInstigationTick(
            timestamp=last + max(self.snapshot.minimum_interval_seconds, 1)
        )


# -- assets --------------------------------------------------------------------------------

MAX_MATERIALIZATIONS = 1000


@strawberry.type
class AssetNode:
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
