"""`dagloom asset`: list a code location's assets and materialize a selection of them."""

from __future__ import annotations

from typing import Annotated

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
from dagloom.errors import ConfigError, DefinitionError

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
) -> None:
    """Materialize the selected assets in this process; assets outside the selection that
    they read are loaded, not recomputed.

    Exits 0 when the run succeeds, 1 when it fails, and 2 when it could not start (code that
    does not load, a selection naming unknown assets, invalid run config).
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
