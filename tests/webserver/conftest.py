"""A dev node with its webserver on a free port, over an ephemeral instance, and a small
GraphQL client for it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.topology import dev_topology
from dagloom.topology.wiring import RunningNode, run_node

NUMBERS = Path(__file__).resolve().parents[2] / "examples" / "numbers.py"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass
class Web:
    """The running webserver: its base URL, the node, and an HTTP session."""

    url: str
    node: RunningNode
    session: aiohttp.ClientSession

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a document; the JSON body (`data` and/or `errors`). Asserts no 5xx."""
        body = {"query": query, "variables": variables or {}}
        async with self.session.post(f"{self.url}/graphql", json=body) as response:
            assert response.status < 500, await response.text()
            result: dict[str, Any] = await response.json()
            return result

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a document that must not error."""
        result = await self.post(query, variables)
        assert "errors" not in result, result["errors"]
        data: dict[str, Any] = result["data"]
        return data

    async def launch(self, job: str, **params: Any) -> str:
        selector = {"repositoryLocationName": "numbers", "repositoryName": "__repository__"}
        selector["jobName"] = job
        selector.update(params.pop("selector", {}))
        data = await self.data(
            "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {"
            " __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }",
            {"p": {"selector": selector, **params}},
        )
        result = data["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        run_id: str = result["run"]["runId"]
        return run_id

    async def wait_for_end(self, run_id: str) -> str:
        """The run's terminal status, read through `runOrError` as the run's events arrive."""
        with anyio.fail_after(60):
            async for _ in self.node.instance.watch_run_events(run_id, stop_at_end=True):
                pass
        data = await self.data(
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id}
        )
        status: str = data["runOrError"]["status"]
        assert status in TERMINAL
        return status


@asynccontextmanager
async def open_node(
    location: str = "numbers",
    path: Path = NUMBERS,
    *,
    home: Path | None = None,
    daemon: bool = False,
) -> AsyncIterator[RunningNode]:
    """A dev node serving one code location (default examples/numbers.py) with its webserver
    on a free port, over the instance in `home` (default: an ephemeral one), with its daemon
    when `daemon`."""
    topology = dev_topology(
        {location: CodeOrigin(python_file=str(path))},
        grpc_port=None,
        api_port=None,
        reload_on_change=False,
        daemon=daemon,
        webserver_port=0,
    )
    instance = DagloomInstance.ephemeral() if home is None else DagloomInstance.open(home)
    async with instance, anyio.create_task_group() as tg:
        node: RunningNode = await tg.start(
            functools.partial(run_node, topology, "dev", instance=instance)
        )
        yield node
        tg.cancel_scope.cancel()


@asynccontextmanager
async def serve_web(nodes: AbstractAsyncContextManager[RunningNode]) -> AsyncIterator[Web]:
    """The node `nodes` opens, served until the block ends, with an HTTP session. The node
    lives in one task from start to stop: a fixture's setup and teardown may run in
    different tasks, and a task group must be left in the task that entered it."""
    started: asyncio.Future[RunningNode] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def serve() -> None:
        async with nodes as node:
            started.set_result(node)
            await stop.wait()

    task = asyncio.ensure_future(serve())
    with anyio.fail_after(60):
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    if not started.done():
        await task  # raises what stopped the node from starting
    node = started.result()
    assert node.webserver_address is not None
    try:
        async with aiohttp.ClientSession() as session:
            yield Web(f"http://{node.webserver_address}", node, session)
    finally:
        stop.set()
        await task


@pytest.fixture
async def web() -> AsyncIterator[Web]:
    async with serve_web(open_node()) as web:
        yield web
