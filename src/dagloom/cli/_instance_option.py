"""What the instance and run commands share: the `--home` and `--config` options, opening
the instance, and turning dagloom's errors into one line and exit code 1."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import anyio
import typer
from rich.console import Console

from dagloom.errors import ConfigError, DagloomError

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance

T = TypeVar("T")

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="DAGLOOM_HOME",
        help="The instance directory (default: $DAGLOOM_HOME, else ./.dagloom).",
        show_default=False,
    ),
]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="A dagloom.yaml to open the instance with (default: the one in the home).",
        show_default=False,
    ),
]

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def run_command(main: Callable[[], Awaitable[T]]) -> T:
    """Run an async command body; a `DagloomError` prints its message and exits with 1."""
    try:
        return anyio.run(main)
    except DagloomError as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
        raise typer.Exit(1) from None


def open_instance(home: Path | None, config: Path | None = None) -> DagloomInstance:
    """The instance of `home` (`DagloomInstance.open`), configured by `config` instead of
    the home's dagloom.yaml when given; `ConfigError` for a missing or invalid file."""
    from dagloom.instance import DagloomInstance, load_config_file

    if config is None:
        return DagloomInstance.open(home)
    if not config.exists():
        raise ConfigError(f"no such file: {config}")
    return DagloomInstance.from_config(load_config_file(config), home=home, source=str(config))
