"""Event chunks: how a batch is split and numbered, and that every row decodes to its event."""

from __future__ import annotations

import orjson

from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    EngineEventData,
    Event,
    EventRecord,
    EventType,
    LogLevel,
    MetadataValue,
    StepOutputData,
)
from dagloom.messages.rows import event_of, rows_by_run
from dagloom.storage._codec import (
    decode_chunk,
    decode_record,
    decode_row,
    decode_rows,
    encode_chunks,
)


def step(run_id: str, i: int) -> Event:
    return Event(run_id=run_id, event_type=EventType.STEP_START, step_key=f"s{i}", timestamp=i)


def test_a_chunk_holds_consecutive_events_of_one_run_up_to_the_limit() -> None:
    events = [step("a", i) for i in range(5)] + [step("b", 5), step("a", 6)]
    chunks = encode_chunks(rows_by_run(events), max_size=3)
    assert [(c.run_id, c.count) for c in chunks] == [("a", 3), ("a", 2), ("b", 1), ("a", 1)]
    assert encode_chunks([]) == []


def test_a_chunk_decodes_from_its_first_storage_id_after_a_cursor() -> None:
    events = [step("a", i) for i in range(6)]
    (chunk,) = encode_chunks(rows_by_run(events))
    out: list[EventRecord] = []
    decode_chunk("a", 100, chunk.body, out, after=102, limit=2)
    assert [(r.storage_id, r.event) for r in out] == [(103, events[3]), (104, events[4])]


def test_every_field_and_an_unusual_payload_round_trip() -> None:
    events = [
        Event(
            run_id="r",
            event_type=EventType.STEP_OUTPUT,
            step_key="s",
            timestamp=1.5,
            job_name="j",
            message="m",
            level=LogLevel.INFO,
            step_output=StepOutputData(output_name="o", mapping_key="k"),
        ),
        # A payload the event type does not usually carry is kept all the same.
        Event(
            run_id="r",
            event_type=EventType.LOG_MESSAGE,
            engine_event=EngineEventData(metadata={"n": MetadataValue(null=True)}),
        ),
    ]
    (chunk,) = encode_chunks(rows_by_run(events))
    out: list[EventRecord] = []
    decode_chunk("r", 1, chunk.body, out)
    assert [r.event for r in out] == events


def test_only_asset_events_with_a_key_are_indexed() -> None:
    def materialized(kind: EventType, path: list[str] | None) -> Event:
        key = None if path is None else AssetKeyMessage(path=path)
        return Event(
            run_id="r",
            event_type=kind,
            asset_materialization=AssetMaterializationData(asset_key=key, partition="p"),
        )

    events = [
        step("r", 0),
        materialized(EventType.ASSET_MATERIALIZATION, ["a", "b"]),
        materialized(EventType.ASSET_OBSERVATION, ["c"]),
        materialized(EventType.ASSET_MATERIALIZATION, None),
        materialized(EventType.ENGINE_EVENT, ["d"]),
    ]
    (chunk,) = encode_chunks(rows_by_run(events))
    assert [(a.index, a.asset_key, a.partition) for a in chunk.assets] == [
        (1, "a/b", "p"),
        (2, "c", "p"),
    ]
    assert decode_record(7, "r", chunk.assets[0].body) == EventRecord(storage_id=7, event=events[1])


def test_rows_of_chunks_written_before_payload_kinds_still_decode() -> None:
    # Such a row has one slot per payload field, null but for the one that is set.
    legacy = orjson.loads(
        b'[11,"s",1.5,"m",20,"j",{"output_name":"o","mapping_key":"k"},'
        b"null,null,null,null,null,null,null,null]"
    )
    assert decode_row("r", legacy) == Event(
        run_id="r",
        event_type=EventType.STEP_OUTPUT,
        step_key="s",
        timestamp=1.5,
        message="m",
        level=LogLevel.INFO,
        job_name="j",
        step_output=StepOutputData(output_name="o", mapping_key="k"),
    )
    plain = orjson.loads(b'[10,"s",1.5,"m",10,"j",null,null,null,null,null,null,null,null,null]')
    assert decode_row("r", plain).step_output is None


def test_a_chunks_rows_read_back_give_the_events_they_were_encoded_from() -> None:
    events = [step("r", 0), step("r", 1), _legacy_output()]
    body = encode_chunks(rows_by_run(events))[0].body
    assert [event_of("r", row) for row in decode_rows(body)] == events
    legacy = (
        b'[[11,"s",1.5,"m",20,"j",{"output_name":"o","mapping_key":"k"},'
        b"null,null,null,null,null,null,null,null]]"
    )
    (row,) = decode_rows(legacy)
    assert event_of("r", row) == _legacy_output()


def _legacy_output() -> Event:
    return Event(
        run_id="r",
        event_type=EventType.STEP_OUTPUT,
        step_key="s",
        timestamp=1.5,
        message="m",
        level=LogLevel.INFO,
        job_name="j",
        step_output=StepOutputData(output_name="o", mapping_key="k"),
    )
