"""The example's story under a dev node with its daemon: an outside loader writes
raw_orders and reports it over REST; the sensor sees the reported materialization and
launches `summarize`, so orders_summary is rebuilt by itself and is fresh again."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path

import aiohttp
import anyio
import pytest

from dagloom.code.loader import load_definitions
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.staleness import StaleStatus, version_nodes
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.instance.asset_versions import read_staleness
from dagloom.messages import RunStatus
from dagloom.topology import dev_topology
from dagloom.topology.wiring import RunningNode, run_node

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "external_assets.py"


async def test_a_reported_load_triggers_the_summary_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_import_state: None
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("EXTERNAL_ASSETS_DIR", str(data))
    topology = dev_topology(
        {"external": CodeOrigin(python_file=str(EXAMPLE))},
        grpc_port=None,
        api_port=None,
        reload_on_change=False,
        daemon=True,
        webserver_port=0,
    )
    started: asyncio.Future[RunningNode] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def serve() -> None:
        async with (
            DagloomInstance.open(tmp_path / "home") as instance,
            anyio.create_task_group() as tg,
        ):
            node = await tg.start(functools.partial(run_node, topology, "dev", instance=instance))
            started.set_result(node)
            await stop.wait()
            tg.cancel_scope.cancel()

    task = asyncio.ensure_future(serve())
    try:
        with anyio.fail_after(60):
            await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        node = started.result()
        instance = node.instance

        (data / "raw_orders.json").write_text(json.dumps([{"amount": 3}, {"amount": 4}]))
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://{node.webserver_address}/report_asset_materialization/raw_orders",
                json={"metadata": {"rows": 2}},
            ) as response,
        ):
            assert response.status == 200, await response.text()

        with anyio.fail_after(60):
            while True:
                runs = await instance.get_runs()
                done = [r for r in runs if r.job_name == "summarize"]
                if done and done[0].status in (RunStatus.SUCCESS, RunStatus.FAILURE):
                    break
                await anyio.sleep(0.1)
        assert done[0].status == RunStatus.SUCCESS

        [record] = await instance.get_materializations(["orders_summary"], limit=1)
        assert record.event is not None and record.event.asset_materialization is not None
        assert record.event.asset_materialization.metadata["total"].int == 7

        defs = load_definitions(python_file=EXAMPLE)
        staleness = await read_staleness(instance, version_nodes(defs.asset_graph))
        assert staleness[AssetKey("orders_summary")].status == StaleStatus.FRESH
    finally:
        stop.set()
        await task
