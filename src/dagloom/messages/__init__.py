"""The protobuf messages dagloom exchanges and records, generated from proto/dagloom/v1.

The classes live in `_generated` (rebuilt by `python proto/generate.py`, never edited by hand);
this module re-exports the ones the rest of the package uses.
"""

from __future__ import annotations

# Imported for their effect: betterproto2 messages compare fields with cached defaults
# and encode them with prebuilt keys and faster varints.
from dagloom.messages import _defaults, _encoding  # noqa: F401
from dagloom.messages._generated.dagloom.v1 import (
    AssetCheckEvaluationData,
    AssetCheckSnapshot,
    AssetMaterializationData,
    Backfill,
    BackfillStatus,
    DynamicPartitionsRequestMessage,
    EngineEventData,
    ErrorInfo,
    Event,
    EventRecord,
    EventType,
    HandledOutputData,
    LoadedInputData,
    LogLevel,
    MetadataValue,
    PartitionsSnapshot,
    Run,
    RunFailureData,
    RunStatus,
    StepExpectationResultData,
    StepFailureData,
    StepOutputData,
    StepRetryData,
    StepSkippedData,
)
from dagloom.messages._generated.dagloom.v1 import (
    AssetCheckKey as AssetCheckKeyMessage,
)
from dagloom.messages._generated.dagloom.v1 import (
    AssetKey as AssetKeyMessage,
)

__all__ = [
    "AssetCheckEvaluationData",
    "AssetCheckKeyMessage",
    "AssetCheckSnapshot",
    "AssetKeyMessage",
    "AssetMaterializationData",
    "Backfill",
    "BackfillStatus",
    "DynamicPartitionsRequestMessage",
    "EngineEventData",
    "ErrorInfo",
    "Event",
    "EventRecord",
    "EventType",
    "HandledOutputData",
    "LoadedInputData",
    "LogLevel",
    "MetadataValue",
    "PartitionsSnapshot",
    "Run",
    "RunFailureData",
    "RunStatus",
    "StepExpectationResultData",
    "StepFailureData",
    "StepOutputData",
    "StepRetryData",
    "StepSkippedData",
]

from dagloom.messages._generated.dagloom.v1 import (
    DaemonHeartbeat,
    InstigatorState,
    InstigatorStatus,
    InstigatorType,
    Tick,
    TickStatus,
)

__all__ += [
    "DaemonHeartbeat",
    "InstigatorState",
    "InstigatorStatus",
    "InstigatorType",
    "Tick",
    "TickStatus",
]
