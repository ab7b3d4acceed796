"""The gRPC services dagloom's nodes serve, with their request and reply messages.

Generated into `_generated/dagloom/v1/rpc` (package `dagloom.v1.rpc`), apart from the data
messages, because generated services import grpclib and `import dagloom` must not.
"""

from __future__ import annotations

from dagloom.messages._generated.dagloom.v1.rpc import (
    ActorHeartbeat,
    DaemonBase,
    DaemonLoopStatus,
    DaemonStatusReply,
    DaemonStatusRequest,
    DaemonStub,
    HealthBase,
    HealthStub,
    PingReply,
    PingRequest,
)

__all__ = [
    "ActorHeartbeat",
    "DaemonBase",
    "DaemonLoopStatus",
    "DaemonStatusReply",
    "DaemonStatusRequest",
    "DaemonStub",
    "HealthBase",
    "HealthStub",
    "PingReply",
    "PingRequest",
]

from dagloom.messages._generated.dagloom.v1.rpc import (
    AssetSnapshot,
    BackfillPolicySnapshot,
    CodeLocationBase,
    CodeLocationStub,
    ConfigProblem,
    EvaluateScheduleRequest,
    EvaluateSensorRequest,
    GetSnapshotRequest,
    JobSnapshot,
    LocationSnapshot,
    NodeInputSnapshot,
    NodeSnapshot,
    ReloadRequest,
    RunRequestMessage,
    ScheduleSnapshot,
    SensorSnapshot,
    TickResult,
    ValidateRunReply,
    ValidateRunRequest,
)

__all__ += [
    "AssetSnapshot",
    "BackfillPolicySnapshot",
    "CodeLocationBase",
    "CodeLocationStub",
    "ConfigProblem",
    "EvaluateScheduleRequest",
    "EvaluateSensorRequest",
    "GetSnapshotRequest",
    "JobSnapshot",
    "LocationSnapshot",
    "NodeInputSnapshot",
    "NodeSnapshot",
    "ReloadRequest",
    "RunRequestMessage",
    "ScheduleSnapshot",
    "SensorSnapshot",
    "TickResult",
    "ValidateRunReply",
    "ValidateRunRequest",
]

# The run services: coordinator, launcher, worker.
from dagloom.messages._generated.dagloom.v1.rpc import (  # noqa: E402 - appended per family
    AdmitRunsReply,
    AdmitRunsRequest,
    CancelRunReply,
    CancelRunRequest,
    ExecuteRunReply,
    ExecuteRunRequest,
    LaunchRunReply,
    LaunchRunRequest,
    RunCoordinatorBase,
    RunCoordinatorStub,
    RunEnded,
    RunEndedReply,
    RunLauncherBase,
    RunLauncherStub,
    RunWorkerBase,
    RunWorkerStub,
    StopRunReply,
    StopRunRequest,
    SubmitRunReply,
    SubmitRunRequest,
    TerminateRunReply,
    TerminateRunRequest,
    WorkerExited,
    WorkerExitedReply,
)

__all__ += [
    "AdmitRunsReply",
    "AdmitRunsRequest",
    "CancelRunReply",
    "CancelRunRequest",
    "ExecuteRunReply",
    "ExecuteRunRequest",
    "LaunchRunReply",
    "LaunchRunRequest",
    "RunCoordinatorBase",
    "RunCoordinatorStub",
    "RunEnded",
    "RunEndedReply",
    "RunLauncherBase",
    "RunLauncherStub",
    "RunWorkerBase",
    "RunWorkerStub",
    "StopRunReply",
    "StopRunRequest",
    "SubmitRunReply",
    "SubmitRunRequest",
    "TerminateRunReply",
    "TerminateRunRequest",
    "WorkerExited",
    "WorkerExitedReply",
]

# The public API (api.proto), served by the webserver node and wrapped by `AsyncClient`.
from dagloom.messages._generated.dagloom.v1.rpc import (  # noqa: E402 - appended per family
    ApiCancelRunReply,
    ApiCancelRunRequest,
    ApiGetRunReply,
    ApiGetRunRequest,
    ApiJob,
    ApiLaunchRunReply,
    ApiLaunchRunRequest,
    ApiListJobsReply,
    ApiListJobsRequest,
    ApiReexecuteRunReply,
    ApiReexecuteRunRequest,
    ApiReloadLocationReply,
    ApiReloadLocationRequest,
    ApiStreamEventsRequest,
    DagloomApiBase,
    DagloomApiStub,
)

__all__ += [
    "ApiCancelRunReply",
    "ApiCancelRunRequest",
    "ApiGetRunReply",
    "ApiGetRunRequest",
    "ApiJob",
    "ApiLaunchRunReply",
    "ApiLaunchRunRequest",
    "ApiListJobsReply",
    "ApiListJobsRequest",
    "ApiReexecuteRunReply",
    "ApiReexecuteRunRequest",
    "ApiReloadLocationReply",
    "ApiReloadLocationRequest",
    "ApiStreamEventsRequest",
    "DagloomApiBase",
    "DagloomApiStub",
]

# The public API's batched event stream (api_events.proto), served beside DagloomApi.
from dagloom.messages._generated.dagloom.v1.rpc import (  # noqa: E402 - appended per family
    ApiEventBatch,
    DagloomApiEventsBase,
    DagloomApiEventsStub,
)

__all__ += ["ApiEventBatch", "DagloomApiEventsBase", "DagloomApiEventsStub"]
# The public API's schedule, sensor and daemon calls (instigator_api.proto).
from dagloom.messages._generated.dagloom.v1.rpc import (  # noqa: E402 - appended per family
    ApiDaemonLoop,
    ApiDaemonStatusReply,
    ApiDaemonStatusRequest,
    ApiGetTicksReply,
    ApiGetTicksRequest,
    ApiInstigator,
    ApiListInstigatorsReply,
    ApiListInstigatorsRequest,
    ApiSetInstigatorRunningReply,
    ApiSetInstigatorRunningRequest,
)

__all__ += [
    "ApiDaemonLoop",
    "ApiDaemonStatusReply",
    "ApiDaemonStatusRequest",
    "ApiGetTicksReply",
    "ApiGetTicksRequest",
    "ApiInstigator",
    "ApiListInstigatorsReply",
    "ApiListInstigatorsRequest",
    "ApiSetInstigatorRunningReply",
    "ApiSetInstigatorRunningRequest",
]
# Compute logs through the public API (compute_logs.proto).
from dagloom.messages._generated.dagloom.v1.rpc import (  # noqa: E402 - appended per family
    ApiComputeLogChunk,
    ApiReadComputeLogRequest,
)

__all__ += ["ApiComputeLogChunk", "ApiReadComputeLogRequest"]
