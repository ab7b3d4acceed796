"""The daemon's decision logic: schedule ticks, sensor ticks, queue admission, run
monitoring verdicts and run retries.

Every function here is pure and sync, takes frozen records (and an explicit `now` where time
matters) and does no I/O, so the daemon's loops call them between storage reads and writes,
and tests call them without an event loop. Work that may be decided twice (a tick redone
after a crash, a second daemon) gets a derived run id, so storage admits its run once.
"""

from __future__ import annotations

from dagloom.daemon._admission import (
    QueuedRun,
    TagConcurrencyLimit,
    admission_order,
    run_priority,
    runs_to_admit,
)
from dagloom.daemon._loop import DaemonLoop
from dagloom.daemon._monitoring import (
    MonitorAction,
    MonitorCheck,
    MonitoredRun,
    MonitoringSettings,
    MonitoringVerdict,
    max_runtime_of,
    monitoring_verdict,
)
from dagloom.daemon._retries import (
    FailedRun,
    GroupRun,
    RetryAction,
    RetryDecision,
    RetrySettings,
    RetryStrategy,
    RunFailureReason,
    failure_reason,
    retry_decision,
)
from dagloom.daemon._schedule_ticks import (
    DEFAULT_MAX_CATCHUP_RUNS,
    CatchUp,
    CatchUpPolicy,
    LastScheduleTick,
    ScheduledRunIdentity,
    ScheduleTicksDue,
    ScheduleTickState,
    schedule_ticks_due,
)
from dagloom.daemon._sensor_ticks import (
    KeyedRun,
    SensorDue,
    SensorRunIdentity,
    SensorSubmissions,
    SensorTickState,
    sensor_due,
    sensor_submissions,
)
from dagloom.daemon._tags import (
    AUTO_RETRY_RUN_ID_TAG,
    MAX_RETRIES_TAGS,
    MAX_RUNTIME_TAGS,
    PRIORITY_TAGS,
    RETRY_NUMBER_TAG,
    RETRY_ON_ASSET_OR_OP_FAILURE_TAGS,
    RETRY_STRATEGY_TAGS,
    RUN_KEY_TAG,
    WILL_RETRY_TAG,
    derived_run_id,
)

__all__ = [
    "AUTO_RETRY_RUN_ID_TAG",
    "DEFAULT_MAX_CATCHUP_RUNS",
    "MAX_RETRIES_TAGS",
    "MAX_RUNTIME_TAGS",
    "PRIORITY_TAGS",
    "RETRY_NUMBER_TAG",
    "RETRY_ON_ASSET_OR_OP_FAILURE_TAGS",
    "RETRY_STRATEGY_TAGS",
    "RUN_KEY_TAG",
    "WILL_RETRY_TAG",
    "CatchUp",
    "CatchUpPolicy",
    "DaemonLoop",
    "FailedRun",
    "GroupRun",
    "KeyedRun",
    "LastScheduleTick",
    "MonitorAction",
    "MonitorCheck",
    "MonitoredRun",
    "MonitoringSettings",
    "MonitoringVerdict",
    "QueuedRun",
    "RetryAction",
    "RetryDecision",
    "RetrySettings",
    "RetryStrategy",
    "RunFailureReason",
    "ScheduleTickState",
    "ScheduleTicksDue",
    "ScheduledRunIdentity",
    "SensorDue",
    "SensorRunIdentity",
    "SensorSubmissions",
    "SensorTickState",
    "TagConcurrencyLimit",
    "admission_order",
    "derived_run_id",
    "failure_reason",
    "max_runtime_of",
    "monitoring_verdict",
    "retry_decision",
    "run_priority",
    "runs_to_admit",
    "schedule_ticks_due",
    "sensor_due",
    "sensor_submissions",
]
