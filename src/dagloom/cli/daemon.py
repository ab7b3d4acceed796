"""`dagloom daemon run|status`: run the daemon alone, and show how each of its loops is doing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dagloom.cli._app import app
from dagloom.cli._common import (
    ModuleNamesOpt,
    PythonFilesOpt,
    WorkspaceFileOpt,
    consoles,
    fail,
)
from dagloom.cli._instance_option import (
    ConfigOption,
    HomeOption,
    console,
    open_instance,
    run_command,
)
from dagloom.errors import ConfigError

daemon_app = typer.Typer(
    help="Run the daemon (schedules and sensors) and check on it.", no_args_is_help=True
)
app.add_typer(daemon_app, name="daemon")


@daemon_app.command("run")
def run(
    python_file: PythonFilesOpt = None,
    module_name: ModuleNamesOpt = None,
    workspace_file: WorkspaceFileOpt = None,
    topology_file: Annotated[
        Path | None, typer.Option("--topology", "-t", help="A topology file, with --node.")
    ] = None,
    node: Annotated[
        str | None,
        typer.Option("--node", "-n", help="The topology node to run (it hosts `daemon`)."),
    ] = None,
) -> None:
    """Run the daemon until SIGINT or SIGTERM.

    With -f/-m/-w: one process with the code locations, a run coordinator, the instance's
    run launcher and the daemon, on the instance at $DAGLOOM_HOME (no public API). With
    --topology and --node: that node, which must host `daemon: {}`. Several daemons may
    run against one instance; they take turns through storage leases.
    """
    from dagloom.cli.topology import _dev_locations, _run
    from dagloom.topology import dev_topology, load_topology

    _, err = consoles()
    if topology_file is not None or node is not None:
        if topology_file is None or node is None:
            fail(err, "give both --topology and --node")
        if python_file or module_name or workspace_file:
            fail(err, "give either --topology/--node or -f/-m/-w, not both")
        try:
            topology = load_topology(topology_file)
            if topology.node(node).daemon is None:
                fail(err, f"{topology_file}: node {node!r} hosts no `daemon`")
        except ConfigError as exc:
            fail(err, str(exc))
        _run(topology, node)
        return
    locations = _dev_locations(python_file, module_name, workspace_file, err)
    topology = dev_topology(locations, api_port=None, launcher=None, reload_on_change=False)
    _run(topology, "dev")


@daemon_app.command("status")
def status(home: HomeOption = None, config: ConfigOption = None) -> None:
    """Show each daemon loop's last heartbeat and last error, from the instance.

    Exits 1 when no daemon ever ran or a loop's heartbeat is stale.
    """

    from dagloom.daemon._instigators import heartbeat_fresh

    async def main() -> bool:
        async with open_instance(home, config) as instance:
            beats = await instance.schedule_storage.get_daemon_heartbeats()
        now = time.time()
        healthy = bool(beats)
        table = Table("loop", "daemon", "last heartbeat", "state", "last error")
        for name, beat in sorted(beats.items()):
            age = now - beat.timestamp
            fresh = heartbeat_fresh(beat, now=now)
            healthy = healthy and fresh
            error = "-"
            if beat.last_error is not None:
                when = time.strftime("%H:%M:%S", time.localtime(beat.last_error_time))
                error = f"{when} {beat.last_error.cls_name}: {beat.last_error.message}"
            table.add_row(
                name,
                beat.daemon_id[:8],
                f"{age:.0f}s ago",
                "ok" if fresh else "STALE",
                error,
            )
        if beats:
            console.print(table)
        else:
            console.print("no daemon has run against this instance")
        return healthy

    if not run_command(main):
        raise typer.Exit(1)
