"""Scale out on Dask: `dask_executor` runs steps as Dask tasks, `DaskRunLauncher` runs each
run's worker as a Dask task. Needs the `dask` extra (`pip install 'dagloom[dask]'`)."""

from __future__ import annotations

from dagloom.dask.executor import (
    DaskExecutor,
    DaskExecutorConfig,
    dask_executor,
    run_canceled,
)
from dagloom.dask.launcher import DaskRunLauncher, DaskRunLauncherConfig

__all__ = [
    "DaskExecutor",
    "DaskExecutorConfig",
    "DaskRunLauncher",
    "DaskRunLauncherConfig",
    "dask_executor",
    "run_canceled",
]
