"""ExpectationResults and output metadata kept as data, as Dagster's ops docs show them: an op
yields `ExpectationResult`s and `Output(metadata=...)`; the run's events carry them
(`event.event_specific_data.expectation_result`, `event.step_output_data.metadata`), and so
do the events read back from SQLite and Postgres storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import dagloom as dg
from dagloom.messages import EventType
from tests.storage.pg import PG_URL, fresh_schema


@dg.op
def check_rows(context: dg.OpExecutionContext) -> Iterator[Any]:
    yield dg.ExpectationResult(
        success=True, label="non_empty", description="rows > 0", metadata={"rows": 3}
    )
    context.log_event(dg.ExpectationResult(success=False, label="no_nulls"))
    context.add_output_metadata({"source": "lake"})
    yield dg.Output([1, 2, 3], metadata={"rows": dg.MetadataValue.int(3)})


@dg.job
def quality() -> None:
    check_rows()


def _expectations(events: list[dg.DagsterEvent]) -> list[dg.ExpectationResult]:
    return [
        e.event_specific_data.expectation_result
        for e in events
        if e.event_type == dg.DagsterEventType.STEP_EXPECTATION_RESULT
    ]


def _check(events: list[dg.DagsterEvent]) -> None:
    passed, failed = _expectations(events)
    assert passed == dg.ExpectationResult(
        success=True,
        label="non_empty",
        description="rows > 0",
        metadata={"rows": dg.IntMetadataValue(3)},
    )
    assert failed.success is False and failed.label == "no_nulls"
    assert failed.description is None and failed.metadata == {}
    (output,) = [e for e in events if e.is_successful_output]
    assert output.step_output_data.output_name == "result"
    assert output.step_output_data.mapping_key is None
    assert output.step_output_data.metadata == {
        "rows": dg.IntMetadataValue(3),
        "source": dg.TextMetadataValue("lake"),
    }


def test_expectations_and_output_metadata_are_event_data() -> None:
    result = quality.execute_in_process()
    _check(result.all_events)
    (first, _) = [e for e in result.all_events if e.is_expectation_result]
    assert first.expectation_result.label == "non_empty"


def test_an_output_without_metadata_has_none() -> None:
    result = dg.materialize_to_memory([_plain])
    (output,) = [e for e in result.all_events if e.is_successful_output]
    assert output.step_output_data.metadata == {}


@dg.asset
def _plain() -> int:
    return 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_they_are_stored(backend: str, tmp_path: Path) -> None:
    if backend == "postgres":
        async for schema in fresh_schema():
            storage = {"postgres": {"postgres_url": PG_URL, "schema": schema}}
            records = await _stored(storage, tmp_path)
    else:
        records = await _stored({"sqlite": {}}, tmp_path)
    stored = [dg.DagsterEvent(r.event) for r in records if r.event is not None]
    assert any(e.event.event_type == EventType.STEP_EXPECTATION_RESULT for e in stored)
    _check(stored)


async def _stored(storage: dict[str, Any], home: Path) -> list[Any]:
    with anyio.fail_after(60):
        async with dg.DagloomInstance.from_config({"storage": storage}, home=home) as instance:
            result = await quality.execute_in_process_async(instance=instance)
            return await instance.get_events(result.run_id)
