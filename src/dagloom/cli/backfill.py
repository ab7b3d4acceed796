"""`dagloom backfill`: request runs over many partitions, and follow or cancel them.

`launch` computes the partitions from the code (`-f` / `-m`) and stores the backfill in the
instance; the daemon (`dagloom dev`, `dagloom daemon`, or a `serve` node hosting it)
submits its runs. `list`, `show` and `cancel` read and change what is stored.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dagloom.cli._app import app
from dagloom.cli._common import (
    AttributeOpt,
    ModuleNameOpt,
    PythonFileOpt,
    TagsOpt,
    WorkingDirOpt,
    consoles,
    fail,
    load_or_exit,
    parse_tags,
)
from dagloom.cli._instance_option import HomeOption, console, run_command
from dagloom.errors import ConfigError, DagloomError, DefinitionError
from dagloom.messages import AssetKeyMessage, Backfill, BackfillStatus

if TYPE_CHECKING:
    from dagloom.definitions.definitions import Definitions
    from dagloom.definitions.job import JobDefinition
    from dagloom.definitions.partitions import PartitionsDefinition
    from dagloom.instance import DagloomInstance

sub = typer.Typer(help="Launch, list, show and cancel backfills.", no_args_is_help=True)
app.add_typer(sub, name="backfill")


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S") if seconds else "-"


def _status(status: BackfillStatus) -> str:
    return BackfillStatus(status).name.removeprefix("BACKFILL_STATUS_").lower()


def _target(
    defs: Definitions, select: str | None, job_name: str | None
) -> tuple[JobDefinition, list[AssetKeyMessage], str]:
    """The job a backfill runs, the assets it selects, and the job name to submit."""
    from dagloom.definitions.asset_job import IMPLICIT_ASSET_JOB_NAME
    from dagloom.definitions.asset_selection import parse_selection

    if (select is None) == (job_name is None):
        raise DefinitionError("give --select ASSETS or --job NAME")
    if job_name is not None:
        return defs.get_job_def(job_name), [], job_name
    assert select is not None
    keys = parse_selection(select).resolve(defs.asset_graph)
    if not keys:
        raise DefinitionError(f"selection {select!r} matches no assets")
    job = defs.get_asset_job(keys)
    selection = [AssetKeyMessage(path=list(k.path)) for k in sorted(keys, key=lambda k: k.path)]
    return job, selection, IMPLICIT_ASSET_JOB_NAME


async def _partition_keys(
    instance: DagloomInstance,
    partitions_def: PartitionsDefinition,
    selection: list[AssetKeyMessage],
    partitions: str | None,
    all_partitions: bool,
    from_failure: bool,
) -> list[str]:
    from dagloom.definitions.partitions import dynamic_partition_names, parse_partition_range

    if (partitions is None) == (not all_partitions):
        raise DefinitionError("give --partitions FIRST...LAST or --all")
    store = await instance.dynamic_partitions_snapshot(dynamic_partition_names(partitions_def))
    if partitions is not None:
        keys = partitions_def.get_partition_keys_in_range(parse_partition_range(partitions), store)
    else:
        keys = partitions_def.get_partition_keys(dynamic_partitions_store=store)
    if from_failure:
        if not selection:
            raise DefinitionError("--from-failure needs --select: it reads assets' status")
        failed: set[str] = set()
        for key in selection:
            status = await instance.get_partition_status(list(key.path), partitions_def)
            failed.update(status.failed)
        keys = [k for k in keys if k in failed]
    return keys


@sub.command("launch")
def launch(
    select: Annotated[
        str | None, typer.Option("--select", help="The partitioned assets to backfill.")
    ] = None,
    job_name: Annotated[
        str | None, typer.Option("--job", help="A partitioned job to backfill instead.")
    ] = None,
    partitions: Annotated[
        str | None, typer.Option("--partitions", help="The partitions FIRST...LAST.")
    ] = None,
    all_partitions: Annotated[bool, typer.Option("--all", help="Every partition.")] = False,
    from_failure: Annotated[
        bool,
        typer.Option("--from-failure", help="Only the partitions whose last attempt failed."),
    ] = False,
    location: Annotated[
        str, typer.Option("--location", help="The code location (default: the only one).")
    ] = "",
    python_file: PythonFileOpt = None,
    module_name: ModuleNameOpt = None,
    attribute: AttributeOpt = None,
    working_directory: WorkingDirOpt = None,
    tags: TagsOpt = None,
    home: HomeOption = None,
) -> None:
    """Request a backfill; the daemon submits its runs. Exits 2 when the code, selection,
    job or partitions are invalid (an unknown key, a reversed range)."""
    from dagloom.definitions.backfill_policy import partitions_per_run
    from dagloom.instance import DagloomInstance

    out, err = consoles()
    defs = load_or_exit(err, python_file, module_name, attribute, working_directory)
    try:
        job, selection, submitted_job = _target(defs, select, job_name)
        run_tags = parse_tags(tags)
    except (ConfigError, DefinitionError) as exc:
        fail(err, str(exc))
    partitions_def = job.partitions_def
    if partitions_def is None:
        fail(err, f"job {job.name!r} is not partitioned")
    graph = defs.asset_graph
    per_run = partitions_per_run(
        [graph.by_key[k].backfill_policy for k in job.asset_layer.asset_keys]
        if job.asset_layer is not None and selection
        else []
    )

    async def main() -> Backfill:
        async with DagloomInstance.open(home) as instance:
            try:
                keys = await _partition_keys(
                    instance, partitions_def, selection, partitions, all_partitions, from_failure
                )
            except DagloomError as exc:
                fail(err, str(exc))
            if not keys:
                fail(err, "no partitions to backfill")
            backfill = Backfill(
                backfill_id=uuid.uuid4().hex[:8],
                status=BackfillStatus.REQUESTED,
                location_name=location,
                job_name=submitted_job,
                asset_selection=selection,
                partition_keys=keys,
                partitions_per_run=per_run,
                tags=run_tags,
                run_config_json="{}",
                create_time=time.time(),
                from_failure=from_failure,
            )
            await instance.run_storage.add_backfill(backfill)
            return backfill

    backfill = run_command(main)
    from dagloom.daemon._backfills import total_runs

    keys = list(backfill.partition_keys)
    out.print(
        f"Backfill {backfill.backfill_id} requested: {len(keys)} partition(s) "
        f"{keys[0]}...{keys[-1]} in {total_runs(backfill)} run(s); the daemon submits them.",
        soft_wrap=True,
    )


@sub.command("list")
def list_backfills(home: HomeOption = None) -> None:
    """List backfills, newest first, with how many of their runs are submitted."""
    from dagloom.daemon._backfills import total_runs
    from dagloom.instance import DagloomInstance

    async def main() -> None:
        async with DagloomInstance.open(home) as instance:
            backfills = await instance.run_storage.get_backfills()
        table = Table("backfill", "status", "target", "partitions", "runs submitted", "created")
        for b in backfills:
            target = ", ".join("/".join(k.path) for k in b.asset_selection) or b.job_name
            keys = list(b.partition_keys)
            span = f"{keys[0]}...{keys[-1]} ({len(keys)})" if keys else "-"
            table.add_row(
                b.backfill_id,
                _status(b.status),
                target,
                span,
                f"{b.num_submitted}/{total_runs(b)}",
                _when(b.create_time),
            )
        console.print(table)

    run_command(main)


async def _stored(instance: DagloomInstance, backfill_id: str) -> Backfill:
    backfill = await instance.run_storage.get_backfill(backfill_id)
    if backfill is None:
        raise DefinitionError(f"no backfill {backfill_id!r}", name=backfill_id)
    return backfill


@sub.command("show")
def show(backfill_id: str, home: HomeOption = None) -> None:
    """Show a backfill and its progress: partitions requested, not yet submitted, in
    progress, materialized and failed."""
    from dagloom.daemon._backfills import BACKFILL_ID_TAG, backfill_progress
    from dagloom.instance import DagloomInstance
    from dagloom.storage.base import RunsFilter

    async def main() -> None:
        async with DagloomInstance.open(home) as instance:
            backfill = await _stored(instance, backfill_id)
            runs = await instance.get_runs_async(RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
        progress = backfill_progress(backfill, runs)
        keys = list(backfill.partition_keys)
        fields = Table("field", "value", show_header=False)
        fields.add_row("backfill", backfill.backfill_id)
        fields.add_row("status", _status(backfill.status))
        if backfill.error is not None:
            fields.add_row("error", f"{backfill.error.cls_name}: {backfill.error.message}")
        fields.add_row("job", backfill.job_name)
        fields.add_row(
            "assets", ", ".join("/".join(k.path) for k in backfill.asset_selection) or "-"
        )
        fields.add_row("partitions", f"{keys[0]}...{keys[-1]}" if keys else "-")
        fields.add_row("created", _when(backfill.create_time))
        fields.add_row("requested", str(progress.requested))
        fields.add_row("not submitted", str(progress.not_submitted))
        fields.add_row("in progress", str(progress.in_progress))
        fields.add_row("materialized", str(progress.materialized))
        fields.add_row("failed", str(progress.failed))
        console.print(fields)

    run_command(main)


@sub.command("cancel")
def cancel(backfill_id: str, home: HomeOption = None) -> None:
    """Stop submitting a backfill's runs (runs already submitted go on)."""
    from dagloom.instance import DagloomInstance

    async def main() -> None:
        async with DagloomInstance.open(home) as instance:
            backfill = await _stored(instance, backfill_id)
            if backfill.status != BackfillStatus.REQUESTED:
                console.print(f"Backfill {backfill_id} is already {_status(backfill.status)}.")
                return
            backfill.status = BackfillStatus.CANCELED
            await instance.run_storage.update_backfill(backfill)
        console.print(f"Backfill {backfill_id} canceled; runs already submitted go on.")

    run_command(main)


__all__ = ["sub"]
