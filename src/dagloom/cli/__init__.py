"""The `dagloom` command line: one typer app, each command family in its own module, imported
when one of its commands is first used (the table is in `_app`)."""

from __future__ import annotations

from dagloom.cli._app import app


def main() -> None:
    """Entry point of the `dagloom` script."""
    app()


__all__ = ["app", "main"]
