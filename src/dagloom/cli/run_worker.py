"""`dagloom run-worker`: execute one run in this process, or serve `RunWorker` over gRPC.

The subprocess launcher starts `dagloom run-worker --run-id ID` per run; the warm-pool
launcher starts `dagloom run-worker --serve` processes that import the code once and take
runs as messages. Both read the instance from `--home` and the code from `-f`/`-m` (one
location) or `--locations-json` (several, as launchers pass them).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
import orjson
import structlog
import typer

from dagloom.cli._app import app
from dagloom.cli._instance_option import HomeOption, errors, run_command
from dagloom.errors import ConfigError, DagloomError
from dagloom.execution.origin import CodeOrigin


def origins_to_json(origins: dict[str, CodeOrigin]) -> str:
    """The `--locations-json` value naming `origins`."""
    return orjson.dumps({name: o.to_dict() for name, o in origins.items()}).decode()


def _origins(
    locations_json: str | None,
    python_file: Path | None,
    module_name: str | None,
    attribute: str | None,
    working_directory: Path | None,
    location_name: str,
) -> dict[str, CodeOrigin]:
    if locations_json:
        try:
            raw: dict[str, Any] = orjson.loads(locations_json)
            return {name: CodeOrigin.from_dict(fields) for name, fields in raw.items()}
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                "invalid --locations-json", problems=[((), f"{type(exc).__name__}: {exc}")]
            ) from exc
    if (python_file is None) == (module_name is None):
        raise ConfigError(
            "name the code to load", problems=[((), "give one of -f FILE or -m MODULE")]
        )
    return {
        location_name: CodeOrigin(
            python_file=str(python_file.resolve()) if python_file is not None else None,
            module_name=module_name,
            attribute=attribute,
            working_directory=str(working_directory) if working_directory else None,
        )
    }


@app.command("run-worker")
def run_worker(
    home: HomeOption = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Execute this stored run, then exit.")
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Serve RunWorker over gRPC until terminated.")
    ] = False,
    host: Annotated[str, typer.Option(help="With --serve: the address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="With --serve: the port (0: any free one).")] = 0,
    python_file: Annotated[
        Path | None, typer.Option("-f", "--python-file", help="The code location's file.")
    ] = None,
    module_name: Annotated[
        str | None, typer.Option("-m", "--module-name", help="The code location's module.")
    ] = None,
    attribute: Annotated[
        str | None, typer.Option("-a", "--attribute", help="The Definitions to use.")
    ] = None,
    working_directory: Annotated[
        Path | None, typer.Option("-d", "--working-directory", help="Where -m imports from.")
    ] = None,
    location_name: Annotated[
        str, typer.Option("-l", "--location-name", help="The location's name in runs.")
    ] = "",
    locations_json: Annotated[str | None, typer.Option(hidden=True)] = None,
    heartbeat_interval: Annotated[
        float, typer.Option(help="Seconds between a run's heartbeats.")
    ] = 30.0,
    report_to: Annotated[
        str | None,
        typer.Option(
            help="With --serve: NAME@HOST:PORT of the launcher told `RunEnded` as each run ends."
        ),
    ] = None,
) -> None:
    """Execute runs for a launcher: one run (--run-id) or many, served over gRPC (--serve).

    With --serve the first line on stdout is the address it listens on; logs go to stderr.
    SIGTERM stops the run(s), which are recorded CANCELED, and exits.
    """
    if (run_id is None) == (not serve):
        errors.print("give exactly one of --run-id ID and --serve")
        raise typer.Exit(2)
    launcher = None
    if report_to is not None:
        launcher = _launcher_address(report_to)
        if launcher is None:
            errors.print(f"--report-to {report_to!r} is not NAME@HOST:PORT")
            raise typer.Exit(2)
    # stdout carries the address (with --serve); logs must not fill its pipe.
    # sys.stderr is looked up per logger: a stream held from now could be closed later.
    structlog.configure(logger_factory=lambda *_: structlog.PrintLogger(file=sys.stderr))

    async def main() -> None:
        origins = _origins(
            locations_json, python_file, module_name, attribute, working_directory, location_name
        )
        if run_id is not None:
            await execute_one(home, origins, run_id, heartbeat_interval)
        else:
            await _serve(home, origins, host, port, heartbeat_interval, launcher)

    run_command(main)


async def execute_one(
    home: Path | None,
    origins: dict[str, CodeOrigin],
    run_id: str,
    heartbeat_interval: float,
    *,
    stop_requested: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Execute the stored run `run_id` here with a `RunWorker` over the instance at `home`;
    blocks until the run ended. The run is stopped (recorded CANCELED) each time
    `stop_requested()` returns (default: on SIGTERM or SIGINT). Raises `DagloomError` when
    the worker did not take the run, or the error of an end it could not record."""
    from dagloom.actors.job_source import LoaderJobSource
    from dagloom.actors.run_worker import RunWorker
    from dagloom.instance import DagloomInstance
    from dagloom.messages.rpc import ExecuteRunReply, ExecuteRunRequest, StopRunRequest
    from dagloom.transport import MemoryTransport

    async with DagloomInstance.open(home) as instance, anyio.create_task_group() as tg:
        worker = RunWorker(
            instance,
            LoaderJobSource(origins),
            name=f"run-worker-{run_id[:8]}",
            heartbeat_interval=heartbeat_interval,
        )
        ref = MemoryTransport(strict=False).ref(worker)
        await tg.start(worker.run)

        async def stop_when_asked() -> None:
            if stop_requested is not None:
                while True:
                    await stop_requested()
                    await ref.ask(StopRunRequest(run_id=run_id))
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    await ref.ask(StopRunRequest(run_id=run_id))

        tg.start_soon(stop_when_asked)
        reply = await ref.ask(ExecuteRunRequest(run_id=run_id))
        assert isinstance(reply, ExecuteRunReply)
        if not reply.accepted:
            raise DagloomError(f"run {run_id} was not executed: {reply.message}")
        await worker.wait_idle()
        tg.cancel_scope.cancel()
    if worker.unrecorded:
        raise worker.unrecorded[-1]


def _launcher_address(report_to: str) -> tuple[str, str] | None:
    """(name, address) of a `--report-to NAME@HOST:PORT`; None when it is not one."""
    name, at, address = report_to.rpartition("@")
    if not at or not name or ":" not in address:
        return None
    return name, address


async def _serve(
    home: Path | None,
    origins: dict[str, CodeOrigin],
    host: str,
    port: int,
    heartbeat_interval: float,
    launcher: tuple[str, str] | None = None,
) -> None:
    import os

    from dagloom.actors.job_source import LoaderJobSource
    from dagloom.actors.run_launcher.warm_pool import WarmPoolRunLauncher
    from dagloom.actors.run_worker import RunWorker
    from dagloom.instance import DagloomInstance
    from dagloom.transport import GrpcTransport

    jobs = LoaderJobSource(origins)
    jobs.load_all()  # warm: user code is imported before the first run arrives
    async with DagloomInstance.open(home) as instance, anyio.create_task_group() as tg:
        worker = RunWorker(
            instance, jobs, name=f"run-worker-{os.getpid()}", heartbeat_interval=heartbeat_interval
        )
        transport = GrpcTransport(host=host, port=port)
        transport.expose(worker)
        if launcher is not None:
            # The run's end reaches the launcher's node at once: its watchers of the run
            # read storage then, not at their next poll.
            name, address = launcher
            worker.report_to(transport.ref(WarmPoolRunLauncher, name=name, address=address))
        await tg.start(worker.run)
        address = await tg.start(transport.run)
        print(address, flush=True)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                break
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    # `python -m dagloom.cli.run_worker ...`, as launchers start it: the one command alone.
    typer.run(run_worker)
