"""The root typer app; command families register themselves on it as sub-apps.

The command modules load on first use (see `_lazy`): the tables below name, for each command,
the module that registers it and the help line `--help` lists for it. A test checks these
lines against the commands' own help.
"""

from __future__ import annotations

import typer

from dagloom.cli._lazy import LazyCommand, lazy_group

# In the order `dagloom --help` lists them: single commands first, then command families.
ROOT_COMMANDS = {
    "run-worker": LazyCommand(
        "dagloom.cli.run_worker",
        "Execute runs for a launcher: one run (--run-id) or many, served over gRPC (--serve).",
    ),
    "serve": LazyCommand(
        "dagloom.cli.topology", "Run one node of a topology until SIGINT or SIGTERM."
    ),
    "dev": LazyCommand("dagloom.cli.topology", "Run the whole dev topology in one process."),
    "webserver": LazyCommand(
        "dagloom.cli.webserver",
        "Serve GraphQL at http://HOST:PORT/graphql (GraphiQL in a browser) for the given code.",
    ),
    "asset": LazyCommand("dagloom.cli.asset", "List and materialize assets."),
    "backfill": LazyCommand("dagloom.cli.backfill", "Launch, list, show and cancel backfills."),
    "code-server": LazyCommand(
        "dagloom.cli.code_server", "Serve a code location to other dagloom processes over gRPC."
    ),
    "daemon": LazyCommand(
        "dagloom.cli.daemon", "Run the daemon (schedules and sensors) and check on it."
    ),
    "instance": LazyCommand(
        "dagloom.cli.instance", "Inspect and upgrade the instance ($DAGLOOM_HOME)."
    ),
    "schedule": LazyCommand("dagloom.cli.instigators", "List, start, stop and inspect schedules."),
    "sensor": LazyCommand("dagloom.cli.instigators", "List, start, stop and inspect sensors."),
    "job": LazyCommand("dagloom.cli.job", "List and execute jobs."),
    "run": LazyCommand("dagloom.cli.run", "List, inspect and delete runs stored in the instance."),
    "token": LazyCommand(
        "dagloom.cli.token", "Create, list and revoke API tokens (stored hashed)."
    ),
}

JOB_COMMANDS = {
    "launch": LazyCommand(
        "dagloom.cli.topology",
        "Launch a run through a running dagloom's API and follow it to its end.",
    ),
}
"""`dagloom job` subcommands registered outside `dagloom.cli.job`."""

JobGroup = lazy_group("dagloom.cli.job:sub", JOB_COMMANDS)
"""The click group class of `dagloom job`."""


def _root() -> None:
    # Without a callback an app with no command registered yet would not build as a group.
    pass


app = typer.Typer(
    name="dagloom",
    help="dagloom: run data pipelines declared with ops, jobs, assets, schedules and sensors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=lazy_group("dagloom.cli._app:app", ROOT_COMMANDS),
    callback=_root,
)


def import_all_commands() -> None:
    """Import every command module, registering all commands (for tools that walk them all)."""
    import importlib

    for entry in (*ROOT_COMMANDS.values(), *JOB_COMMANDS.values()):
        importlib.import_module(entry.module)
