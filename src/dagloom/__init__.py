"""dagloom: declare ops, jobs, assets, schedules and sensors with Dagster's names; run them.

This namespace holds the public API only. Importing it costs next to nothing: every name loads
on first use (`__getattr__`), the definitions API as a whole, the names of `_LAZY` one module
each, and the server, gRPC and GraphQL stacks only when a server or client is started.

`dagloom.definitions` is both the definitions package and Dagster's `@definitions` decorator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagloom import definitions as definitions
    from dagloom.definitions import *  # noqa: F403 - the definitions API is the public API
    from dagloom.definitions.config_files import config_from_files, config_from_yaml_strings
    from dagloom.definitions.config_types import (
        Array,
        BoolSource,
        Enum,
        EnumValue,
        Field,
        IntSource,
        Map,
        Noneable,
        Permissive,
        ScalarUnion,
        Selector,
        Shape,
        StringSource,
    )
    from dagloom.errors import (
        ConfigError,
        DagloomError,
        DagloomExecutionError,
        DagloomInvalidSelectionError,
        DagsterError,
        DagsterInvalidConfigError,
        DagsterInvalidDefinitionError,
        DagsterInvalidInvocationError,
        DagsterTypeCheckDidNotPass,
        DagsterUnknownPartitionError,
        DefinitionError,
        Failure,
        RetryRequested,
        RunNotFoundError,
        StorageError,
        UserCodeError,
    )
    from dagloom.execution.context import (
        AssetCheckExecutionContext,
        AssetExecutionContext,
        OpExecutionContext,
        build_asset_context,
        build_op_context,
    )
    from dagloom.execution.context import DagloomLogManager as DagsterLogManager
    from dagloom.execution.event_view import DagsterEvent, DagsterEventType
    from dagloom.execution.execute_job import ReexecutionOptions, execute_job, reconstructable
    from dagloom.execution.result import ExecuteInProcessResult
    from dagloom.execution.result import ExecuteInProcessResult as JobExecutionResult
    from dagloom.execution.result import RunView as DagsterRun
    from dagloom.execution.run_config import validate_run_config
    from dagloom.execution.step_log import get_dagster_logger
    from dagloom.instance import DagloomInstance
    from dagloom.instance import DagloomInstance as DagsterInstance
    from dagloom.instance.for_test import instance_for_test
    from dagloom.instance.records import RunRecord
    from dagloom.instance.sync import (
        AssetRecordsFilter,
        EventLogRecord,
        EventRecordsFilter,
        EventRecordsResult,
    )
    from dagloom.messages import EventType as DagloomEventType
    from dagloom.messages import RunStatus as DagloomRunStatus
    from dagloom.storage.base import RunsFilter

__version__ = "0.1.0"

# Dagster's names for the scalar types of config schemas and op inputs and outputs; dagloom
# takes the Python types themselves in both places.
Bool = bool
Float = float
Int = int
String = str
_SCALARS = ("Bool", "Float", "Int", "String")

_CONFIG_TYPES = "dagloom.definitions.config_types"
_ERRORS = "dagloom.errors"
_CONTEXT = "dagloom.execution.context"
# name -> (module, attribute): loaded on first use, so `import dagloom` costs next to nothing
# (the command line imports this package for `dagloom --help`). Any other public name is the
# definitions API's (`dagloom.definitions.__all__`), which loads whole on first use.
_LAZY: dict[str, tuple[str, str]] = {
    **{
        name: (_CONFIG_TYPES, name)
        for name in (
            "Array",
            "BoolSource",
            "Enum",
            "EnumValue",
            "Field",
            "IntSource",
            "Map",
            "Noneable",
            "Permissive",
            "ScalarUnion",
            "Selector",
            "Shape",
            "StringSource",
        )
    },
    **{
        name: (_ERRORS, name)
        for name in (
            "ConfigError",
            "DagloomError",
            "DagloomExecutionError",
            "DagloomInvalidSelectionError",
            "DagsterError",
            "DagsterInvalidConfigError",
            "DagsterInvalidDefinitionError",
            "DagsterInvalidInvocationError",
            "DagsterTypeCheckDidNotPass",
            "DagsterUnknownPartitionError",
            "DefinitionError",
            "Failure",
            "RetryRequested",
            "RunNotFoundError",
            "StorageError",
            "UserCodeError",
        )
    },
    **{
        name: (_CONTEXT, name)
        for name in (
            "AssetCheckExecutionContext",
            "AssetExecutionContext",
            "OpExecutionContext",
            "build_asset_context",
            "build_op_context",
        )
    },
    "ExecuteInProcessResult": ("dagloom.execution.result", "ExecuteInProcessResult"),
    "JobExecutionResult": ("dagloom.execution.result", "ExecuteInProcessResult"),
    "ReexecutionOptions": ("dagloom.execution.execute_job", "ReexecutionOptions"),
    "execute_job": ("dagloom.execution.execute_job", "execute_job"),
    "reconstructable": ("dagloom.execution.execute_job", "reconstructable"),
    "DagloomEventType": ("dagloom.messages", "EventType"),
    "DagloomRunStatus": ("dagloom.messages", "RunStatus"),
    "DagsterEvent": ("dagloom.execution.event_view", "DagsterEvent"),
    "DagsterLogManager": (_CONTEXT, "DagloomLogManager"),
    "DagsterEventType": ("dagloom.execution.event_view", "DagsterEventType"),
    "validate_run_config": ("dagloom.execution.run_config", "validate_run_config"),
    "get_dagster_logger": ("dagloom.execution.step_log", "get_dagster_logger"),
    "DagloomInstance": ("dagloom.instance", "DagloomInstance"),
    "DagsterInstance": ("dagloom.instance", "DagloomInstance"),
    "config_from_files": ("dagloom.definitions.config_files", "config_from_files"),
    "config_from_yaml_strings": ("dagloom.definitions.config_files", "config_from_yaml_strings"),
    "AssetRecordsFilter": ("dagloom.instance.sync", "AssetRecordsFilter"),
    "EventRecordsFilter": ("dagloom.instance.sync", "EventRecordsFilter"),
    "EventRecordsResult": ("dagloom.instance.sync", "EventRecordsResult"),
    "EventLogRecord": ("dagloom.instance.sync", "EventLogRecord"),
    "instance_for_test": ("dagloom.instance.for_test", "instance_for_test"),
    "DagsterRun": ("dagloom.execution.result", "RunView"),
    "RunRecord": ("dagloom.instance.records", "RunRecord"),
    "RunsFilter": ("dagloom.storage.base", "RunsFilter"),
}


def __getattr__(name: str) -> Any:
    """Public names, imported on first use and then kept as module globals."""
    import importlib

    if name == "__all__":
        package = importlib.import_module("dagloom.definitions")
        value: Any = [*package.__all__, *sorted(_LAZY), *_SCALARS, "definitions"]
    elif name in _LAZY:
        module_name, attribute = _LAZY[name]
        # The definitions package first: modules it imports (event_view, via the event
        # sensors) import it in turn, and would find it half-initialized otherwise.
        importlib.import_module("dagloom.definitions")
        value = getattr(importlib.import_module(module_name), attribute)
    elif name == "definitions":
        value = importlib.import_module("dagloom.definitions")
    elif name.startswith("_"):
        raise AttributeError(f"module 'dagloom' has no attribute {name!r}")
    else:
        package = importlib.import_module("dagloom.definitions")
        if name not in package.__all__:
            raise AttributeError(f"module 'dagloom' has no attribute {name!r}")
        value = getattr(package, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__")})


if TYPE_CHECKING:
    __all__ = [
        "Array",
        "AssetCheckExecutionContext",
        "AssetExecutionContext",
        "AssetRecordsFilter",
        "Bool",
        "BoolSource",
        "ConfigError",
        "DagloomError",
        "DagloomEventType",
        "DagloomExecutionError",
        "DagloomInstance",
        "DagloomInvalidSelectionError",
        "DagloomRunStatus",
        "DagsterError",
        "DagsterEvent",
        "DagsterEventType",
        "DagsterInstance",
        "DagsterInvalidConfigError",
        "DagsterInvalidDefinitionError",
        "DagsterInvalidInvocationError",
        "DagsterLogManager",
        "DagsterRun",
        "DagsterTypeCheckDidNotPass",
        "DagsterUnknownPartitionError",
        "DefinitionError",
        "Enum",
        "EnumValue",
        "EventLogRecord",
        "EventRecordsFilter",
        "EventRecordsResult",
        "ExecuteInProcessResult",
        "Failure",
        "Field",
        "Float",
        "Int",
        "IntSource",
        "JobExecutionResult",
        "Map",
        "Noneable",
        "OpExecutionContext",
        "Permissive",
        "ReexecutionOptions",
        "RetryRequested",
        "RunNotFoundError",
        "RunRecord",
        "RunsFilter",
        "ScalarUnion",
        "Selector",
        "Shape",
        "StorageError",
        "String",
        "StringSource",
        "UserCodeError",
        "build_asset_context",
        "build_op_context",
        "config_from_files",
        "config_from_yaml_strings",
        "definitions",
        "execute_job",
        "get_dagster_logger",
        "instance_for_test",
        "reconstructable",
        "validate_run_config",
    ]
