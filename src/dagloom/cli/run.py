"""`dagloom run list|show|logs|delete|reexecute`: read runs and their events back from the
instance, and re-execute them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer
from rich.table import Table

from dagloom.cli._app import app
from dagloom.cli._common import AttributeOpt, ModuleNameOpt, PythonFileOpt, WorkingDirOpt
from dagloom.cli._escape import escape_control, safe
from dagloom.cli._instance_option import HomeOption, console, run_command
from dagloom.errors import DagloomError, RunNotFoundError
from dagloom.messages import EventRecord, Run, RunStatus

run_app = typer.Typer(help="List, inspect and delete runs stored in the instance.")
app.add_typer(run_app, name="run")


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S") if seconds else "-"


def _duration(run: Run) -> str:
    if run.start_time and run.end_time:
        return f"{run.end_time - run.start_time:.3f}s"
    return "-"


def _status(status: RunStatus) -> str:
    return status.name or str(int(status))


def run_summary(run: Run) -> dict[str, object]:
    """A run as the JSON object `dagloom run list --json` prints: ids, status name, job, tags,
    lineage (null when the run has none) and times in seconds since the epoch (null when the run
    has not reached that point)."""
    return {
        "run_id": run.run_id,
        "status": _status(run.status),
        "job_name": run.job_name,
        "tags": dict(run.tags),
        "parent_run_id": run.parent_run_id or None,
        "root_run_id": run.root_run_id or None,
        "create_time": run.create_time or None,
        "start_time": run.start_time or None,
        "end_time": run.end_time or None,
    }


def _event_text(record: EventRecord) -> str:
    event = record.event
    if event is None:
        return ""
    text = event.message
    failure = event.step_failure or event.run_failure
    if failure is not None and failure.error is not None:
        text = f"{text} {failure.error.cls_name}: {failure.error.message}".strip()
    data = event.asset_materialization
    if data is not None and data.asset_key is not None:
        text = f"{text} asset {'/'.join(data.asset_key.path)}".strip()
    return text


@run_app.command("list")
def list_runs(
    home: HomeOption = None,
    limit: Annotated[int, typer.Option(help="Show at most this many runs.")] = 20,
    job: Annotated[str | None, typer.Option(help="Only runs of this job.")] = None,
    status: Annotated[
        list[str] | None, typer.Option(help="Only runs in this status (repeatable).")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print a JSON array of run objects instead of a table."),
    ] = False,
) -> None:
    """List runs, newest first. With `--json`, print one JSON array (same filters and limit)
    whose objects carry `run_id`, `status`, `job_name`, `tags`, `parent_run_id`,
    `root_run_id`, `create_time`, `start_time` and `end_time` (seconds since the epoch or null)."""
    from dagloom.instance import DagloomInstance
    from dagloom.storage import RunsFilter

    statuses = []
    for name in status or []:
        try:
            statuses.append(RunStatus[name.upper()])
        except KeyError:
            known = ", ".join(s.name for s in RunStatus if s.name and s != RunStatus.UNSPECIFIED)
            raise typer.BadParameter(f"unknown status {name!r}; one of {known}") from None

    async def main() -> None:
        async with DagloomInstance.open(home) as instance:
            runs = await instance.get_runs_async(
                RunsFilter(job_name=job, statuses=statuses), limit=limit
            )
        if as_json:
            typer.echo(orjson.dumps([run_summary(run) for run in runs]).decode())
            return
        table = Table("run id", "job", "status", "created", "duration", "tags")
        for run in runs:
            tags = ", ".join(f"{k}={v}" for k, v in sorted(run.tags.items()))
            table.add_row(
                safe(run.run_id),
                safe(run.job_name),
                _status(run.status),
                _when(run.create_time),
                _duration(run),
                safe(tags),
            )
        console.print(table)

    run_command(main)


@run_app.command("show")
def show(run_id: str, home: HomeOption = None) -> None:
    """Show a run's fields and the status of each of its steps."""
    from dagloom.instance import DagloomInstance

    async def main() -> None:
        async with DagloomInstance.open(home) as instance:
            run = await instance.get_run(run_id)
            if run is None:
                raise RunNotFoundError(run_id)
            stats = await instance.get_step_stats(run_id)
        fields = Table("field", "value", show_header=False)
        fields.add_row("run id", safe(run.run_id))
        fields.add_row("job", safe(run.job_name))
        fields.add_row("status", _status(run.status))
        if run.failure is not None:
            fields.add_row("error", safe(f"{run.failure.cls_name}: {run.failure.message}"))
        fields.add_row("code location", safe(run.code_location or "-"))
        fields.add_row("created", _when(run.create_time))
        fields.add_row("started", _when(run.start_time))
        fields.add_row("ended", _when(run.end_time))
        fields.add_row("duration", _duration(run))
        fields.add_row("parent run", safe(run.parent_run_id or "-"))
        fields.add_row("root run", safe(run.root_run_id or "-"))
        tags = ", ".join(f"{k}={v}" for k, v in sorted(run.tags.items()))
        fields.add_row("tags", safe(tags or "-"))
        fields.add_row("run config", safe(run.run_config_json or "-"))
        console.print(fields)
        steps = Table("step", "status", "attempts", "start", "end", "materializations")
        for s in stats:
            steps.add_row(
                safe(s.step_key),
                s.status.value,
                str(s.attempts),
                _when(s.start_time or 0),
                _when(s.end_time or 0),
                safe(", ".join("/".join(k) for k in s.materializations)),
            )
        console.print(steps)

    run_command(main)


@run_app.command("logs")
def logs(
    run_id: str,
    home: HomeOption = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until the run ends.")
    ] = False,
    step: Annotated[
        str | None,
        typer.Option("--step", help="Print this step's captured stdout instead of events."),
    ] = None,
    stderr: Annotated[
        bool, typer.Option("--stderr", help="With --step: the step's stderr instead.")
    ] = False,
    attempt: Annotated[
        int | None,
        typer.Option("--attempt", min=0, help="With --step: this attempt (default: the latest)."),
    ] = None,
) -> None:
    """Print a run's events in the order they were stored, or with --step the output a
    step printed (its compute log)."""
    from dagloom.instance import DagloomInstance

    if step is not None:
        _step_logs(run_id, step, home, stderr=stderr, attempt=attempt, follow=follow)
        return
    if stderr or attempt is not None:
        raise typer.BadParameter("--stderr and --attempt go with --step")

    def line(record: EventRecord) -> None:
        event = record.event
        if event is None:
            return
        console.print(
            f"{_when(event.timestamp)}  {event.event_type.name:<22} "
            f"{escape_control(event.step_key or '-'):<24} "
            f"{escape_control(_event_text(record), keep_newlines=True)}",
            markup=False,
            highlight=False,
        )

    async def main() -> None:
        async with DagloomInstance.open(home) as instance:
            if await instance.get_run(run_id) is None:
                raise RunNotFoundError(run_id)
            if follow:
                async for record in instance.watch_run_events(run_id):
                    line(record)
                return
            cursor: int | None = None
            while page := await instance.get_events(run_id, after=cursor, limit=1000):
                for record in page:
                    line(record)
                cursor = page[-1].storage_id

    run_command(main)


def unknown_step_problem(run_id: str, step: str, started: list[str]) -> str | None:
    """What is wrong when a step without a log is not among the run's `started` steps
    (a misspelt key, most likely); None when it started (it printed nothing)."""
    if step in started:
        return None
    known = ", ".join(sorted(started)) or "none"
    return f"run {run_id} has no step {step!r} that started (its steps: {known})"


def _step_logs(
    run_id: str,
    step: str,
    home: Path | None,
    *,
    stderr: bool,
    attempt: int | None,
    follow: bool,
) -> None:
    """Write a step's captured output to stdout as it was printed (bytes unchanged)."""
    import sys

    from dagloom.compute_logs import read_compute_log, tail_compute_log
    from dagloom.instance import DagloomInstance

    io_type: Literal["stdout", "stderr"] = "stderr" if stderr else "stdout"
    out = sys.stdout.buffer

    async def main() -> None:
        async with DagloomInstance.open(home) as instance:
            if follow:
                shown: int | None = None
                async for chunk in tail_compute_log(
                    instance, run_id, step, io_type, attempt=attempt
                ):
                    if shown is not None and chunk.attempt != shown:
                        out.write(f"--- attempt {chunk.attempt} ---\n".encode())
                    shown = chunk.attempt
                    out.write(chunk.data)
                    out.flush()
                return
            cursor = 0
            while True:
                chunk = await read_compute_log(
                    instance, run_id, step, io_type, cursor, attempt=attempt
                )
                if chunk.attempt is None:
                    started = [s.step_key for s in await instance.get_step_stats(run_id)]
                    problem = unknown_step_problem(run_id, step, started)
                    if problem is not None:
                        raise DagloomError(problem)
                if not chunk.data:
                    break
                out.write(chunk.data)
                cursor = chunk.cursor
            out.flush()

    run_command(main)


@run_app.command("delete")
def delete(
    run_id: str,
    home: HomeOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a run with its tags and events (recorded in the instance's audit log)."""
    from dagloom.auth.audit import local_user, record_audit
    from dagloom.instance import DagloomInstance

    if not yes:
        typer.confirm(f"Delete run {run_id} and all its events?", abort=True)

    async def main() -> None:
        async with DagloomInstance.open(home) as instance:
            await instance.delete_run(run_id)
            await record_audit(instance, local_user(), "delete_run", f"run:{run_id}", via="cli")
        console.print(f"deleted run {run_id}")

    run_command(main)


@run_app.command("reexecute")
def reexecute(
    run_id: str,
    from_failure: Annotated[
        bool,
        typer.Option(
            "--from-failure",
            help="Execute only the steps that did not succeed; reuse the others' outputs.",
        ),
    ] = False,
    python_file: PythonFileOpt = None,
    module_name: ModuleNameOpt = None,
    attribute: AttributeOpt = None,
    working_directory: WorkingDirOpt = None,
    home: HomeOption = None,
) -> None:
    """Re-execute a stored run in this process, as a new run of the same job, run config
    and tags, whose parent is RUN_ID (-f/-m name the code, as for `dagloom job execute`).

    With --from-failure (RUN_ID must have failed) only its steps that did not succeed
    execute; the others' outputs are loaded from the runs that stored them. Exits 0 when
    the new run succeeds, 1 when it fails, 2 when it cannot start.
    """
    from dagloom.actors.job_source import DefinitionsJobSource
    from dagloom.cli._common import (
        RunConfigSources,
        consoles,
        execute_or_exit,
        fail,
        instance_home,
        load_or_exit,
    )
    from dagloom.code.snapshot import check_key_of
    from dagloom.daemon.retry_loop import reexecution_steps, reexecution_tags
    from dagloom.instance import DagloomInstance

    out, err = consoles()
    where = home or instance_home()

    async def read() -> tuple[Run, list[str]]:
        async with DagloomInstance.open(where) as instance:
            parent = await instance.get_run(run_id)
            if parent is None:
                raise RunNotFoundError(run_id)
            try:
                steps = await reexecution_steps(instance, parent, from_failure=from_failure)
            except DagloomError as exc:
                fail(err, str(exc))
            return parent, steps

    parent, steps = run_command(read)
    defs = load_or_exit(err, python_file, module_name, attribute, working_directory)
    try:
        job = DefinitionsJobSource({"": defs}).get_job(
            "",
            parent.job_name,
            [list(k.path) for k in parent.asset_selection],
            asset_check_selection=[check_key_of(c) for c in parent.asset_check_selection],
        )
    except DagloomError as exc:
        fail(err, str(exc))
    sources = RunConfigSources.read([], parent.run_config_json or None)
    new = Run(
        job_name=parent.job_name,
        code_location=parent.code_location,
        run_config_json=parent.run_config_json,
        tags=reexecution_tags(parent),
        asset_selection=list(parent.asset_selection),
        asset_check_selection=list(parent.asset_check_selection),
        parent_run_id=parent.run_id,
        root_run_id=parent.root_run_id or parent.run_id,
        step_keys_to_execute=steps,
    )
    what = "from failure" if from_failure else "all steps"
    execute_or_exit(
        job,
        sources=sources,
        tags=new.tags,
        title=f"re-execution of {run_id} ({what})",
        out=out,
        err=err,
        run=new,
        home=where,
    )
