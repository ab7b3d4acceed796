"""The run launcher family: each launcher's config model, what it is built from, and
building the one an instance's `run_launcher` section (or a topology's `launcher`) names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from dagloom._components import ComponentFamily, KeyPath, build_component
from dagloom.actors.job_source import JobSource, LoaderJobSource
from dagloom.actors.run_launcher.base import RunLauncher
from dagloom.errors import ConfigError
from dagloom.execution.origin import CodeOrigin

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InProcessRunLauncherConfig(_Config):
    """`run_launcher: {class: in_process, config: ...}`."""

    heartbeat_interval_seconds: float = Field(default=30.0, gt=0)


class SubprocessRunLauncherConfig(_Config):
    """`run_launcher: {class: subprocess, config: ...}` (Dagster's `DefaultRunLauncher`)."""

    terminate_grace_seconds: float = Field(default=10.0, ge=0)
    heartbeat_interval_seconds: float = Field(default=30.0, gt=0)


class WarmPoolRunLauncherConfig(_Config):
    """`run_launcher: {class: warm_pool, config: ...}`."""

    size: int = Field(default=2, ge=1)
    host: str = "127.0.0.1"
    start_timeout_seconds: float = Field(default=120.0, gt=0)
    heartbeat_interval_seconds: float = Field(default=30.0, gt=0)


class WorkerPoolRunLauncherConfig(_Config):
    """`launcher: {kind: worker_pool}` in a topology: the workers are its worker nodes'."""

    call_timeout_seconds: float = Field(default=30.0, gt=0)


@dataclass(frozen=True, slots=True)
class LauncherContext:
    """What a run launcher's `from_config` gets besides its config: the instance, where each
    code location's code is (for worker processes), the jobs of an in-process worker
    (default: imported from `origins`), the run workers of a topology's worker nodes, and
    the actor's name."""

    instance: DagloomInstance
    origins: Mapping[str, CodeOrigin] = field(default_factory=dict)
    jobs: JobSource | None = None
    workers: Sequence[ActorRef[Any, Any]] = ()
    name: str = "run_launcher"

    def job_source(self) -> JobSource:
        """`jobs`, else a source importing each location of `origins` itself."""
        return self.jobs if self.jobs is not None else LoaderJobSource(self.origins)


DEFAULT_HEARTBEAT_INTERVAL_SECONDS = 30.0
"""How often a launcher's workers write each run's heartbeat, unless configured."""

HEARTBEATS_PER_TIMEOUT = 4
"""A worker left to choose beats this many times within monitoring's heartbeat timeout."""


def heartbeat_interval(
    config: BaseModel, instance: DagloomInstance, *, key: Sequence[str] = ("run_launcher",)
) -> float:
    """How often a launcher's workers write their runs' heartbeats, so that run monitoring
    never counts a live worker lost (`run_monitoring.heartbeat_timeout_seconds`).

    `config.heartbeat_interval_seconds` when given; `ConfigError` naming both keys when
    run monitoring is on and that interval is more than half the timeout (a live worker
    would be failed between two beats). Not given: the 30 s default, or a quarter of the
    timeout when run monitoring is on and that is shorter.
    """
    given: float = getattr(config, "heartbeat_interval_seconds", DEFAULT_HEARTBEAT_INTERVAL_SECONDS)
    monitoring = instance.config.run_monitoring
    if not monitoring.enabled:
        return given
    timeout = monitoring.heartbeat_timeout_seconds
    if "heartbeat_interval_seconds" in config.model_fields_set:
        if given * 2 > timeout:
            raise ConfigError(
                "run workers would be counted lost between two of their heartbeats",
                source=instance.config_source,
                problems=[
                    (
                        (*key, "config", "heartbeat_interval_seconds"),
                        f"{given:g} s is more than half of "
                        f"run_monitoring.heartbeat_timeout_seconds ({timeout:g} s)",
                    )
                ],
            )
        return given
    return min(given, timeout / HEARTBEATS_PER_TIMEOUT)


_LAUNCHERS = "dagloom.actors.run_launcher"

RUN_LAUNCHERS = ComponentFamily(
    section="run_launcher",
    requirement="a RunLauncher (dagloom.actors.run_launcher.RunLauncher subclass)",
    accepts=lambda cls: issubclass(cls, RunLauncher),
    builtins={
        name: target
        for names, target in (
            (
                ("in_process", "InProcessRunLauncher"),
                f"{_LAUNCHERS}.in_process:InProcessRunLauncher",
            ),
            (
                ("subprocess", "SubprocessRunLauncher", "DefaultRunLauncher"),
                f"{_LAUNCHERS}.subprocess_launcher:SubprocessRunLauncher",
            ),
            (("warm_pool", "WarmPoolRunLauncher"), f"{_LAUNCHERS}.warm_pool:WarmPoolRunLauncher"),
            (
                ("worker_pool", "WorkerPoolRunLauncher"),
                "dagloom.topology.dispatch:WorkerPoolRunLauncher",
            ),
            (("dask", "DaskRunLauncher"), "dagloom.dask.launcher:DaskRunLauncher"),
        )
        for name in names
    },
)
"""The run launchers, by short name and class name; a user's is a `RunLauncher` subclass
(with `config_model` and `from_config(config, LauncherContext)`), named by `module` and
`class`."""


def make_run_launcher(
    module: str | None,
    class_name: str,
    config: Mapping[str, Any] | None,
    context: LauncherContext,
    *,
    path: KeyPath | None = None,
    source: str | None = None,
) -> RunLauncher:
    """The launcher `{module, class, config}` describes, built for `context`; `ConfigError`
    names `source` and the key path (under `path`, default `run_launcher`) at fault."""
    launcher = build_component(
        RUN_LAUNCHERS, module, class_name, config, context, path=path, source=source
    )
    assert isinstance(launcher, RunLauncher)  # the family accepts RunLaunchers only
    return launcher


def build_run_launcher(
    instance: DagloomInstance,
    origins: Mapping[str, CodeOrigin],
    *,
    jobs: JobSource | None = None,
    workers: Sequence[ActorRef[Any, Any]] = (),
    name: str = "run_launcher",
) -> RunLauncher:
    """The launcher the instance's `run_launcher` section configures.

    Absent, it is `warm_pool` (`in_process` on an ephemeral instance, whose storage no other
    process can reach). `origins` names each code location's code for worker processes;
    `jobs` (default: loaded from `origins`) serves an in-process worker. Raises
    `ConfigError` naming the file and `run_launcher.module`, `.class` or the config key
    path at fault. Builds the actor only; the wiring runs it.
    """
    context = LauncherContext(instance, origins, jobs, workers, name)
    spec = instance.config.run_launcher
    if spec is None:
        default = "in_process" if instance.is_ephemeral else "warm_pool"
        return make_run_launcher(None, default, {}, context)
    return make_run_launcher(
        spec.module, spec.class_name, spec.config, context, source=instance.config_source
    )
