"""Commands that run a topology or talk to one: `dagloom serve` (one node), `dagloom dev`
(the whole dev topology in one process) and `dagloom job launch` (a run through the API)."""

from __future__ import annotations

import functools
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import anyio
import structlog
import typer
from rich.console import Console
from rich.text import Text

from dagloom.actors import unwrap_exception_group
from dagloom.api import AsyncClient
from dagloom.auth import TlsConfig
from dagloom.cli._app import app
from dagloom.cli._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    ConfigFilesOpt,
    ConfigJsonOpt,
    ModuleNamesOpt,
    PythonFilesOpt,
    RunConfigSources,
    TagsOpt,
    WorkspaceFileOpt,
    consoles,
    fail,
    run_options_or_exit,
)
from dagloom.cli._escape import escape_control
from dagloom.cli.job import sub as job_app
from dagloom.errors import (
    ActorUnavailableError,
    AuthenticationError,
    ConfigError,
    DagloomError,
    DefinitionError,
    PermissionDeniedError,
    StorageError,
)
from dagloom.execution.origin import CodeOrigin
from dagloom.messages import EventRecord, RunStatus
from dagloom.topology import (
    DEFAULT_API_PORT,
    DEFAULT_HOST,
    DEFAULT_WEBSERVER_PORT,
    TopologyConfig,
    dev_topology,
    load_topology,
)
from dagloom.topology.wiring import RunningNode, run_node

InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Listen beyond loopback even without auth (anyone reaching the ports is trusted).",
    ),
]


TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="DAGLOOM_TOKEN", help="The API token to present."),
]
TlsCaOpt = Annotated[
    Path | None,
    typer.Option("--tls-ca", envvar="DAGLOOM_TLS_CA", help="Connect over TLS, trusting this CA."),
]
TlsCertOpt = Annotated[
    Path | None,
    typer.Option("--tls-cert", envvar="DAGLOOM_TLS_CERT", help="Client certificate (mutual TLS)."),
]
TlsKeyOpt = Annotated[
    Path | None,
    typer.Option("--tls-key", envvar="DAGLOOM_TLS_KEY", help="The client certificate's key."),
]


def listening_lines(node: RunningNode) -> list[str]:
    """What a node prints once it serves: one `... listening on HOST:PORT` line per socket."""
    return [
        f"dagloom node {node.name!r}: {what} listening on {addr}" for what, addr in node.addresses()
    ]


async def _serve_until_signalled(
    topology: TopologyConfig, node_name: str, insecure: bool = False
) -> None:
    """Run the node until SIGINT or SIGTERM, which also stops a node still starting (an
    actor that keeps failing to start, such as a warm pool whose workers cannot load the
    code, restarts with backoff and would keep the node from ever being ready)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_signal, signals, tg.cancel_scope)
            node: RunningNode = await tg.start(
                functools.partial(
                    run_node, topology, node_name, insecure=insecure, export_security=True
                )
            )
            for line in listening_lines(node):
                print(line, flush=True)
            print(f"dagloom node {node_name!r}: ready", flush=True)


async def _cancel_on_signal(signals: AsyncIterator[int], scope: anyio.CancelScope) -> None:
    async for _ in signals:
        scope.cancel()
        return


def _run(topology: TopologyConfig, node_name: str, insecure: bool = False) -> None:
    _, err = consoles()
    # Logs go to stderr; stdout carries the addresses, for people and for scripts.
    # The stream is looked up per logger, and the defaults come back afterwards, so a caller
    # that swaps sys.stderr (a test runner) never leaves loggers writing to a closed file.
    # Debug lines (a skipped sensor tick every few seconds) are left out of a node's log.
    structlog.configure(
        logger_factory=lambda *_: structlog.PrintLogger(file=sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    try:
        anyio.run(_serve_until_signalled, topology, node_name, insecure)
    except Exception as exc:
        # Task groups wrap what a node raised while starting; report the error itself.
        error = unwrap_exception_group(exc)
        if isinstance(error, ConfigError):
            fail(err, str(error))
        if isinstance(error, StorageError):
            fail(err, str(error), EXIT_FAILED)
        if isinstance(error, OSError):
            fail(err, f"cannot listen: {error}", EXIT_FAILED)
        raise
    finally:
        structlog.reset_defaults()


@app.command("serve")
def serve(
    topology_file: Annotated[
        Path, typer.Option("--topology", "-t", help="The topology file (e.g. configs/dev.yaml).")
    ],
    node: Annotated[str, typer.Option("--node", "-n", help="The node of it to run here.")],
    insecure: InsecureOpt = False,
) -> None:
    """Run one node of a topology until SIGINT or SIGTERM.

    Starts the actors the topology places on NODE, serves them on its gRPC port (and the
    public API, on the API node), and reaches the other nodes' actors at their addresses;
    nodes may start in any order. Exits 2 for a bad topology or unknown node, or for a node
    listening beyond loopback without auth (unless --insecure), 1 when a port is taken.
    """
    _, err = consoles()
    try:
        topology = load_topology(topology_file)
        topology.node(node)
    except ConfigError as exc:
        fail(err, str(exc))
    _run(topology, node, insecure)


@app.command("dev")
def dev(
    python_file: PythonFilesOpt = None,
    module_name: ModuleNamesOpt = None,
    workspace_file: WorkspaceFileOpt = None,
    topology_file: Annotated[
        Path | None,
        typer.Option(
            "--topology", help="A single-node topology to run instead (configs/dev.yaml)."
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = DEFAULT_HOST,
    api_port: Annotated[
        int, typer.Option("--api-port", help="The public gRPC API's port.")
    ] = DEFAULT_API_PORT,
    grpc_port: Annotated[
        int, typer.Option("--grpc-port", help="The actors' gRPC port (0: any free one).")
    ] = 0,
    port: Annotated[
        int, typer.Option("--port", "-p", help="The webserver's HTTP port (0: any free one).")
    ] = DEFAULT_WEBSERVER_PORT,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload/--no-reload", help="Reload a code location when a file of it changes."
        ),
    ] = True,
    insecure: InsecureOpt = False,
) -> None:
    """Run the whole dev topology in one process.

    The webserver (GraphQL at http://HOST:PORT/graphql), the public API, the coordinator,
    an in-process launcher and the code locations share one event loop, on the instance at
    $DAGLOOM_HOME (default ./.dagloom, SQLite). A code location reloads when a Python file
    of it changes (unless --no-reload), and the next run uses the new code. Prints the
    addresses it listens on; stops on SIGINT or SIGTERM.
    """
    _, err = consoles()
    if topology_file is not None:
        if python_file or module_name or workspace_file:
            fail(err, "give either --topology or -f/-m/-w, not both")
        try:
            topology = load_topology(topology_file)
        except ConfigError as exc:
            fail(err, str(exc))
        if len(topology.nodes) != 1:
            fail(err, f"{topology_file}: `dagloom dev` runs a one-node topology; use `serve`")
        _run(topology, next(iter(topology.nodes)), insecure)
        return
    locations = _dev_locations(python_file, module_name, workspace_file, err)
    topology = dev_topology(
        locations,
        host=host,
        grpc_port=grpc_port,
        api_port=api_port,
        reload_on_change=reload,
        webserver_port=port,
    )
    _run(topology, "dev", insecure)


def _dev_locations(
    python_file: list[Path] | None,
    module_name: list[str] | None,
    workspace_file: Path | None,
    err: Console,
) -> dict[str, CodeOrigin]:
    """The code locations given with -f, -m and -w, each named for its file, module or
    workspace entry; exits 2 when a file is missing or none is given."""
    locations: dict[str, CodeOrigin] = {}
    for path in python_file or []:
        if not path.exists():
            fail(err, f"no such file: {path}")
        locations[path.stem] = CodeOrigin(python_file=str(path.resolve()))
    for module in module_name or []:
        locations[module] = CodeOrigin(module_name=module, working_directory=str(Path.cwd()))
    if workspace_file is not None:
        locations.update(_workspace_locations(workspace_file, err))
    if not locations:
        fail(
            err,
            "give the code: -f defs.py, -m package.module or -w workspace.yaml (or --topology)",
            EXIT_USAGE,
        )
    return locations


def _workspace_locations(path: Path, err: Console) -> dict[str, CodeOrigin]:
    """The python_file / python_module locations of a workspace.yaml, for `dagloom dev`,
    which serves every location in its own process and runs their jobs there too."""
    from dagloom.code.workspace import InProcessLocation, read_workspace_plans

    if not path.exists():
        fail(err, f"no such file: {path}")
    try:
        plans = read_workspace_plans(path)
    except ConfigError as exc:
        fail(err, str(exc))
    locations: dict[str, CodeOrigin] = {}
    for plan in plans:
        if not isinstance(plan, InProcessLocation):
            fail(
                err,
                f"{path}: location {plan.location_name!r} is served by a separate process "
                "(grpc_server or managed); `dagloom dev` runs every location in its own "
                "process: use `dagloom serve --topology` to place separate code servers",
            )
        locations[plan.location_name] = plan.source
    return locations


def format_event(record: EventRecord) -> str:
    """One line per event: time, type, step (if any) and message."""
    event = record.event
    if event is None:
        return f"#{record.storage_id}"
    stamp = time.strftime("%H:%M:%S", time.localtime(event.timestamp))
    millis = int((event.timestamp % 1) * 1000)
    step = f"  {event.step_key}" if event.step_key else ""
    text = f"{stamp}.{millis:03d}  {event.event_type.name:<22}{step}  {event.message}".rstrip()
    return escape_control(text, keep_newlines=True)


async def _launch_and_follow(
    api: str,
    job_name: str,
    location: str,
    sources: RunConfigSources,
    tags: dict[str, str],
    token: str | None = None,
    tls: TlsConfig | None = None,
) -> int:
    out, err = consoles()
    async with AsyncClient.connect(api, token=token, tls=tls) as client:
        try:
            run = await client.launch_run(
                job_name, location_name=location, run_config=sources.merged, tags=tags
            )
        except (
            ConfigError,
            DefinitionError,
            ActorUnavailableError,
            AuthenticationError,
            PermissionDeniedError,
        ) as exc:
            err.print(Text(f"Error: {exc}", style="bold red"), soft_wrap=True)
            return EXIT_USAGE
        out.print(Text(f"Launched run {run.run_id} of {job_name!r}"), soft_wrap=True)
        started = time.monotonic()
        try:
            done = await client.wait_for_run(
                run.run_id, on_event=lambda r: out.print(Text(format_event(r)), soft_wrap=True)
            )
        except DagloomError as exc:
            err.print(Text(f"Error: lost the run {run.run_id}: {exc}", style="bold red"))
            return EXIT_FAILED
        took = time.monotonic() - started
        style = "bold green" if done.status == RunStatus.SUCCESS else "bold red"
        out.print(Text(f"Run {run.run_id} {done.status.name} in {took:.2f} s", style=style))
        return 0 if done.status == RunStatus.SUCCESS else EXIT_FAILED


@job_app.command("launch")
def launch(
    job_name: Annotated[str, typer.Option("--job", "-j", help="The job to launch.")],
    location: Annotated[
        str, typer.Option("--location", "-l", help="Its code location (if there are several).")
    ] = "",
    config: ConfigFilesOpt = None,
    config_json: ConfigJsonOpt = None,
    tags: TagsOpt = None,
    api: Annotated[
        str, typer.Option("--api", help="The public API's host:port.")
    ] = f"{DEFAULT_HOST}:{DEFAULT_API_PORT}",
    token: TokenOpt = None,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> None:
    """Launch a run through a running dagloom's API and follow it to its end.

    Prints the run's events as they are stored. Exits 0 when the run succeeds, 1 when it
    fails or is canceled, and 2 when it could not be launched (unknown job or location,
    invalid run config, API unreachable, token missing or refused).
    """
    _, err = consoles()
    sources, run_tags = run_options_or_exit(err, config, config_json, tags)
    tls = None
    if tls_ca or tls_cert:
        tls = TlsConfig(
            ca=str(tls_ca) if tls_ca else None,
            cert=str(tls_cert) if tls_cert else None,
            key=str(tls_key) if tls_key else None,
        )
    code = anyio.run(
        functools.partial(
            _launch_and_follow, api, job_name, location, sources, run_tags, token, tls
        )
    )
    raise typer.Exit(code)
