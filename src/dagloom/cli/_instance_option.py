"""What the instance and run commands share: the `--home` option, opening the instance, and
turning dagloom's errors into one line and exit code 1."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import anyio
import typer
from rich.console import Console

from dagloom.errors import DagloomError

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

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def run_command(main: Callable[[], Awaitable[T]]) -> T:
    """Run an async command body; a `DagloomError` prints its message and exits with 1."""
    try:
        return anyio.run(main)
    except DagloomError as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
        raise typer.Exit(1) from None
