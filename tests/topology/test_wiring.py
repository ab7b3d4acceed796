"""Starting a node: the actors its config places on it, its addresses, and the launcher
dagloom.yaml picks when the topology names none."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio

from dagloom.actors.run_launcher import InProcessRunLauncher
from dagloom.api import AsyncClient
from dagloom.instance import DagloomInstance
from dagloom.topology import parse_topology
from dagloom.topology.dispatch import WorkerPoolRunLauncher
from dagloom.topology.wiring import RunningNode, run_node

DEFS = Path(__file__).resolve().parents[1] / "integration" / "defs.py"


def _one_node(launcher: dict[str, str], **extra: object) -> dict[str, object]:
    node = {"coordinator": {}, "launcher": launcher, "code_locations": ["suite"], **extra}
    return {"locations": {"suite": {"python_file": str(DEFS)}}, "nodes": {"one": node}}


async def _start(data: dict[str, object]) -> tuple[RunningNode, list[str]]:
    topology = parse_topology(data)
    async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
        node: RunningNode = await tg.start(
            functools.partial(run_node, topology, "one", instance=instance)
        )
        jobs = []
        if node.api is not None:
            jobs = [j.job_name for j in await AsyncClient.in_process(node.api).list_jobs()]
        tg.cancel_scope.cancel()
    return node, jobs


async def test_without_a_kind_the_instance_picks_the_launcher() -> None:
    node, _ = await _start(_one_node({}, api={"port": None}))
    # An ephemeral instance's storage is out of other processes' reach: in-process.
    assert isinstance(node.actors["run_launcher"], InProcessRunLauncher)


async def test_a_node_hosts_what_its_config_places_on_it() -> None:
    node, jobs = await _start(
        _one_node({"kind": "worker_pool"}, api={"port": 0}, grpc_port=0, worker_pool={"workers": 2})
    )
    assert set(node.actors) == {
        "suite",
        "one.worker-0",
        "one.worker-1",
        "run_launcher",
        "run_coordinator",
        "health",
    }
    assert isinstance(node.actors["run_launcher"], WorkerPoolRunLauncher)
    assert [what for what, _ in node.addresses()] == ["public gRPC API", "actors and Health (gRPC)"]
    assert "failing_job" in jobs
