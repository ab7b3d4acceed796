"""The events a run records: their order, who they name, and that they survive the wire."""

from __future__ import annotations

from dagloom import AssetExecutionContext, asset, job, materialize_to_memory, op
from dagloom.messages import Event, EventType


@op
def produce() -> int:
    return 1


@op
def consume(x: int) -> int:
    return x + 1


@job
def pair():
    consume(produce())


def _types(events: list[Event]) -> list[EventType]:
    return [e.event_type for e in events]


def test_run_start_is_first_and_run_success_is_last() -> None:
    result = pair.execute_in_process()
    types = _types(result.all_events)
    assert types[0] == EventType.RUN_START
    assert types[-1] == EventType.RUN_SUCCESS
    assert types.count(EventType.RUN_START) == 1
    assert types.count(EventType.RUN_SUCCESS) == 1
    assert result.get_run_success_event().job_name == "pair"


def test_run_failure_is_last_when_a_step_fails() -> None:
    @op
    def explode() -> None:
        raise RuntimeError("x")

    @job
    def failing():
        explode()

    result = failing.execute_in_process(raise_on_error=False)
    types = _types(result.all_events)
    assert types[0] == EventType.RUN_START
    assert types[-1] == EventType.RUN_FAILURE
    assert EventType.RUN_SUCCESS not in types


def test_step_events_come_in_lifecycle_order() -> None:
    result = pair.execute_in_process()
    assert _types(result.events_for_node("produce")) == [
        EventType.STEP_START,
        EventType.STEP_OUTPUT,
        EventType.HANDLED_OUTPUT,
        EventType.STEP_SUCCESS,
    ]
    assert _types(result.events_for_node("consume")) == [
        EventType.STEP_START,
        EventType.LOADED_INPUT,
        EventType.STEP_OUTPUT,
        EventType.HANDLED_OUTPUT,
        EventType.STEP_SUCCESS,
    ]


def test_downstream_step_starts_after_upstream_succeeds() -> None:
    result = pair.execute_in_process()
    events = [(e.step_key, e.event_type) for e in result.all_events]
    assert events.index(("produce", EventType.STEP_SUCCESS)) < events.index(
        ("consume", EventType.STEP_START)
    )


def test_asset_step_emits_materialization_after_handling_its_output() -> None:
    @asset
    def table() -> list[int]:
        return [1]

    result = materialize_to_memory([table])
    assert _types(result.events_for_node("table")) == [
        EventType.STEP_START,
        EventType.STEP_OUTPUT,
        EventType.HANDLED_OUTPUT,
        EventType.ASSET_MATERIALIZATION,
        EventType.STEP_SUCCESS,
    ]
    (materialization,) = result.asset_materializations_for_node("table")
    assert list(materialization.asset_key.path) == ["table"]


def test_log_messages_land_inside_their_step() -> None:
    @asset
    def chatty(context: AssetExecutionContext) -> int:
        context.log.info("working")
        return 1

    result = materialize_to_memory([chatty])
    types = _types(result.events_for_node("chatty"))
    assert types.index(EventType.STEP_START) < types.index(EventType.LOG_MESSAGE)
    assert types.index(EventType.LOG_MESSAGE) < types.index(EventType.STEP_SUCCESS)


def test_every_event_names_the_run_and_job() -> None:
    result = pair.execute_in_process()
    assert {e.run_id for e in result.all_events} == {result.run_id}
    assert {e.job_name for e in result.all_events} == {"pair"}
    run_level = [e for e in result.all_events if not e.step_key]
    assert _types(run_level) == [EventType.RUN_START, EventType.RUN_SUCCESS]


def test_timestamps_never_go_backwards() -> None:
    result = pair.execute_in_process()
    stamps = [e.timestamp for e in result.all_events]
    assert stamps == sorted(stamps)
    assert all(s > 0 for s in stamps)


def test_step_output_and_handled_output_name_the_output() -> None:
    result = pair.execute_in_process()
    (output,) = [e for e in result.filter_events(EventType.STEP_OUTPUT) if e.step_key == "produce"]
    assert output.step_output.output_name == "result"
    (handled,) = [
        e for e in result.filter_events(EventType.HANDLED_OUTPUT) if e.step_key == "produce"
    ]
    assert handled.handled_output.output_name == "result"
    assert handled.handled_output.manager_key == "io_manager"


def test_events_round_trip_through_bytes() -> None:
    @op
    def explode() -> None:
        raise RuntimeError("x")

    @job
    def failing():
        explode()

    result = failing.execute_in_process(raise_on_error=False)
    for event in [*pair.execute_in_process().all_events, *result.all_events]:
        assert Event.parse(bytes(event)) == event
