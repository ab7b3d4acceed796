"""`dagloom job`: list a code location's jobs and execute one in this process."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from dagloom.cli._app import JobGroup, app
from dagloom.cli._common import (
    AttributeOpt,
    ConfigFilesOpt,
    ConfigJsonOpt,
    ModuleNameOpt,
    PythonFileOpt,
    TagsOpt,
    WorkingDirOpt,
    consoles,
    execute_or_exit,
    fail,
    load_or_exit,
    run_options_or_exit,
)
from dagloom.definitions.asset_job import IMPLICIT_ASSET_JOB_NAME
from dagloom.errors import DagloomError

sub = typer.Typer(help="List and execute jobs.", no_args_is_help=True, cls=JobGroup)
app.add_typer(sub, name="job")


@sub.command("list")
def list_jobs(
    python_file: PythonFileOpt = None,
    module_name: ModuleNameOpt = None,
    attribute: AttributeOpt = None,
    working_directory: WorkingDirOpt = None,
) -> None:
    """Print the jobs the code defines, with their steps and descriptions."""
    out, err = consoles()
    defs = load_or_exit(err, python_file, module_name, attribute, working_directory)
    table = Table()
    table.add_column("job")
    table.add_column("steps", justify="right")
    table.add_column("description")
    for job in sorted(defs.get_all_job_defs(), key=lambda j: j.name):
        table.add_row(Text(job.name), str(len(job.nodes)), Text(job.description or ""))
    out.print(table)


@sub.command("execute")
def execute(
    job_name: Annotated[str, typer.Option("--job", "-j", help="The job to execute.")],
    python_file: PythonFileOpt = None,
    module_name: ModuleNameOpt = None,
    attribute: AttributeOpt = None,
    working_directory: WorkingDirOpt = None,
    config: ConfigFilesOpt = None,
    config_json: ConfigJsonOpt = None,
    tags: TagsOpt = None,
    partition: Annotated[
        str | None,
        typer.Option("--partition", help="Run this partition of a partitioned job."),
    ] = None,
    echo_logs: Annotated[
        bool,
        typer.Option(
            "--echo-logs/--no-echo-logs",
            help="Also print what steps print to the console while their compute logs capture it.",
        ),
    ] = True,
) -> None:
    """Execute a job in this process, showing its steps as they run. With `--partition`, a
    partitioned config gives the run config unless `--config` does.

    Exits 0 when the run succeeds, 1 when it fails, and 2 when it could not start (code that
    does not load, an unknown job, invalid run config). The run is recorded in the instance
    at $DAGLOOM_HOME when that is set.
    """
    from dagloom.compute_logs import set_console_echo

    set_console_echo(echo_logs)
    out, err = consoles()
    defs = load_or_exit(err, python_file, module_name, attribute, working_directory)
    if not defs.has_job(job_name) and job_name != IMPLICIT_ASSET_JOB_NAME:
        names = ", ".join(sorted(defs.job_names)) or "(none)"
        fail(err, f"no job named {job_name!r}; jobs are: {names}")
    job = defs.get_job_def(job_name)
    sources, run_tags = run_options_or_exit(err, config, config_json, tags)
    if partition is not None:
        given = sources.merged if sources.layers else None
        try:
            run_config, run_tags = job.partition_run(partition, given, run_tags)
        except DagloomError as exc:
            fail(err, str(exc))
        if given is None and isinstance(run_config, dict) and run_config:
            sources.layers.append(("the partitioned config", run_config))
    execute_or_exit(job, sources=sources, tags=run_tags, title=f"job {job.name}", out=out, err=err)
