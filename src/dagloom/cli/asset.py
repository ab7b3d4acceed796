"""`dagloom asset`: list a code location's assets and materialize a selection of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer
from rich.table import Table
from rich.text import Text

from dagloom.cli._app import app
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
from dagloom.definitions.asset_selection import parse_selection
from dagloom.errors import ConfigError, DagloomError, DefinitionError

if TYPE_CHECKING:
    from dagloom.definitions.job import JobDefinition
    from dagloom.definitions.partitions import DynamicPartitionsStore, PartitionsDefinition

sub = typer.Typer(help="List and materialize assets.", no_args_is_help=True)
app.add_typer(sub, name="asset")


@sub.command("list")
def list_assets(
    python_file: PythonFileOpt = None,
    module_name: ModuleNameOpt = None,
    attribute: AttributeOpt = None,
    working_directory: WorkingDirOpt = None,
) -> None:
    """Print the assets the code defines, with their groups and the assets they depend on."""
    out, err = consoles()
    defs = load_or_exit(err, python_file, module_name, attribute, working_directory)
    graph = defs.asset_graph
    table = Table()
    table.add_column("asset")
    table.add_column("group")
    table.add_column("deps")
    for key in sorted(graph.keys, key=lambda k: k.path):
        deps = sorted(k.to_user_string() for k in graph.upstream.get(key, ()))
        table.add_row(Text(key.to_user_string()), Text(graph.group_of(key)), Text(", ".join(deps)))
    out.print(table)


@sub.command("materialize")
def materialize(
    select: Annotated[
        str,
        typer.Option(
            "--select",
            help="Assets to materialize: 'key', 'a,b', 'group:name', 'key+' (and downstream), "
            "'+key' (and upstream), '*' (all).",
        ),
    ],
    python_file: PythonFileOpt = None,
    module_name: ModuleNameOpt = None,
    attribute: AttributeOpt = None,
    working_directory: WorkingDirOpt = None,
    config: ConfigFilesOpt = None,
    config_json: ConfigJsonOpt = None,
    tags: TagsOpt = None,
    partition: Annotated[
        str | None,
        typer.Option("--partition", help="Materialize this partition of partitioned assets."),
    ] = None,
    partition_range: Annotated[
        str | None,
        typer.Option(
            "--partition-range",
            help="Materialize partitions FIRST...LAST in one run (assets must accept a range).",
        ),
    ] = None,
) -> None:
    """Materialize the selected assets in this process; assets outside the selection that
    they read are loaded, not recomputed.

    Exits 0 when the run succeeds, 1 when it fails, and 2 when it could not start (code that
    does not load, a selection naming unknown assets, invalid run config, a partition the
    assets do not have).
    """
    out, err = consoles()
    defs = load_or_exit(err, python_file, module_name, attribute, working_directory)
    try:
        keys = parse_selection(select).resolve(defs.asset_graph)
    except DefinitionError as exc:
        fail(err, str(exc))
    if not keys:
        fail(err, f"selection {select!r} matches no assets")
    try:
        job = defs.get_asset_job(keys)
    except (ConfigError, DefinitionError) as exc:
        fail(err, str(exc))
    sources, run_tags = run_options_or_exit(err, config, config_json, tags)
    if partition is not None or partition_range is not None:
        try:
            run_tags.update(_partition_tags(job, partition, partition_range))
        except DagloomError as exc:
            fail(err, str(exc))
    names = ", ".join(sorted(k.to_user_string() for k in keys))
    out.print(Text(f"Materializing {len(keys)} asset(s): {names}"), soft_wrap=True)
    execute_or_exit(
        job,
        sources=sources,
        tags=run_tags,
        title=f"materialize {select}",
        out=out,
        err=err,
    )


def _dynamic_store(partitions_def: PartitionsDefinition) -> DynamicPartitionsStore | None:
    """The instance's dynamic partitions the definition uses, read now (None: it uses none)."""
    from dagloom.cli._common import instance_home, open_instance
    from dagloom.definitions.partitions import dynamic_partition_names

    names = dynamic_partition_names(partitions_def)
    if not names:
        return None

    async def read() -> DynamicPartitionsStore | None:
        async with open_instance(instance_home()) as instance:
            assert instance is not None
            return await instance.dynamic_partitions_snapshot(names)

    return anyio.run(read)


def _partition_tags(
    job: JobDefinition, partition: str | None, partition_range: str | None
) -> dict[str, str]:
    """The run tags for `--partition` or `--partition-range`, checked against the job's
    partitions. Raises DagloomError naming the key or the reversed range."""
    from dagloom.definitions.partitions import parse_partition_range
    from dagloom.execution.partitions import partition_tags

    if partition is not None and partition_range is not None:
        raise DefinitionError("give --partition or --partition-range, not both")
    partitions_def = job.partitions_def
    if partitions_def is None:
        raise DefinitionError("the selected assets are not partitioned")
    store = _dynamic_store(partitions_def)
    if partition is not None:
        partitions_def.validate_partition_key(
            partition, what="the selected assets", dynamic_partitions_store=store
        )
        return partition_tags(partition)
    assert partition_range is not None
    key_range = parse_partition_range(partition_range)
    partitions_def.get_partition_keys_in_range(key_range, store)  # both ends exist, in order
    return partition_tags(partition_key_range=key_range)


@sub.command("partitions")
def partitions(
    select: Annotated[str, typer.Option("--select", help="The asset whose partitions to show.")],
    python_file: PythonFileOpt = None,
    module_name: ModuleNameOpt = None,
    attribute: AttributeOpt = None,
    working_directory: WorkingDirOpt = None,
) -> None:
    """Print which partitions of an asset are materialized, failed, in progress or missing,
    as counts and as ranges of consecutive partitions, from the instance's records."""
    from dagloom.cli._common import instance_home, open_instance
    from dagloom.definitions.asset_key import AssetKey

    out, err = consoles()
    defs = load_or_exit(err, python_file, module_name, attribute, working_directory)
    key = AssetKey.from_user_string(select)
    if key not in defs.asset_graph.by_key:
        fail(err, f"no asset {select!r} in the code")
    partitions_def = defs.asset_graph.partitions_def(key)
    if partitions_def is None:
        fail(err, f"asset {select!r} is not partitioned")

    async def read() -> Any:
        async with open_instance(instance_home()) as instance:
            assert instance is not None
            return await instance.get_partition_status(list(key.path), partitions_def)

    try:
        status = anyio.run(read)
    except DagloomError as exc:
        fail(err, str(exc))
    counts = status.counts()
    out.print(
        Text(
            f"{select}: {len(status.keys)} partitions, "
            + ", ".join(f"{n} {state.value.replace('_', ' ')}" for state, n in counts.items()),
        ),
        soft_wrap=True,
    )
    table = Table()
    table.add_column("partitions")
    table.add_column("status")
    for first, last, state in status.ranges():
        table.add_row(Text(first if first == last else f"{first}...{last}"), Text(state.value))
    out.print(table)


@sub.command("automation")
def automation(
    key_text: Annotated[str, typer.Argument(metavar="KEY", help="The asset, e.g. a/b.")],
    limit: Annotated[int, typer.Option("--limit", help="Evaluations to show, newest first.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluations as JSON.")] = False,
) -> None:
    """Print why the automation loop did or did not request an asset: its latest recorded
    evaluations, each with its condition tree."""
    import json
    from datetime import datetime

    from dagloom.cli._common import instance_home, open_instance
    from dagloom.daemon.automation_report import asset_evaluations, tree_lines
    from dagloom.definitions.asset_key import AssetKey

    out, err = consoles()
    try:
        key = AssetKey.from_user_string(key_text)
    except DagloomError as exc:
        fail(err, f"asset key {key_text!r}: {exc}")

    async def read() -> Any:
        async with open_instance(instance_home()) as instance:
            assert instance is not None
            return await asset_evaluations(instance.schedule_storage, key, limit=limit)

    try:
        views = anyio.run(read)
    except DagloomError as exc:
        fail(err, str(exc))
    if as_json:
        print(json.dumps([v.to_dict() for v in views], indent=2))
        return
    if not views:
        out.print(Text(f"{key_text}: no automation evaluations recorded"), soft_wrap=True)
        return
    for view in views:
        when = datetime.fromtimestamp(view.timestamp).strftime("%Y-%m-%d %H:%M:%S")
        runs = f", runs {', '.join(view.run_ids)}" if view.run_ids else ""
        head = f"{key_text} at {when}: {view.num_requested} requested{runs}"
        out.print(Text(head), soft_wrap=True)
        if view.error:
            out.print(Text(f"  error: {view.error}"), soft_wrap=True)
        if view.root is not None:
            for line in tree_lines(view.root, 1):
                out.print(Text(line), soft_wrap=True)


@sub.command("checks")
def checks(
    select: Annotated[str, typer.Option("--select", help="The asset whose checks to show.")],
    limit: Annotated[int, typer.Option("--limit", help="Evaluations to show, newest first.")] = 20,
) -> None:
    """Print the recorded results of an asset's checks, newest first, from the instance."""
    from datetime import datetime

    from dagloom.cli._common import instance_home, open_instance
    from dagloom.definitions.asset_key import AssetKey

    out, err = consoles()
    key = AssetKey.from_user_string(select)

    async def read() -> Any:
        async with open_instance(instance_home()) as instance:
            assert instance is not None
            return await instance.get_asset_check_evaluations(list(key.path), limit=limit)

    try:
        records = anyio.run(read)
    except DagloomError as exc:
        fail(err, str(exc))
    if not records:
        out.print(Text(f"{select}: no check results recorded"), soft_wrap=True)
        return
    table = Table()
    for column in ("check", "result", "severity", "partition", "run", "when"):
        table.add_column(column)
    for record in records:
        event = record.event
        data = event.asset_check_evaluation
        when = datetime.fromtimestamp(event.timestamp).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            Text(data.check_name),
            Text("passed" if data.passed else "failed"),
            Text(data.severity + (" (blocking)" if data.blocking else "")),
            Text(data.partition or "-"),
            Text(event.run_id),
            Text(when),
        )
    out.print(table)
