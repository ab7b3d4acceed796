"""What users declare: ops, graphs, jobs, assets, schedules, sensors, resources, config.

Pure definitions: nothing here does I/O or imports the server stacks.

This package is also Dagster's `@definitions` decorator: `dagloom.definitions` names both
the package and the decorator (its module object is callable, see the end of this file), so
`@dg.definitions` works while `from dagloom.definitions import ...` stays an import.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable

from dagloom.definitions.alerts import make_email_on_run_failure_sensor
from dagloom.definitions.asset import (
    AssetDep,
    AssetIn,
    AssetOut,
    AssetsDefinition,
    AssetSpec,
    SourceAsset,
    asset,
    map_asset_specs,
    multi_asset,
    with_resources,
)
from dagloom.definitions.asset_checks import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    asset_check,
    multi_asset_check,
)
from dagloom.definitions.asset_job import (
    UnresolvedAssetJobDefinition,
    define_asset_job,
    materialize,
    materialize_to_memory,
)
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.asset_loading import (
    load_assets_from_current_module,
    load_assets_from_modules,
    load_assets_from_package_module,
    load_assets_from_package_name,
)
from dagloom.definitions.asset_selection import AssetSelection
from dagloom.definitions.automation_condition import AutomationCondition
from dagloom.definitions.automation_condition_sensor import AutomationConditionSensorDefinition
from dagloom.definitions.backfill_policy import BackfillPolicy
from dagloom.definitions.builtin_checks import (
    build_column_schema_change_checks,
    build_last_update_freshness_checks,
    build_metadata_bounds_checks,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
    load_asset_checks_from_current_module,
    load_asset_checks_from_modules,
    load_asset_checks_from_package_module,
    load_asset_checks_from_package_name,
)
from dagloom.definitions.config import (
    Config,
    ConfigMapping,
    PermissiveConfig,
    RunConfig,
    config_mapping,
)
from dagloom.definitions.configured import configured
from dagloom.definitions.dagster_type import (
    DagsterType,
    Nothing,
    PythonObjectDagsterType,
    TypeCheck,
    TypeCheckContext,
    check_dagster_type,
    make_python_type_usable_as_dagster_type,
    usable_as_dagster_type,
)
from dagloom.definitions.dagster_type_loader import (
    DagsterTypeLoader,
    DagsterTypeLoaderContext,
    dagster_type_loader,
)
from dagloom.definitions.dagster_type_wrappers import Dict, List, Optional, Set, Tuple
from dagloom.definitions.data_version import DataVersion, DataVersionsByPartition, ObserveResult
from dagloom.definitions.definitions import Definitions, definitions_decorator
from dagloom.definitions.event_sensors import (
    AssetSensorDefinition,
    DagsterRunStatus,
    EventLogEntry,
    RunFailureSensorContext,
    RunStatusSensorContext,
    RunStatusSensorDefinition,
    asset_sensor,
    build_run_status_sensor_context,
    run_failure_sensor,
    run_status_sensor,
)
from dagloom.definitions.executor import (
    Executor,
    ExecutorDefinition,
    InitExecutorContext,
    executor,
    in_process_executor,
    multi_or_in_process_executor,
    multiprocess_executor,
)
from dagloom.definitions.graph import (
    DependencyDefinition,
    GraphDefinition,
    GraphIn,
    GraphOut,
    MultiDependencyDefinition,
    NodeInvocation,
    graph,
)
from dagloom.definitions.graph_asset import graph_asset, graph_multi_asset
from dagloom.definitions.hook import (
    HookContext,
    HookDefinition,
    build_hook_context,
    failure_hook,
    success_hook,
)
from dagloom.definitions.io_manager import (
    ConfigurableIOManager,
    ConfigurableIOManagerFactory,
    FilesystemIOManager,
    InMemoryIOManager,
    InputContext,
    InputManager,
    InputManagerDefinition,
    IOManager,
    IOManagerDefinition,
    OutputContext,
    UPathIOManager,
    build_input_context,
    build_output_context,
    fs_io_manager,
    input_manager,
    io_manager,
    mem_io_manager,
)
from dagloom.definitions.job import JobDefinition, job
from dagloom.definitions.logger import (
    InitLoggerContext,
    LoggerDefinition,
    build_init_logger_context,
    colored_console_logger,
    default_loggers,
    logger,
)
from dagloom.definitions.metadata import (
    BoolMetadataValue,
    DagsterAssetMetadataValue,
    DagsterRunMetadataValue,
    FloatMetadataValue,
    IntMetadataValue,
    JsonMetadataValue,
    MarkdownMetadataValue,
    MetadataValue,
    NotebookMetadataValue,
    NullMetadataValue,
    PathMetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableConstraints,
    TableMetadataSet,
    TableMetadataValue,
    TableRecord,
    TableSchema,
    TableSchemaMetadataValue,
    TextMetadataValue,
    TimestampMetadataValue,
    UrlMetadataValue,
)
from dagloom.definitions.multi_asset_sensor import (
    MultiAssetSensorDefinition,
    MultiAssetSensorEvaluationContext,
    build_multi_asset_sensor_context,
    multi_asset_sensor,
)
from dagloom.definitions.observable import (
    MultiObservableSourceAsset,
    external_assets_from_specs,
    multi_observable_source_asset,
    observable_source_asset,
    observe,
)
from dagloom.definitions.op import InputDefinition, OpDefinition, OutputDefinition, op
from dagloom.definitions.outputs import (
    AssetMaterialization,
    AssetObservation,
    DynamicOut,
    DynamicOutput,
    ExpectationResult,
    In,
    MaterializeResult,
    Out,
    Output,
)
from dagloom.definitions.partition_mapping import (
    AllPartitionMapping,
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    LastPartitionMapping,
    MultiPartitionMapping,
    MultiToSingleDimensionPartitionMapping,
    PartitionMapping,
    SpecificPartitionsPartitionMapping,
    StaticPartitionMapping,
    TimeWindowPartitionMapping,
)
from dagloom.definitions.partitioned_config import (
    PartitionedConfig,
    daily_partitioned_config,
    dynamic_partitioned_config,
    hourly_partitioned_config,
    monthly_partitioned_config,
    partitioned_config,
    static_partitioned_config,
    weekly_partitioned_config,
)
from dagloom.definitions.partitioned_schedule import build_schedule_from_partitioned_job
from dagloom.definitions.partitions import (
    AddDynamicPartitionsRequest,
    DailyPartitionsDefinition,
    DeleteDynamicPartitionsRequest,
    DynamicPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionKeyRange,
    PartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindow,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)
from dagloom.definitions.paths import file_relative_path
from dagloom.definitions.resources import (
    ConfigurableResource,
    ConfigurableResourceFactory,
    EnvVar,
    InitResourceContext,
    ResourceDefinition,
    ResourceDependency,
    ResourceParam,
    build_init_resource_context,
    build_resources,
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
from dagloom.definitions.staleness import StaleCause, StaleCauseCategory, StaleStatus

__all__ = [
    "AssetDep",
    "AssetIn",
    "AssetKey",
    "AssetMaterialization",
    "AssetObservation",
    "AssetOut",
    "AssetSelection",
    "AssetSensorDefinition",
    "AssetSpec",
    "AssetsDefinition",
    "AutomationCondition",
    "AutomationConditionSensorDefinition",
    "Backoff",
    "BoolMetadataValue",
    "Config",
    "ConfigMapping",
    "ConfigurableIOManager",
    "ConfigurableIOManagerFactory",
    "ConfigurableResource",
    "ConfigurableResourceFactory",
    "DagsterAssetMetadataValue",
    "DagsterRunMetadataValue",
    "DagsterRunStatus",
    "DagsterType",
    "DagsterTypeLoader",
    "DagsterTypeLoaderContext",
    "DefaultScheduleStatus",
    "DefaultSensorStatus",
    "Definitions",
    "DependencyDefinition",
    "Dict",
    "DynamicOut",
    "DynamicOutput",
    "EnvVar",
    "EventLogEntry",
    "Executor",
    "ExecutorDefinition",
    "ExpectationResult",
    "FilesystemIOManager",
    "FloatMetadataValue",
    "GraphDefinition",
    "GraphIn",
    "GraphOut",
    "HookContext",
    "HookDefinition",
    "IOManager",
    "IOManagerDefinition",
    "In",
    "InMemoryIOManager",
    "InitExecutorContext",
    "InitLoggerContext",
    "InitResourceContext",
    "InputContext",
    "InputDefinition",
    "InputManager",
    "InputManagerDefinition",
    "IntMetadataValue",
    "Jitter",
    "JobDefinition",
    "JsonMetadataValue",
    "List",
    "LoggerDefinition",
    "MarkdownMetadataValue",
    "MaterializeResult",
    "MetadataValue",
    "MultiDependencyDefinition",
    "NodeInvocation",
    "NotebookMetadataValue",
    "Nothing",
    "NullMetadataValue",
    "OpDefinition",
    "Optional",
    "Out",
    "Output",
    "OutputContext",
    "OutputDefinition",
    "PathMetadataValue",
    "PermissiveConfig",
    "PythonObjectDagsterType",
    "ResourceDefinition",
    "ResourceDependency",
    "ResourceParam",
    "RetryPolicy",
    "RunConfig",
    "RunFailureSensorContext",
    "RunRequest",
    "RunStatusSensorContext",
    "RunStatusSensorDefinition",
    "ScheduleDefinition",
    "ScheduleEvaluationContext",
    "SensorDefinition",
    "SensorEvaluationContext",
    "SensorResult",
    "Set",
    "SkipReason",
    "SourceAsset",
    "TableColumn",
    "TableColumnConstraints",
    "TableConstraints",
    "TableMetadataSet",
    "TableMetadataValue",
    "TableRecord",
    "TableSchema",
    "TableSchemaMetadataValue",
    "TextMetadataValue",
    "TimestampMetadataValue",
    "Tuple",
    "TypeCheck",
    "TypeCheckContext",
    "UPathIOManager",
    "UnresolvedAssetJobDefinition",
    "UrlMetadataValue",
    "asset",
    "asset_sensor",
    "build_hook_context",
    "build_init_logger_context",
    "build_init_resource_context",
    "build_input_context",
    "build_output_context",
    "build_resources",
    "build_run_status_sensor_context",
    "build_schedule_context",
    "build_sensor_context",
    "check_dagster_type",
    "colored_console_logger",
    "config_mapping",
    "configured",
    "dagster_type_loader",
    "default_loggers",
    "define_asset_job",
    "executor",
    "failure_hook",
    "file_relative_path",
    "fs_io_manager",
    "graph",
    "graph_asset",
    "graph_multi_asset",
    "in_process_executor",
    "input_manager",
    "io_manager",
    "job",
    "load_assets_from_current_module",
    "load_assets_from_modules",
    "load_assets_from_package_module",
    "load_assets_from_package_name",
    "logger",
    "make_python_type_usable_as_dagster_type",
    "map_asset_specs",
    "materialize",
    "materialize_to_memory",
    "mem_io_manager",
    "multi_asset",
    "multi_or_in_process_executor",
    "multiprocess_executor",
    "op",
    "resource",
    "run_failure_sensor",
    "run_status_sensor",
    "schedule",
    "sensor",
    "success_hook",
    "usable_as_dagster_type",
    "with_resources",
]
# Partitions: kept as their own list so the definitions above stay one sorted block.
__all__ += [
    "AddDynamicPartitionsRequest",
    "AllPartitionMapping",
    "AssetCheckEvaluation",
    "AssetCheckKey",
    "AssetCheckResult",
    "AssetCheckSeverity",
    "AssetCheckSpec",
    "AssetChecksDefinition",
    "BackfillPolicy",
    "DailyPartitionsDefinition",
    "DeleteDynamicPartitionsRequest",
    "DimensionPartitionMapping",
    "DynamicPartitionsDefinition",
    "HourlyPartitionsDefinition",
    "IdentityPartitionMapping",
    "LastPartitionMapping",
    "MonthlyPartitionsDefinition",
    "MultiPartitionKey",
    "MultiPartitionMapping",
    "MultiPartitionsDefinition",
    "MultiToSingleDimensionPartitionMapping",
    "PartitionKeyRange",
    "PartitionMapping",
    "PartitionedConfig",
    "PartitionsDefinition",
    "SpecificPartitionsPartitionMapping",
    "StaticPartitionMapping",
    "StaticPartitionsDefinition",
    "TimeWindow",
    "TimeWindowPartitionMapping",
    "TimeWindowPartitionsDefinition",
    "WeeklyPartitionsDefinition",
    "asset_check",
    "build_schedule_from_partitioned_job",
    "daily_partitioned_config",
    "dynamic_partitioned_config",
    "hourly_partitioned_config",
    "monthly_partitioned_config",
    "multi_asset_check",
    "partitioned_config",
    "static_partitioned_config",
    "weekly_partitioned_config",
]
# Ready-made asset checks and the loaders of a module's checks.
__all__ += [
    "build_column_schema_change_checks",
    "build_last_update_freshness_checks",
    "build_metadata_bounds_checks",
    "build_sensor_for_freshness_checks",
    "build_time_partition_freshness_checks",
    "load_asset_checks_from_current_module",
    "load_asset_checks_from_modules",
    "load_asset_checks_from_package_module",
    "load_asset_checks_from_package_name",
]
# Multi-asset sensors and alerting sensors.
__all__ += [
    "MultiAssetSensorDefinition",
    "MultiAssetSensorEvaluationContext",
    "build_multi_asset_sensor_context",
    "make_email_on_run_failure_sensor",
    "multi_asset_sensor",
]
# External assets, observations, data versions and staleness.
__all__ += [
    "DataVersion",
    "DataVersionsByPartition",
    "MultiObservableSourceAsset",
    "ObserveResult",
    "StaleCause",
    "StaleCauseCategory",
    "StaleStatus",
    "external_assets_from_specs",
    "multi_observable_source_asset",
    "observable_source_asset",
    "observe",
]


class _DefinitionsPackage(types.ModuleType):
    """This package's module type: calling the package applies `@definitions`."""

    def __call__(self, fn: Callable[[], Definitions]) -> Definitions:
        return definitions_decorator(fn)


# Swapping a module's class keeps it the same object in sys.modules, so every import of
# the package and its submodules is unaffected; only calling it gains a meaning.
sys.modules[__name__].__class__ = _DefinitionsPackage
