"""What users declare: ops, graphs, jobs, assets, schedules, sensors, resources, config.

Pure definitions: nothing here does I/O or imports the server stacks.
"""

from __future__ import annotations

from dagloom.definitions.asset import (
    AssetDep,
    AssetIn,
    AssetOut,
    AssetsDefinition,
    AssetSpec,
    asset,
    multi_asset,
)
from dagloom.definitions.asset_job import (
    UnresolvedAssetJobDefinition,
    define_asset_job,
    materialize,
    materialize_to_memory,
)
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.asset_selection import AssetSelection
from dagloom.definitions.config import Config, PermissiveConfig, RunConfig
from dagloom.definitions.definitions import Definitions
from dagloom.definitions.executor import (
    Executor,
    ExecutorDefinition,
    InitExecutorContext,
    executor,
    in_process_executor,
    multiprocess_executor,
)
from dagloom.definitions.graph import (
    DependencyDefinition,
    GraphDefinition,
    MultiDependencyDefinition,
    NodeInvocation,
    graph,
)
from dagloom.definitions.io_manager import (
    ConfigurableIOManager,
    FilesystemIOManager,
    InMemoryIOManager,
    InputContext,
    IOManager,
    IOManagerDefinition,
    OutputContext,
    fs_io_manager,
    io_manager,
    mem_io_manager,
)
from dagloom.definitions.job import JobDefinition, job
from dagloom.definitions.metadata import MetadataValue
from dagloom.definitions.op import OpDefinition, op
from dagloom.definitions.outputs import (
    AssetMaterialization,
    DynamicOut,
    DynamicOutput,
    In,
    MaterializeResult,
    Out,
    Output,
)
from dagloom.definitions.resources import (
    ConfigurableResource,
    InitResourceContext,
    ResourceDefinition,
    build_init_resource_context,
    resource,
)
from dagloom.definitions.retry import Backoff, Jitter, RetryPolicy
from dagloom.definitions.run_request import RunRequest, SensorResult, SkipReason
from dagloom.definitions.schedule import (
    DefaultScheduleStatus,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    build_schedule_context,
    schedule,
)
from dagloom.definitions.sensor import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    build_sensor_context,
    sensor,
)

__all__ = [
    "AssetDep",
    "AssetIn",
    "AssetKey",
    "AssetMaterialization",
    "AssetOut",
    "AssetSelection",
    "AssetSpec",
    "AssetsDefinition",
    "Backoff",
    "Config",
    "ConfigurableIOManager",
    "ConfigurableResource",
    "DefaultScheduleStatus",
    "DefaultSensorStatus",
    "Definitions",
    "DependencyDefinition",
    "DynamicOut",
    "DynamicOutput",
    "Executor",
    "ExecutorDefinition",
    "FilesystemIOManager",
    "GraphDefinition",
    "IOManager",
    "IOManagerDefinition",
    "In",
    "InMemoryIOManager",
    "InitExecutorContext",
    "InitResourceContext",
    "InputContext",
    "Jitter",
    "JobDefinition",
    "MaterializeResult",
    "MetadataValue",
    "MultiDependencyDefinition",
    "NodeInvocation",
    "OpDefinition",
    "Out",
    "Output",
    "OutputContext",
    "PermissiveConfig",
    "ResourceDefinition",
    "RetryPolicy",
    "RunConfig",
    "RunRequest",
    "ScheduleDefinition",
    "ScheduleEvaluationContext",
    "SensorDefinition",
    "SensorEvaluationContext",
    "SensorResult",
    "SkipReason",
    "UnresolvedAssetJobDefinition",
    "asset",
    "build_init_resource_context",
    "build_schedule_context",
    "build_sensor_context",
    "define_asset_job",
    "executor",
    "fs_io_manager",
    "graph",
    "in_process_executor",
    "io_manager",
    "job",
    "materialize",
    "materialize_to_memory",
    "mem_io_manager",
    "multi_asset",
    "multiprocess_executor",
    "op",
    "resource",
    "schedule",
    "sensor",
]
