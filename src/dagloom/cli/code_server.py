"""`dagloom code-server start`: serve one code location (and health pings) over gRPC."""

from __future__ import annotations

import errno
import functools
import signal
import sys
from pathlib import Path
from typing import Annotated

import anyio
import structlog
import typer
from anyio.abc import TaskStatus

from dagloom.actors import HealthReporter, Supervisor, unwrap_exception_group
from dagloom.actors.code_location import CodeLocationServer, EvaluationSettings, TickInstance
from dagloom.cli._app import app
from dagloom.cli._instance_option import ConfigOption, HomeOption, open_instance
from dagloom.code.workspace import listening_line, parse_listening_line
from dagloom.execution.origin import CodeOrigin
from dagloom.transport import GrpcTransport

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4000
"""Code servers listen from 127.0.0.1:4000 up unless given a port."""
PORT_ATTEMPTS = 100
"""How many ports past the first a server tries when none was given."""

code_server_app = typer.Typer(
    help="Serve a code location to other dagloom processes over gRPC.", no_args_is_help=True
)
app.add_typer(code_server_app, name="code-server")


async def run_code_server(
    location_name: str,
    source: CodeOrigin,
    *,
    host: str = DEFAULT_HOST,
    port: int | None = None,
    evaluation: EvaluationSettings = EvaluationSettings(),  # noqa: B008 - frozen
    instance: TickInstance | None = None,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the location and a `Health` reporter over gRPC until cancelled.

    The code is imported first (an import error is served as the location's `load_error`),
    then the server binds `host:port` and reports its address through `task_status`. With
    `port` None it takes the first free port from 4000 up; port 0 asks the OS for one. A
    given port that is taken raises `OSError`. `evaluation` is how ticks are evaluated;
    their `context.instance` is `instance` (None without one).
    """
    location = CodeLocationServer(location_name, source, evaluation=evaluation, instance=instance)
    supervisor = Supervisor(f"code-server-{location_name}")
    health = HealthReporter(supervisor.health)
    supervisor.add(location)
    supervisor.add(health)
    candidates = [port] if port is not None else range(DEFAULT_PORT, DEFAULT_PORT + PORT_ATTEMPTS)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        for candidate in candidates:
            transport = GrpcTransport(host=host, port=candidate)
            transport.expose(location)
            transport.expose(health)
            try:
                address: str = await tg.start(transport.run)
            except OSError as exc:
                if port is not None or exc.errno != errno.EADDRINUSE:
                    raise
                continue
            task_status.started(address)
            break
        else:
            raise OSError(
                errno.EADDRINUSE,
                f"no free port on {host} from {DEFAULT_PORT} to {DEFAULT_PORT + PORT_ATTEMPTS - 1}",
            )


async def _serve_until_signalled(
    location_name: str,
    source: CodeOrigin,
    host: str,
    port: int | None,
    evaluation: EvaluationSettings,
    instance: TickInstance,
) -> None:
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            address = await tg.start(
                functools.partial(
                    run_code_server,
                    location_name,
                    source,
                    host=host,
                    port=port,
                    evaluation=evaluation,
                    instance=instance,
                )
            )
            print(listening_line(location_name, address), flush=True)
            async for _ in signals:
                tg.cancel_scope.cancel()
                break


@code_server_app.command("start")
def start(
    python_file: Annotated[
        Path | None,
        typer.Option("--python-file", "-f", help="The Python file that defines the code."),
    ] = None,
    module_name: Annotated[
        str | None,
        typer.Option("--module-name", "-m", help="The module that defines the code."),
    ] = None,
    attribute: Annotated[
        str | None,
        typer.Option("--attribute", "-a", help="The Definitions (or job) attribute to serve."),
    ] = None,
    working_directory: Annotated[
        Path | None,
        typer.Option("--working-directory", "-d", help="Where -m modules are found."),
    ] = None,
    location_name: Annotated[
        str | None,
        typer.Option("--location-name", help="The location's name (default: file stem or module)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = DEFAULT_HOST,
    port: Annotated[
        int | None,
        typer.Option("--port", help="The port (default: the first free one from 4000; 0: any)."),
    ] = None,
    evaluation_timeout: Annotated[
        float,
        typer.Option(
            "--evaluation-timeout",
            min=0.001,
            help="Seconds a schedule or sensor tick may run before it is killed.",
        ),
    ] = EvaluationSettings().timeout_seconds,
    evaluation_processes: Annotated[
        int,
        typer.Option(
            "--evaluation-processes", min=1, help="Schedule and sensor ticks evaluated at once."
        ),
    ] = EvaluationSettings().processes,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Listen beyond loopback without a cluster secret."),
    ] = False,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Import the code once and serve it over gRPC until SIGINT or SIGTERM.

    Prints `... listening on HOST:PORT` once it serves. Code that fails to import is served
    as the location's error, so the server still starts; fix the code and reload it. Calls
    must carry `$DAGLOOM_CLUSTER_SECRET` when it is set; listening beyond loopback without
    it (or a TLS CA in `$DAGLOOM_TLS_CA`) exits 2 unless --insecure.

    Schedule and sensor ticks see the instance of --home (default `$DAGLOOM_HOME`) as
    `context.instance`; it is opened when a tick first calls it, and closed on exit.
    """
    if (python_file is None) == (module_name is None):
        raise typer.BadParameter("give exactly one of --python-file/-f and --module-name/-m")
    from dagloom.errors import ConfigError
    from dagloom.topology.security import check_exposure
    from dagloom.transport import ClusterSecurity

    security = ClusterSecurity.from_env()
    try:
        check_exposure(
            [("actors", host)],
            auth_enabled=False,
            secured_actors=bool(security.secret or (security.tls and security.tls.ca)),
            insecure=insecure,
        )
    except ConfigError as exc:
        typer.echo(f"dagloom code-server: {exc}", err=True)
        raise typer.Exit(2) from None
    source = CodeOrigin(
        python_file=str(python_file) if python_file is not None else None,
        module_name=module_name,
        attribute=attribute,
        working_directory=str(working_directory) if working_directory is not None else None,
    )
    # Logs go to stderr: stdout carries the listening line that launchers read.
    # sys.stderr is looked up per logger: a stream held from now could be closed later.
    structlog.configure(logger_factory=lambda *_: structlog.PrintLogger(file=sys.stderr))
    name = location_name or source.default_location_name
    try:
        evaluation = EvaluationSettings(
            timeout_seconds=evaluation_timeout, processes=evaluation_processes
        )
        instance = TickInstance(open_instance=functools.partial(open_instance, home, config))
        anyio.run(_serve_until_signalled, name, source, host, port, evaluation, instance)
    except (OSError, BaseExceptionGroup) as exc:
        error = _only_os_error(exc)
        if error is None:
            raise
        typer.echo(f"dagloom code-server: cannot listen on {host}: {error}", err=True)
        raise typer.Exit(1) from error


def _only_os_error(exc: BaseException) -> OSError | None:
    # Task groups wrap what a child raised; a bind failure arrives as a group of one.
    error = unwrap_exception_group(exc)
    return error if isinstance(error, OSError) else None


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "code_server_app",
    "listening_line",
    "parse_listening_line",
    "run_code_server",
    "start",
]
