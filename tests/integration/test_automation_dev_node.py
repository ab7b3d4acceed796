"""The automation example under a `dagloom dev` node: once the external upstream asset is
reported materialized with `dagloom asset report-materialization`, the eager assets
downstream of it run by themselves, in one run."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import anyio
import pytest

from dagloom.daemon.automation_loop import AUTOMATION_TAG
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.messages import RunStatus
from dagloom.storage.automation import AutomationStorage
from dagloom.storage.base import RunsFilter
from dagloom.topology import dev_topology
from dagloom.topology.wiring import RunningNode, run_node

pytestmark = pytest.mark.usefixtures("restore_import_state")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "automation.py"
ENDED = [RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED]


async def test_eager_assets_run_by_themselves_after_upstream_is_reported(
    tmp_path: Path,
) -> None:
    (tmp_path / "dagloom.yaml").write_text("auto_materialize:\n  minimum_interval_seconds: 0.2\n")
    topology = dev_topology(
        {"shop": CodeOrigin(python_file=str(EXAMPLE))},
        api_port=None,
        grpc_port=None,
        reload_on_change=False,
    )
    automated = RunsFilter(tags={AUTOMATION_TAG: "true"})
    with anyio.fail_after(120):
        async with DagloomInstance.open(tmp_path) as instance, anyio.create_task_group() as tg:
            node: RunningNode = await tg.start(
                functools.partial(run_node, topology, "dev", instance=instance)
            )
            assert node is not None
            storage = instance.schedule_storage
            assert isinstance(storage, AutomationStorage)
            # Wait for a first evaluation: raw_orders missing, so nothing is requested.
            while not await storage.get_automation_evaluations("orders"):  # noqa: ASYNC110
                await anyio.sleep(0.05)
            assert await instance.get_runs_count(automated) == 0
            # The outside loader reports its load with the CLI, against the same home.
            done = await anyio.run_process(
                [
                    sys.executable,
                    "-m",
                    "dagloom.cli",
                    "asset",
                    "report-materialization",
                    "raw_orders",
                    "--metadata",
                    '{"rows": 3}',
                ],
                check=False,
                env={
                    **os.environ,
                    "DAGLOOM_HOME": str(tmp_path),
                    "PYTHONPATH": str(ROOT / "src"),
                },
            )
            assert done.returncode == 0, done.stderr.decode()
            assert b"Reported materialization of asset raw_orders" in done.stdout
            # Runs have no watch by tag: poll their count (under fail_after above).
            ended = RunsFilter(tags={AUTOMATION_TAG: "true"}, statuses=ENDED)
            while await instance.get_runs_count(ended) < 1:  # noqa: ASYNC110
                await anyio.sleep(0.05)
            [run] = await instance.get_runs(automated)
            summary = await instance.event_log_storage.get_latest_materialization(["order_summary"])
            records = await storage.get_automation_evaluations("orders", limit=50)
            tg.cancel_scope.cancel()
    assert run.status == RunStatus.SUCCESS
    assert sorted(tuple(k.path) for k in run.asset_selection) == [("order_summary",), ("orders",)]
    assert summary is not None and summary.event is not None
    assert summary.event.run_id == run.run_id
    requested = [r for r in records if r.num_requested]
    assert requested and requested[-1].run_ids == (run.run_id,)
    assert json.loads(requested[-1].body)["root"]["label"] == "eager"
