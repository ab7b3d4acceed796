"""Faster field encoding (`dagloom.messages._encoding`): byte for byte betterproto2's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import betterproto2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    Event,
    EventRecord,
    EventType,
    LogLevel,
    MetadataValue,
    Run,
    RunStatus,
    StepFailureData,
    _encoding,
)
from dagloom.messages.rpc import ApiEventBatch


@contextmanager
def upstream() -> Iterator[None]:
    """betterproto2's own encoders for the block."""
    _encoding.uninstall()
    try:
        yield
    finally:
        _encoding.install()


def both(message: betterproto2.Message) -> tuple[bytes, bytes]:
    fast = bytes(message)
    with upstream():
        slow = bytes(message)
    return fast, slow


def test_betterproto2_encodes_with_the_fast_functions() -> None:
    assert betterproto2._serialize_single is _encoding._serialize_single
    assert betterproto2.encode_varint is _encoding.encode_varint


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 70)))
def test_a_varint_is_the_same_bytes(value: int) -> None:
    assert _encoding.encode_varint(value) == _encoding.ORIGINALS["encode_varint"](value)


def test_a_varint_below_int64_fails_as_upstream() -> None:
    with pytest.raises(ValueError, match="64-bit"):
        _encoding.encode_varint(-(1 << 63) - 1)


def test_a_field_of_an_unknown_type_names_the_field_and_type() -> None:
    with pytest.raises(TypeError, match="field 7: 'quaternion' is not a protobuf field type"):
        _encoding._serialize_single(7, "quaternion", 1)


def test_messages_of_every_field_kind_are_the_same_bytes() -> None:
    event = Event(
        run_id="r-é",
        event_type=EventType.STEP_FAILURE,
        timestamp=1733300000.123456,
        step_key="a" * 300,  # a length past one varint byte
        level=LogLevel.ERROR,
        message="failed",
        step_failure=StepFailureData(),
    )
    materialized = Event(
        run_id="r",
        event_type=EventType.ASSET_MATERIALIZATION,
        asset_materialization=AssetMaterializationData(
            asset_key=AssetKeyMessage(path=["a", "b"]),
            metadata={"n": MetadataValue(int=-5), "f": MetadataValue(float=0.25)},
        ),
    )
    run = Run(
        run_id="r",
        job_name="j",
        status=RunStatus.SUCCESS,
        tags={"k": "v", "dagloom/user": "me"},
        start_time=12.5,
        step_keys_to_execute=["a", "b"],
    )
    records = [EventRecord(storage_id=2**40, event=e) for e in (event, materialized, event)]
    batch = ApiEventBatch(records=records, run=run)
    for message in (event, materialized, run, batch, Run(), EventRecord(storage_id=1)):
        fast, slow = both(message)
        assert fast == slow
    assert ApiEventBatch.parse(bytes(batch)) == batch


@given(
    st.text(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.floats(allow_nan=False),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_generated_messages_are_the_same_bytes(
    text: str, number: int, real: float, tags: dict[str, str]
) -> None:
    event = Event(
        run_id=text,
        message=text,
        timestamp=real,
        asset_materialization=AssetMaterializationData(
            metadata={"x": MetadataValue(int=number), "t": MetadataValue(text=text)}
        ),
    )
    run = Run(run_id=text, tags=tags, create_time=real)
    for message in (event, run, ApiEventBatch(records=[EventRecord(event=event)], run=run)):
        fast, slow = both(message)
        assert fast == slow


def parsed_both(cls: type[betterproto2.Message], data: bytes) -> tuple[object, object]:
    """What parsing `data` gives (or raises, by type), fast and upstream."""

    def attempt() -> object:
        try:
            return cls.parse(data)
        except Exception as exc:
            return type(exc)

    fast = attempt()
    with upstream():
        slow = attempt()
    return fast, slow


def test_parsing_gives_the_same_messages_and_keeps_unknown_fields() -> None:
    run = Run(run_id="r", tags={"k": "v"}, start_time=1.5, status=RunStatus.FAILURE)
    event = Event(run_id="r", event_type=EventType.RUN_FAILURE, step_key="s" * 200)
    batch = ApiEventBatch(records=[EventRecord(storage_id=2**35, event=event)], run=run)
    for cls, message in ((Run, run), (Event, event), (ApiEventBatch, batch)):
        fast, slow = parsed_both(cls, bytes(message))
        assert fast == slow == message
    # Field 1000 is no field of a Run: kept as unknown bytes, encoded again as they came.
    unknown = bytes(run) + _encoding.encode_varint(1000 << 3) + b"\x05"
    fast, slow = parsed_both(Run, unknown)
    assert fast == slow
    assert bytes(fast) == unknown  # type: ignore[call-overload]


@given(st.binary(max_size=64))
def test_parsing_any_bytes_gives_or_raises_the_same(data: bytes) -> None:
    for cls in (Run, Event, ApiEventBatch):
        fast, slow = parsed_both(cls, data)
        assert fast == slow


def test_truncated_bytes_give_or_raise_the_same() -> None:
    data = bytes(ApiEventBatch(records=[EventRecord(storage_id=300, event=Event(run_id="r"))]))
    for cut in range(len(data)):
        fast, slow = parsed_both(ApiEventBatch, data[:cut])
        assert fast == slow


def test_a_message_pickles_under_the_faster_parse() -> None:
    """A message pickles as `cls.parse` and its bytes: the faster parse installed in its
    place must unpickle under that name (messages cross process pipes pickled)."""
    import pickle

    record = EventRecord(
        storage_id=7,
        event=Event(run_id="r", event_type=EventType.ASSET_MATERIALIZATION, message="m"),
    )
    assert pickle.loads(pickle.dumps(record)) == record


def test_a_dagster_event_view_pickles_as_its_message() -> None:
    import pickle

    from dagloom.execution.event_view import DagsterEvent

    event = DagsterEvent(Event(run_id="r", event_type=EventType.STEP_FAILURE))
    copy = pickle.loads(pickle.dumps(event))
    assert copy == event
    assert copy.event_type_value == event.event_type_value
