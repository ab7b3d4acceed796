"""Faster field encoding for betterproto2 messages, byte for byte the same.

betterproto2 (0.10) encodes every varint, each field's key included, one byte at a time into
a fresh `BytesIO`, and finds each field's wire type by scanning tuples of type names: about
two thirds of the time it takes to encode an event batch. Here a field's key is built once
per field number and type, a varint below 128 is a prebuilt byte, a longer one a loop over
an int, and the type is looked up in a set: an event batch encodes in about half the time.
Parsing is left as it is. `ORIGINALS` keeps betterproto2's functions (tests compare both
encodings).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import betterproto2

ORIGINALS: dict[str, Callable[..., Any]] = {
    "encode_varint": betterproto2.encode_varint,
    "_preprocess_single": betterproto2._preprocess_single,
    "_serialize_single": betterproto2._serialize_single,
}
"""betterproto2's own encoders, as they were before `install`."""

_ONE_BYTE = tuple(bytes((i,)) for i in range(128))
_MIN_INT64 = -(1 << 63)

_VARINTS = frozenset(
    {
        betterproto2.TYPE_ENUM,
        betterproto2.TYPE_BOOL,
        betterproto2.TYPE_INT32,
        betterproto2.TYPE_INT64,
        betterproto2.TYPE_UINT32,
        betterproto2.TYPE_UINT64,
    }
)
_ZIGZAG = frozenset({betterproto2.TYPE_SINT32, betterproto2.TYPE_SINT64})
_FIXED = {
    betterproto2.TYPE_DOUBLE: struct.Struct("<d"),
    betterproto2.TYPE_FLOAT: struct.Struct("<f"),
    betterproto2.TYPE_FIXED32: struct.Struct("<I"),
    betterproto2.TYPE_FIXED64: struct.Struct("<Q"),
    betterproto2.TYPE_SFIXED32: struct.Struct("<i"),
    betterproto2.TYPE_SFIXED64: struct.Struct("<q"),
}
_WIRE: dict[str, int] = {
    **dict.fromkeys(betterproto2.WIRE_VARINT_TYPES, betterproto2.WIRE_VARINT),
    **dict.fromkeys(betterproto2.WIRE_FIXED_32_TYPES, betterproto2.WIRE_FIXED_32),
    **dict.fromkeys(betterproto2.WIRE_FIXED_64_TYPES, betterproto2.WIRE_FIXED_64),
    **dict.fromkeys(betterproto2.WIRE_LEN_DELIM_TYPES, betterproto2.WIRE_LEN_DELIM),
}
_keys: dict[tuple[int, str], bytes] = {}
_STRING = betterproto2.TYPE_STRING
_MESSAGE = betterproto2.TYPE_MESSAGE
_LEN_DELIM = betterproto2.WIRE_LEN_DELIM


def encode_varint(value: int) -> bytes:
    """`betterproto2.encode_varint`: the same bytes, the same errors."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        if value < _MIN_INT64:
            raise ValueError(
                "Negative value is not representable as a 64-bit integer - unable to encode "
                "a varint within 10 bytes."
            )
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _preprocess_single(proto_type: str, unwrap: Callable[[], type] | None, value: Any) -> bytes:
    """`betterproto2._preprocess_single`: a value as its field's payload bytes."""
    if proto_type == _STRING:
        return value.encode("utf-8")  # type: ignore[no-any-return]
    if proto_type in _VARINTS:
        return encode_varint(value)
    if proto_type == _MESSAGE:
        if unwrap is not None:
            value = unwrap().from_wrapped(value)  # type: ignore[attr-defined]
        return bytes(value)
    if proto_type in _ZIGZAG:
        return encode_varint(value << 1 if value >= 0 else (value << 1) ^ (~0))
    fixed = _FIXED.get(proto_type)
    if fixed is not None:
        return fixed.pack(value)
    return value  # type: ignore[no-any-return]  # bytes, as betterproto2 leaves them


def _serialize_single(
    field_number: int,
    proto_type: str,
    value: Any,
    *,
    unwrap: Callable[[], type] | None = None,
) -> bytes:
    """`betterproto2._serialize_single`: one field, its key and its payload."""
    payload = _preprocess_single(proto_type, unwrap, value)
    key = _keys.get((field_number, proto_type))
    if key is None:
        wire = _WIRE.get(proto_type)
        if wire is None:
            raise NotImplementedError(proto_type)
        key = _keys[(field_number, proto_type)] = encode_varint((field_number << 3) | wire)
    if _WIRE[proto_type] == _LEN_DELIM:
        return key + encode_varint(len(payload)) + payload
    return key + payload


def install() -> None:
    """Make betterproto2 encode with these functions (idempotent)."""
    betterproto2.encode_varint = encode_varint
    betterproto2._preprocess_single = _preprocess_single
    betterproto2._serialize_single = _serialize_single


def uninstall() -> None:
    """Put betterproto2's own encoders back (for tests comparing both)."""
    for name, function in ORIGINALS.items():
        setattr(betterproto2, name, function)


install()
