"""Event rows: every form of a row gives exactly the `Event` the generated constructors give,
so a betterproto2 upgrade that changes message internals fails here rather than on the wire."""

from __future__ import annotations

import orjson
import pytest

from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    EngineEventData,
    ErrorInfo,
    Event,
    EventType,
    HandledOutputData,
    LoadedInputData,
    LogLevel,
    MetadataValue,
    RunFailureData,
    StepFailureData,
    StepOutputData,
    StepRetryData,
    StepSkippedData,
)
from dagloom.messages.rows import (
    HANDLED_OUTPUT_DATA,
    LOADED_INPUT_DATA,
    NO_PAYLOAD,
    PAYLOAD_FIELDS,
    STEP_OUTPUT_DATA,
    event_of,
    loaded_row,
    row,
    row_of,
    rows_by_run,
)

ERROR = ErrorInfo(cls_name="ValueError", message="bad", stack="...", cause=ErrorInfo(message="c"))

PAYLOADS = {
    "step_output": StepOutputData(output_name="result", mapping_key="k1"),
    "step_failure": StepFailureData(
        error=ERROR, user_failure=True, metadata={"n": MetadataValue(int=3)}
    ),
    "step_retry": StepRetryData(attempt=1, max_retries=3, delay_seconds=0.5, error=ERROR),
    "step_skipped": StepSkippedData(upstream_step_keys=["a", "b"]),
    "handled_output": HandledOutputData(output_name="result", manager_key="io_manager"),
    "loaded_input": LoadedInputData(
        input_name="x", manager_key="io_manager", upstream_step_key="up", upstream_output_name="r"
    ),
    "asset_materialization": AssetMaterializationData(
        asset_key=AssetKeyMessage(path=["a", "b"]),
        metadata={"where": MetadataValue(asset=AssetKeyMessage(path=["c"]))},
        partition="2026-01-01",
        description="d",
    ),
    "run_failure": RunFailureData(failed_step_keys=["s"], error=ERROR),
    "engine_event": EngineEventData(metadata={"t": MetadataValue(text="x")}),
}


def an_event(**payload: object) -> Event:
    return Event(
        run_id="run",
        event_type=EventType.STEP_OUTPUT,
        timestamp=1.25,
        job_name="job",
        step_key="step",
        message="m",
        level=LogLevel.INFO,
        **payload,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("field", [None, *PAYLOADS])
def test_an_event_round_trips_through_its_row_and_its_json(field: str | None) -> None:
    event = an_event(**({} if field is None else {field: PAYLOADS[field]}))
    made = event_of("run", row_of(event))
    assert made == event
    assert bytes(made) == bytes(event)
    # As the event log and step processes carry it: JSON, read back.
    assert event_of("run", orjson.loads(orjson.dumps(row_of(event)))) == event
    assert event_of("run", loaded_row(orjson.loads(orjson.dumps(row_of(event))))) == event


def test_positional_payloads_build_the_generated_messages() -> None:
    positional = {
        STEP_OUTPUT_DATA: (("result", "k1"), PAYLOADS["step_output"]),
        HANDLED_OUTPUT_DATA: (("result", "io_manager", ""), PAYLOADS["handled_output"]),
        LOADED_INPUT_DATA: (("x", "io_manager", "up", "r"), PAYLOADS["loaded_input"]),
    }
    for kind, (values, message) in positional.items():
        got = event_of("run", (int(EventType.STEP_OUTPUT), "s", 1.0, "", 10, "j", kind, values))
        payload = getattr(got, PAYLOAD_FIELDS[kind])
        assert payload == message
        assert bytes(payload) == bytes(message)
        # Read back from JSON the values are a list; the message is the same.
        as_json = orjson.dumps((int(EventType.STEP_OUTPUT), "s", 1.0, "", 10, "j", kind, values))
        listed = event_of("run", orjson.loads(as_json))
        assert bytes(listed) == bytes(got)


def test_a_row_without_payload_is_the_constructors_event() -> None:
    made = event_of("run", row(EventType.STEP_START, "step", "started", LogLevel.DEBUG, "job"))
    built = Event(
        run_id="run",
        event_type=EventType.STEP_START,
        timestamp=made.timestamp,
        job_name="job",
        step_key="step",
        message="started",
        level=LogLevel.DEBUG,
    )
    assert made == built
    assert bytes(made) == bytes(built)
    assert Event.parse(bytes(made)) == built
    assert row_of(built)[6] == NO_PAYLOAD


def test_rows_by_run_keeps_order_and_splits_where_the_run_changes() -> None:
    events = [Event(run_id=r, step_key=str(i)) for i, r in enumerate("aabba")]
    batches = rows_by_run(events)
    assert [(run_id, [r[1] for r in rows]) for run_id, rows in batches] == [
        ("a", ["0", "1"]),
        ("b", ["2", "3"]),
        ("a", ["4"]),
    ]
