"""Webservers on nodes that host no coordinator and no code: they reach both over gRPC,
and two replicas over one storage give the same answers."""

from __future__ import annotations

import functools

import aiohttp
import anyio

from dagloom.instance import DagloomInstance
from dagloom.topology import parse_topology
from dagloom.topology.wiring import RunningNode, run_node
from tests._ports import reserved_ports
from tests.webserver.conftest import NUMBERS

LAUNCH = (
    "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {"
    " __typename ... on LaunchRunSuccess { run { runId } } } }"
)
STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


async def _post(session: aiohttp.ClientSession, address: str, query: str, variables: dict) -> dict:  # type: ignore[type-arg]
    async with session.post(
        f"http://{address}/graphql", json={"query": query, "variables": variables}
    ) as response:
        body: dict = await response.json()  # type: ignore[type-arg]
        assert "errors" not in body, body
        return body["data"]  # type: ignore[no-any-return]


async def test_two_webserver_replicas_reach_the_control_node_over_grpc() -> None:
    with reserved_ports(["control", "web1", "web2"]) as ports:
        topology = parse_topology(
            {
                "locations": {"numbers": {"python_file": str(NUMBERS)}},
                "nodes": {
                    "control": {
                        "grpc_port": ports["control"],
                        "api": {"port": None},
                        "coordinator": {},
                        "launcher": {"kind": "in_process"},
                        "code_locations": ["numbers"],
                    },
                    "web1": {"grpc_port": ports["web1"], "webserver": {"port": 0}},
                    "web2": {"grpc_port": ports["web2"], "webserver": {"port": 0}},
                },
            }
        )
        async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
            start = functools.partial(run_node, topology, instance=instance)
            await tg.start(functools.partial(start, "control"))
            web1: RunningNode = await tg.start(functools.partial(start, "web1"))
            web2: RunningNode = await tg.start(functools.partial(start, "web2"))
            assert web1.webserver_address and web2.webserver_address
            assert "numbers" not in web1.actors and "run_coordinator" not in web1.actors
            async with aiohttp.ClientSession() as session:
                selector = {
                    "repositoryLocationName": "numbers",
                    "repositoryName": "__repository__",
                    "jobName": "process_numbers",
                }
                data = await _post(
                    session, web1.webserver_address, LAUNCH, {"p": {"selector": selector}}
                )
                run_id = data["launchRun"]["run"]["runId"]
                with anyio.fail_after(60):
                    async for _ in instance.watch_run_events(run_id, stop_at_end=True):
                        pass
                for address in (web1.webserver_address, web2.webserver_address):
                    data = await _post(session, address, STATUS, {"id": run_id})
                    assert data["runOrError"]["status"] == "SUCCESS"
            tg.cancel_scope.cancel()
