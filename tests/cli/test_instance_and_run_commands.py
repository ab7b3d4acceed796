"""`dagloom instance info|migrate` and `dagloom run list|show|logs|delete` against a SQLite
home written by another instance."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import anyio
from typer.testing import CliRunner

from dagloom.auth.audit import local_user
from dagloom.cli import app
from dagloom.instance import DagloomInstance
from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    ErrorInfo,
    Event,
    EventType,
    Run,
    RunFailureData,
    StepFailureData,
)
from dagloom.storage.migrations.sqlite import SQLITE_MIGRATIONS

runner = CliRunner(env={"COLUMNS": "250"})


def seed(home: Path) -> str:
    async def main() -> str:
        async with DagloomInstance.open(home) as instance:
            run = await instance.create_run(Run(job_name="etl", tags={"team": "data"}))
            await instance.store_events(
                [
                    Event(run_id=run.run_id, event_type=EventType.RUN_START, timestamp=1.0),
                    Event(run_id=run.run_id, event_type=EventType.STEP_START, step_key="load"),
                    Event(
                        run_id=run.run_id,
                        event_type=EventType.ASSET_MATERIALIZATION,
                        step_key="load",
                        asset_materialization=AssetMaterializationData(
                            asset_key=AssetKeyMessage(path=["warehouse", "orders"])
                        ),
                    ),
                    Event(
                        run_id=run.run_id,
                        event_type=EventType.STEP_FAILURE,
                        step_key="load",
                        step_failure=StepFailureData(
                            error=ErrorInfo(cls_name="ValueError", message="bad row")
                        ),
                    ),
                    Event(
                        run_id=run.run_id,
                        event_type=EventType.RUN_FAILURE,
                        timestamp=2.0,
                        run_failure=RunFailureData(
                            failed_step_keys=["load"],
                            error=ErrorInfo(cls_name="EngineError", message="engine broke"),
                        ),
                    ),
                ]
            )
            return run.run_id

    return anyio.run(main)


def test_run_list_show_and_logs_print_what_was_stored(tmp_path: Path) -> None:
    run_id = seed(tmp_path)
    listed = runner.invoke(app, ["run", "list", "--home", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert (
        run_id[:8] in listed.output and "FAILURE" in listed.output and "team=data" in listed.output
    )
    failed = runner.invoke(
        app, ["run", "list", "--status", "success"], env={"DAGLOOM_HOME": str(tmp_path)}
    )
    assert failed.exit_code == 0 and run_id[:8] not in failed.output
    shown = runner.invoke(app, ["run", "show", run_id, "--home", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert (
        "load" in shown.output and "failure" in shown.output and "warehouse/orders" in shown.output
    )
    assert "EngineError: engine broke" in shown.output
    logs = runner.invoke(app, ["run", "logs", run_id, "--home", str(tmp_path)])
    assert logs.exit_code == 0, logs.output
    kinds = re.findall(r"\b(?:RUN|STEP|ASSET)_[A-Z_]+\b", logs.output)
    assert kinds == [
        "RUN_START",
        "STEP_START",
        "ASSET_MATERIALIZATION",
        "STEP_FAILURE",
        "RUN_FAILURE",
    ]
    assert "ValueError: bad row" in logs.output
    followed = runner.invoke(app, ["run", "logs", "-f", run_id, "--home", str(tmp_path)])
    assert followed.exit_code == 0 and followed.output == logs.output


def test_run_delete_removes_the_run_and_a_missing_run_is_one_line(tmp_path: Path) -> None:
    run_id = seed(tmp_path)
    deleted = runner.invoke(app, ["run", "delete", run_id, "--yes", "--home", str(tmp_path)])
    assert deleted.exit_code == 0, deleted.output
    missing = runner.invoke(app, ["run", "show", run_id, "--home", str(tmp_path)])
    assert missing.exit_code == 1
    assert f"no run with id {run_id!r}" in missing.output
    assert "Traceback" not in missing.output
    with sqlite3.connect(tmp_path / "dagloom.db") as conn:
        rows = conn.execute("SELECT user_name, action, target, via FROM audit_log").fetchall()
    assert rows == [(local_user(), "delete_run", f"run:{run_id}", "cli")]


def test_instance_info_and_migrate(tmp_path: Path) -> None:
    path = tmp_path / "dagloom.db"
    with sqlite3.connect(path) as conn:
        for statement in SQLITE_MIGRATIONS[0].statements:
            conn.execute(statement)
        conn.execute("INSERT INTO dagloom_schema (version, migrated_at) VALUES (1, 0)")
    info = runner.invoke(app, ["instance", "info", "--home", str(tmp_path)])
    assert info.exit_code == 0, info.output
    assert "embedded defaults" in info.output and "dagloom instance migrate" in info.output
    refused = runner.invoke(app, ["run", "list", "--home", str(tmp_path)])
    assert refused.exit_code == 1 and "dagloom instance migrate" in refused.output
    migrated = runner.invoke(app, ["instance", "migrate", "--home", str(tmp_path)])
    assert migrated.exit_code == 0, migrated.output
    assert f"migrated from version 1 to {SQLITE_MIGRATIONS[-1].version}" in migrated.output
    again = runner.invoke(app, ["instance", "migrate", "--home", str(tmp_path)])
    assert "up to date" in again.output
    assert runner.invoke(app, ["run", "list", "--home", str(tmp_path)]).exit_code == 0


def test_a_malformed_config_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dagloom.yaml").write_text("storage:\n  sqlite: {readers: many}\n")
    result = runner.invoke(app, ["instance", "info", "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert "dagloom.yaml" in result.output and "storage.sqlite.readers" in result.output
    assert "Traceback" not in result.output


def test_run_list_json_is_an_array_of_run_objects_honouring_filters_and_limit(
    tmp_path: Path,
) -> None:
    failed_id = seed(tmp_path)

    async def add_child() -> str:
        async with DagloomInstance.open(tmp_path) as instance:
            child = await instance.create_run(
                Run(
                    job_name="etl",
                    parent_run_id=failed_id,
                    root_run_id=failed_id,
                    tags={"dagster/parent_run_id": failed_id},
                )
            )
            return child.run_id

    child_id = anyio.run(add_child)
    listed = runner.invoke(app, ["run", "list", "--json", "--home", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.output)
    assert [r["run_id"] for r in runs] == [child_id, failed_id]
    child, failed = runs
    assert failed["status"] == "FAILURE" and failed["job_name"] == "etl"
    assert failed["tags"] == {"team": "data"}
    assert failed["parent_run_id"] is None and failed["root_run_id"] is None
    assert isinstance(failed["start_time"], float) and isinstance(failed["end_time"], float)
    assert failed["end_time"] >= failed["start_time"]
    assert child["parent_run_id"] == failed_id and child["root_run_id"] == failed_id
    assert child["status"] == "NOT_STARTED"
    assert child["start_time"] is None and child["end_time"] is None
    only_failed = runner.invoke(
        app, ["run", "list", "--json", "--status", "failure", "--home", str(tmp_path)]
    )
    assert [r["run_id"] for r in json.loads(only_failed.output)] == [failed_id]
    limited = runner.invoke(app, ["run", "list", "--json", "--limit", "1", "--home", str(tmp_path)])
    assert [r["run_id"] for r in json.loads(limited.output)] == [child_id]
