"""The `dagloom` command line: one typer app, each command family in its own module."""

from __future__ import annotations

from dagloom.cli import asset as _asset  # noqa: F401  # registers `dagloom asset`
from dagloom.cli import code_server as _code_server  # noqa: F401  # registers `dagloom code-server`
from dagloom.cli import daemon as _daemon  # noqa: F401  # registers `dagloom daemon`
from dagloom.cli import instance as _instance  # noqa: F401  # registers `dagloom instance`
from dagloom.cli import instigators as _instigators  # noqa: F401  # `dagloom schedule`, `sensor`
from dagloom.cli import job as _job  # noqa: F401  # registers `dagloom job`
from dagloom.cli import run as _run  # noqa: F401  # registers `dagloom run`
from dagloom.cli import run_worker as _run_worker  # noqa: F401  # registers `dagloom run-worker`
from dagloom.cli import topology as _topology  # noqa: F401  # registers `serve`, `dev`, `job launch`
from dagloom.cli import webserver as _webserver  # noqa: F401  # registers `dagloom webserver`
from dagloom.cli._app import app


def main() -> None:
    """Entry point of the `dagloom` script."""
    app()


__all__ = ["app", "main"]
