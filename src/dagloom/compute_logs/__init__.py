"""Compute logs: each step attempt's stdout and stderr, captured while it runs and read
back by byte cursor (`dagloom run logs`, the API, the UI).

Managers are built from the instance's `compute_logs: {module, class, config}` section:
`LocalComputeLogManager` (the default), `NoOpComputeLogManager`, and the object-store
`S3ComputeLogManager` (`dagloom.aws.s3`, the `s3` extra).

Names load on first use: a run that captures nothing (no instance) imports only `capture`
and `base`, not the managers, pydantic or storage that `read` needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagloom.compute_logs._family import COMPUTE_LOG_MANAGERS, build_compute_log_manager
    from dagloom.compute_logs.base import (
        DEFAULT_MAX_BYTES,
        DEFAULT_READ_BYTES,
        ComputeLogManager,
        LogChunk,
    )
    from dagloom.compute_logs.capture import IOType, StepLog, set_console_echo
    from dagloom.compute_logs.local import LocalComputeLogManager
    from dagloom.compute_logs.noop import NoOpComputeLogManager
    from dagloom.compute_logs.read import read_compute_log, tail_compute_log

# public name -> the module (in this package) that defines it
_LAZY: dict[str, str] = {
    "COMPUTE_LOG_MANAGERS": "_family",
    "build_compute_log_manager": "_family",
    "DEFAULT_MAX_BYTES": "base",
    "DEFAULT_READ_BYTES": "base",
    "ComputeLogManager": "base",
    "LogChunk": "base",
    "IOType": "capture",
    "StepLog": "capture",
    "set_console_echo": "capture",
    "LocalComputeLogManager": "local",
    "NoOpComputeLogManager": "noop",
    "read_compute_log": "read",
    "tail_compute_log": "read",
}


def __getattr__(name: str) -> Any:
    """Public names, imported on first use and then kept as module globals."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "COMPUTE_LOG_MANAGERS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_READ_BYTES",
    "ComputeLogManager",
    "IOType",
    "LocalComputeLogManager",
    "LogChunk",
    "NoOpComputeLogManager",
    "StepLog",
    "build_compute_log_manager",
    "read_compute_log",
    "set_console_echo",
    "tail_compute_log",
]
