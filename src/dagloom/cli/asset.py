"""`dagloom asset`: list and show a code location's assets, materialize a selection of them,
and report events of assets made outside dagloom."""

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
    from collections.abc import Callable

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
    """Print the assets the code defines, computed and external, with their groups, the
    assets they depend on, and whether each is stale by the instance's records."""
    from dagloom.definitions.staleness import version_nodes

    out, err = consoles()
    defs = load_or_exit(err, python_file, module_name, attribute, working_directory)
    graph = defs.asset_graph
    nodes = version_nodes(graph)
    staleness = _read_staleness(err, nodes)
    table = Table()
    table.add_column("asset")
    table.add_column("group")
    table.add_column("deps")
    table.add_column("stale")
    for key in sorted(nodes, key=lambda k: k.path):
        deps = sorted(k.to_user_string() for k in nodes[key].deps)
        external = graph.external_specs.get(key)
        group = graph.group_of(key) if external is None else external.group_name
        name = key.to_user_string() + (" (external)" if external is not None else "")
        status = staleness[key].status.value if staleness is not None else "?"
        table.add_row(Text(name), Text(group), Text(", ".join(deps)), Text(status))
    out.print(table)


@sub.command("show")
def show(
    key_text: Annotated[str, typer.Argument(metavar="KEY", help="The asset key, as a/b.")],
    python_file: PythonFileOpt = None,
    module_name: ModuleNameOpt = None,
    attribute: AttributeOpt = None,
    working_directory: WorkingDirOpt = None,
    partition: Annotated[
        str | None,
        typer.Option("--partition", help="Show this partition of a partitioned asset."),
    ] = None,
) -> None:
    """Print one asset: its kind, group, code version and upstream assets; its latest
    materialization and observation with their data versions; and why it is stale. With
    `--partition`, that partition's materialization and staleness (against the upstream
    partitions it reads)."""
    from dagloom.definitions.data_version import input_data_versions
    from dagloom.definitions.outputs import DATA_VERSION_TAG
    from dagloom.definitions.staleness import version_nodes
    from dagloom.errors import AssetReportError
    from dagloom.execution.reporting import parse_asset_key

    out, err = consoles()
    defs = load_or_exit(err, python_file, module_name, attribute, working_directory)
    try:
        key = parse_asset_key(key_text)
    except AssetReportError as exc:
        fail(err, str(exc))
    nodes = version_nodes(defs.asset_graph)
    node = nodes.get(key)
    if node is None:
        known = sorted(k.to_user_string() for k in nodes)
        fail(err, f"no asset {key.to_user_string()!r} in the code; assets are {known}")
    if partition is not None:
        if node.partition_keys is None:
            fail(err, f"asset {key.to_user_string()!r} is not partitioned; drop --partition")
        if node.partition_keys and partition not in node.partition_keys:
            fail(err, f"asset {key.to_user_string()!r} has no partition {partition!r}")
    staleness, record = _read_asset(err, nodes, key, partition)
    spec = defs.asset_graph.external_specs.get(key)
    kind = (
        "computed"
        if spec is None
        else "external, observable"
        if getattr(spec, "observe_fn", None) is not None
        else "external"
    )
    lines = [
        f"asset: {key.to_user_string()} ({kind})",
        *([f"partition: {partition}"] if partition is not None else []),
        f"deps: {', '.join(d.to_user_string() for d in node.deps) or '-'}",
        f"code version: {node.code_version or '-'}",
    ]
    if record.materialization_id is not None:
        tags = record.materialization_tags
        lines.append(f"materialized: data version {tags.get(DATA_VERSION_TAG, '-')}")
        for dep, version in sorted(input_data_versions(tags).items()):
            lines.append(f"  read {dep} at data version {version}")
    else:
        lines.append("materialized: never")
    if record.observation_id is not None:
        lines.append(f"observed: data version {record.observation_tags.get(DATA_VERSION_TAG, '-')}")
    lines.append(f"status: {staleness.status.value}")
    lines.extend(f"  {cause.describe()}" for cause in staleness.causes)
    for line in lines:
        out.print(Text(line), soft_wrap=True)


def _read_staleness(err: Any, nodes: Any) -> Any:
    """Each asset of `nodes` -> its Staleness, by the records of the instance at
    $DAGLOOM_HOME; None, after a warning naming the error, when they cannot be read (the
    list is still worth printing)."""
    from dagloom.cli._common import instance_home, open_instance
    from dagloom.instance.asset_versions import read_staleness

    async def read() -> Any:
        async with open_instance(instance_home()) as instance:
            assert instance is not None
            return await read_staleness(instance, nodes)

    try:
        return anyio.run(read)
    except DagloomError as exc:
        err.print(Text(f"Warning: stale status unknown: {exc}", style="yellow"), soft_wrap=True)
        return None


def _read_asset(err: Any, nodes: Any, key: Any, partition: str | None) -> tuple[Any, Any]:
    """The Staleness and the AssetVersionRecord of one asset, or of one of its partitions."""
    from dagloom.cli._common import instance_home, open_instance
    from dagloom.instance.asset_versions import (
        read_partition_staleness,
        read_partition_version_records,
        read_staleness,
        read_version_record,
    )

    async def read() -> tuple[Any, Any]:
        async with open_instance(instance_home()) as instance:
            assert instance is not None
            if partition is not None:
                item = (key, partition)
                found = await read_partition_staleness(instance, nodes, [item])
                records = await read_partition_version_records(instance, [item])
                return found[item], records[item]
            staleness = await read_staleness(instance, nodes)
            return staleness[key], await read_version_record(instance, key)

    try:
        return anyio.run(read)
    except DagloomError as exc:
        fail(err, str(exc))


def _report(kind_name: str, key_text: str, fields: dict[str, Any]) -> None:
    """Record one event about an asset outside any run, in the instance at $DAGLOOM_HOME;
    exits 2 naming the asset and field at fault for a bad report."""
    from dagloom.auth.audit import local_user, record_audit
    from dagloom.cli._common import instance_home, open_instance
    from dagloom.execution.reporting import ReportKind, build_report, parse_asset_key

    out, err = consoles()
    kind = ReportKind(kind_name)
    try:
        key = parse_asset_key(key_text)
        event = build_report(kind, key, {k: v for k, v in fields.items() if v is not None})
    except DagloomError as exc:
        fail(err, str(exc))

    async def write() -> None:
        async with open_instance(instance_home()) as instance:
            assert instance is not None
            await instance.report_runless_asset_event(event)
            await record_audit(
                instance,
                local_user(),
                f"report_asset_{kind.value}",
                key.to_user_string(),
                via="cli",
            )

    try:
        anyio.run(write)
    except DagloomError as exc:
        fail(err, str(exc))
    out.print(Text(f"Reported {kind.value} of asset {key.to_user_string()}"), soft_wrap=True)


_MetadataOpt = Annotated[
    str | None, typer.Option("--metadata", help="Metadata as a JSON object: '{\"rows\": 10}'.")
]
_DescriptionOpt = Annotated[str | None, typer.Option("--description", help="What happened.")]
_PartitionOpt = Annotated[
    str | None, typer.Option("--partition", help="The partition the event is about.")
]
_DataVersionOpt = Annotated[
    str | None, typer.Option("--data-version", help="The asset's data version now.")
]
_KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="The asset key, as a/b.")]


def _report_command(kind_name: str) -> Callable[..., None]:
    """The `report-<kind_name>` command: its options are the report's fields."""

    def command(
        key: _KeyArg,
        metadata: _MetadataOpt = None,
        description: _DescriptionOpt = None,
        partition: _PartitionOpt = None,
        data_version: _DataVersionOpt = None,
    ) -> None:
        fields = {
            "metadata": metadata,
            "description": description,
            "partition": partition,
            "data_version": data_version,
        }
        _report(kind_name, key, fields)

    return command


report_materialization = sub.command(
    "report-materialization",
    help="Record that asset KEY was materialized outside dagloom (an external asset updated by\n"
    "another system); assets downstream of it see the update.",
)(_report_command("materialization"))
report_observation = sub.command(
    "report-observation",
    help="Record what was seen of asset KEY outside dagloom (its data version, metadata).",
)(_report_command("observation"))


@sub.command("report-check")
def report_check(
    key: _KeyArg,
    check_name: Annotated[str, typer.Option("--check-name", help="The check's name.")],
    passed: Annotated[bool, typer.Option("--passed/--failed", help="The check's outcome.")],
    severity: Annotated[str, typer.Option("--severity", help="ERROR or WARN.")] = "ERROR",
    metadata: _MetadataOpt = None,
    description: _DescriptionOpt = None,
    partition: _PartitionOpt = None,
) -> None:
    """Record the result of a check of asset KEY run outside dagloom."""
    _report(
        "check",
        key,
        {
            "check_name": check_name,
            "passed": passed,
            "severity": severity,
            "metadata": metadata,
            "description": description,
            "partition": partition,
        },
    )


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


@sub.command("observe")
def observe(
    select: Annotated[
        str,
        typer.Option(
            "--select",
            help="Observable source assets to observe: 'key', 'a,b', or '*' (all of them).",
        ),
    ],
    python_file: PythonFileOpt = None,
    module_name: ModuleNameOpt = None,
    attribute: AttributeOpt = None,
    working_directory: WorkingDirOpt = None,
    tags: TagsOpt = None,
) -> None:
    """Run the observation functions of the selected observable source assets in this
    process, recording each data version they report.

    Exits 0 when the run succeeds, 1 when an observation fails, and 2 when it could not start
    (a key that is not an observable source asset).
    """
    from dagloom.definitions.asset import SourceAsset
    from dagloom.definitions.asset_key import AssetKey
    from dagloom.definitions.observable import build_observation_job

    out, err = consoles()
    defs = load_or_exit(err, python_file, module_name, attribute, working_directory)
    observable = {
        key: spec
        for key, spec in defs.asset_graph.external_specs.items()
        if isinstance(spec, SourceAsset) and spec.observe_fn is not None
    }
    if select.strip() == "*":
        chosen = list(observable.values())
    else:
        chosen = []
        for part in (p.strip() for p in select.split(",") if p.strip()):
            key = AssetKey.from_user_string(part)
            if key not in observable:
                known = sorted(k.to_user_string() for k in observable)
                fail(err, f"{part!r} is not an observable source asset; they are {known}")
            chosen.append(observable[key])
    if not chosen:
        fail(err, f"selection {select!r} matches no observable source assets")
    job = build_observation_job(
        "__ASSET_OBSERVATION_JOB",
        chosen,
        resource_defs=defs.resources,
        executor_def=defs.executor,
    )
    sources, run_tags = run_options_or_exit(err, None, None, tags)
    names = ", ".join(sorted(s.key.to_user_string() for s in chosen))
    out.print(Text(f"Observing {len(chosen)} asset(s): {names}"), soft_wrap=True)
    execute_or_exit(
        job, sources=sources, tags=run_tags, title=f"observe {select}", out=out, err=err
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
    key_text: Annotated[
        str,
        typer.Argument(metavar="KEY", help="The asset (a/b), or an asset check (a/b:check_name)."),
    ],
    limit: Annotated[int, typer.Option("--limit", help="Evaluations to show, newest first.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluations as JSON.")] = False,
) -> None:
    """Print why the automation loop did or did not request an asset or an asset check: its
    latest recorded evaluations, each with its condition tree."""
    import json
    from datetime import datetime

    from dagloom.cli._common import instance_home, open_instance
    from dagloom.daemon.automation_report import asset_evaluations, tree_lines
    from dagloom.definitions.asset_checks import AssetCheckKey
    from dagloom.definitions.asset_key import AssetKey

    out, err = consoles()
    asset_text, sep, check_name = key_text.rpartition(":")
    key: AssetKey | AssetCheckKey
    try:
        if sep:
            if not check_name:
                raise DagloomError("the check name after ':' is empty")
            key = AssetCheckKey(AssetKey.from_user_string(asset_text), check_name)
        else:
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
    asset: Annotated[
        str | None, typer.Argument(help="The asset whose checks to show (KEY or a/b/c).")
    ] = None,
    select: Annotated[
        str | None, typer.Option("--select", help="The asset, as an option instead.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Evaluations to show, newest first.")] = 20,
) -> None:
    """Print the recorded results of an asset's checks, newest first, from the instance."""
    from datetime import datetime

    from dagloom.cli._common import instance_home, open_instance
    from dagloom.definitions.asset_key import AssetKey

    out, err = consoles()
    if (asset is None) == (select is None):
        fail(err, "give the asset as KEY or --select KEY (one of them)")
    select = asset if asset is not None else select
    assert select is not None
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
