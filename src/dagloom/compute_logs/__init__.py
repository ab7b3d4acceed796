"""Compute logs: each step attempt's stdout and stderr, captured while it runs and read
back by byte cursor (`dagloom run logs`, the API, the UI).

Managers are built from the instance's `compute_logs: {module, class, config}` section:
`LocalComputeLogManager` (the default), `NoOpComputeLogManager`, and the object-store
`S3ComputeLogManager` (`dagloom.aws.s3`, the `s3` extra).
"""

from __future__ import annotations

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
