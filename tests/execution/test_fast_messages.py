"""The hot-path message builders give exactly what the generated constructors give, so a
betterproto2 upgrade that changes message internals fails here rather than on the wire."""

from __future__ import annotations

from dagloom.execution.events import (
    handled_output_data,
    loaded_input_data,
    new_event,
    step_output_data,
)
from dagloom.messages import (
    Event,
    EventType,
    HandledOutputData,
    LoadedInputData,
    LogLevel,
    StepOutputData,
)


def test_new_event_equals_the_generated_constructor() -> None:
    fast = new_event("run", "job", EventType.STEP_START, "step", "started", LogLevel.DEBUG)
    built = Event(
        run_id="run",
        event_type=EventType.STEP_START,
        timestamp=fast.timestamp,
        job_name="job",
        step_key="step",
        message="started",
        level=LogLevel.DEBUG,
    )
    assert fast == built
    assert bytes(fast) == bytes(built)
    assert Event.parse(bytes(fast)) == built


def test_payload_builders_equal_the_generated_constructors() -> None:
    assert loaded_input_data("x", "io_manager", "up", "result") == LoadedInputData(
        input_name="x",
        manager_key="io_manager",
        upstream_step_key="up",
        upstream_output_name="result",
    )
    assert step_output_data("result", "k1") == StepOutputData(
        output_name="result", mapping_key="k1"
    )
    assert handled_output_data("result", "io_manager", "") == HandledOutputData(
        output_name="result", manager_key="io_manager"
    )


def test_an_event_with_a_fast_payload_round_trips_through_bytes() -> None:
    fast = new_event("run", "job", EventType.STEP_OUTPUT, "step", "out", LogLevel.DEBUG)
    fast.step_output = step_output_data("result", "")
    parsed = Event.parse(bytes(fast))
    assert parsed.step_output == StepOutputData(output_name="result")
    assert parsed == fast
