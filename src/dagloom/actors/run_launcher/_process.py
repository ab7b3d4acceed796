"""Starting `dagloom run-worker` processes: their command line and their log files."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dagloom.errors import ConfigError
from dagloom.execution.origin import CodeOrigin

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance


def worker_command(
    home: Path,
    origins: Mapping[str, CodeOrigin],
    *,
    python: str = sys.executable,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command line of a run worker process over the instance at `home`."""
    from dagloom.cli.run_worker import origins_to_json

    return [
        python,
        "-m",
        "dagloom.cli.run_worker",
        "--home",
        str(home),
        "--locations-json",
        origins_to_json(dict(origins)),
        *extra,
    ]


def check_shareable(instance: DagloomInstance, launcher: str) -> None:
    """Raise `ConfigError` if worker processes could not reach the instance's storage."""
    if instance.is_ephemeral:
        raise ConfigError(
            f"the {launcher} starts worker processes, which cannot reach an ephemeral "
            "(in-memory) instance",
            problems=[
                (("run_launcher",), "use SQLite or Postgres storage, or InProcessRunLauncher")
            ],
        )


def log_path(instance: DagloomInstance, name: str) -> Path:
    """Where a worker process's stderr goes: `home/logs/run_workers/<name>.log`."""
    directory = instance.compute_logs_dir / "run_workers"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{name}.log"
