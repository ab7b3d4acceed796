"""Workspaces: `workspace.yaml`'s code locations, and refs to each once they serve.

A workspace lists where each location's code is::

    load_from:
      - python_file: defs.py                      # short form; named after the file
      - python_file:
          relative_path: pipelines/etl.py
          location_name: etl
          attribute: defs
          managed: true                           # served by a child `dagloom code-server`
      - python_module: {module_name: analytics.defs, location_name: analytics}
      - grpc_server: {host: 127.0.0.1, port: 4000, location_name: remote}

Relative paths are relative to the workspace file's directory. Reading and planning are
pure (`parse_workspace`, `plan_locations`); `open_workspace` starts what the plan asks for
(in-process `CodeLocationServer`s, managed code-server processes) and yields a `Workspace`
of refs, one per location, whichever way it is reached.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import ByteReceiveStream, Process, TaskStatus
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dagloom._logging import get_logger
from dagloom.actors import Backoff, HealthReporter, Supervisor
from dagloom.actors.code_location import (
    CodeLocationReply,
    CodeLocationRequest,
    CodeLocationServer,
)
from dagloom.errors import ActorUnavailableError, ConfigError
from dagloom.execution.origin import CodeOrigin
from dagloom.instance.config import problems_of, read_yaml_file
from dagloom.messages.rpc import PingRequest
from dagloom.transport import ActorRef, GrpcTransport, MemoryTransport, split_address

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance

__all__ = [
    "WORKSPACE_FILE",
    "GrpcServerTarget",
    "InProcessLocation",
    "LoadFromEntry",
    "LocationPlan",
    "ManagedLocation",
    "PythonFileTarget",
    "PythonModuleTarget",
    "RemoteLocation",
    "Workspace",
    "WorkspaceConfig",
    "code_server_command",
    "instance_args_of",
    "listening_line",
    "load_workspace_config",
    "open_workspace",
    "open_workspace_file",
    "parse_listening_line",
    "parse_workspace",
    "plan_locations",
    "read_workspace_plans",
]

WORKSPACE_FILE = "workspace.yaml"

LocationRef = ActorRef[CodeLocationRequest, CodeLocationReply]


# -- the file -------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _CodeTarget(_Model):
    location_name: str | None = Field(default=None, min_length=1)
    attribute: str | None = None
    working_directory: str | None = None
    managed: bool = False
    """Serve it from a child `dagloom code-server` process rather than in this one."""
    executable_path: str | None = None
    """The Python that runs the managed server (default: this one); implies `managed`."""

    @property
    def is_managed(self) -> bool:
        return self.managed or self.executable_path is not None


class PythonFileTarget(_CodeTarget):
    """`python_file:` a definitions file, relative to the workspace file."""

    relative_path: str = Field(min_length=1)


class PythonModuleTarget(_CodeTarget):
    """`python_module:` an importable module, found from `working_directory`."""

    module_name: str = Field(min_length=1)


class GrpcServerTarget(_Model):
    """`grpc_server:` a code server already running; `location_name` is the name it serves
    under (its `--location-name`)."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    location_name: str = Field(min_length=1)


class LoadFromEntry(_Model):
    """One `load_from` item: exactly one of its three kinds."""

    python_file: PythonFileTarget | None = None
    python_module: PythonModuleTarget | None = None
    grpc_server: GrpcServerTarget | None = None

    @field_validator("python_file", mode="before")
    @classmethod
    def _short_file(cls, value: Any) -> Any:
        return {"relative_path": value} if isinstance(value, str) else value

    @field_validator("python_module", mode="before")
    @classmethod
    def _short_module(cls, value: Any) -> Any:
        return {"module_name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _exactly_one(self) -> LoadFromEntry:
        given = [k for k in ("python_file", "python_module", "grpc_server") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of python_file, python_module or grpc_server")
        return self

    @property
    def kind(self) -> str:
        """Which of the three it is: `python_file`, `python_module` or `grpc_server`."""
        if self.python_file is not None:
            return "python_file"
        return "python_module" if self.python_module is not None else "grpc_server"

    @property
    def location_name(self) -> str:
        """The location's name: given, else the file's stem or the module's name."""
        if self.python_file is not None:
            return self.python_file.location_name or Path(self.python_file.relative_path).stem
        if self.python_module is not None:
            return self.python_module.location_name or self.python_module.module_name
        assert self.grpc_server is not None
        return self.grpc_server.location_name


class WorkspaceConfig(_Model):
    """A whole `workspace.yaml`."""

    load_from: list[LoadFromEntry] = Field(min_length=1)


def parse_workspace(data: Any, *, source: str | None = None) -> WorkspaceConfig:
    """Validate a loaded workspace tree.

    Raises `ConfigError` naming `source` and the key path of each problem
    (`load_from[1].python_file.relative_path`), including two entries with one location name.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping with `load_from`, found {type(data).__name__}", source=source
        )
    try:
        config = WorkspaceConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("invalid workspace", source=source, problems=problems_of(exc)) from exc
    seen: dict[str, int] = {}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for i, entry in enumerate(config.load_from):
        name = entry.location_name
        if name in seen:
            problems.append(
                (
                    ("load_from", i, entry.kind, "location_name"),
                    f"location name {name!r} is already used by load_from[{seen[name]}]",
                )
            )
        seen.setdefault(name, i)
    if problems:
        raise ConfigError("invalid workspace", source=source, problems=problems)
    return config


def load_workspace_config(path: Path) -> WorkspaceConfig:
    """Read and validate a workspace file; `ConfigError` names the file and key paths."""
    return parse_workspace(read_yaml_file(path), source=str(path))


# -- the plan: how each location is reached -----------------------------------------------


@dataclass(frozen=True, slots=True)
class InProcessLocation:
    """Served by a `CodeLocationServer` in this process."""

    location_name: str
    source: CodeOrigin


@dataclass(frozen=True, slots=True)
class ManagedLocation:
    """Served by a child `dagloom code-server start` process that the workspace owns."""

    location_name: str
    source: CodeOrigin
    executable: str
    host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class RemoteLocation:
    """Served by a code server someone else runs, at `address` (`host:port`)."""

    location_name: str
    address: str


LocationPlan = InProcessLocation | ManagedLocation | RemoteLocation


def plan_locations(config: WorkspaceConfig, *, base_dir: Path) -> list[LocationPlan]:
    """How to reach each location of `config`, in order; pure.

    Paths (files, working directories) are made absolute against `base_dir`, the workspace
    file's directory; a module's working directory defaults to `base_dir`.
    """
    plans: list[LocationPlan] = []
    for entry in config.load_from:
        name = entry.location_name
        target: PythonFileTarget | PythonModuleTarget
        if entry.grpc_server is not None:
            server = entry.grpc_server
            plans.append(RemoteLocation(name, f"{server.host}:{server.port}"))
            continue
        if entry.python_file is not None:
            target = entry.python_file
            working = _under(base_dir, target.working_directory)
            source = CodeOrigin(
                python_file=str(_under(base_dir, target.relative_path)),
                attribute=target.attribute,
                working_directory=str(working) if working is not None else None,
            )
        else:
            assert entry.python_module is not None
            target = entry.python_module
            source = CodeOrigin(
                module_name=target.module_name,
                attribute=target.attribute,
                working_directory=str(_under(base_dir, target.working_directory) or base_dir),
            )
        if target.is_managed:
            plans.append(ManagedLocation(name, source, target.executable_path or sys.executable))
        else:
            plans.append(InProcessLocation(name, source))
    return plans


def _under(base_dir: Path, path: str | None) -> Path | None:
    if path is None:
        return None
    return (base_dir / os.path.expanduser(path)).resolve()


def code_server_command(
    plan: ManagedLocation, *, port: int | None = None, instance_args: Sequence[str] = ()
) -> list[str]:
    """The command line that serves `plan`: `dagloom code-server start` run by its Python,
    on `port`, or on the first free port from 4000 when None; `instance_args` name the
    instance its ticks read (`--home`, `--config`; see `instance_args_of`)."""
    source = plan.source
    command = [plan.executable, "-m", "dagloom.cli", "code-server", "start"]
    if source.python_file is not None:
        command += ["--python-file", source.python_file]
    else:
        assert source.module_name is not None
        command += ["--module-name", source.module_name]
    if source.attribute is not None:
        command += ["--attribute", source.attribute]
    if source.working_directory is not None:
        command += ["--working-directory", source.working_directory]
    command += ["--location-name", plan.location_name, "--host", plan.host]
    if port is not None:
        command += ["--port", str(port)]
    return [*command, *instance_args]


def instance_args_of(instance: DagloomInstance | None) -> list[str]:
    """The `--home` / `--config` options that point a code server at `instance`; none for
    no instance or an ephemeral one, which no other process can reach (that server's ticks
    then read the instance of its `$DAGLOOM_HOME`)."""
    if instance is None or instance.is_ephemeral:
        return []
    args = ["--home", str(instance.home)]
    if instance.config_source is not None:
        args += ["--config", instance.config_source]
    return args


def read_workspace_plans(path: Path) -> list[LocationPlan]:
    """Read `path` and plan its locations against its directory; blocks on the file."""
    config = load_workspace_config(path)
    return plan_locations(config, base_dir=path.resolve().parent)


# -- the running workspace ------------------------------------------------------------------


class Workspace:
    """The running locations of a workspace, by name: a ref to each, whichever transport.

    In-process locations are also reachable directly (`server`), for run workers in this
    process that want the job object itself. Made by `open_workspace`; its refs stop
    working when that context exits.
    """

    def __init__(
        self,
        refs: Mapping[str, LocationRef],
        servers: Mapping[str, CodeLocationServer],
        addresses: Mapping[str, str],
        pids: Mapping[str, int] | None = None,
    ) -> None:
        self._refs = dict(refs)
        self._servers = dict(servers)
        self._addresses = dict(addresses)
        # Shared with the tasks that keep managed servers running, which update it.
        self._pids = pids if pids is not None else {}

    @property
    def location_names(self) -> list[str]:
        """Every location, in workspace order."""
        return list(self._refs)

    def ref(self, location_name: str) -> LocationRef:
        """The ref to `location_name`; `KeyError` naming the known ones if there is none."""
        try:
            return self._refs[location_name]
        except KeyError:
            raise KeyError(
                f"no code location {location_name!r} in the workspace (it has {sorted(self._refs)})"
            ) from None

    def server(self, location_name: str) -> CodeLocationServer | None:
        """The in-process server of `location_name`, or None if it is served elsewhere."""
        return self._servers.get(location_name)

    def address(self, location_name: str) -> str | None:
        """The `host:port` serving `location_name`, or None if it is in-process."""
        return self._addresses.get(location_name)

    def pid(self, location_name: str) -> int | None:
        """The process id of the managed server of `location_name` now, or None if the
        workspace does not run one for it."""
        return self._pids.get(location_name)


@asynccontextmanager
async def open_workspace(
    plans: Sequence[LocationPlan],
    *,
    memory: MemoryTransport | None = None,
    grpc: GrpcTransport | None = None,
    restart_backoff: Backoff = Backoff(initial=0.5, maximum=10.0),  # noqa: B008 - frozen
    instance: DagloomInstance | None = None,
) -> AsyncIterator[Workspace]:
    """Start every location of `plans` and yield the workspace once each can answer.

    In-process locations run under one supervisor and are ready once their code imported
    (or failed to: that is their `load_error`). Managed ones are started as child
    processes, each on the first free port from 4000, and are ready once they answer a
    health ping; one that exits is started again on its port after `restart_backoff`, and
    refs reconnect to it. Remote ones are not contacted. `memory` and `grpc` make the refs
    (defaults: a new `MemoryTransport`, and a `GrpcTransport` closed on exit). The ticks of
    in-process and managed locations read `instance` as `context.instance` (see
    `instance_args_of` for managed ones).

    Raises `ActorUnavailableError` if a managed server exits before it serves. On exit every
    location is stopped and every child process terminated (killed after 5 s).
    """
    memory = memory or MemoryTransport()
    own_grpc = grpc is None
    client = grpc or GrpcTransport()
    refs: dict[str, LocationRef] = {}
    servers: dict[str, CodeLocationServer] = {}
    addresses: dict[str, str] = {}
    pids: dict[str, int] = {}
    supervisor = Supervisor("workspace")
    for plan in plans:
        if isinstance(plan, InProcessLocation):
            servers[plan.location_name] = CodeLocationServer(
                plan.location_name, plan.source, instance=instance
            )
            supervisor.add(servers[plan.location_name])
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            for plan in plans:
                match plan:
                    case InProcessLocation(location_name=name):
                        refs[name] = memory.ref(servers[name])
                    case ManagedLocation(location_name=name):
                        address = await tg.start(
                            _run_managed,
                            plan,
                            client,
                            restart_backoff,
                            pids,
                            instance_args_of(instance),
                        )
                        addresses[name] = address
                        refs[name] = client.ref(CodeLocationServer, name=name, address=address)
                    case RemoteLocation(location_name=name, address=address):
                        addresses[name] = address
                        refs[name] = client.ref(CodeLocationServer, name=name, address=address)
            yield Workspace(refs, servers, addresses, pids)
            tg.cancel_scope.cancel()
    finally:
        if own_grpc:
            client.close()


@asynccontextmanager
async def open_workspace_file(
    path: Path,
    *,
    memory: MemoryTransport | None = None,
    grpc: GrpcTransport | None = None,
    instance: DagloomInstance | None = None,
) -> AsyncIterator[Workspace]:
    """Read `path` (a `workspace.yaml`) and open its workspace; see `open_workspace`.

    Raises `ConfigError` naming the file and key path before anything starts.
    """
    plans = await anyio.to_thread.run_sync(read_workspace_plans, path)
    async with open_workspace(plans, memory=memory, grpc=grpc, instance=instance) as workspace:
        yield workspace


# -- managed code servers -------------------------------------------------------------------

HEALTHY_WITHIN = 30.0
"""Seconds a code server has, after printing its address, to answer a health ping."""


def listening_line(location_name: str, address: str) -> str:
    """The line a code server prints once it serves: it ends with `listening on <address>`."""
    return f"dagloom code server for location {location_name!r} listening on {address}"


def parse_listening_line(line: str) -> str | None:
    """The address in a line printed by a code server, or None if it is not that line."""
    match = _LISTENING.search(line)
    return match.group(1) if match else None


_LISTENING = re.compile(r"listening on (\S+)\s*$")


async def _run_managed(
    plan: ManagedLocation,
    client: GrpcTransport,
    backoff: Backoff,
    pids: dict[str, int],
    instance_args: Sequence[str] = (),
    *,
    task_status: TaskStatus[str],
) -> None:
    """Keep a code server process running for `plan` (its instance named by
    `instance_args`); report its address once it serves.

    The first start must serve (else `ActorUnavailableError`); later starts reuse its port,
    so refs made from the reported address keep working, and are retried after `backoff`.
    """
    log = get_logger("dagloom.code").bind(location=plan.location_name)
    port: int | None = None
    reported = False
    failures = 0
    while True:
        async with _code_server_process(plan, port, instance_args) as (process, address):
            pids[plan.location_name] = process.pid
            healthy = False
            if address is not None:
                with anyio.move_on_after(HEALTHY_WITHIN):
                    await _wait_healthy(client, address)
                    healthy = True
            if not reported:
                if address is None or not healthy:
                    raise ActorUnavailableError(
                        f"the code server for location {plan.location_name!r} did not serve "
                        f"(exit code {process.returncode}); its command was "
                        f"{' '.join(code_server_command(plan, instance_args=instance_args))}",
                        actor=plan.location_name,
                    )
                port = split_address(address)[1]
                task_status.started(address)
                reported = True
            if healthy:
                failures = 0
                await process.wait()
        delay = backoff.delay(failures)
        failures += 1
        log.warning("code_server_exited", exit_code=process.returncode, restart_in=delay, port=port)
        await anyio.sleep(delay)


@asynccontextmanager
async def _code_server_process(
    plan: ManagedLocation, port: int | None, instance_args: Sequence[str] = ()
) -> AsyncIterator[tuple[Process, str | None]]:
    """Start a code server; yield it with its address (None if it exited before printing
    one). What it prints afterwards is copied to this process's stdout, so its pipe never
    fills. Terminates it on exit, killing it if it has not stopped within 5 s."""
    command = code_server_command(plan, port=port, instance_args=instance_args)
    try:
        process = await anyio.open_process(command, stdin=subprocess.DEVNULL, stderr=None)
    except OSError as exc:
        raise ActorUnavailableError(
            f"cannot start the code server for location {plan.location_name!r}: {exc}",
            actor=plan.location_name,
        ) from exc
    try:
        assert process.stdout is not None
        stdout = process.stdout
        address: str | None = None
        buffer = b""
        # Startup includes importing the user's code, which may be slow, so this waits for
        # the line or for the process to end rather than for a set time.
        while address is None:
            try:
                buffer += await stdout.receive()
            except anyio.EndOfStream:
                break
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                address = address or parse_listening_line(line.decode(errors="replace"))
        if address is None:
            # It closed its stdout without serving: it is exiting; collect its exit code.
            with anyio.move_on_after(5):
                await process.wait()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_copy_to_stdout, stdout, buffer)
            yield process, address
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await _stop(process)
            await process.aclose()


async def _copy_to_stdout(stream: ByteReceiveStream, pending: bytes) -> None:
    out = sys.stdout.buffer
    if pending:
        out.write(pending)
    async for chunk in stream:
        out.write(chunk)
        out.flush()


async def _stop(process: Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    with anyio.move_on_after(5):
        await process.wait()
        return
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


async def _wait_healthy(client: GrpcTransport, address: str) -> None:
    """Ping the server until it answers; it printed its address once listening, so the
    first ping normally succeeds. Bound it with a cancel scope."""
    health = client.ref(HealthReporter, name="health", address=address)
    while True:
        try:
            await health.ask(PingRequest(), timeout=5)
            return
        except (ActorUnavailableError, TimeoutError):
            await anyio.sleep(0.05)  # the poll interval
