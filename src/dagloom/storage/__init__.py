"""Storage: the run, event-log and schedule interfaces, their records, and the batched sink.

Backends live in `dagloom.storage.memory`, `.sqlite` and `.postgres`; the drivers are
imported only by their backend module, so importing this package stays light.
"""

from __future__ import annotations

from dagloom.storage.base import (
    RUN_DURATION_BUCKETS,
    RUN_TRANSITIONS,
    DurationHistogram,
    EventLogStorage,
    Fence,
    Lease,
    MigratableStorage,
    RunsFilter,
    RunStats,
    RunStorage,
    RunTransition,
    ScheduleStorage,
    SchemaInfo,
    StepStats,
    StepStatus,
    StorageLifecycle,
    allowed_transition,
)
from dagloom.storage.sink import StorageEventSink

__all__ = [
    "RUN_DURATION_BUCKETS",
    "RUN_TRANSITIONS",
    "DurationHistogram",
    "EventLogStorage",
    "Fence",
    "Lease",
    "MigratableStorage",
    "RunStats",
    "RunStorage",
    "RunTransition",
    "RunsFilter",
    "ScheduleStorage",
    "SchemaInfo",
    "StepStats",
    "StepStatus",
    "StorageEventSink",
    "StorageLifecycle",
    "allowed_transition",
]
