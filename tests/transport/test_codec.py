"""The wire check and codec: well-formed protobuf passes, anything else is refused."""

from __future__ import annotations

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from dagloom.messages import Event, EventType, MetadataValue, Run, StepFailureData
from dagloom.messages.rpc import ActorHeartbeat, PingReply
from dagloom.transport import BoundedProtoCodec, check_wire

from ._echo import EchoRequest


def test_every_well_formed_message_passes() -> None:
    messages = [
        EchoRequest(text="hé", number=-5, payload=b"\x00\xff"),
        PingReply(actors=[ActorHeartbeat(actor="a", heartbeat=1.5, restarts=2)], time=3.0),
        Run(run_id="r", tags={"k": "v"}, create_time=1.0),
        Event(
            run_id="r",
            event_type=EventType.STEP_FAILURE,
            step_failure=StepFailureData(metadata={"n": MetadataValue(int=3)}),
        ),
    ]
    for message in messages:
        check_wire(bytes(message), type(message))


def test_unknown_fields_are_allowed() -> None:
    check_wire(b"\xa0\x06\x01", EchoRequest)  # field 100, a varint


@pytest.mark.parametrize(
    "data",
    [
        b"\x08\x05",  # text as a varint
        b"\x15\x00\x00\x00\x00",  # number as fixed32
        b"\x80",  # truncated key
        b"\x0a\x05ab",  # truncated string
        b"\x00\x01",  # field number 0
        b"\x0f",  # wire type 7
    ],
)
def test_malformed_or_mistyped_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        check_wire(data, EchoRequest)


def test_a_mistyped_field_in_a_nested_message_is_refused() -> None:
    inner = b"\x08\x01"  # ActorHeartbeat.actor (a string) as a varint
    with pytest.raises(ValueError, match=r"ActorHeartbeat\.actor"):
        check_wire(b"\x0a" + bytes([len(inner)]) + inner, PingReply)


def test_the_codec_maps_refusals_to_statuses() -> None:
    codec = BoundedProtoCodec(max_message_size=10)
    assert codec.decode(bytes(EchoRequest(text="ok")), EchoRequest).text == "ok"
    with pytest.raises(GRPCError) as info:
        codec.decode(bytes(EchoRequest(text="x" * 20)), EchoRequest)
    assert info.value.status is Status.RESOURCE_EXHAUSTED
    with pytest.raises(GRPCError) as info:
        codec.decode(b"\x08\x05", EchoRequest)
    assert info.value.status is Status.INVALID_ARGUMENT
    with pytest.raises(TypeError, match="cannot be serialized"):
        codec.encode(EchoRequest(text=5), EchoRequest)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a EchoRequest"):
        codec.encode(PingReply(), EchoRequest)
