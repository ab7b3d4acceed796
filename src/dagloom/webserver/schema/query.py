"""The root `Query`: locations, repositories, jobs, assets, runs, events, schedules, sensors,
daemon health and instance info, with Dagster's field names."""

from __future__ import annotations

import time
from typing import Protocol

import strawberry

import dagloom
from dagloom.errors import ActorUnavailableError
from dagloom.messages import AssetKeyMessage
from dagloom.messages import RunStatus as RunStatusMessage
from dagloom.messages.rpc import LocationSnapshot, ValidateRunReply, ValidateRunRequest
from dagloom.storage.base import RunsFilter
from dagloom.webserver._context import GraphQLContext
from dagloom.webserver._operations import guarded
from dagloom.webserver.schema._unions import named_union
from dagloom.webserver.schema.errors import (
    InvalidSubsetError,
    PipelineConfigValidationValid,
    PipelineNotFoundError,
    PythonError,
    RepositoryNotFoundError,
    RunConfigValidationInvalid,
    RunNotFoundError,
    ScheduleNotFoundError,
    SensorNotFoundError,
    config_error,
)
from dagloom.webserver.schema.inputs import (
    AssetGroupSelector,
    PipelineSelector,
    RepositorySelector,
    RunConfigData,
    ScheduleSelector,
    SensorSelector,
    run_config_json,
)
from dagloom.webserver.schema.instigators import Schedule, Sensor
from dagloom.webserver.schema.runs import (
    AssetKeyInput,
    EventConnection,
    InvalidPipelineRunsFilterError,
    Run,
    Runs,
    RunsFilterInput,
    clamp_events_limit,
    event_connection,
    parse_event_cursor,
)
from dagloom.webserver.schema.workspace import (
    AssetNode,
    Pipeline,
    Repository,
    RepositoryConnection,
    Workspace,
    WorkspaceLocationEntry,
    asset_nodes,
    is_repository_name,
)

DEFAULT_RUNS_LIMIT = 50
MAX_RUNS_LIMIT = 1000


RunOrError = named_union("RunOrError", (Run, RunNotFoundError, PythonError))
RepositoriesOrError = named_union(
    "RepositoriesOrError", (RepositoryConnection, RepositoryNotFoundError, PythonError)
)
RepositoryOrError = named_union(
    "RepositoryOrError", (Repository, RepositoryNotFoundError, PythonError)
)
WorkspaceOrError = named_union("WorkspaceOrError", (Workspace, PythonError))
PipelineOrError = named_union(
    "PipelineOrError", (Pipeline, PipelineNotFoundError, InvalidSubsetError, PythonError)
)
RunsOrError = named_union("RunsOrError", (Runs, InvalidPipelineRunsFilterError, PythonError))
EventConnectionOrError = named_union(
    "EventConnectionOrError", (EventConnection, RunNotFoundError, PythonError)
)
PipelineConfigValidationResult = named_union(
    "PipelineConfigValidationResult",
    (
        PipelineConfigValidationValid,
        RunConfigValidationInvalid,
        PipelineNotFoundError,
        InvalidSubsetError,
        PythonError,
    ),
)


@strawberry.type
class Schedules:
    results: list[Schedule]


@strawberry.type
class Sensors:
    results: list[Sensor]


SchedulesOrError = named_union(
    "SchedulesOrError", (Schedules, RepositoryNotFoundError, PythonError)
)
SensorsOrError = named_union("SensorsOrError", (Sensors, RepositoryNotFoundError, PythonError))
ScheduleOrError = named_union("ScheduleOrError", (Schedule, ScheduleNotFoundError, PythonError))
SensorOrError = named_union("SensorOrError", (Sensor, SensorNotFoundError, PythonError))


# -- instance and daemon health ----------------------------------------------------------

HEARTBEAT_TOLERANCE = 3.0
"""A daemon loop is healthy while its last heartbeat is at most this many intervals old
(and never less than 60 s: a loop's round may outlast its interval)."""


@strawberry.type
class DaemonStatus:
    id: strawberry.ID
    daemonType: str
    required: bool
    healthy: bool | None
    lastHeartbeatTime: float | None
    lastHeartbeatErrors: list[PythonError]


@strawberry.type
class DaemonHealth:
    id: strawberry.ID
    allDaemonStatuses: list[DaemonStatus]


@strawberry.type
class Instance:
    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID("instance")

    @strawberry.field(description="The instance's storages and components, one per line.")
    def info(self, info: strawberry.Info) -> str:
        return "\n".join(f"{k}: {v}" for k, v in info.context.instance.describe())

    @strawberry.field
    def runQueuingSupported(self, info: strawberry.Info) -> bool:
        section = info.context.instance.config.run_coordinator
        return section is not None and "queued" in str(section).lower()

    @strawberry.field
    async def daemonHealth(self, info: strawberry.Info) -> DaemonHealth:
        beats = await info.context.instance.schedule_storage.get_daemon_heartbeats()
        now = time.time()
        statuses = []
        for kind, beat in sorted(beats.items()):
            window = max(HEARTBEAT_TOLERANCE * (beat.interval or 0.0), 60.0)
            errors = [PythonError.from_info(e) for e in beat.errors]
            if beat.last_error is not None and not errors:
                errors = [PythonError.from_info(beat.last_error)]
            statuses.append(
                DaemonStatus(
                    id=strawberry.ID(kind),
                    daemonType=kind,
                    required=True,
                    healthy=now - beat.timestamp <= window,
                    lastHeartbeatTime=beat.timestamp,
                    lastHeartbeatErrors=errors,
                )
            )
        return DaemonHealth(id=strawberry.ID("daemonHealth"), allDaemonStatuses=statuses)


# -- helpers ------------------------------------------------------------------------------


class _RepositorySelection(Protocol):
    """What every selector names of the repository it looks in."""

    repositoryLocationName: str
    repositoryName: str


async def _repository(
    context: GraphQLContext, selector: _RepositorySelection
) -> tuple[str, LocationSnapshot] | RepositoryNotFoundError | PythonError:
    location, repository = selector.repositoryLocationName, selector.repositoryName
    if location not in context.backend.locations or not is_repository_name(repository, location):
        return RepositoryNotFoundError(
            message=f"Could not find Repository {repository}@{location}.",
            repositoryName=repository,
            repositoryLocationName=location,
        )
    view = await context.location(location)
    if view.snapshot is None:
        return PythonError(message=view.unavailable, className="ActorUnavailableError")
    return location, view.snapshot


def _runs_filter(given: RunsFilterInput | None) -> RunsFilter:
    if given is None:
        return RunsFilter()
    return RunsFilter(
        run_ids=[r for r in given.runIds or [] if r],
        job_name=given.pipelineName or None,
        statuses=[RunStatusMessage[s.name] for s in given.statuses or []],
        tags={t.key: t.value for t in given.tags or []},
        created_after=given.createdAfter,
        created_before=given.createdBefore,
    )


@strawberry.type
class Query:
    @strawberry.field(extensions=guarded("view_version"))
    def version(self) -> str:
        return getattr(dagloom, "__version__", "") or "dagloom"

    @strawberry.field(extensions=guarded("view_instance"))
    def instance(self) -> Instance:
        return Instance()

    @strawberry.field(extensions=guarded("view_workspace"))
    async def workspaceOrError(self, info: strawberry.Info) -> WorkspaceOrError:  # type: ignore[valid-type]
        views = await info.context.all_locations()
        return Workspace(locationEntries=[WorkspaceLocationEntry(view=v) for v in views])

    @strawberry.field(extensions=guarded("view_workspace"))
    async def repositoriesOrError(
        self, info: strawberry.Info, repositorySelector: RepositorySelector | None = None
    ) -> RepositoriesOrError:  # type: ignore[valid-type]
        if repositorySelector is not None:
            found = await _repository(info.context, repositorySelector)
            if not isinstance(found, tuple):
                return found
            return RepositoryConnection(
                nodes=[Repository(snapshot=found[1], location_name=found[0])]
            )
        nodes = [
            Repository(snapshot=v.snapshot, location_name=v.name)
            for v in await info.context.all_locations()
            if v.snapshot is not None and v.snapshot.load_error is None
        ]
        return RepositoryConnection(nodes=nodes)

    @strawberry.field(extensions=guarded("view_workspace"))
    async def repositoryOrError(
        self, info: strawberry.Info, repositorySelector: RepositorySelector
    ) -> RepositoryOrError:  # type: ignore[valid-type]
        found = await _repository(info.context, repositorySelector)
        if not isinstance(found, tuple):
            return found
        return Repository(snapshot=found[1], location_name=found[0])

    @strawberry.field(extensions=guarded("view_workspace"))
    async def pipelineOrError(
        self, info: strawberry.Info, params: PipelineSelector
    ) -> PipelineOrError:  # type: ignore[valid-type]
        return await _pipeline(info.context, params)

    @strawberry.field(extensions=guarded("view_assets"))
    async def assetNodes(
        self,
        info: strawberry.Info,
        group: AssetGroupSelector | None = None,
        assetKeys: list[AssetKeyInput] | None = None,
    ) -> list[AssetNode]:
        wanted = {tuple(k.path) for k in assetKeys} if assetKeys is not None else None
        out: list[AssetNode] = []
        for view in await info.context.all_locations():
            if view.snapshot is None:
                continue
            if group is not None and group.repositoryLocationName not in (None, view.name):
                continue
            for node in asset_nodes(view.name, view.snapshot):
                key = tuple(node.snapshot.key.path) if node.snapshot.key is not None else ()
                if wanted is not None and key not in wanted:
                    continue
                if group is not None and (node.snapshot.group_name or "default") != group.groupName:
                    continue
                out.append(node)
        return out

    @strawberry.field(extensions=guarded("view_runs"))
    async def runsOrError(
        self,
        info: strawberry.Info,
        filter: RunsFilterInput | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> RunsOrError:  # type: ignore[valid-type]
        size = DEFAULT_RUNS_LIMIT if limit is None else limit
        if size < 1:
            return InvalidPipelineRunsFilterError(message=f"limit must be at least 1, got {size}")
        size = min(size, MAX_RUNS_LIMIT)
        filters = _runs_filter(filter)
        if cursor is not None and await info.context.instance.get_run(cursor) is None:
            return InvalidPipelineRunsFilterError(
                message=f"unknown cursor {cursor!r}: not a run id"
            )
        runs = await info.context.instance.get_runs_async(
            filters, limit=size, cursor=cursor or None
        )
        return Runs(results=[Run(run=r) for r in runs], count=len(runs))

    @strawberry.field(extensions=guarded("view_runs"))
    async def runsCount(self, info: strawberry.Info, filter: RunsFilterInput | None = None) -> int:
        count: int = await info.context.instance.get_runs_count_async(_runs_filter(filter))
        return count

    @strawberry.field(extensions=guarded("view_runs"))
    async def runOrError(self, info: strawberry.Info, runId: strawberry.ID) -> RunOrError:  # type: ignore[valid-type]
        return await _run_or_error(info.context, str(runId))

    @strawberry.field(extensions=guarded("view_runs"))
    async def pipelineRunOrError(self, info: strawberry.Info, runId: strawberry.ID) -> RunOrError:  # type: ignore[valid-type]
        return await _run_or_error(info.context, str(runId))

    @strawberry.field(extensions=guarded("view_runs"))
    async def logsForRun(
        self,
        info: strawberry.Info,
        runId: strawberry.ID,
        afterCursor: str | None = None,
        limit: int | None = None,
    ) -> EventConnectionOrError:  # type: ignore[valid-type]
        if await info.context.instance.get_run(str(runId)) is None:
            return RunNotFoundError.of(str(runId))
        try:
            after = parse_event_cursor(afterCursor)
            size = clamp_events_limit(limit)
        except ValueError as exc:
            return PythonError.from_exception(exc)
        records = await info.context.instance.get_events(
            str(runId), after=after or None, limit=size
        )
        return event_connection(records, after, size)

    @strawberry.field(extensions=guarded("view_schedules"))
    async def schedulesOrError(
        self, info: strawberry.Info, repositorySelector: RepositorySelector
    ) -> SchedulesOrError:  # type: ignore[valid-type]
        found = await _repository(info.context, repositorySelector)
        if not isinstance(found, tuple):
            return found
        name, snapshot = found
        return Schedules(
            results=[Schedule(snapshot=s, location_name=name) for s in snapshot.schedules]
        )

    @strawberry.field(extensions=guarded("view_schedules"))
    async def scheduleOrError(
        self, info: strawberry.Info, scheduleSelector: ScheduleSelector
    ) -> ScheduleOrError:  # type: ignore[valid-type]
        found = await find_schedule(info.context, scheduleSelector)
        return found

    @strawberry.field(extensions=guarded("view_sensors"))
    async def sensorsOrError(
        self, info: strawberry.Info, repositorySelector: RepositorySelector
    ) -> SensorsOrError:  # type: ignore[valid-type]
        found = await _repository(info.context, repositorySelector)
        if not isinstance(found, tuple):
            return found
        name, snapshot = found
        return Sensors(results=[Sensor(snapshot=s, location_name=name) for s in snapshot.sensors])

    @strawberry.field(extensions=guarded("view_sensors"))
    async def sensorOrError(
        self, info: strawberry.Info, sensorSelector: SensorSelector
    ) -> SensorOrError:  # type: ignore[valid-type]
        return await find_sensor(info.context, sensorSelector)

    @strawberry.field(
        extensions=guarded("validate_run_config"),
        description="Check run config against a job without launching anything.",
    )
    async def isPipelineConfigValid(
        self,
        info: strawberry.Info,
        pipeline: PipelineSelector,
        runConfigData: RunConfigData | None = None,
        mode: str | None = None,
    ) -> PipelineConfigValidationResult:  # type: ignore[valid-type]
        found = await _pipeline(info.context, pipeline)
        if not isinstance(found, Pipeline):
            return found
        name = found.snapshot.name
        request = ValidateRunRequest(
            job_name=name,
            run_config_json=run_config_json(runConfigData),
            asset_selection=asset_keys(pipeline.assetSelection),
        )
        try:
            reply = await info.context.backend.locations[found.location_name].ask(
                request, timeout=info.context.backend.timeout
            )
        except (ActorUnavailableError, TimeoutError) as exc:
            return PythonError.from_exception(exc)
        assert isinstance(reply, ValidateRunReply)
        if reply.valid:
            return PipelineConfigValidationValid(pipelineName=name)
        if reply.problems:
            return RunConfigValidationInvalid(
                pipelineName=name, errors=[config_error(p) for p in reply.problems]
            )
        return InvalidSubsetError(message=reply.error)


def asset_keys(given: list[AssetKeyInput] | None) -> list[AssetKeyMessage]:
    return [AssetKeyMessage(path=list(k.path)) for k in given or []]


async def _run_or_error(context: GraphQLContext, run_id: str) -> Run | RunNotFoundError:
    run = await context.instance.get_run(run_id)
    if run is None:
        return RunNotFoundError.of(run_id)
    return Run(run=run)


async def _pipeline(
    context: GraphQLContext, selector: PipelineSelector
) -> Pipeline | PipelineNotFoundError | InvalidSubsetError | PythonError:
    job_name = selector.jobName or selector.pipelineName or ""
    location = selector.repositoryLocationName
    not_found = PipelineNotFoundError(
        message=f"Could not find Pipeline {location}.{selector.repositoryName}.{job_name}",
        pipelineName=job_name,
        repositoryName=selector.repositoryName,
        repositoryLocationName=location,
    )
    found = await _repository(context, selector)
    if isinstance(found, PythonError):
        return found
    if not isinstance(found, tuple):
        return not_found
    for job in found[1].jobs:
        if job.name == job_name:
            if selector.solidSelection:
                return InvalidSubsetError(message="op selection is not supported; select assets")
            return Pipeline(snapshot=job, location_name=found[0])
    return not_found


async def find_schedule(
    context: GraphQLContext, selector: ScheduleSelector
) -> Schedule | ScheduleNotFoundError | PythonError:
    found = await _repository(context, selector)
    if isinstance(found, tuple):
        for schedule in found[1].schedules:
            if schedule.name == selector.scheduleName:
                return Schedule(snapshot=schedule, location_name=found[0])
    elif isinstance(found, PythonError):
        return found
    return ScheduleNotFoundError(
        message=f"Could not find schedule {selector.scheduleName} "
        f"in {selector.repositoryLocationName}.",
        scheduleName=selector.scheduleName,
    )


async def find_sensor(
    context: GraphQLContext, selector: SensorSelector
) -> Sensor | SensorNotFoundError | PythonError:
    found = await _repository(context, selector)
    if isinstance(found, tuple):
        for sensor in found[1].sensors:
            if sensor.name == selector.sensorName:
                return Sensor(snapshot=sensor, location_name=found[0])
    elif isinstance(found, PythonError):
        return found
    return SensorNotFoundError(
        message=f"Could not find sensor {selector.sensorName} "
        f"in {selector.repositoryLocationName}.",
        sensorName=selector.sensorName,
    )
