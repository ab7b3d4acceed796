"""The gRPC codec: protobuf through betterproto2, refusing oversized and mistyped messages."""

from __future__ import annotations

from typing import Any

import betterproto2
from grpclib.const import Status
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError

DEFAULT_MAX_MESSAGE_SIZE = 4 * 2**20
"""4 MiB, the limit gRPC implementations default to."""

_MAX_DEPTH = 100  # protobuf's own default recursion limit

_WIRE_VARINT, _WIRE_FIXED_64, _WIRE_LEN, _WIRE_FIXED_32 = 0, 1, 2, 5
_EXPECTED_WIRE: dict[str, int] = {
    **dict.fromkeys(betterproto2.WIRE_VARINT_TYPES, _WIRE_VARINT),
    **dict.fromkeys(betterproto2.WIRE_FIXED_32_TYPES, _WIRE_FIXED_32),
    **dict.fromkeys(betterproto2.WIRE_FIXED_64_TYPES, _WIRE_FIXED_64),
    **dict.fromkeys(betterproto2.WIRE_LEN_DELIM_TYPES, _WIRE_LEN),
}
_PACKABLE = frozenset(betterproto2.PACKED_TYPES)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint longer than 10 bytes")


def check_wire(data: bytes, message_type: type[betterproto2.Message], *, _depth: int = 0) -> None:
    """Raise `ValueError` unless `data` is well-formed protobuf whose known fields have the
    wire types `message_type` declares, recursively.

    betterproto2's parser is lenient: it drops truncated tails and stores an int in a string
    field if that is what arrives. This check runs first so bad input is refused, not
    half-parsed into an actor. Unknown field numbers are allowed, as proto3 requires.
    """
    if _depth > _MAX_DEPTH:
        raise ValueError(f"messages nested deeper than {_MAX_DEPTH}")
    # betterproto2's per-class field table; its classproperty is typed too narrowly for mypy.
    meta: Any = message_type._betterproto  # type: ignore[arg-type]
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        payload = b""
        if wire == _WIRE_VARINT:
            _, pos = _varint(data, pos)
        elif wire == _WIRE_FIXED_64:
            pos += 8
        elif wire == _WIRE_FIXED_32:
            pos += 4
        elif wire == _WIRE_LEN:
            length, pos = _varint(data, pos)
            payload = data[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"field {number}: unsupported wire type {wire}")
        if pos > end:
            raise ValueError(f"field {number}: truncated")
        name = meta.field_name_by_number.get(number)
        if name is None:
            continue
        field = meta.meta_by_field_name[name]
        expected = _EXPECTED_WIRE[field.proto_type]
        if wire != expected and not (
            wire == _WIRE_LEN and field.repeated and field.proto_type in _PACKABLE
        ):
            raise ValueError(
                f"{message_type.__name__}.{name} is {field.proto_type} (wire type {expected}) "
                f"but arrived with wire type {wire}"
            )
        if field.proto_type == betterproto2.TYPE_MESSAGE:
            nested = field.unwrap() if field.unwrap else meta.cls_by_field[name]
            check_wire(payload, nested, _depth=_depth + 1)
        elif field.proto_type == betterproto2.TYPE_MAP:
            check_wire(payload, meta.cls_by_field[name], _depth=_depth + 1)


class BoundedProtoCodec(CodecBase):
    """grpclib's protobuf codec, plus a size limit and a wire-type check on decode.

    A message over `max_message_size` bytes fails with RESOURCE_EXHAUSTED; malformed or
    mistyped bytes fail with INVALID_ARGUMENT. Either way the call fails with a status and
    the server carries on. grpclib has buffered the message by the time the codec sees it;
    HTTP/2 flow control (a 4 MiB window per stream by default) paces how fast it arrives.
    """

    __content_subtype__ = "proto"

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size

    def encode(self, message: Any, message_type: Any) -> bytes:
        """Serialize `message`; `TypeError` if it is not a `message_type` or a field holds a
        value its type cannot encode."""
        if not isinstance(message, message_type):
            raise TypeError(
                f"message must be a {message_type.__name__}, not {type(message).__name__}"
            )
        try:
            return bytes(message)
        except Exception as exc:
            # betterproto2 raises whatever its encoder hits (AttributeError, struct.error...).
            raise TypeError(f"{message_type.__name__} cannot be serialized: {exc!r}") from exc

    def decode(self, data: bytes, message_type: Any) -> Any:
        """Parse `data` as a `message_type`, or raise `GRPCError` with the status above."""
        if len(data) > self.max_message_size:
            raise GRPCError(
                Status.RESOURCE_EXHAUSTED,
                f"message of {len(data)} bytes exceeds the limit of {self.max_message_size}",
            )
        try:
            check_wire(data, message_type)
            return message_type.parse(data)
        except Exception as exc:
            # betterproto2 raises what its decoders hit (UnicodeDecodeError, struct.error,
            # ValueError); all of them mean the same to the caller: bad bytes.
            raise GRPCError(
                Status.INVALID_ARGUMENT, f"malformed {message_type.__name__}: {exc}"
            ) from exc
