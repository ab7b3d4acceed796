"""The example's story under a dev node with its daemon: an outside loader writes
raw_orders and reports it over REST; the sensor sees the reported materialization and
launches `summarize`, so orders_summary is rebuilt by itself and is fresh again."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from dagloom.code.loader import load_definitions
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.staleness import StaleStatus, version_nodes
from dagloom.instance.asset_versions import read_staleness
from dagloom.messages import RunStatus
from tests.webserver.conftest import open_node, serve_web

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "external_assets.py"


async def test_a_reported_load_triggers_the_summary_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_import_state: None
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("EXTERNAL_ASSETS_DIR", str(data))
    nodes = open_node("external", EXAMPLE, home=tmp_path / "home", daemon=True)
    async with serve_web(nodes) as web:
        instance = web.node.instance

        (data / "raw_orders.json").write_text(json.dumps([{"amount": 3}, {"amount": 4}]))
        async with web.session.post(
            f"{web.url}/report_asset_materialization/raw_orders", json={"metadata": {"rows": 2}}
        ) as response:
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
