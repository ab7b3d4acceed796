"""A dev node serving tests/webserver/extras_defs.py over an instance on disk (so steps'
output is captured), with its webserver on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.webserver.conftest import Web, open_node, serve_web

EXTRAS = Path(__file__).with_name("extras_defs.py")


@asynccontextmanager
async def serve_extras(home: Path, *, daemon: bool = True) -> AsyncIterator[Web]:
    """A dev node (with its daemon unless told not to) serving extras_defs.py over the
    instance in `home`."""
    async with serve_web(open_node("extras", EXTRAS, home=home, daemon=daemon)) as web:
        yield web
