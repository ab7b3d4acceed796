"""`dagloom schedule ...`, `dagloom sensor ...` and `dagloom daemon status` on a SQLite
instance where a daemon round has recorded the schedules and sensors."""

from __future__ import annotations

import itertools
import re
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import anyio
from typer.testing import CliRunner

from dagloom.cli import app
from dagloom.code.loader import load_definitions
from dagloom.daemon._instigators import origin_id
from dagloom.daemon.daemon import Daemon
from dagloom.daemon.scheduler import SchedulerLoop
from dagloom.daemon.sensors import SensorLoop
from dagloom.instance import DagloomInstance
from dagloom.messages import InstigatorStatus, InstigatorType, TickStatus
from tests.daemon._fakes import InProcessLocation, storing_coordinator

runner = CliRunner(env={"COLUMNS": "250"})

DEFS = """
    import dagloom as dg

    @dg.op
    def noop():
        pass

    @dg.job
    def nothing():
        noop()

    hourly = dg.ScheduleDefinition(
        name="hourly", job=nothing, cron_schedule="0 * * * *",
        execution_timezone="Europe/Paris",
    )

    @dg.sensor(job=nothing, default_status=dg.DefaultSensorStatus.RUNNING)
    def watcher(context):
        yield dg.RunRequest(run_key=f"after-{context.cursor or 'start'}")

    defs = dg.Definitions(jobs=[nothing], schedules=[hourly], sensors=[watcher])
"""


def seed(home: Path, tmp_path: Path) -> Path:
    """Write the definitions file and run one round of each loop (and a daemon's heartbeat)
    against the home's instance; return the file."""
    source = tmp_path / "defs.py"
    source.write_text(textwrap.dedent(DEFS))
    location = InProcessLocation("defs", load_definitions(python_file=source))

    async def main() -> None:
        async with DagloomInstance.open(home) as instance, storing_coordinator(instance) as coord:
            refs = {"defs": cast(Any, location)}
            loops = [
                SchedulerLoop(instance, refs, coord, owner="d"),
                SensorLoop(instance, refs, coord, owner="d"),
            ]
            daemon = Daemon(instance.schedule_storage, loops, daemon_id="d")
            await daemon.run_round("scheduler")
            await daemon.run_round("sensors")

    anyio.run(main)
    return source


def state_status(home: Path, kind: InstigatorType, name: str) -> InstigatorStatus:
    async def main() -> InstigatorStatus:
        async with DagloomInstance.open(home) as instance:
            state = await instance.schedule_storage.get_instigator_state(
                origin_id(kind, "defs", name)
            )
        assert state is not None
        return state.status

    return anyio.run(main)


def test_schedule_list_start_stop_and_preview(home: Path, tmp_path: Path) -> None:
    seed(home, tmp_path)
    listed = runner.invoke(app, ["schedule", "list"])
    assert listed.exit_code == 0, listed.output
    assert "hourly" in listed.output and "STOPPED (default)" in listed.output
    assert "Europe/Paris" in listed.output

    started = runner.invoke(app, ["schedule", "start", "hourly"])
    assert started.exit_code == 0, started.output
    assert state_status(home, InstigatorType.SCHEDULE, "hourly") == InstigatorStatus.RUNNING
    assert "RUNNING" in runner.invoke(app, ["schedule", "list"]).output
    stopped = runner.invoke(app, ["schedule", "stop", "hourly", "--home", str(home)])
    assert stopped.exit_code == 0, stopped.output
    assert state_status(home, InstigatorType.SCHEDULE, "hourly") == InstigatorStatus.STOPPED

    preview = runner.invoke(app, ["schedule", "preview", "hourly", "--ticks", "3"])
    assert preview.exit_code == 0, preview.output
    times = [datetime.fromisoformat(line) for line in preview.output.split()]
    assert len(times) == 3
    assert all(t.minute == 0 and t.tzinfo is not None for t in times)
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [3600] * 2

    missing = runner.invoke(app, ["schedule", "start", "nope"])
    assert missing.exit_code == 1
    assert "no schedule named 'nope'" in missing.output and "hourly" in missing.output


def test_sensor_ticks_cursor_and_preview(home: Path, tmp_path: Path) -> None:
    source = seed(home, tmp_path)
    listed = runner.invoke(app, ["sensor", "list"])
    assert listed.exit_code == 0, listed.output
    assert "watcher" in listed.output and "RUNNING (default)" in listed.output

    ticks = runner.invoke(app, ["sensor", "ticks", "watcher"])
    assert ticks.exit_code == 0, ticks.output
    assert TickStatus.SUCCESS.name in ticks.output and "after-start" in ticks.output

    assert runner.invoke(app, ["sensor", "cursor", "watcher", "--set", "42"]).exit_code == 0
    shown = runner.invoke(app, ["sensor", "cursor", "watcher"])
    assert shown.output.strip() == "42"
    preview = runner.invoke(app, ["sensor", "preview", "watcher", "-f", str(source)])
    assert preview.exit_code == 0, preview.output
    assert "run_key=after-42" in preview.output

    assert runner.invoke(app, ["sensor", "stop", "watcher"]).exit_code == 0
    assert state_status(home, InstigatorType.SENSOR, "watcher") == InstigatorStatus.STOPPED


def test_sensor_preview_gives_the_sensor_the_homes_instance(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "partitions.py"
    source.write_text(
        textwrap.dedent(
            """
            import dagloom as dg

            @dg.op
            def noop():
                pass

            @dg.job
            def nothing():
                noop()

            @dg.sensor(job=nothing)
            def regions(context):
                for key in context.instance.get_dynamic_partitions("regions"):
                    yield dg.RunRequest(run_key=key)
            """
        )
    )

    async def add() -> None:
        async with DagloomInstance.open(home) as instance:
            await instance.add_dynamic_partitions("regions", ["eu", "us"])

    anyio.run(add)
    preview = runner.invoke(
        app, ["sensor", "preview", "regions", "-f", str(source), "--cursor", ""]
    )
    assert preview.exit_code == 0, preview.output
    assert "run_key=eu" in preview.output and "run_key=us" in preview.output


def test_daemon_status_shows_each_loop_and_fails_without_a_daemon(
    home: Path, tmp_path: Path
) -> None:
    never = runner.invoke(app, ["daemon", "status"])
    assert never.exit_code == 1 and "no daemon" in never.output
    seed(home, tmp_path)
    status = runner.invoke(app, ["daemon", "status"])
    assert status.exit_code == 0, status.output
    assert "scheduler" in status.output and "sensors" in status.output


def test_config_opens_the_instance_a_dagloom_yaml_describes(home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    config = tmp_path / "dagloom.yaml"
    config.write_text(f"storage:\n  sqlite:\n    base_dir: {home}\n")
    seed(home, tmp_path)
    listed = runner.invoke(
        app, ["schedule", "list", "--home", str(elsewhere), "--config", str(config)]
    )
    assert listed.exit_code == 0, listed.output
    assert "hourly" in listed.output
    missing = runner.invoke(app, ["schedule", "list", "--config", str(tmp_path / "no.yaml")])
    assert missing.exit_code == 1 and "no such file" in missing.output


def test_names_and_run_ids_are_whole_in_a_narrow_terminal(home: Path, tmp_path: Path) -> None:
    """In 80 columns a long schedule name wraps rather than being cut to `process_numb…`,
    which could not be told from another one or typed into `schedule start`."""
    source = tmp_path / "defs.py"
    source.write_text(textwrap.dedent(DEFS).replace('name="hourly"', f'name="{LONG_NAME}"'))
    location = InProcessLocation("defs", load_definitions(python_file=source))

    async def main() -> None:
        async with DagloomInstance.open(home) as instance, storing_coordinator(instance) as coord:
            refs = {"defs": cast(Any, location)}
            loops = [
                SchedulerLoop(instance, refs, coord, owner="d"),
                SensorLoop(instance, refs, coord, owner="d"),
            ]
            daemon = Daemon(instance.schedule_storage, loops, daemon_id="d")
            await daemon.run_round("scheduler")
            await daemon.run_round("sensors")

    anyio.run(main)
    narrow = CliRunner(env={"COLUMNS": "80"})
    listed = narrow.invoke(app, ["schedule", "list"])
    assert listed.exit_code == 0, listed.output
    assert LONG_NAME in column(listed.output, 1)
    ticks = narrow.invoke(app, ["sensor", "ticks", "watcher"])
    assert ticks.exit_code == 0, ticks.output
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", column(ticks.output, 4))


def column(table: str, index: int) -> str:
    """The cells of a printed table's column `index` (1 is the first), rows joined."""
    rows = [line.split("│") for line in table.splitlines() if line.startswith("│")]
    return "".join(row[index].strip() for row in rows)


LONG_NAME = "process_numbers_asset_schedule_with_a_long_name"
