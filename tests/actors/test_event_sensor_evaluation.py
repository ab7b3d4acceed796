"""A run failure sensor and an asset sensor evaluated in a code location's warm evaluation
process, on the runs and materializations the request carries."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import anyio
import pytest
import structlog

from dagloom.actors import Supervisor
from dagloom.actors.code_location import CodeLocationServer
from dagloom.execution.origin import CodeOrigin
from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    ErrorInfo,
    Event,
    EventRecord,
    EventType,
    Run,
    RunStatus,
)
from dagloom.messages.rpc import (
    EvaluateSensorRequest,
    GetSnapshotRequest,
    LocationSnapshot,
    TickResult,
)
from dagloom.transport import MemoryTransport

pytestmark = pytest.mark.usefixtures("restore_import_state")

SOURCE = """
    import dagloom as dg

    @dg.op
    def noop() -> None:
        pass

    @dg.job
    def alert():
        noop()

    @dg.job
    def watched():
        noop()

    @dg.run_failure_sensor(monitored_jobs=[watched], request_job=alert)
    def on_failure(context: dg.RunFailureSensorContext):
        return dg.RunRequest(
            run_key=context.dagster_run.run_id,
            tags={"why": context.failure_event.message},
        )

    @dg.asset_sensor(asset_key=dg.AssetKey(["db", "orders"]), job=alert)
    def orders(context, asset_event):
        return dg.RunRequest(tags={"key": asset_event.dagster_event.asset_key.to_user_string()})
"""


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    structlog.reset_defaults()


async def test_event_sensors_are_called_once_per_run_or_materialization(tmp_path: Path) -> None:
    path = tmp_path / f"event_sensors_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(SOURCE), encoding="utf-8")
    actor = CodeLocationServer("here", CodeOrigin(python_file=str(path)))
    runs = [
        Run(run_id=f"r{i}", job_name="watched", status=RunStatus.FAILURE, failure=ErrorInfo())
        for i in (1, 2)
    ]
    ends = [
        EventRecord(
            storage_id=i,
            event=Event(run_id=f"r{i}", event_type=EventType.RUN_FAILURE, message=f"boom {i}"),
        )
        for i in (1, 2)
    ]
    materialized = EventRecord(
        storage_id=7,
        event=Event(
            run_id="m",
            event_type=EventType.ASSET_MATERIALIZATION,
            asset_materialization=AssetMaterializationData(
                asset_key=AssetKeyMessage(path=["db", "orders"])
            ),
        ),
    )
    supervisor = Supervisor()
    supervisor.add(actor)
    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            ref = MemoryTransport(strict=True).ref(actor)
            snapshot = await ref.ask(GetSnapshotRequest(), timeout=60)
            failures = await ref.ask(
                EvaluateSensorRequest(sensor_name="on_failure", runs=runs, events=ends),
                timeout=60,
            )
            assets = await ref.ask(
                EvaluateSensorRequest(sensor_name="orders", events=[materialized]), timeout=60
            )
            tg.cancel_scope.cancel()
    assert isinstance(snapshot, LocationSnapshot)
    by_name = {sensor.name: sensor for sensor in snapshot.sensors}
    assert by_name["on_failure"].monitored_run_status == "FAILURE"
    assert by_name["on_failure"].monitored_job_names == ["watched"]
    assert by_name["orders"].monitored_asset_key == AssetKeyMessage(path=["db", "orders"])
    assert isinstance(failures, TickResult) and failures.error is None
    assert [(r.run_key, r.job_name, r.tags["why"]) for r in failures.run_requests] == [
        ("r1", "alert", "boom 1"),
        ("r2", "alert", "boom 2"),
    ]
    assert isinstance(assets, TickResult) and assets.error is None
    assert [r.tags["key"] for r in assets.run_requests] == ["db/orders"]
