"""`dagloom webserver`: the webserver (GraphQL, GraphiQL, `/health`) over the code given
with -f, -m or -w, without the daemon."""

from __future__ import annotations

from typing import Annotated

import typer

from dagloom.cli._app import app
from dagloom.cli._common import ModuleNamesOpt, PythonFilesOpt, WorkspaceFileOpt, consoles
from dagloom.cli.topology import InsecureOpt, _dev_locations, _run
from dagloom.topology import DEFAULT_HOST, DEFAULT_WEBSERVER_PORT, dev_topology


@app.command("webserver")
def webserver(
    python_file: PythonFilesOpt = None,
    module_name: ModuleNamesOpt = None,
    workspace_file: WorkspaceFileOpt = None,
    host: Annotated[str, typer.Option("--host", "-h", help="The address to listen on.")] = (
        DEFAULT_HOST
    ),
    port: Annotated[
        int, typer.Option("--port", "-p", help="The HTTP port (0: any free one).")
    ] = DEFAULT_WEBSERVER_PORT,
    insecure: InsecureOpt = False,
) -> None:
    """Serve GraphQL at http://HOST:PORT/graphql (GraphiQL in a browser) for the given code.

    The webserver reads the instance at $DAGLOOM_HOME and submits runs to a coordinator
    running beside it, which launches them with the instance's `run_launcher`; the code
    locations import the code in this process, never on the webserver's requests. Schedules
    and sensors tick only where a daemon runs (`dagloom daemon`, `dagloom dev`). For several
    replicas over one storage, give each node of a topology a `webserver` role and run it
    with `dagloom serve`. With `auth: {enabled: true}` in dagloom.yaml every request needs
    a token (`/login` for browsers) and `tls:` serves HTTPS; a host beyond loopback without
    auth is refused unless --insecure. Stops on SIGINT or SIGTERM.
    """
    _, err = consoles()
    locations = _dev_locations(python_file, module_name, workspace_file, err)
    topology = dev_topology(
        locations,
        host=host,
        grpc_port=None,
        api_port=None,
        launcher=None,
        reload_on_change=False,
        daemon=False,
        webserver_port=port,
    )
    _run(topology, "dev", insecure)
