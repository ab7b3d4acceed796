"""Storage: the run, event-log and schedule interfaces, their records, and the batched sink.

Backends live in `dagloom.storage.memory`, `.sqlite` and `.postgres`; the drivers are
imported only by their backend module, so importing this package stays light.
"""

from __future__ import annotations

from dagloom.storage.base import (
    EventLogStorage,
    Lease,
    MigratableStorage,
    RunsFilter,
    RunStorage,
    ScheduleStorage,
    SchemaInfo,
    StepStats,
    StepStatus,
    StorageLifecycle,
)
from dagloom.storage.sink import StorageEventSink

__all__ = [
    "EventLogStorage",
    "Lease",
    "MigratableStorage",
    "RunStorage",
    "RunsFilter",
    "ScheduleStorage",
    "SchemaInfo",
    "StepStats",
    "StepStatus",
    "StorageEventSink",
    "StorageLifecycle",
]
