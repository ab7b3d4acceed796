"""`dagloom asset automation KEY`: the recorded evaluations of an asset, as a tree or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from dagloom.cli import app
from dagloom.instance import DagloomInstance
from dagloom.storage.automation import AutomationEvaluationRecord, AutomationStorage

runner = CliRunner(env={"COLUMNS": "200"})

pytestmark = pytest.mark.usefixtures("home")

TREE = {
    "node_id": "0",
    "label": "eager",
    "candidate_size": 1,
    "num_true": 1,
    "true_partitions": [],
    "children": [
        {
            "node_id": "0.0",
            "label": "any_deps_updated",
            "candidate_size": 1,
            "num_true": 1,
            "true_partitions": [],
            "children": [],
        },
        {
            "node_id": "0.1",
            "label": "in_progress",
            "candidate_size": 1,
            "num_true": 0,
            "true_partitions": [],
            "children": [],
        },
    ],
}


def record(home: Path, key: str = "shop/orders") -> None:
    async def write() -> None:
        async with DagloomInstance.open(home) as instance:
            storage = instance.schedule_storage
            assert isinstance(storage, AutomationStorage)
            body = json.dumps({"root": TREE, "error": None})
            await storage.store_automation_tick(
                {}, [AutomationEvaluationRecord(key, 1.0e9, 1, body, ("run-1",))]
            )

    anyio.run(write)


def test_automation_prints_the_latest_evaluation_tree(home: Path) -> None:
    result = runner.invoke(app, ["asset", "automation", "shop/orders"])
    assert result.exit_code == 0 and "no automation evaluations" in result.output
    record(home)
    result = runner.invoke(app, ["asset", "automation", "shop/orders"])
    assert result.exit_code == 0, result.output
    assert "1 requested, runs run-1" in result.output
    assert "✓ eager (1/1)" in result.output
    assert "    ✗ in_progress (0/1)" in result.output
    result = runner.invoke(app, ["asset", "automation", "shop/orders", "--json"])
    [view] = json.loads(result.output)
    assert view["run_ids"] == ["run-1"] and view["root"]["label"] == "eager"


def test_automation_reads_an_asset_checks_evaluations_by_asset_and_check_name(home: Path) -> None:
    record(home, "shop/orders:not_empty")
    result = runner.invoke(app, ["asset", "automation", "shop/orders:not_empty"])
    assert result.exit_code == 0, result.output
    assert "shop/orders:not_empty at " in result.output and "✓ eager (1/1)" in result.output
    # The asset's own evaluations are kept apart from its check's.
    result = runner.invoke(app, ["asset", "automation", "shop/orders"])
    assert "no automation evaluations" in result.output
    result = runner.invoke(app, ["asset", "automation", "shop/orders:"])
    assert result.exit_code != 0 and "check name after ':' is empty" in result.output
