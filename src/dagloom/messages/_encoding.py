"""Faster field encoding and parsing for betterproto2 messages, with the same results.

betterproto2 (0.10) encodes every varint, each field's key included, one byte at a time into
a fresh `BytesIO`, and finds each field's wire type by scanning tuples of type names: about
two thirds of the time it takes to encode an event batch. Here a field's key is built once
per field number and type, a varint below 128 is a prebuilt byte, a longer one a loop over
an int, and the type is looked up in a set: an event batch encodes in about half the time.

Parsing reads each field's key, length and varints a byte at a time from a stream too, one
`read(1)` call per byte. `Message.parse` (a whole message in bytes) here splits the fields
by indexing the bytes instead; the fields, and what truncated input raises, are those of
betterproto2's reader. `load` from a stream is left as it is. `ORIGINALS` keeps
betterproto2's functions (tests compare both).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from io import BytesIO
from typing import Any, TypeVar

import betterproto2

M = TypeVar("M", bound=betterproto2.Message)

ORIGINALS: dict[str, Any] = {
    "encode_varint": betterproto2.encode_varint,
    "_preprocess_single": betterproto2._preprocess_single,
    "_serialize_single": betterproto2._serialize_single,
    "load_fields": betterproto2.load_fields,
    "parse": betterproto2.Message.__dict__["parse"],
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
            raise TypeError(f"field {field_number}: {proto_type!r} is not a protobuf field type")
        key = _keys[(field_number, proto_type)] = encode_varint((field_number << 3) | wire)
    if _WIRE[proto_type] == _LEN_DELIM:
        return key + encode_varint(len(payload)) + payload
    return key + payload


class _Field:
    """What betterproto2's `ParsedField` holds, without a frozen dataclass's cost."""

    __slots__ = ("number", "raw", "value", "wire_type")

    def __init__(self, number: int, wire_type: int, value: Any, raw: bytes) -> None:
        self.number = number
        self.wire_type = wire_type
        self.value = value
        self.raw = raw


_TRUNCATED = "Stream ended unexpectedly while attempting to load varint."
_TOO_LONG = "Too many bytes when decoding varint."


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it; `EOFError` or `ValueError` as
    `betterproto2.load_varint` raises them."""
    result = 0
    shift = 0
    while True:
        if shift >= 64:
            raise ValueError(_TOO_LONG)
        if pos >= end:
            raise EOFError(_TRUNCATED)
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields_of(data: bytes) -> Iterator[_Field]:
    """The fields of a whole message, as `betterproto2.load_fields` reads them from a
    stream of `data`: a key cut short ends them, a value cut short raises `EOFError`, a
    fixed-size or length-delimited value cut short is what is left."""
    end = len(data)
    pos = 0
    while pos < end:
        start = pos
        byte = data[pos]
        if byte < 0x80:
            key, pos = byte, pos + 1
        else:
            try:
                key, pos = _varint(data, pos, end)
            except EOFError:
                return
        wire_type = key & 0x7
        value: Any = None
        if wire_type == 0:
            if pos < end and data[pos] < 0x80:
                value, pos = data[pos], pos + 1
            else:
                value, pos = _varint(data, pos, end)
        elif wire_type == 2:
            length, pos = _varint(data, pos, end)
            value = data[pos : pos + length]
            pos += len(value)
        elif wire_type == 1:
            value = data[pos : pos + 8]
            pos += len(value)
        elif wire_type == 5:
            value = data[pos : pos + 4]
            pos += len(value)
        yield _Field(key >> 3, wire_type, value, data[start:pos])


class _Whole(BytesIO):
    """A stream of a whole message's bytes, which `load_fields` splits by indexing."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = bytes(data)


def load_fields(stream: Any) -> Iterator[Any]:
    """`betterproto2.load_fields`, by indexing when the stream is a whole message."""
    if type(stream) is _Whole:
        return fields_of(stream.data)
    return ORIGINALS["load_fields"](stream)  # type: ignore[no-any-return]


def _parse(cls: type[M], data: bytes) -> M:
    """`betterproto2.Message.parse`: the message in `data`, read to its end."""
    return cls().load(_Whole(data))


# A message pickles as `cls.parse` and its bytes, and a bound method pickles by its
# function's name: under its own name `_parse`, unpickling would look up `cls._parse`.
_parse.__name__ = _parse.__qualname__ = "parse"


def install() -> None:
    """Make betterproto2 encode and parse with these functions (idempotent)."""
    betterproto2.encode_varint = encode_varint
    betterproto2._preprocess_single = _preprocess_single
    betterproto2._serialize_single = _serialize_single
    betterproto2.load_fields = load_fields  # type: ignore[assignment]  # duck-typed fields
    betterproto2.Message.parse = classmethod(_parse)  # type: ignore[assignment,method-assign]


def uninstall() -> None:
    """Put betterproto2's own functions back (for tests comparing both)."""
    for name in ("encode_varint", "_preprocess_single", "_serialize_single", "load_fields"):
        setattr(betterproto2, name, ORIGINALS[name])
    betterproto2.Message.parse = ORIGINALS["parse"]  # type: ignore[method-assign]


install()
