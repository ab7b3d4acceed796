"""dagloom: declare ops, jobs, assets, schedules and sensors with Dagster's names; run them.

This namespace holds the public API only. Importing it stays light (no server, gRPC or
GraphQL stacks): those load when a server or client is started, and the few names below that
would pull in storage load on first use (`__getattr__`).

`dagloom.definitions` is both the definitions package and Dagster's `@definitions` decorator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dagloom import definitions as definitions  # the package, callable as @definitions
from dagloom.definitions import *  # noqa: F403 - the definitions API is the public API
from dagloom.definitions import __all__ as _definitions_all
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
    AssetExecutionContext,
    OpExecutionContext,
    build_asset_context,
    build_op_context,
)
from dagloom.execution.result import ExecuteInProcessResult
from dagloom.messages import EventType as DagloomEventType
from dagloom.messages import RunStatus as DagloomRunStatus

if TYPE_CHECKING:
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
    from dagloom.execution.event_view import DagsterEvent, DagsterEventType
    from dagloom.execution.run_config import validate_run_config
    from dagloom.execution.step_log import get_dagster_logger
    from dagloom.instance import DagloomInstance
    from dagloom.instance import DagloomInstance as DagsterInstance
    from dagloom.instance.for_test import instance_for_test
    from dagloom.instance.sync import (
        AssetRecordsFilter,
        EventLogRecord,
        EventRecordsFilter,
        EventRecordsResult,
    )

__version__ = "0.1.0"

# Dagster's names for the scalar types of config schemas and op inputs and outputs; dagloom
# takes the Python types themselves in both places.
Bool = bool
Float = float
Int = int
String = str

_CONFIG_TYPES = "dagloom.definitions.config_types"
# name -> (module, attribute): loaded on first use, so `import dagloom` does not pay for them.
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
    "DagsterEvent": ("dagloom.execution.event_view", "DagsterEvent"),
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
}


def __getattr__(name: str) -> Any:
    """The names of `_LAZY`, imported on first use and then kept as module globals."""
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'dagloom' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


__all__ = [
    *_definitions_all,
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
    "AssetExecutionContext",
    "ConfigError",
    "DagloomError",
    "DagloomEventType",
    "DagloomExecutionError",
    "DagloomInstance",
    "DagloomInvalidSelectionError",
    "DagloomRunStatus",
    "DagsterEvent",
    "DagsterError",
    "DagsterEventType",
    "DagsterInstance",
    "DagsterInvalidConfigError",
    "DagsterInvalidDefinitionError",
    "DagsterInvalidInvocationError",
    "DagsterUnknownPartitionError",
    "DagsterTypeCheckDidNotPass",
    "DefinitionError",
    "ExecuteInProcessResult",
    "Failure",
    "OpExecutionContext",
    "RetryRequested",
    "RunNotFoundError",
    "StorageError",
    "UserCodeError",
    "build_asset_context",
    "build_op_context",
    "definitions",
    "get_dagster_logger",
    "validate_run_config",
    "Bool",
    "Float",
    "Int",
    "String",
    "config_from_files",
    "config_from_yaml_strings",
    "AssetRecordsFilter",
    "EventRecordsFilter",
    "EventRecordsResult",
    "EventLogRecord",
    "instance_for_test",
]
