"""dagloom: declare ops, jobs, assets, schedules and sensors with Dagster's names; run them.

This namespace holds the public API only. Importing it stays light (no server, gRPC or
GraphQL stacks): those load when a server or client is started.
"""

from __future__ import annotations

from dagloom.definitions import *  # noqa: F403 - the definitions API is the public API
from dagloom.definitions import __all__ as _definitions_all
from dagloom.errors import (
    ConfigError,
    DagloomError,
    DagloomExecutionError,
    DagloomInvalidSelectionError,
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

__version__ = "0.1.0"

__all__ = [
    *_definitions_all,
    "AssetExecutionContext",
    "ConfigError",
    "DagloomError",
    "DagloomEventType",
    "DagloomExecutionError",
    "DagloomInvalidSelectionError",
    "DagloomRunStatus",
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
]
