"""RowLog: a run's event rows kept for its result, compacted by column as they accumulate.

A row as the executor emits it (`dagloom.messages.rows`) is a tuple of eight fields plus its
float timestamp: ~130 bytes before its message and payload, and a run of N steps keeps ~5N
of them for its result. Every `CHUNK` rows, a RowLog turns the rows gathered so far into
columns: event types as one byte each, a chunk's one log level and a run's one job name
once (else one a row), payload kinds not at all where each is its type's; step keys as
runs (a step's rows are consecutive); timestamps by byte plane (a chunk's share their high
bytes); messages joined into one string (one byte a character, where each message of its
own would cost ~50 bytes more); payloads sparsely: loaded inputs' by field, the others'
as 2-byte positions of the first equal one. That is ~10-15 bytes a row beside what the
rows reference (in a run whose events only its result reads, `RunFacts.lazy_messages`,
most rows have no message), for ~0.25 µs a row, done in C loops over each chunk.

Reading a RowLog gives back rows equal to those appended: tuples of the same fields, event
types and levels as enum members (as the executor emits them; a row read back from JSON
holds their int values, equal to the members), timestamps as floats; only their identity is
new; a row given without a message (None) reads back with its standard message
(`dagloom.messages.rows.standard_message`). A chunk with anything a column cannot hold (a
type or level no member has, a timestamp not a number) is kept as it was given. Rows are
8-tuples (`dagloom.messages.rows`).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, compress, count, islice, repeat
from operator import add, countOf, is_not, itemgetter, mul
from struct import error as struct_error
from struct import pack
from typing import Any, overload

from dagloom.messages import EventType, LogLevel
from dagloom.messages.rows import (
    HANDLED_OUTPUT_DATA,
    JOB_NAME,
    LEVEL,
    LOADED_INPUT_DATA,
    MESSAGE,
    NO_PAYLOAD,
    PAYLOAD,
    PAYLOAD_FIELDS,
    PAYLOAD_KIND,
    STEP_KEY,
    STEP_OUTPUT_DATA,
    TIMESTAMP,
    TYPE,
    EventRow,
    standard_message,
)

CHUNK = 2048
"""Rows gathered before they are compacted: large enough that a chunk's columns cost
little beside its rows, small enough that a run keeps few rows uncompacted."""

_TYPES: tuple[EventType | None, ...] = tuple(
    {int(t): t for t in EventType}.get(value) for value in range(256)
)
_LEVELS: tuple[LogLevel | None, ...] = tuple(
    {int(level): level for level in LogLevel}.get(value) for value in range(256)
)
_TYPE, _STEP_KEY, _TIMESTAMP, _MESSAGE, _LEVEL, _JOB_NAME, _PAYLOAD_KIND, _PAYLOAD = (
    itemgetter(i)
    for i in (TYPE, STEP_KEY, TIMESTAMP, MESSAGE, LEVEL, JOB_NAME, PAYLOAD_KIND, PAYLOAD)
)
_TYPE_VALUES = bytes(int(t) for t in EventType)
_LEVEL_VALUES = bytes(int(level) for level in LogLevel)
# Payloads given as tuples of strings: equal ones are shared within a chunk.
_SHARED_KINDS = frozenset((STEP_OUTPUT_DATA, HANDLED_OUTPUT_DATA, LOADED_INPUT_DATA))


class _Columns:
    """CHUNK rows by column (see the module docstring)."""

    __slots__ = (
        "codes",
        "durations",
        "job_name",
        "job_names",
        "keys",
        "kinds",
        "levels",
        "loaded",
        "messages",
        "payloads",
        "positions",
        "present",
        "stamps",
        "starts",
        "types",
    )

    def __init__(
        self,
        types: bytes,
        keys: tuple[str, ...],
        stamps: array[float],
        messages: tuple[str | None, ...],
        levels: bytes,
        job_names: tuple[str, ...],
        kinds: array[int],
        payloads: tuple[Any, ...],
    ) -> None:
        self.types = types
        self.starts, self.keys = _runs(keys)
        self.stamps = _planes(stamps)
        self.present, self.messages = _joined(messages)
        # One level for the whole chunk (most often), else one a row
        self.levels: bytes | int = (
            levels[0] if levels and levels.count(levels[0]) == len(levels) else levels
        )
        self.job_name = job_names[0]
        # One name for the whole chunk (a run's rows all have its job's), else one a row.
        self.job_names: tuple[str, ...] | None = None if len(job_names) == 1 else job_names
        # None where each row's kind is its type's (`_KIND_OF`), as most are
        self.kinds: array[int] | None = (
            None if kinds.tobytes() == types.translate(_KIND_OF) else kinds
        )
        self.codes, self.durations, (self.positions, self.payloads), self.loaded = _sparse(
            kinds, payloads
        )

    def __len__(self) -> int:
        return len(self.types)

    def _levels(self) -> Iterable[int]:
        levels = self.levels
        return repeat(levels, len(self.types)) if isinstance(levels, int) else levels

    def _kinds(self) -> Sequence[int]:
        kinds = self.kinds
        if kinds is None:
            kinds = array("b")
            kinds.frombytes(self.types.translate(_KIND_OF))
        return kinds

    def _keys(self) -> Sequence[str]:
        """The step keys column, one a row."""
        starts = self.starts
        if starts is None:
            return self.keys
        runs = iter(self.keys)
        out: list[str] = []
        append = out.append
        key = ""
        for start in starts:
            if start:
                key = next(runs)
            append(key)
        return out

    def _stamps(self) -> Sequence[float]:
        """The timestamps column, one a row."""
        count = len(self.types)
        raw = bytearray(8 * count)
        for index, plane in enumerate(self.stamps):
            raw[index::8] = plane if isinstance(plane, bytes) else bytes((plane,)) * count
        stamps = array("d")
        stamps.frombytes(raw)
        return stamps

    def _messages(self) -> Sequence[str | None]:
        """The messages column, None where a row was given none."""
        messages = self.messages
        present = self.present
        if present is None:
            assert isinstance(messages, tuple)
            return messages
        if not present:  # no row has one
            return [None] * len(self.types)
        assert isinstance(messages, str)
        given = iter(messages.split(_SEPARATOR))
        return [next(given) if there else None for there in present]

    def _payloads(self) -> Sequence[Any]:
        """The payloads column, one a row."""
        codes = self.codes
        given = self.payloads
        positions = self.positions
        others: Iterator[Any]
        if positions is not None:
            assert isinstance(given, dict)
            others = map(given.__getitem__, positions)
        else:
            others = iter(given)
        loaded = self.loaded
        inputs: Iterator[Any] = iter(())
        if loaded is not None:
            count = codes.count(_INPUT)
            inputs = zip(*(repeat(v, count) if same else v for same, v in loaded), strict=True)
        beside = iter(self.durations)
        out: list[Any] = []
        append = out.append
        for code in codes:
            if code == _OTHER:
                append(next(others))
            elif code == _INPUT:
                append(next(inputs))
            elif code:
                append(next(beside))
            else:
                append(None)
        return out

    def __iter__(self) -> Iterator[EventRow]:
        types = _TYPES
        levels = _LEVELS
        job_names: Iterable[str] = (
            repeat(self.job_name, len(self.types)) if self.job_names is None else self.job_names
        )
        for type_, key, stamp, message, level, job_name, kind, payload in zip(
            self.types,
            self._keys(),
            self._stamps(),
            self._messages(),
            self._levels(),
            job_names,
            self._kinds(),
            self._payloads(),
            strict=True,
        ):
            if message is None:
                message, payload = told(type_, key, kind, payload)
            yield (types[type_], key, stamp, message, levels[level], job_name, kind, payload)

    def __getitem__(self, index: int) -> EventRow:
        job_names = self.job_names
        key = self._keys()[index]
        kind = self._kinds()[index]
        levels = self.levels
        payload = self._payloads()[index]
        message = self._messages()[index]
        if message is None:
            message, payload = told(self.types[index], key, kind, payload)
        return (
            _TYPES[self.types[index]],
            key,
            self._stamps()[index],
            message,
            _LEVELS[levels if isinstance(levels, int) else levels[index]],
            self.job_name if job_names is None else job_names[index],
            kind,
            payload,
        )


def told(event_type: int, step_key: str, kind: int, payload: Any) -> tuple[str, Any]:
    """The message and payload of a row given without a message (see `standard_message`):
    a row with no payload kind has no payload once its message is made of it."""
    message = standard_message(event_type, step_key, payload)
    return message, (None if kind == NO_PAYLOAD else payload)


_SEPARATOR = "\x00"


def _joined(messages: tuple[str | None, ...]) -> tuple[bytes | None, tuple[str | None, ...] | str]:
    """A chunk's messages as (which rows have one, those joined into one string), or (None,
    the messages) when they cannot be (one is not an ASCII string, or holds the separator).
    A message of its own costs ~50 bytes beside its text and its reference; joined, one
    byte. Each step is done in C: ~15 ns a row."""
    present = bytes(map(is_not, messages, repeat(None)))
    if not present.count(1):  # a lazy run's chunk, most often
        return b"", ""
    given = list(compress(messages, present))
    try:
        joined = _SEPARATOR.join(given)  # type: ignore[arg-type]  # TypeError: not all str
    except TypeError:
        return None, messages
    if not joined.isascii() or joined.count(_SEPARATOR) != max(len(given) - 1, 0):
        return None, messages
    return present, joined


def _runs(keys: tuple[str, ...]) -> tuple[bytes | None, tuple[str, ...]]:
    """Step keys as (where a run of one key starts, each run's key): a step's events are
    consecutive, ~5 rows of one key object, 8 bytes each kept as one and a byte a row."""
    if not keys:
        return None, keys
    starts = b"\x01" + bytes(map(is_not, keys[1:], keys[:-1]))
    return starts, tuple(compress(keys, starts))


def _planes(stamps: array[float]) -> tuple[int | bytes, ...]:
    """Timestamps as the 8 byte planes of their doubles, a plane whose bytes are all one
    value as that value: a chunk's stamps, seconds apart, share their 4 or 5 high bytes, so
    ~3.5 bytes a row where a double takes 8. Exact; each plane sliced in C."""
    raw = stamps.tobytes()
    count = len(stamps)
    planes: list[int | bytes] = []
    for index in range(8):
        plane = raw[index::8]
        planes.append(plane[0] if count and plane.count(plane[0]) == count else plane)
    return tuple(planes)


def _kind_of(event_type: EventType) -> int:
    """The payload kind of the events of a type, as an unsigned byte: the field of Event's
    `data` oneof named as the type (`STEP_OUTPUT`: `step_output`), else NO_PAYLOAD."""
    name = event_type.name.lower()
    return PAYLOAD_FIELDS.index(name) if name in PAYLOAD_FIELDS else NO_PAYLOAD & 0xFF


_KIND_OF = bytes(
    _kind_of(_TYPES[value]) if _TYPES[value] is not None else 0  # type: ignore[arg-type]
    for value in range(256)
)


# Per row, where its payload is: none; in `payloads`; a loaded input's, in `loaded`; that
# of a row of no payload kind (a lazy run's STEP_SUCCESS: its duration), in `durations`.
_NONE, _OTHER, _INPUT, _BESIDE = 0, 1, 2, 3
_CODES = bytes(
    _NONE if value == NO_PAYLOAD & 0xFF else _INPUT if value == LOADED_INPUT_DATA else _OTHER
    for value in range(256)
)
_WHERE = [bytes(1 if value == code else 0 for value in range(256)) for code in range(4)]


def _sparse(
    kinds: array[int], payloads: tuple[Any, ...]
) -> tuple[
    bytes,
    array[float] | tuple[Any, ...],
    tuple[array[int] | None, tuple[Any, ...] | dict[int, Any]],
    tuple[tuple[bool, Any], ...] | None,
]:
    """Payloads as (where each row's is: a `_CODES` value or `_BESIDE`; the payloads of rows
    of no payload kind that have one, as doubles when all are floats; the other payloads,
    but for loaded inputs', by `_indexed`; those by field, each field one value where
    all are equal). A step's events are ~5 rows, two or three with a payload; a loaded
    input's payload, (input, IO manager, upstream step, output), differs from another's by
    its step alone: 8 bytes a row, where a tuple of its own takes 72 and its reference 8.
    Done in C: masks by `bytes.translate`, columns by `compress`."""
    codes = kinds.tobytes().translate(_CODES)
    none = codes.translate(_WHERE[_NONE])
    durations: array[float] | tuple[Any, ...] = ()
    if countOf(compress(payloads, none), None) != none.count(1):
        # Rows of no payload kind with a payload: a lazy run's STEP_SUCCESS rows
        beside = bytes(map(mul, none, map(is_not, payloads, repeat(None))))
        codes = bytes(map(add, codes, map(mul, beside, repeat(_BESIDE))))
        durations = tuple(compress(payloads, beside))
        if countOf(map(type, durations), float) == len(durations):
            durations = _packed("d", durations, len(durations))
    loaded: tuple[tuple[bool, Any], ...] | None = None
    inputs = tuple(compress(payloads, codes.translate(_WHERE[_INPUT])))
    if inputs:
        count = len(inputs)
        if countOf(map(type, inputs), tuple) == count and countOf(map(len, inputs), 4) == count:
            loaded = tuple(
                (True, column[0]) if countOf(column, column[0]) == count else (False, column)
                for column in zip(*inputs, strict=True)
            )
        else:  # kept with the others
            codes = codes.replace(bytes((_INPUT,)), bytes((_OTHER,)))
    other = codes.translate(_WHERE[_OTHER])
    others = tuple(compress(payloads, other))
    return codes, durations, _indexed(lambda: list(compress(kinds, other)), others), loaded


def _indexed(
    kinds: Callable[[], Sequence[int]], payloads: tuple[Any, ...]
) -> tuple[array[int] | None, tuple[Any, ...] | dict[int, Any]]:
    """`payloads` as (each one's position of the first equal one, 2 bytes each; those
    first ones by position): a step's output and handled output payloads are equal from
    step to step (a reference each would take 8 bytes). Or, when one cannot be hashed, the
    payloads with equal positional ones shared (`_shared_payloads`)."""
    first: dict[Any, int] = {}
    try:
        positions = array("H", map(first.setdefault, payloads, count()))
    except (TypeError, OverflowError):  # a message or metadata (a dict) in one; or too many
        return None, _shared_payloads(kinds, payloads)
    return positions, {position: payload for payload, position in first.items()}


def _shared_payloads(
    kinds: Callable[[], Sequence[int]], payloads: tuple[Any, ...]
) -> tuple[Any, ...]:
    """`payloads`, with equal positional payloads of outputs and inputs made one object;
    `kinds` gives their payload kinds, when needed."""
    shared: dict[Any, Any] = {}
    try:  # most chunks: every payload hashable (None, or a tuple of strings); done in C
        return tuple(map(shared.setdefault, payloads, payloads))
    except TypeError:  # some payload is a message or holds metadata (a dict)
        pass
    out: list[Any] = []
    append = out.append
    share = shared.setdefault
    for kind, payload in zip(kinds(), payloads, strict=True):
        if type(payload) is tuple and kind in _SHARED_KINDS:
            try:  # noqa: SIM105 (`contextlib.suppress` costs ~0.5 µs a row here)
                payload = share(payload, payload)
            except TypeError:  # holds metadata (a dict): kept as it is
                pass
        append(payload)
    return tuple(out)


def _packed(code: str, values: Iterable[Any], count: int) -> array[Any]:
    """`values` as an array of `code` items (a single C pass: `struct.pack`)."""
    packed = array(code)
    packed.frombytes(pack(f"{count}{code}", *values))
    return packed


def _compacted(rows: list[EventRow]) -> _Columns | list[EventRow]:
    """`rows` by column, or the rows as given (with their messages) when a row holds what a
    column cannot (a type or level no enum member has, a timestamp not a number). Each
    column is read and packed in C (`map`, `bytes`, `struct.pack`): ~0.3 µs a row in all."""
    count = len(rows)
    try:
        types = bytes(map(_TYPE, rows))
        levels = bytes(map(_LEVEL, rows))
        stamps = _packed("d", map(_TIMESTAMP, rows), count)
        kinds = _packed("b", map(_PAYLOAD_KIND, rows), count)
    except (TypeError, ValueError, struct_error):  # not numbers, or out of range
        return list(map(_with_message, rows))
    if types.translate(None, _TYPE_VALUES) or levels.translate(None, _LEVEL_VALUES):
        return list(map(_with_message, rows))  # a value no member has
    job_name = rows[0][JOB_NAME]
    job_names = (
        (job_name,)
        if countOf(map(_JOB_NAME, rows), job_name) == count
        else tuple(map(_JOB_NAME, rows))
    )
    return _Columns(
        types,
        tuple(map(_STEP_KEY, rows)),
        stamps,
        tuple(map(_MESSAGE, rows)),
        levels,
        job_names,
        kinds,
        tuple(map(_PAYLOAD, rows)),
    )


def _with_message(row: EventRow) -> EventRow:
    """`row`, or, given without a message, a copy with its standard message."""
    if row[MESSAGE] is not None:
        return row
    message, payload = told(row[TYPE], row[STEP_KEY], row[PAYLOAD_KIND], row[PAYLOAD])
    return (*row[:MESSAGE], message, *row[MESSAGE + 1 : PAYLOAD], payload)


class RowLog(Sequence[EventRow]):
    """The rows of one run's events, in order; `append` and `extend` add at the end.

    Appending is a list append (the compaction of a full chunk aside); reading goes back
    over the columns. Sealed chunks never change, so `snapshot` shares them.
    """

    __slots__ = ("_chunks", "_sealed", "tail")

    def __init__(self, rows: Iterable[EventRow] = ()) -> None:
        self._chunks: list[_Columns | list[EventRow]] = []
        self._sealed = 0
        # The rows not yet compacted; a sink appends to it directly (see `append`).
        self.tail: list[EventRow] = []
        self.extend(rows)

    def append(self, row: EventRow) -> None:
        tail = self.tail
        tail.append(row)
        if len(tail) >= CHUNK:
            self.seal()

    def extend(self, rows: Iterable[EventRow]) -> None:
        for row in rows:
            self.append(row)

    def seal(self) -> None:
        """Compact the rows gathered since the last chunk, if they fill one (a sink that
        appends to `tail` itself calls this when `tail` reaches CHUNK rows)."""
        tail = self.tail
        while len(tail) >= CHUNK:
            chunk, tail = tail[:CHUNK], tail[CHUNK:]
            self._chunks.append(_compacted(chunk))
            self._sealed += CHUNK
        self.tail = tail

    def snapshot(self, more: Iterable[EventRow] = ()) -> RowLog:
        """A RowLog of these rows followed by `more`, sharing this one's chunks."""
        copy = RowLog()
        copy._chunks = list(self._chunks)
        copy._sealed = self._sealed
        copy.tail = list(self.tail)
        copy.extend(more)
        return copy

    def __len__(self) -> int:
        return self._sealed + len(self.tail)

    def __iter__(self) -> Iterator[EventRow]:
        return chain(*self._chunks, map(_with_message, list(self.tail)))

    @overload
    def __getitem__(self, index: int) -> EventRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[EventRow]: ...

    def __getitem__(self, index: int | slice) -> EventRow | list[EventRow]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return list(self)[index]
            return list(islice(self, start, stop))
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("RowLog index out of range")
        if index >= self._sealed:
            return _with_message(self.tail[index - self._sealed])
        return self._chunks[index // CHUNK][index % CHUNK]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowLog | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RowLog({list(self)!r})"


__all__ = ["CHUNK", "RowLog"]
