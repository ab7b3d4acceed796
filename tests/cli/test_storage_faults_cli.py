"""The CLI when storage fails under a run: `dagloom job execute` and `dagloom run-worker`
exit non-zero saying so, and never hang.

Fault: every SQLite event commit raises `StorageUnavailableError` (a wrapper at the storage
boundary), with the retry budget set short in dagloom.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

from dagloom.cli import app
from dagloom.errors import StorageUnavailableError
from dagloom.instance import DagloomInstance
from dagloom.messages import Run, RunStatus
from dagloom.storage.sqlite import SqliteDatabase

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NUMBERS = str(EXAMPLES / "numbers.py")

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def failing_events(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagloom.yaml").write_text(
        "storage:\n  sqlite:\n    retry_timeout_seconds: 0.2\n", encoding="utf-8"
    )

    async def down(self: SqliteDatabase, *args: Any) -> None:
        raise StorageUnavailableError(
            "writing failed: disk I/O error", location=str(self.path), operation="writing"
        )

    def down_now(self: SqliteDatabase, *args: Any) -> None:
        raise StorageUnavailableError(
            "writing failed: disk I/O error", location=str(self.path), operation="writing"
        )

    # Both ways an event batch is committed: in the background, and at once by the sink.
    monkeypatch.setattr(SqliteDatabase, "_store_chunks", down)
    monkeypatch.setattr(SqliteDatabase, "store_batches_nowait", down_now)


@pytest.mark.usefixtures("failing_events")
def test_job_execute_exits_1_naming_the_storage_error() -> None:
    result = runner.invoke(app, ["job", "execute", "-f", NUMBERS, "-j", "process_numbers"])
    assert result.exit_code == 1, result.output
    assert "storage failed under the run" in result.output
    assert "disk I/O error" in result.output


@pytest.mark.usefixtures("failing_events")
def test_a_one_run_worker_exits_1_when_the_runs_end_cannot_be_stored(home: Path) -> None:
    async def create() -> Run:
        async with DagloomInstance.open(home) as instance:
            return await instance.create_run(Run(job_name="process_numbers"))

    run = anyio.run(create)
    result = runner.invoke(
        app, ["run-worker", "--run-id", run.run_id, "-f", NUMBERS, "--heartbeat-interval", "3600"]
    )
    assert result.exit_code == 1, result.output
    assert "disk I/O error" in result.output

    async def status() -> RunStatus:
        async with DagloomInstance.open(home) as instance:
            stored = await instance.get_run(run.run_id)
            assert stored is not None
            return stored.status

    assert anyio.run(status) == RunStatus.NOT_STARTED
