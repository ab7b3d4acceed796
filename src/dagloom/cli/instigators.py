"""`dagloom schedule ...` and `dagloom sensor ...`: list, start, stop, preview and inspect the
schedules and sensors a daemon has recorded in the instance.

They act on storage, so they work against a running `dagloom dev` or a deployment: a
running daemon sees a start or stop on its next round.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Column, Table

from dagloom.cli._app import app
from dagloom.cli._common import AttributeOpt, ModuleNameOpt, PythonFileOpt, WorkingDirOpt
from dagloom.cli._instance_option import (
    ConfigOption,
    HomeOption,
    console,
    errors,
    open_instance,
    run_command,
)
from dagloom.messages import InstigatorState, InstigatorStatus, InstigatorType, Tick

if TYPE_CHECKING:
    from dagloom.storage.base import ScheduleStorage

schedule_app = typer.Typer(help="List, start, stop and inspect schedules.", no_args_is_help=True)
sensor_app = typer.Typer(help="List, start, stop and inspect sensors.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
app.add_typer(sensor_app, name="sensor")

LocationOption = Annotated[
    str | None,
    typer.Option("--location", "-l", help="Its code location (if several have that name)."),
]


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S") if seconds else "-"


def _status(state: InstigatorState) -> str:
    from dagloom.daemon._instigators import is_running

    word = "RUNNING" if is_running(state) else "STOPPED"
    declared = state.status in (InstigatorStatus.DECLARED_IN_CODE, InstigatorStatus.UNSPECIFIED)
    return f"{word} (default)" if declared else word


def _tick_text(tick: Tick | None) -> str:
    if tick is None:
        return "-"
    return f"{_when(tick.timestamp)} {tick.status.name}"


async def _states(
    home: Path | None, config: Path | None, kind: InstigatorType
) -> list[tuple[InstigatorState, Tick | None]]:
    async with open_instance(home, config) as instance:
        storage = instance.schedule_storage
        out = []
        for state in await storage.get_instigator_states(kind):
            ticks = await storage.get_ticks(state.origin_id, limit=1)
            out.append((state, ticks[0] if ticks else None))
    return out


async def _stored_state(
    storage: ScheduleStorage, kind: InstigatorType, name: str, location: str | None
) -> InstigatorState:
    """The stored state of the schedule or sensor `name` (`find_state`: raises
    `DefinitionError` when none or several match)."""
    from dagloom.daemon._instigators import find_state

    return find_state(await storage.get_instigator_states(kind), kind, name, location)


def _toggle(
    kind: InstigatorType,
    name: str,
    location: str | None,
    running: bool,
    home: Path | None,
    config: Path | None,
) -> None:
    from dagloom.auth.audit import local_user, record_audit
    from dagloom.daemon._instigators import toggled

    async def main() -> None:
        async with open_instance(home, config) as instance:
            storage = instance.schedule_storage
            state = await _stored_state(storage, kind, name, location)
            await storage.set_instigator_state(toggled(state, running=running, now=time.time()))
            await record_audit(
                instance,
                local_user(),
                "start_instigator" if running else "stop_instigator",
                f"instigator:{state.code_location}/{state.name}",
                via="cli",
            )
        word = "schedule" if kind == InstigatorType.SCHEDULE else "sensor"
        console.print(
            f"{'started' if running else 'stopped'} {word} {name} ({state.code_location})"
        )

    run_command(main)


def _ticks(
    kind: InstigatorType,
    name: str,
    location: str | None,
    limit: int,
    home: Path | None,
    config: Path | None,
) -> None:
    async def main() -> None:
        async with open_instance(home, config) as instance:
            storage = instance.schedule_storage
            state = await _stored_state(storage, kind, name, location)
            ticks = await storage.get_ticks(state.origin_id, limit=limit)
        table = Table(
            "tick",
            "time",
            "status",
            _whole("runs"),
            _whole("run keys"),
            "cursor",
            "skip reason / error",
        )
        for tick in ticks:
            note = tick.skip_reason
            if tick.error is not None:
                note = f"{tick.error.cls_name}: {tick.error.message}"
            table.add_row(
                str(tick.tick_id),
                _when(tick.timestamp),
                tick.status.name,
                ", ".join(tick.run_ids) or "-",
                ", ".join(tick.run_keys) or "-",
                tick.cursor or "-",
                note or "-",
            )
        console.print(table)

    run_command(main)


def _whole(header: str) -> Column:
    """A column of names or ids that people type into the next command: in a narrow
    terminal they wrap onto more lines rather than end cut short with an ellipsis."""
    return Column(header, overflow="fold")


# -- schedules ------------------------------------------------------------------------------


@schedule_app.command("list")
def schedule_list(home: HomeOption = None, config: ConfigOption = None) -> None:
    """List the schedules the daemon has seen, with their status and last tick."""

    async def main() -> None:
        rows = await _states(home, config, InstigatorType.SCHEDULE)
        table = Table(_whole("schedule"), "location", "status", "cron", "timezone", "last tick")
        for state, tick in rows:
            table.add_row(
                state.name,
                state.code_location,
                _status(state),
                " | ".join(state.cron_schedules),
                state.execution_timezone or "UTC",
                _tick_text(tick),
            )
        console.print(table)

    run_command(main)


@schedule_app.command("start")
def schedule_start(
    name: str, location: LocationOption = None, home: HomeOption = None, config: ConfigOption = None
) -> None:
    """Start a schedule: from the next tick on, it fires (none missed before now)."""
    _toggle(InstigatorType.SCHEDULE, name, location, True, home, config)


@schedule_app.command("stop")
def schedule_stop(
    name: str, location: LocationOption = None, home: HomeOption = None, config: ConfigOption = None
) -> None:
    """Stop a schedule, whatever its default status."""
    _toggle(InstigatorType.SCHEDULE, name, location, False, home, config)


@schedule_app.command("preview")
def schedule_preview(
    name: str,
    ticks: Annotated[int, typer.Option("--ticks", "-n", min=1, help="How many ticks.")] = 5,
    location: LocationOption = None,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the schedule's next tick times, in its timezone."""
    from dagloom.definitions._cron import iter_cron_ticks, load_timezone

    async def main() -> None:
        async with open_instance(home, config) as instance:
            storage = instance.schedule_storage
            state = await _stored_state(storage, InstigatorType.SCHEDULE, name, location)
        tz = load_timezone(state.execution_timezone or None)
        upcoming = iter_cron_ticks(list(state.cron_schedules), tz, datetime.now(UTC))
        for tick in itertools.islice(upcoming, ticks):
            console.print(tick.isoformat())

    run_command(main)


@schedule_app.command("ticks")
def schedule_ticks(
    name: str,
    limit: Annotated[int, typer.Option(help="Show at most this many ticks.")] = 20,
    location: LocationOption = None,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """List a schedule's ticks, newest first, with their runs."""
    _ticks(InstigatorType.SCHEDULE, name, location, limit, home, config)


# -- sensors --------------------------------------------------------------------------------


@sensor_app.command("list")
def sensor_list(home: HomeOption = None, config: ConfigOption = None) -> None:
    """List the sensors the daemon has seen, with their status, cursor and last tick."""

    async def main() -> None:
        rows = await _states(home, config, InstigatorType.SENSOR)
        table = Table(_whole("sensor"), "location", "status", "interval", "cursor", "last tick")
        for state, tick in rows:
            table.add_row(
                state.name,
                state.code_location,
                _status(state),
                f"{state.minimum_interval_seconds}s",
                state.cursor or "-",
                _tick_text(tick),
            )
        console.print(table)

    run_command(main)


@sensor_app.command("start")
def sensor_start(
    name: str, location: LocationOption = None, home: HomeOption = None, config: ConfigOption = None
) -> None:
    """Start a sensor: the daemon ticks it from its next round on."""
    _toggle(InstigatorType.SENSOR, name, location, True, home, config)


@sensor_app.command("stop")
def sensor_stop(
    name: str, location: LocationOption = None, home: HomeOption = None, config: ConfigOption = None
) -> None:
    """Stop a sensor, whatever its default status."""
    _toggle(InstigatorType.SENSOR, name, location, False, home, config)


@sensor_app.command("ticks")
def sensor_ticks(
    name: str,
    limit: Annotated[int, typer.Option(help="Show at most this many ticks.")] = 20,
    location: LocationOption = None,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """List a sensor's ticks, newest first, with their runs and cursors."""
    _ticks(InstigatorType.SENSOR, name, location, limit, home, config)


@sensor_app.command("cursor")
def sensor_cursor(
    name: str,
    set_value: Annotated[
        str | None, typer.Option("--set", help="Store this cursor (an empty string clears it).")
    ] = None,
    location: LocationOption = None,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Print a sensor's stored cursor, or store a new one with --set."""

    async def main() -> None:
        async with open_instance(home, config) as instance:
            storage = instance.schedule_storage
            state = await _stored_state(storage, InstigatorType.SENSOR, name, location)
            if set_value is not None:
                await storage.set_sensor_cursor(state.origin_id, set_value)
        if set_value is None:
            console.print(state.cursor, markup=False)
        else:
            console.print(f"set the cursor of sensor {name} to {set_value!r}", markup=False)

    run_command(main)


@sensor_app.command("preview")
def sensor_preview(
    name: str,
    python_file: PythonFileOpt = None,
    module_name: ModuleNameOpt = None,
    attribute: AttributeOpt = None,
    working_directory: WorkingDirOpt = None,
    cursor: Annotated[
        str | None,
        typer.Option("--cursor", help="Evaluate with this cursor (default: the stored one)."),
    ] = None,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Evaluate a sensor once, in this process, and print what it asks for; nothing is
    launched or stored. The code is given with -f or -m; the sensor's `context.instance` is
    the instance of --home, opened only if the sensor reads it."""
    from dagloom.actors.code_location import evaluate_sensor
    from dagloom.cli._common import consoles, load_or_exit
    from dagloom.errors import DagloomError
    from dagloom.messages.rpc import EvaluateSensorRequest

    _, err = consoles()
    defs = load_or_exit(err, python_file, module_name, attribute, working_directory)

    async def stored_cursor() -> str:
        async with open_instance(home, config) as instance:
            states = await instance.schedule_storage.get_instigator_states(InstigatorType.SENSOR)
        found = [s for s in states if s.name == name]
        return found[0].cursor if len(found) == 1 else ""

    start = cursor if cursor is not None else run_command(stored_cursor)
    try:
        instance = open_instance(home, config)
    except DagloomError as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
        raise typer.Exit(1) from None
    try:
        # The context opens the instance for synchronous use when the sensor first reads it.
        evaluation = EvaluateSensorRequest(sensor_name=name, cursor=start)
        result = evaluate_sensor(defs, evaluation, instance=instance)
    finally:
        instance.dispose()
    if result.error is not None:
        errors.print(
            f"sensor {name!r} failed: {result.error.cls_name}: {result.error.message}", markup=False
        )
        raise typer.Exit(1)
    for request in result.run_requests:
        tags = ", ".join(f"{k}={v}" for k, v in sorted(request.tags.items()))
        console.print(
            f"run request: job={request.job_name or '-'} run_key={request.run_key or '-'} "
            f"tags={tags or '-'}",
            markup=False,
        )
    if result.skip_message:
        console.print(f"skipped: {result.skip_message}", markup=False)
    if result.cursor_updated:
        console.print(f"cursor after: {result.cursor!r}", markup=False)
