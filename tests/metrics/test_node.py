"""A topology node with `metrics: {port}` and no webserver serves `/metrics` itself,
reporting the actors placed on it."""

from __future__ import annotations

import functools
from pathlib import Path

import aiohttp
import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dagloom.errors import ConfigError
from dagloom.instance import DagloomInstance
from dagloom.topology import parse_topology
from dagloom.topology.wiring import RunningNode, run_node

DEFS = Path(__file__).resolve().parents[1] / "integration" / "defs.py"


async def test_a_node_with_a_metrics_port_serves_its_actors_figures() -> None:
    topology = parse_topology(
        {
            "locations": {"suite": {"python_file": str(DEFS)}},
            "nodes": {
                "one": {
                    "api": {"port": None},
                    "coordinator": {},
                    "launcher": {"kind": "in_process"},
                    "code_locations": ["suite"],
                    "metrics": {"port": 0},
                }
            },
        }
    )
    async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
        node: RunningNode = await tg.start(
            functools.partial(run_node, topology, "one", instance=instance)
        )
        assert node.metrics_address is not None
        assert ("metrics (HTTP /metrics)", node.metrics_address) in node.addresses()
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{node.metrics_address}/metrics") as response,
        ):
            assert response.status == 200
            text = await response.text()
        tg.cancel_scope.cancel()
    ready = {
        s.labels["actor"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "dagloom_actor_ready"
    }
    assert set(ready) == set(node.actors) and all(v == 1 for v in ready.values())


def test_a_bad_metrics_port_names_its_key_path() -> None:
    data = {"nodes": {"one": {"api": {}, "coordinator": {}, "launcher": {}, "metrics": {}}}}
    with pytest.raises(ConfigError) as info:
        parse_topology(data)
    assert info.value.key_paths == ["nodes.one.metrics.port"]
