"""Runs and their events as GraphQL types, with Dagster's names (`Run`, which implements
`PipelineRun`; `RunStatus`; `MessageEvent` and its event types; `RunStepStats`)."""

from __future__ import annotations

import enum
from typing import Any, cast

import betterproto2
import orjson
import strawberry
import yaml
from strawberry.scalars import JSON

from dagloom.messages import EventRecord, EventType, LogLevel, MetadataValue
from dagloom.messages import Run as RunMessage
from dagloom.messages import RunStatus as RunStatusMessage
from dagloom.storage.base import StepStats, StepStatus
from dagloom.webserver.schema._unions import named_union
from dagloom.webserver.schema.errors import Error, PythonError

DEFAULT_EVENTS_LIMIT = 1000
MAX_EVENTS_LIMIT = 10_000
"""One page of a run's events at most; a client pages on with the cursor."""


@strawberry.enum(description="A run's status; the same strings as Dagster's `DagsterRunStatus`.")
class RunStatus(enum.Enum):
    QUEUED = "QUEUED"
    NOT_STARTED = "NOT_STARTED"
    MANAGED = "MANAGED"
    STARTING = "STARTING"
    STARTED = "STARTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"

    @classmethod
    def of(cls, status: RunStatusMessage) -> RunStatus:
        if status == RunStatusMessage.UNSPECIFIED:
            return cls.NOT_STARTED
        return cls[status.name]

    def message(self) -> RunStatusMessage:
        return RunStatusMessage[self.name]


@strawberry.type
class AssetKey:
    path: list[str]


@strawberry.input
class AssetKeyInput:
    path: list[str]


@strawberry.type
class AssetCheckhandle:
    """An asset check's identity (Dagster's spelling of the type name)."""

    name: str
    assetKey: AssetKey


@strawberry.input
class AssetCheckHandleInput:
    assetKey: AssetKeyInput
    name: str


@strawberry.type
class PipelineTag:
    key: str
    value: str


@strawberry.enum
class StepEventStatus(enum.Enum):
    SKIPPED = "SKIPPED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    IN_PROGRESS = "IN_PROGRESS"


@strawberry.type
class RunStepStats:
    runId: str
    stepKey: str
    status: StepEventStatus | None
    startTime: float | None
    endTime: float | None
    attemptCount: int
    materializedAssetKeys: list[AssetKey]

    @classmethod
    def of(cls, stats: StepStats) -> RunStepStats:
        return cls(
            runId=stats.run_id,
            stepKey=stats.step_key,
            status=StepEventStatus[stats.status.name]
            if isinstance(stats.status, StepStatus)
            else None,
            startTime=stats.start_time,
            endTime=stats.end_time,
            attemptCount=stats.attempts,
            materializedAssetKeys=[AssetKey(path=list(k)) for k in stats.materializations],
        )


# -- events ------------------------------------------------------------------------------


@strawberry.enum
class DagsterEventType(enum.Enum):
    RUN_ENQUEUED = "RUN_ENQUEUED"
    RUN_DEQUEUED = "RUN_DEQUEUED"
    RUN_STARTING = "RUN_STARTING"
    RUN_START = "RUN_START"
    RUN_SUCCESS = "RUN_SUCCESS"
    RUN_FAILURE = "RUN_FAILURE"
    RUN_CANCELING = "RUN_CANCELING"
    RUN_CANCELED = "RUN_CANCELED"
    STEP_START = "STEP_START"
    STEP_OUTPUT = "STEP_OUTPUT"
    STEP_SUCCESS = "STEP_SUCCESS"
    STEP_FAILURE = "STEP_FAILURE"
    STEP_UP_FOR_RETRY = "STEP_UP_FOR_RETRY"
    STEP_RESTARTED = "STEP_RESTARTED"
    STEP_SKIPPED = "STEP_SKIPPED"
    HANDLED_OUTPUT = "HANDLED_OUTPUT"
    LOADED_INPUT = "LOADED_INPUT"
    ASSET_MATERIALIZATION = "ASSET_MATERIALIZATION"
    ASSET_OBSERVATION = "ASSET_OBSERVATION"
    ENGINE_EVENT = "ENGINE_EVENT"
    STEP_EXPECTATION_RESULT = "STEP_EXPECTATION_RESULT"
    HOOK_COMPLETED = "HOOK_COMPLETED"
    HOOK_ERRORED = "HOOK_ERRORED"
    HOOK_SKIPPED = "HOOK_SKIPPED"


@strawberry.enum(name="LogLevel")
class GraphQLLogLevel(enum.Enum):
    CRITICAL = "CRITICAL"
    ERROR = "ERROR"
    INFO = "INFO"
    WARNING = "WARNING"
    DEBUG = "DEBUG"


def _level(level: LogLevel) -> GraphQLLogLevel:
    if level == LogLevel.UNSPECIFIED:
        return GraphQLLogLevel.INFO
    return GraphQLLogLevel[level.name]


@strawberry.type
class MetadataEntry:
    """One metadata entry: `label`, its kind (text, int, float, bool, json, url, path, md,
    asset, null) and its value as JSON."""

    label: str
    kind: str
    value: JSON


def metadata_entries(metadata: dict[str, MetadataValue]) -> list[MetadataEntry]:
    out = []
    for label, message in metadata.items():
        kind, value = betterproto2.which_one_of(message, "value")
        if kind == "json" and isinstance(value, str):
            value = orjson.loads(value)
        elif kind == "asset" and value is not None:
            value = list(value.path)
        out.append(MetadataEntry(label=label, kind=kind or "null", value=cast(JSON, value)))
    return out


@strawberry.interface(description="Every event of a run's log.")
class MessageEvent:
    record: strawberry.Private[EventRecord]

    @strawberry.field
    def runId(self) -> str:
        assert self.record.event is not None
        return self.record.event.run_id

    @strawberry.field
    def message(self) -> str:
        assert self.record.event is not None
        return self.record.event.message

    @strawberry.field(description="Milliseconds since the epoch, as Dagster gives it.")
    def timestamp(self) -> str:
        assert self.record.event is not None
        return str(int(self.record.event.timestamp * 1000))

    @strawberry.field
    def level(self) -> GraphQLLogLevel:
        assert self.record.event is not None
        return _level(self.record.event.level)

    @strawberry.field
    def stepKey(self) -> str | None:
        assert self.record.event is not None
        return self.record.event.step_key or None

    @strawberry.field
    def eventType(self) -> DagsterEventType | None:
        assert self.record.event is not None
        name = self.record.event.event_type.name
        return DagsterEventType[name] if name in DagsterEventType.__members__ else None

    @strawberry.field(description="The event's place in the log: the cursor after it.")
    def storageId(self) -> str:
        return str(self.record.storage_id)


@strawberry.interface
class ErrorEvent:
    record: strawberry.Private[EventRecord]

    @strawberry.field
    def error(self) -> PythonError | None:
        event = self.record.event
        assert event is not None
        if event.step_failure is not None and event.step_failure.error is not None:
            return PythonError.from_info(event.step_failure.error)
        if event.run_failure is not None and event.run_failure.error is not None:
            return PythonError.from_info(event.run_failure.error)
        if event.step_retry is not None and event.step_retry.error is not None:
            return PythonError.from_info(event.step_retry.error)
        if event.engine_event is not None and event.engine_event.error is not None:
            return PythonError.from_info(event.engine_event.error)
        return None


@strawberry.interface
class AssetEvent:
    record: strawberry.Private[EventRecord]

    @strawberry.field
    def assetKey(self) -> AssetKey | None:
        event = self.record.event
        assert event is not None
        data = event.asset_materialization
        if data is None or data.asset_key is None:
            return None
        return AssetKey(path=list(data.asset_key.path))

    @strawberry.field
    def partition(self) -> str | None:
        event = self.record.event
        assert event is not None
        data = event.asset_materialization
        return (data.partition or None) if data is not None else None

    @strawberry.field
    def metadataEntries(self) -> list[MetadataEntry]:
        event = self.record.event
        assert event is not None
        data = event.asset_materialization
        return metadata_entries(dict(data.metadata)) if data is not None else []

    @strawberry.field(
        description="The event's tags: `dagster/data_version`, `dagster/code_version`, "
        "`dagster/input_data_version/<key>` and any the reporter gave."
    )
    def tags(self) -> list[EventTag]:
        event = self.record.event
        assert event is not None
        data = event.asset_materialization
        if data is None:
            return []
        return [EventTag(key=k, value=v) for k, v in sorted(data.tags.items())]


@strawberry.type
class EventTag:
    key: str
    value: str


def _plain(name: str, *bases: type) -> type:
    return strawberry.type(type(name, (*bases, MessageEvent), {}))


RunEnqueuedEvent = _plain("RunEnqueuedEvent")
RunDequeuedEvent = _plain("RunDequeuedEvent")
RunStartingEvent = _plain("RunStartingEvent")
RunStartEvent = _plain("RunStartEvent")
RunSuccessEvent = _plain("RunSuccessEvent")
RunFailureEvent = _plain("RunFailureEvent", ErrorEvent)
RunCancelingEvent = _plain("RunCancelingEvent")
RunCanceledEvent = _plain("RunCanceledEvent")
ExecutionStepStartEvent = _plain("ExecutionStepStartEvent")
ExecutionStepOutputEvent = _plain("ExecutionStepOutputEvent")
ExecutionStepSuccessEvent = _plain("ExecutionStepSuccessEvent")
ExecutionStepFailureEvent = _plain("ExecutionStepFailureEvent", ErrorEvent)
ExecutionStepUpForRetryEvent = _plain("ExecutionStepUpForRetryEvent", ErrorEvent)
ExecutionStepRestartEvent = _plain("ExecutionStepRestartEvent")
ExecutionStepSkippedEvent = _plain("ExecutionStepSkippedEvent")
HandledOutputEvent = _plain("HandledOutputEvent")
LoadedInputEvent = _plain("LoadedInputEvent")


@strawberry.type
class MaterializationEvent(AssetEvent, MessageEvent):
    pass


@strawberry.type
class ObservationEvent(AssetEvent, MessageEvent):
    pass


EngineEvent = _plain("EngineEvent", ErrorEvent)
LogMessageEvent = _plain("LogMessageEvent")
StepExpectationResultEvent = _plain("StepExpectationResultEvent")
HookCompletedEvent = _plain("HookCompletedEvent")
HookErroredEvent = _plain("HookErroredEvent", ErrorEvent)
HookSkippedEvent = _plain("HookSkippedEvent")

_EVENT_CLASSES: dict[EventType, type] = {
    EventType.RUN_ENQUEUED: RunEnqueuedEvent,
    EventType.RUN_DEQUEUED: RunDequeuedEvent,
    EventType.RUN_STARTING: RunStartingEvent,
    EventType.RUN_START: RunStartEvent,
    EventType.RUN_SUCCESS: RunSuccessEvent,
    EventType.RUN_FAILURE: RunFailureEvent,
    EventType.RUN_CANCELING: RunCancelingEvent,
    EventType.RUN_CANCELED: RunCanceledEvent,
    EventType.STEP_START: ExecutionStepStartEvent,
    EventType.STEP_OUTPUT: ExecutionStepOutputEvent,
    EventType.STEP_SUCCESS: ExecutionStepSuccessEvent,
    EventType.STEP_FAILURE: ExecutionStepFailureEvent,
    EventType.STEP_UP_FOR_RETRY: ExecutionStepUpForRetryEvent,
    EventType.STEP_RESTARTED: ExecutionStepRestartEvent,
    EventType.STEP_SKIPPED: ExecutionStepSkippedEvent,
    EventType.HANDLED_OUTPUT: HandledOutputEvent,
    EventType.LOADED_INPUT: LoadedInputEvent,
    EventType.ASSET_MATERIALIZATION: MaterializationEvent,
    EventType.ASSET_OBSERVATION: ObservationEvent,
    EventType.ENGINE_EVENT: EngineEvent,
    EventType.LOG_MESSAGE: LogMessageEvent,
    EventType.STEP_EXPECTATION_RESULT: StepExpectationResultEvent,
    EventType.HOOK_COMPLETED: HookCompletedEvent,
    EventType.HOOK_ERRORED: HookErroredEvent,
    EventType.HOOK_SKIPPED: HookSkippedEvent,
}

DagsterRunEvent = named_union("DagsterRunEvent", tuple(dict.fromkeys(_EVENT_CLASSES.values())))
EVENT_TYPES: tuple[type, ...] = tuple(dict.fromkeys(_EVENT_CLASSES.values()))


def event_object(record: EventRecord) -> Any:
    """The GraphQL event object of a stored event (an engine event for a type this
    schema does not know)."""
    assert record.event is not None
    cls = _EVENT_CLASSES.get(record.event.event_type, EngineEvent)
    return cls(record=record)


_TYPENAMES = {kind: cls.__name__ for kind, cls in _EVENT_CLASSES.items()}
_LEVELS = {level: _level(level).value for level in LogLevel}


def event_json(record: EventRecord) -> dict[str, Any]:
    """An event as plain JSON, for clients that take a batch as one value (much cheaper than
    resolving each event's fields: a 10,000-step run has ~50,000 events)."""
    event = record.event
    assert event is not None
    kind = event.event_type
    out: dict[str, Any] = {
        "__typename": _TYPENAMES.get(kind, "EngineEvent"),
        "storageId": record.storage_id,
        "runId": event.run_id,
        "timestamp": event.timestamp,
        "eventType": kind.name,
        "level": _LEVELS.get(event.level, "INFO"),
        "stepKey": event.step_key or None,
        "message": event.message,
    }
    materialization = event.asset_materialization
    if materialization is not None and materialization.asset_key is not None:
        out["assetKey"] = list(materialization.asset_key.path)
    failure = event.step_failure or event.run_failure
    if failure is not None and failure.error is not None:
        out["error"] = {"className": failure.error.cls_name, "message": failure.error.message}
    return out


@strawberry.type
class EventConnection:
    events: list[DagsterRunEvent]  # type: ignore[valid-type]
    cursor: str
    hasMore: bool


def event_connection(records: list[EventRecord], after: int, limit: int) -> EventConnection:
    cursor = records[-1].storage_id if records else after
    return EventConnection(
        events=[event_object(r) for r in records],
        cursor=str(cursor),
        hasMore=len(records) >= limit,
    )


def parse_event_cursor(cursor: str | None) -> int:
    """A run-event cursor: the storage id of the last event seen ("" or None: the start).
    `ValueError` for anything else."""
    if not cursor:
        return 0
    try:
        value = int(cursor)
    except ValueError:
        raise ValueError(f"invalid event cursor {cursor!r}: expected a storage id") from None
    if value < 0:
        raise ValueError(f"invalid event cursor {cursor!r}: expected a storage id")
    return value


# -- runs --------------------------------------------------------------------------------


@strawberry.interface
class PipelineRun:
    run: strawberry.Private[RunMessage]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.run.run_id)

    @strawberry.field
    def runId(self) -> str:
        return self.run.run_id

    @strawberry.field
    def status(self) -> RunStatus:
        return RunStatus.of(self.run.status)

    @strawberry.field
    def pipelineName(self) -> str:
        return self.run.job_name

    @strawberry.field
    def jobName(self) -> str:
        return self.run.job_name

    @strawberry.field
    def mode(self) -> str:
        return "default"

    @strawberry.field
    def runConfig(self) -> JSON:
        config = orjson.loads(self.run.run_config_json) if self.run.run_config_json else {}
        return cast(JSON, config)

    @strawberry.field
    def runConfigYaml(self) -> str:
        config = orjson.loads(self.run.run_config_json) if self.run.run_config_json else {}
        return yaml.safe_dump(config, sort_keys=False) if config else ""

    @strawberry.field
    def tags(self) -> list[PipelineTag]:
        return [PipelineTag(key=k, value=v) for k, v in sorted(self.run.tags.items())]

    @strawberry.field
    def rootRunId(self) -> str | None:
        return self.run.root_run_id or None

    @strawberry.field
    def parentRunId(self) -> str | None:
        return self.run.parent_run_id or None

    @strawberry.field
    def repositoryLocationName(self) -> str:
        return self.run.code_location

    @strawberry.field
    def creationTime(self) -> float:
        return self.run.create_time

    @strawberry.field
    def startTime(self) -> float | None:
        return self.run.start_time or None

    @strawberry.field
    def endTime(self) -> float | None:
        return self.run.end_time or None

    @strawberry.field
    def updateTime(self) -> float:
        return max(self.run.end_time, self.run.start_time, self.run.create_time)

    @strawberry.field
    def assetSelection(self) -> list[AssetKey] | None:
        if not self.run.asset_selection:
            return None
        return [AssetKey(path=list(k.path)) for k in self.run.asset_selection]

    @strawberry.field
    def assetCheckSelection(self) -> list[AssetCheckhandle] | None:
        """The checks the run executes when it names them; null: its assets' checks."""
        if not self.run.asset_check_selection:
            return None
        return [
            AssetCheckhandle(
                name=c.name,
                assetKey=AssetKey(path=list(c.asset_key.path) if c.asset_key else []),
            )
            for c in self.run.asset_check_selection
        ]

    @strawberry.field
    def stepKeysToExecute(self) -> list[str] | None:
        return list(self.run.step_keys_to_execute) or None

    @strawberry.field
    def canTerminate(self) -> bool:
        return RunStatus.of(self.run.status) in _TERMINABLE

    @strawberry.field
    def failure(self) -> PythonError | None:
        return PythonError.from_info(self.run.failure) if self.run.failure is not None else None

    @strawberry.field
    async def stepStats(self, info: strawberry.Info) -> list[RunStepStats]:
        stats = await info.context.instance.get_step_stats(self.run.run_id)
        return [RunStepStats.of(s) for s in stats]

    @strawberry.field(description="One page of the run's events after `afterCursor`.")
    async def eventConnection(
        self, info: strawberry.Info, afterCursor: str | None = None, limit: int | None = None
    ) -> EventConnection:
        after = parse_event_cursor(afterCursor)
        size = clamp_events_limit(limit)
        records = await info.context.instance.get_events(
            self.run.run_id, after=after or None, limit=size
        )
        return event_connection(records, after, size)


_TERMINABLE = {
    RunStatus.QUEUED,
    RunStatus.NOT_STARTED,
    RunStatus.STARTING,
    RunStatus.STARTED,
    RunStatus.MANAGED,
}


def clamp_events_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_EVENTS_LIMIT
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return min(limit, MAX_EVENTS_LIMIT)


@strawberry.type
class Run(PipelineRun):
    pass


@strawberry.input
class ExecutionTag:
    key: str
    value: str


@strawberry.input(name="RunsFilter")
class RunsFilterInput:
    runIds: list[str | None] | None = None
    pipelineName: str | None = None
    tags: list[ExecutionTag] | None = None
    statuses: list[RunStatus] | None = None
    createdBefore: float | None = None
    createdAfter: float | None = None
    mode: str | None = None


@strawberry.type
class Runs:
    results: list[Run]
    count: int | None = None


@strawberry.type
class InvalidPipelineRunsFilterError(Error):
    pass
