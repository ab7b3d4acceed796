"""A dev node serving tests/webserver/extras_defs.py over an instance on disk (so steps'
output is captured), with its webserver on a free port."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import anyio

from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.topology import dev_topology
from dagloom.topology.wiring import RunningNode, run_node
from tests.webserver.conftest import Web

EXTRAS = Path(__file__).with_name("extras_defs.py")


@asynccontextmanager
async def serve_extras(home: Path) -> AsyncIterator[Web]:
    """The node lives in one task from start to stop (a fixture's setup and teardown may
    run in different tasks, and a task group must be left in the task that entered it)."""
    topology = dev_topology(
        {"extras": CodeOrigin(python_file=str(EXTRAS))},
        grpc_port=None,
        api_port=None,
        reload_on_change=False,
        daemon=True,
        webserver_port=0,
    )
    started: asyncio.Future[RunningNode] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def serve() -> None:
        async with DagloomInstance.open(home) as instance, anyio.create_task_group() as tg:
            node: RunningNode = await tg.start(
                functools.partial(run_node, topology, "dev", instance=instance)
            )
            started.set_result(node)
            await stop.wait()
            tg.cancel_scope.cancel()

    task = asyncio.ensure_future(serve())
    with anyio.fail_after(60):
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    if not started.done():
        await task
    node = started.result()
    assert node.webserver_address is not None
    try:
        async with aiohttp.ClientSession() as session:
            yield Web(f"http://{node.webserver_address}", node, session)
    finally:
        stop.set()
        await task
