"""Building the launcher an instance's `run_launcher` section configures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dagloom.actors.job_source import JobSource, LoaderJobSource
from dagloom.actors.run_launcher.base import RunLauncher
from dagloom.actors.run_launcher.in_process import InProcessRunLauncher
from dagloom.actors.run_launcher.subprocess_launcher import SubprocessRunLauncher
from dagloom.actors.run_launcher.warm_pool import WarmPoolRunLauncher
from dagloom.errors import ConfigError
from dagloom.execution.origin import CodeOrigin

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InProcessRunLauncherConfig(_Config):
    heartbeat_interval_seconds: float = Field(default=30.0, gt=0)


class SubprocessRunLauncherConfig(_Config):
    terminate_grace_seconds: float = Field(default=10.0, ge=0)
    heartbeat_interval_seconds: float = Field(default=30.0, gt=0)


class WarmPoolRunLauncherConfig(_Config):
    size: int = Field(default=2, ge=1)
    host: str = "127.0.0.1"
    start_timeout_seconds: float = Field(default=120.0, gt=0)
    heartbeat_interval_seconds: float = Field(default=30.0, gt=0)


_MODELS: dict[str, type[_Config]] = {
    "InProcessRunLauncher": InProcessRunLauncherConfig,
    "SubprocessRunLauncher": SubprocessRunLauncherConfig,
    "DefaultRunLauncher": SubprocessRunLauncherConfig,  # Dagster's name for one per run
    "WarmPoolRunLauncher": WarmPoolRunLauncherConfig,
}


def build_run_launcher(
    instance: DagloomInstance,
    origins: Mapping[str, CodeOrigin],
    *,
    jobs: JobSource | None = None,
    name: str = "run_launcher",
) -> RunLauncher:
    """The launcher the instance's `run_launcher` section configures.

    Absent, it is a `WarmPoolRunLauncher` (an `InProcessRunLauncher` on an ephemeral
    instance, whose storage no other process can reach). `origins` names each code
    location's code for worker processes; `jobs` (default: loaded from `origins`) serves the
    in-process launcher. Raises `ConfigError` naming `run_launcher.class` or the config key
    path at fault. Builds the actor only; the wiring runs it.
    """
    spec = instance.config.run_launcher
    class_name = spec.class_name if spec is not None else None
    raw: dict[str, Any] = dict(spec.config) if spec is not None else {}
    if class_name is None:
        class_name = "InProcessRunLauncher" if instance.is_ephemeral else "WarmPoolRunLauncher"
    model = _MODELS.get(class_name)
    if model is None:
        raise ConfigError(
            "unknown run launcher",
            source=instance.config_source,
            problems=[
                (("run_launcher", "class"), f"{class_name!r}; expected one of {sorted(_MODELS)}")
            ],
        )
    try:
        config = model.model_validate(raw)
    except ValidationError as exc:
        from dagloom.instance.config import problems_of

        raise ConfigError(
            "invalid run launcher config",
            source=instance.config_source,
            problems=problems_of(exc, ("run_launcher", "config")),
        ) from exc
    match config:
        case InProcessRunLauncherConfig():
            return InProcessRunLauncher(
                instance,
                jobs or LoaderJobSource(origins),
                name=name,
                heartbeat_interval=config.heartbeat_interval_seconds,
            )
        case SubprocessRunLauncherConfig():
            return SubprocessRunLauncher(
                instance,
                origins,
                name=name,
                terminate_grace=config.terminate_grace_seconds,
                heartbeat_interval=config.heartbeat_interval_seconds,
            )
        case WarmPoolRunLauncherConfig():
            return WarmPoolRunLauncher(
                instance,
                origins,
                size=config.size,
                host=config.host,
                name=name,
                start_timeout=config.start_timeout_seconds,
                heartbeat_interval=config.heartbeat_interval_seconds,
            )
    raise AssertionError(f"no launcher for {type(config).__name__}")
