"""Cached field defaults (`dagloom.messages._defaults`): the same bytes, fresh mutables."""

from __future__ import annotations

import warnings

import betterproto2

from dagloom.messages import Event, EventRecord, EventType, Run, RunStatus
from dagloom.messages._defaults import _field_default
from dagloom.messages.rpc import ApiEventBatch


def _upstream_default(message: betterproto2.Message, name: str) -> object:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return type(message)._betterproto.default_gen[name]()  # type: ignore[arg-type]


def test_every_message_uses_the_cached_defaults() -> None:
    assert betterproto2.Message._get_field_default is _field_default


def test_defaults_equal_the_generated_ones_for_every_field() -> None:
    for message in (Run(), Event(), EventRecord(), ApiEventBatch()):
        meta = type(message)._betterproto  # type: ignore[arg-type]
        for name in meta.default_gen:
            assert _field_default(message, name) == _upstream_default(message, name)


def test_a_mutable_default_is_never_shared() -> None:
    first = _field_default(ApiEventBatch(), "records")
    first.append(EventRecord(storage_id=1))
    assert _field_default(ApiEventBatch(), "records") == []
    tags = _field_default(Run(), "tags")
    tags["k"] = "v"
    assert _field_default(Run(), "tags") == {}


def test_encoding_round_trips_with_defaults_left_out() -> None:
    event = Event(run_id="r", event_type=EventType.RUN_START, message="")
    batch = ApiEventBatch(records=[EventRecord(storage_id=7, event=event)])
    assert ApiEventBatch.parse(bytes(batch)) == batch
    # Default values are not on the wire: an all-default message is empty.
    assert bytes(Run(status=RunStatus(0))) == b""
