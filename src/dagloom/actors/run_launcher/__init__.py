"""Run launchers: give a stored run a worker, in this loop, in a new process, or in a warm pool.

A family, as in Dagster: `base.py` holds what they share, one module per implementation.
"""

from __future__ import annotations

from dagloom.actors.run_launcher.base import RunLauncher, RunLauncherReply, RunLauncherRequest
from dagloom.actors.run_launcher.config import (
    RUN_LAUNCHERS,
    LauncherContext,
    build_run_launcher,
    make_run_launcher,
)
from dagloom.actors.run_launcher.in_process import InProcessRunLauncher
from dagloom.actors.run_launcher.subprocess_launcher import SubprocessRunLauncher
from dagloom.actors.run_launcher.warm_pool import WarmPoolRunLauncher, WorkerStartError

__all__ = [
    "RUN_LAUNCHERS",
    "InProcessRunLauncher",
    "LauncherContext",
    "RunLauncher",
    "RunLauncherReply",
    "RunLauncherRequest",
    "SubprocessRunLauncher",
    "WarmPoolRunLauncher",
    "WorkerStartError",
    "build_run_launcher",
    "make_run_launcher",
]
