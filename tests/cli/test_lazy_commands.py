"""Commands load their module on first use; `--help` lists them all without importing any."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer._click import Command, Context

from dagloom.cli._app import JOB_COMMANDS, ROOT_COMMANDS, app
from dagloom.cli._lazy import LazyCommand
from dagloom.cli.job import sub as job_app


def _listed_help(command: Command) -> str:
    """The first paragraph of a command's help, as a group's `--help` lists it."""
    text = command.short_help or command.help or ""
    return " ".join(text.split("\n\n")[0].split())


@pytest.mark.parametrize(
    ("typer_app", "table"), [(app, ROOT_COMMANDS), (job_app, JOB_COMMANDS)], ids=["root", "job"]
)
def test_lazy_tables_match_the_registered_commands(
    typer_app: typer.Typer, table: dict[str, LazyCommand]
) -> None:
    # conftest imported every command module, so the typer apps hold every command.
    group = typer.main.get_group(typer_app)
    lazy_names = set(table)
    if typer_app is job_app:
        lazy_names |= {"list", "execute"}  # defined in the group's own module
    assert set(group.commands) == lazy_names
    for name, entry in table.items():
        assert entry.help == _listed_help(group.commands[name]), name
    # Each command is registered by the module its entry names.
    registered = {info.name: [info.callback] for info in typer_app.registered_commands}
    for group_info in typer_app.registered_groups:
        assert group_info.typer_instance is not None
        commands = group_info.typer_instance.registered_commands
        registered[group_info.name] = [info.callback for info in commands]
    for name, entry in table.items():
        modules = {getattr(callback, "__module__", None) for callback in registered[name]}
        assert entry.module in modules, name


def test_listing_order_does_not_depend_on_what_is_loaded() -> None:
    group = typer.main.get_group(app)
    with Context(group) as ctx:
        assert group.list_commands(ctx) == list(ROOT_COMMANDS)
    job_group = typer.main.get_group(job_app)
    with Context(job_group) as ctx:
        assert job_group.list_commands(ctx) == ["list", "execute", *JOB_COMMANDS]


def _run_and_report_modules(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    script = (
        "import sys\n"
        "from dagloom.cli import app\n"
        "try:\n"
        f"    app({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('MODULES', ' '.join(m for m in sys.modules if m.startswith('dagloom')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("MODULES ")
    return result, set(last.split()[1:])


def test_help_lists_every_command_and_imports_no_command_module() -> None:
    result, modules = _run_and_report_modules(["--help"])
    for name, entry in ROOT_COMMANDS.items():
        assert name in result.stdout
        assert entry.help.split(" (")[0] in " ".join(result.stdout.split())
        assert entry.module not in modules
    assert "dagloom.definitions" not in modules


def test_a_command_imports_only_its_own_module() -> None:
    result, modules = _run_and_report_modules(["job", "--help"])
    assert "launch" in result.stdout
    assert "dagloom.cli.job" in modules
    assert "dagloom.cli.topology" not in modules
    assert "dagloom.cli.code_server" not in modules


def test_a_lazily_registered_subcommand_runs() -> None:
    result, modules = _run_and_report_modules(["job", "launch", "--help"])
    assert "--job" in result.stdout
    assert "dagloom.cli.topology" in modules


def test_an_unknown_command_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dagloom.cli", "no-such-command"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "No such command" in result.stderr
