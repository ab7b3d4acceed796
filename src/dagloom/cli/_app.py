"""The root typer app; command families register themselves on it as sub-apps."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="dagloom",
    help="dagloom: run data pipelines declared with ops, jobs, assets, schedules and sensors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
