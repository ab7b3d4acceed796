"""A new run recorded in a durable SQLite instance does not keep its events in memory: its
result reads them back from the file when first asked, equal to the events it emitted."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagloom import (
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    asset,
    job,
    materialize,
    op,
)
from dagloom.errors import StorageError
from dagloom.execution.run import execute_job_in_process
from dagloom.execution.sink import ListEventSink
from dagloom.instance import DagloomInstance
from dagloom.instance.for_test import instance_for_test
from dagloom.messages import EventType, Run, RunStatus
from dagloom.messages.rows import event_of
from dagloom.storage._stored_rows import StoredRunRows, read_run_rows


@asset
def numbers(context: AssetExecutionContext) -> MaterializeResult:
    context.log.info("making numbers")
    return MaterializeResult(
        metadata={
            "count": 3,
            "ratio": 0.25,
            "path": MetadataValue.path("/tmp/numbers"),
            "table": MetadataValue.json({"a": [1, 2]}),
        }
    )


@op
def produce(context: OpExecutionContext) -> int:
    context.log.warning("producing")
    return 1


@op
def explode(x: int) -> int:
    raise RuntimeError(f"cannot use {x}")


@job
def failing():
    explode(produce())


async def test_the_result_reads_back_exactly_the_events_it_emitted(tmp_path: Path) -> None:
    emitted = ListEventSink()
    async with DagloomInstance.open(tmp_path) as instance:
        result = await execute_job_in_process(
            failing, instance=instance, sink=emitted, raise_on_error=False
        )
    # Read only now, with the instance closed: from the file.
    assert isinstance(result._rows, StoredRunRows)
    assert [e.event for e in result.all_events] == [
        event_of(result.run_id, row) for row in emitted.rows
    ]
    assert [e.event_type_value for e in result.all_events][-1] == "RUN_FAILURE"
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "explode"


def test_asset_metadata_reads_back_as_given(tmp_path: Path) -> None:
    instance = DagloomInstance.open(tmp_path)
    result = materialize([numbers], instance=instance)
    (materialization,) = result.asset_materializations_for_node("numbers")
    assert materialization.metadata["count"].value == 3
    assert materialization.metadata["ratio"].value == 0.25
    assert materialization.metadata["path"].value == "/tmp/numbers"
    assert materialization.metadata["table"].value == {"a": [1, 2]}
    assert EventType.LOG_MESSAGE in {e.event.event_type for e in result.all_events}


def test_a_run_on_a_test_instance_keeps_its_events_past_the_instance() -> None:
    with instance_for_test() as instance:
        result = failing.execute_in_process(instance=instance, raise_on_error=False)
        home = instance.home
    assert not home.exists()
    assert result.all_events[0].event_type_value == "RUN_START"
    assert result.get_step_failure_events()


def test_rows_of_a_file_that_is_gone_raise_storage_error(tmp_path: Path) -> None:
    missing = tmp_path / "gone.db"
    rows = StoredRunRows(missing, "r")
    with pytest.raises(StorageError, match="reading the events of run r"):
        len(rows)
    assert not missing.exists()  # never created by reading
    with pytest.raises(StorageError):
        read_run_rows(missing, "r")


@op
def one() -> int:
    return 1


@job
def single():
    one()


async def test_a_claimed_runs_result_reads_the_runs_stored_events(tmp_path: Path) -> None:
    async with DagloomInstance.open(tmp_path) as instance:
        run = await instance.create_run(Run(job_name="single", status=RunStatus.NOT_STARTED))
        result = await execute_job_in_process(
            single, instance=instance, run_id=run.run_id, run_is_stored=True
        )
        stored = [r.event for r in await instance.get_events(run.run_id)]
    assert isinstance(result._rows, StoredRunRows)
    assert [e.event for e in result.all_events] == stored
    types = [e.event.event_type for e in result.all_events]
    assert types.count(EventType.RUN_START) == 1
    assert types[-1] == EventType.RUN_SUCCESS
