"""The root `Mutation`: launch and re-execute runs (a job, or an asset selection through
`__ASSET_JOB`), terminate and delete runs, reload code locations, start and stop schedules
and sensors, with Dagster's names and result unions.

Runs go to the coordinator (which validates them with the code location first); schedules
and sensors are started and stopped in storage, as `dagloom schedule start|stop` does, and a
running daemon picks the change up on its next round.
"""

from __future__ import annotations

import time
import uuid

import strawberry
import structlog

from dagloom.daemon._instigators import toggled
from dagloom.daemon.retry_loop import reexecution_request, reexecution_steps
from dagloom.definitions.asset_job import IMPLICIT_ASSET_JOB_NAME
from dagloom.errors import ActorUnavailableError, DagloomError
from dagloom.errors import RunNotFoundError as NoRun
from dagloom.messages import (
    AssetCheckKeyMessage,
    AssetKeyMessage,
    Event,
    EventType,
    InstigatorState,
)
from dagloom.messages.rpc import (
    CancelRunReply,
    CancelRunRequest,
    LocationSnapshot,
    ReloadRequest,
    SubmitRunReply,
    SubmitRunRequest,
)
from dagloom.webserver._auth import audit, reserved_tag_refusal, with_user
from dagloom.webserver._context import GraphQLContext
from dagloom.webserver._operations import guarded
from dagloom.webserver.schema._unions import named_union
from dagloom.webserver.schema.errors import (
    ConflictingExecutionParamsError,
    InvalidOutputError,
    InvalidStepError,
    InvalidSubsetError,
    NoModeProvidedError,
    PipelineNotFoundError,
    PresetNotFoundError,
    PythonError,
    ReexecutionNotPossibleError,
    ReloadNotSupported,
    RepositoryLocationNotFound,
    RunConfigValidationInvalid,
    RunConflict,
    RunNotFoundError,
    ScheduleNotFoundError,
    SensorNotFoundError,
    UnauthorizedError,
    config_error,
)
from dagloom.webserver.schema.external_assets import external_selection_refusal
from dagloom.webserver.schema.inputs import (
    ExecutionParams,
    ReexecutionParams,
    ReexecutionStrategy,
    ScheduleSelector,
    SensorSelector,
    TerminateRunPolicy,
    run_config_json,
)
from dagloom.webserver.schema.instigators import InstigationState, Schedule, Sensor
from dagloom.webserver.schema.query import find_schedule, find_sensor
from dagloom.webserver.schema.runs import Run
from dagloom.webserver.schema.workspace import (
    Workspace,
    WorkspaceLocationEntry,
    is_repository_name,
)

_log = structlog.get_logger("dagloom.webserver")


@strawberry.interface
class LaunchPipelineRunSuccess:
    run: Run


@strawberry.type
class LaunchRunSuccess(LaunchPipelineRunSuccess):
    pass


LaunchRunResult = named_union(
    "LaunchRunResult",
    (
        LaunchRunSuccess,
        InvalidStepError,
        InvalidOutputError,
        RunConfigValidationInvalid,
        PipelineNotFoundError,
        RunConflict,
        UnauthorizedError,
        PythonError,
        InvalidSubsetError,
        PresetNotFoundError,
        ConflictingExecutionParamsError,
        NoModeProvidedError,
    ),
)

LaunchRunReexecutionResult = named_union(
    "LaunchRunReexecutionResult",
    (
        LaunchRunSuccess,
        InvalidStepError,
        InvalidOutputError,
        RunConfigValidationInvalid,
        PipelineNotFoundError,
        RunConflict,
        UnauthorizedError,
        PythonError,
        InvalidSubsetError,
        PresetNotFoundError,
        ConflictingExecutionParamsError,
        NoModeProvidedError,
        RunNotFoundError,
        ReexecutionNotPossibleError,
    ),
)


@strawberry.type
class TerminateRunSuccess:
    run: Run


@strawberry.type
class TerminateRunFailure:
    run: Run
    message: str


TerminateRunResult = named_union(
    "TerminateRunResult",
    (TerminateRunSuccess, TerminateRunFailure, RunNotFoundError, UnauthorizedError, PythonError),
)


@strawberry.type
class TerminateRunsResult:
    terminateRunResults: list[TerminateRunResult]  # type: ignore[valid-type]


TerminateRunsResultOrError = named_union(
    "TerminateRunsResultOrError", (TerminateRunsResult, PythonError)
)


@strawberry.type
class DeletePipelineRunSuccess:
    runId: str


DeletePipelineRunResult = named_union(
    "DeletePipelineRunResult",
    (DeletePipelineRunSuccess, UnauthorizedError, PythonError, RunNotFoundError),
)

ReloadRepositoryLocationMutationResult = named_union(
    "ReloadRepositoryLocationMutationResult",
    (
        WorkspaceLocationEntry,
        ReloadNotSupported,
        RepositoryLocationNotFound,
        UnauthorizedError,
        PythonError,
    ),
)


@strawberry.type
class ShutdownRepositoryLocationSuccess:
    repositoryLocationName: str


ShutdownRepositoryLocationMutationResult = named_union(
    "ShutdownRepositoryLocationMutationResult",
    (ShutdownRepositoryLocationSuccess, RepositoryLocationNotFound, UnauthorizedError, PythonError),
)

ReloadWorkspaceMutationResult = named_union(
    "ReloadWorkspaceMutationResult", (Workspace, UnauthorizedError, PythonError)
)


@strawberry.type
class ScheduleStateResult:
    scheduleState: InstigationState


ScheduleMutationResult = named_union(
    "ScheduleMutationResult",
    (ScheduleStateResult, ScheduleNotFoundError, UnauthorizedError, PythonError),
)


@strawberry.type
class StopSensorMutationResult:
    instigationState: InstigationState | None


SensorOrErrorResult = named_union(
    "SensorOrErrorResult", (Sensor, SensorNotFoundError, UnauthorizedError, PythonError)
)
StopSensorMutationResultOrError = named_union(
    "StopSensorMutationResultOrError",
    (StopSensorMutationResult, SensorNotFoundError, UnauthorizedError, PythonError),
)


# -- launching ---------------------------------------------------------------------------


async def _submit(context: GraphQLContext, request: SubmitRunRequest) -> object:
    """Submit to the coordinator; the stored run, or the typed refusal."""
    try:
        reply = await context.backend.coordinator.ask(request, timeout=context.backend.timeout)
    except (ActorUnavailableError, TimeoutError) as exc:
        return PythonError.from_exception(exc)
    assert isinstance(reply, SubmitRunReply)
    if reply.error:
        if reply.problems:
            return RunConfigValidationInvalid(
                pipelineName=request.job_name, errors=[config_error(p) for p in reply.problems]
            )
        return InvalidSubsetError(message=reply.error)
    assert reply.run is not None
    _log.info("graphql_run_launched", run_id=reply.run.run_id, job=request.job_name)
    return LaunchRunSuccess(run=Run(run=reply.run))


def _job_known(snapshot: LocationSnapshot, job_name: str, asset_selection: bool) -> bool:
    if job_name == IMPLICIT_ASSET_JOB_NAME and asset_selection:
        return bool(snapshot.assets)
    return any(job.name == job_name for job in snapshot.jobs)


async def _launch_request(
    context: GraphQLContext, params: ExecutionParams
) -> SubmitRunRequest | object:
    """The submission `params` ask for, or the typed error that refuses it before any
    actor is asked."""
    selector = params.selector
    job_name = selector.jobName or selector.pipelineName or ""
    location = selector.repositoryLocationName
    if selector.jobName and selector.pipelineName and selector.jobName != selector.pipelineName:
        return ConflictingExecutionParamsError(
            message=f"jobName {selector.jobName!r} and pipelineName "
            f"{selector.pipelineName!r} differ"
        )
    not_found = PipelineNotFoundError(
        message=f"Could not find Pipeline {location}.{selector.repositoryName}.{job_name}",
        pipelineName=job_name,
        repositoryName=selector.repositoryName,
        repositoryLocationName=location,
    )
    if location not in context.backend.locations or not is_repository_name(
        selector.repositoryName, location
    ):
        return not_found
    if params.preset:
        return PresetNotFoundError(
            message=f"Preset {params.preset} not found in pipeline {job_name}.",
            preset=params.preset,
        )
    if selector.solidSelection:
        return InvalidSubsetError(message="op selection is not supported; select assets instead")
    view = await context.location(location)
    if view.snapshot is None:
        return PythonError(message=view.unavailable, className="ActorUnavailableError")
    checks = [
        AssetCheckKeyMessage(asset_key=AssetKeyMessage(path=list(c.assetKey.path)), name=c.name)
        for c in selector.assetCheckSelection or []
    ]
    if not _job_known(view.snapshot, job_name, bool(selector.assetSelection or checks)):
        return not_found
    external = external_selection_refusal(view.snapshot, selector.assetSelection or [])
    if external is not None:
        return InvalidSubsetError(message=external)
    try:
        config_json = run_config_json(params.runConfigData)
    except ValueError as exc:
        return PythonError.from_exception(exc)
    metadata = params.executionMetadata
    tags = {t.key: t.value for t in (metadata.tags if metadata else None) or []}
    refusal = reserved_tag_refusal(tags)
    if refusal is not None:
        return PythonError(message=refusal, className="ReservedTagError")
    return SubmitRunRequest(
        location_name=location,
        job_name=job_name,
        run_config_json=config_json,
        tags=with_user(tags, context),
        asset_selection=[AssetKeyMessage(path=list(k.path)) for k in selector.assetSelection or []],
        asset_check_selection=checks,
        parent_run_id=(metadata.parentRunId or "") if metadata else "",
        root_run_id=(metadata.rootRunId or "") if metadata else "",
        step_keys_to_execute=list(params.stepKeys or []),
        request_id=str(uuid.uuid4()),
    )


async def _launch(context: GraphQLContext, params: ExecutionParams) -> object:
    request = await _launch_request(context, params)
    if not isinstance(request, SubmitRunRequest):
        return request
    return await _submit(context, request)


async def _reexecute(
    context: GraphQLContext, params: ExecutionParams | None, reexecution: ReexecutionParams | None
) -> object:
    if reexecution is None:
        if params is None:
            return PythonError(message="give reexecutionParams (or executionParams)")
        request = await _launch_request(context, params)
        if not isinstance(request, SubmitRunRequest):
            return request
        return await _submit(context, request)
    parent = await context.instance.get_run(reexecution.parentRunId)
    if parent is None:
        return RunNotFoundError.of(reexecution.parentRunId)
    try:
        steps = await reexecution_steps(
            context.instance,
            parent,
            from_failure=reexecution.strategy == ReexecutionStrategy.FROM_FAILURE,
        )
    except DagloomError as exc:
        return ReexecutionNotPossibleError(message=str(exc))
    tags = {t.key: t.value for t in reexecution.extraTags or []}
    refusal = reserved_tag_refusal(tags)
    if refusal is not None:
        return PythonError(message=refusal, className="ReservedTagError")
    request = reexecution_request(
        parent, tags=tags, step_keys_to_execute=steps, request_id=str(uuid.uuid4())
    )
    request.tags = with_user(request.tags, context)
    return await _submit(context, request)


# -- terminating -------------------------------------------------------------------------


async def _terminate(context: GraphQLContext, run_id: str, policy: TerminateRunPolicy) -> object:
    run = await context.instance.get_run(run_id)
    if run is None:
        return RunNotFoundError.of(run_id)
    if policy == TerminateRunPolicy.MARK_AS_CANCELED_IMMEDIATELY:
        event = Event(
            run_id=run_id,
            event_type=EventType.RUN_CANCELED,
            timestamp=time.time(),
            job_name=run.job_name,
            message="Marked as canceled through the GraphQL API.",
        )
        try:
            moved = await context.instance.transition_run(run_id, event)
        except NoRun:
            return RunNotFoundError.of(run_id)
        run = await context.instance.get_run(run_id) or run
        if not moved.applied:
            return TerminateRunFailure(
                run=Run(run=run),
                message=f"Run {run_id} is {moved.status.name}: it cannot be canceled.",
            )
        await audit(context, "cancel_run", f"run:{run_id}", run=run)
        return TerminateRunSuccess(run=Run(run=run))
    try:
        reply = await context.backend.coordinator.ask(
            CancelRunRequest(run_id=run_id), timeout=context.backend.timeout
        )
    except (ActorUnavailableError, TimeoutError) as exc:
        return PythonError.from_exception(exc)
    assert isinstance(reply, CancelRunReply)
    run = await context.instance.get_run(run_id) or run
    if not reply.accepted:
        return TerminateRunFailure(
            run=Run(run=run), message=reply.message or f"Run {run_id} could not be terminated."
        )
    await audit(context, "cancel_run", f"run:{run_id}", run=run)
    return TerminateRunSuccess(run=Run(run=run))


# -- instigators -------------------------------------------------------------------------


async def _toggle(
    context: GraphQLContext, fallback: InstigatorState, running: bool
) -> InstigationState:
    storage = context.instance.schedule_storage
    state = await storage.get_instigator_state(fallback.origin_id) or fallback
    updated = toggled(state, running=running, now=time.time())
    await storage.set_instigator_state(updated)
    _log.info(
        "instigator_toggled", name=updated.name, location=updated.code_location, running=running
    )
    action = "start_instigator" if running else "stop_instigator"
    await audit(context, action, f"instigator:{updated.code_location}/{updated.name}")
    return InstigationState(state=updated)


async def _stored_by_id(context: GraphQLContext, origin_id: str) -> InstigatorState | None:
    return await context.instance.schedule_storage.get_instigator_state(origin_id)


@strawberry.type
class Mutation:
    @strawberry.mutation(extensions=guarded("launch_pipeline_execution"))
    async def launchPipelineExecution(
        self, info: strawberry.Info, executionParams: ExecutionParams
    ) -> LaunchRunResult:  # type: ignore[valid-type]
        return await _launch(info.context, executionParams)

    @strawberry.mutation(extensions=guarded("launch_pipeline_execution"))
    async def launchRun(
        self, info: strawberry.Info, executionParams: ExecutionParams
    ) -> LaunchRunResult:  # type: ignore[valid-type]
        return await _launch(info.context, executionParams)

    @strawberry.mutation(extensions=guarded("launch_pipeline_reexecution"))
    async def launchPipelineReexecution(
        self,
        info: strawberry.Info,
        executionParams: ExecutionParams | None = None,
        reexecutionParams: ReexecutionParams | None = None,
    ) -> LaunchRunReexecutionResult:  # type: ignore[valid-type]
        return await _reexecute(info.context, executionParams, reexecutionParams)

    @strawberry.mutation(extensions=guarded("launch_pipeline_reexecution"))
    async def launchRunReexecution(
        self,
        info: strawberry.Info,
        executionParams: ExecutionParams | None = None,
        reexecutionParams: ReexecutionParams | None = None,
    ) -> LaunchRunReexecutionResult:  # type: ignore[valid-type]
        return await _reexecute(info.context, executionParams, reexecutionParams)

    @strawberry.mutation(extensions=guarded("terminate_pipeline_execution"))
    async def terminateRun(
        self,
        info: strawberry.Info,
        runId: str,
        terminatePolicy: TerminateRunPolicy | None = TerminateRunPolicy.SAFE_TERMINATE,
    ) -> TerminateRunResult:  # type: ignore[valid-type]
        return await _terminate(
            info.context, runId, terminatePolicy or TerminateRunPolicy.SAFE_TERMINATE
        )

    @strawberry.mutation(extensions=guarded("terminate_pipeline_execution"))
    async def terminatePipelineExecution(
        self,
        info: strawberry.Info,
        runId: str,
        terminatePolicy: TerminateRunPolicy | None = TerminateRunPolicy.SAFE_TERMINATE,
    ) -> TerminateRunResult:  # type: ignore[valid-type]
        return await _terminate(
            info.context, runId, terminatePolicy or TerminateRunPolicy.SAFE_TERMINATE
        )

    @strawberry.mutation(extensions=guarded("terminate_pipeline_execution"))
    async def terminateRuns(
        self,
        info: strawberry.Info,
        runIds: list[str],
        terminatePolicy: TerminateRunPolicy | None = TerminateRunPolicy.SAFE_TERMINATE,
    ) -> TerminateRunsResultOrError:  # type: ignore[valid-type]
        policy = terminatePolicy or TerminateRunPolicy.SAFE_TERMINATE
        results = [await _terminate(info.context, run_id, policy) for run_id in runIds]
        return TerminateRunsResult(terminateRunResults=results)

    @strawberry.mutation(extensions=guarded("delete_pipeline_run"))
    async def deletePipelineRun(self, info: strawberry.Info, runId: str) -> DeletePipelineRunResult:  # type: ignore[valid-type]
        return await _delete(info.context, runId)

    @strawberry.mutation(extensions=guarded("delete_pipeline_run"))
    async def deleteRun(self, info: strawberry.Info, runId: str) -> DeletePipelineRunResult:  # type: ignore[valid-type]
        return await _delete(info.context, runId)

    @strawberry.mutation(extensions=guarded("reload_repository_location"))
    async def reloadRepositoryLocation(
        self, info: strawberry.Info, repositoryLocationName: str
    ) -> ReloadRepositoryLocationMutationResult:  # type: ignore[valid-type]
        found = await _reload(info.context, repositoryLocationName)
        if isinstance(found, str):
            return WorkspaceLocationEntry(view=await info.context.location(found))
        return found

    @strawberry.mutation(
        extensions=guarded("reload_repository_location"),
        description="Restart a code location: it imports its code again (as a reload does).",
    )
    async def shutdownRepositoryLocation(
        self, info: strawberry.Info, repositoryLocationName: str
    ) -> ShutdownRepositoryLocationMutationResult:  # type: ignore[valid-type]
        found = await _reload(info.context, repositoryLocationName)
        if isinstance(found, str):
            return ShutdownRepositoryLocationSuccess(repositoryLocationName=found)
        return found

    @strawberry.mutation(extensions=guarded("reload_workspace"))
    async def reloadWorkspace(self, info: strawberry.Info) -> ReloadWorkspaceMutationResult:  # type: ignore[valid-type]
        for name in sorted(info.context.backend.locations):
            found = await _reload(info.context, name)
            if not isinstance(found, str):
                return found
        views = await info.context.all_locations()
        return Workspace(locationEntries=[WorkspaceLocationEntry(view=v) for v in views])

    @strawberry.mutation(extensions=guarded("start_schedule"))
    async def startSchedule(
        self, info: strawberry.Info, scheduleSelector: ScheduleSelector
    ) -> ScheduleMutationResult:  # type: ignore[valid-type]
        found = await find_schedule(info.context, scheduleSelector)
        if not isinstance(found, Schedule):
            return found
        fallback = found.declared_state()
        return ScheduleStateResult(scheduleState=await _toggle(info.context, fallback, True))

    @strawberry.mutation(extensions=guarded("stop_running_schedule"))
    async def stopRunningSchedule(
        self,
        info: strawberry.Info,
        id: str | None = None,
        scheduleOriginId: str | None = None,
        scheduleSelector: ScheduleSelector | None = None,
    ) -> ScheduleMutationResult:  # type: ignore[valid-type]
        if scheduleSelector is not None:
            found = await find_schedule(info.context, scheduleSelector)
            if not isinstance(found, Schedule):
                return found
            fallback = found.declared_state()
            return ScheduleStateResult(scheduleState=await _toggle(info.context, fallback, False))
        key = id or scheduleOriginId or ""
        stored = await _stored_by_id(info.context, key)
        if stored is None:
            return ScheduleNotFoundError(message=f"no schedule with id {key!r}", scheduleName=key)
        return ScheduleStateResult(scheduleState=await _toggle(info.context, stored, False))

    @strawberry.mutation(extensions=guarded("edit_sensor"))
    async def startSensor(
        self, info: strawberry.Info, sensorSelector: SensorSelector
    ) -> SensorOrErrorResult:  # type: ignore[valid-type]
        found = await find_sensor(info.context, sensorSelector)
        if not isinstance(found, Sensor):
            return found
        await _toggle(info.context, found.declared_state(), True)
        return found

    @strawberry.mutation(extensions=guarded("edit_sensor"))
    async def stopSensor(
        self,
        info: strawberry.Info,
        id: str | None = None,
        jobOriginId: str | None = None,
        sensorSelector: SensorSelector | None = None,
    ) -> StopSensorMutationResultOrError:  # type: ignore[valid-type]
        if sensorSelector is not None:
            found = await find_sensor(info.context, sensorSelector)
            if not isinstance(found, Sensor):
                return found
            return StopSensorMutationResult(
                instigationState=await _toggle(info.context, found.declared_state(), False)
            )
        key = id or jobOriginId or ""
        stored = await _stored_by_id(info.context, key)
        if stored is None:
            return SensorNotFoundError(message=f"no sensor with id {key!r}", sensorName=key)
        return StopSensorMutationResult(instigationState=await _toggle(info.context, stored, False))


async def _delete(context: GraphQLContext, run_id: str) -> object:
    try:
        await context.instance.delete_run(run_id)
    except NoRun:
        return RunNotFoundError.of(run_id)
    _log.info("run_deleted", run_id=run_id)
    await audit(context, "delete_run", f"run:{run_id}")
    return DeletePipelineRunSuccess(runId=run_id)


async def _reload(
    context: GraphQLContext, name: str
) -> str | RepositoryLocationNotFound | PythonError:
    """Have location `name` import its code again; its name, or the typed error."""
    ref = context.backend.locations.get(name)
    if ref is None:
        return RepositoryLocationNotFound(message=f"Location {name} does not exist.")
    try:
        snapshot = await ref.ask(ReloadRequest(), timeout=context.backend.timeout)
    except (ActorUnavailableError, TimeoutError) as exc:
        return PythonError.from_exception(exc)
    assert isinstance(snapshot, LocationSnapshot)
    context.drop_cached(name)
    _log.info("code_location_reloaded", location=name, failed=bool(snapshot.load_error))
    await audit(context, "reload_location", f"location:{name}")
    return name
