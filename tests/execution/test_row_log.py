"""RowLog: the rows read back are equal to the rows appended, in order, whatever the mix of
compacted chunks, chunks kept as given and rows not yet compacted."""

from __future__ import annotations

import pytest

from dagloom.execution.sink import ListEventSink
from dagloom.messages import EventType, LogLevel, StepFailureData
from dagloom.messages.row_log import CHUNK, RowLog
from dagloom.messages.rows import (
    HANDLED_OUTPUT_DATA,
    LOADED_INPUT_DATA,
    NO_PAYLOAD,
    STEP_FAILURE_DATA,
    STEP_OUTPUT_DATA,
    EventRow,
)


def step_rows(i: int, job: str = "job") -> list[EventRow]:
    key = f"step_{i}"
    t = 1_700_000_000.0 + i
    return [
        (EventType.STEP_START, key, t, f'Started "{key}".', LogLevel.DEBUG, job, NO_PAYLOAD, None),
        (
            EventType.LOADED_INPUT,
            key,
            t,
            "loaded",
            LogLevel.DEBUG,
            job,
            LOADED_INPUT_DATA,
            ("x", "io_manager", f"step_{i - 1}", "result"),
        ),
        (
            EventType.STEP_OUTPUT,
            key,
            t,
            "yielded",
            LogLevel.DEBUG,
            job,
            STEP_OUTPUT_DATA,
            ("result", "", {"m": 1}) if i % 7 == 0 else ("result", ""),
        ),
        (
            EventType.HANDLED_OUTPUT,
            key,
            t,
            "handled",
            LogLevel.DEBUG,
            job,
            HANDLED_OUTPUT_DATA,
            ("result", "io_manager", ""),
        ),
        (EventType.STEP_SUCCESS, key, t + 0.5, "done", LogLevel.INFO, job, NO_PAYLOAD, None),
    ]


def many_rows(n_steps: int) -> list[EventRow]:
    return [r for i in range(n_steps) for r in step_rows(i)]


def test_rows_read_back_equal_and_typed_as_appended() -> None:
    rows = many_rows(CHUNK // 2 + 3)  # two full chunks and a tail
    log = RowLog()
    for r in rows:
        log.append(r)
    assert len(log) == len(rows)
    assert list(log) == rows
    assert log == rows
    assert [type(r[0]) for r in log] == [EventType] * len(rows)
    assert [type(r[4]) for r in log] == [LogLevel] * len(rows)
    assert [log[i] for i in (0, 1, CHUNK - 1, CHUNK, 2 * CHUNK, len(rows) - 1, -1)] == [
        rows[i] for i in (0, 1, CHUNK - 1, CHUNK, 2 * CHUNK, len(rows) - 1, -1)
    ]
    assert log[3 : CHUNK + 5] == rows[3 : CHUNK + 5]
    with pytest.raises(IndexError):
        log[len(rows)]


def test_equal_payloads_of_outputs_are_shared_and_others_kept() -> None:
    log = RowLog(many_rows(CHUNK))
    handled = [r[7] for r in log if r[6] == HANDLED_OUTPUT_DATA]
    assert all(p is handled[0] for p in handled)
    with_metadata = [r[7] for r in log if r[6] == STEP_OUTPUT_DATA and len(r[7]) == 3]
    assert with_metadata and all(p == ("result", "", {"m": 1}) for p in with_metadata)


def test_a_chunk_a_column_cannot_hold_is_kept_as_given() -> None:
    failure = StepFailureData(user_failure=True)
    for odd in [
        (200, "a", 1.0, "no such type", LogLevel.DEBUG, "job", NO_PAYLOAD, None),
        (
            EventType.STEP_FAILURE,
            "a",
            "1",
            "text time",
            LogLevel.ERROR,
            "j",
            STEP_FAILURE_DATA,
            failure,
        ),
    ]:
        rows = [*many_rows(CHUNK // 5 - 1), odd, *many_rows(CHUNK // 5)]
        log = RowLog(rows)
        assert list(log) == rows
        assert log[rows.index(odd)] is odd


def test_rows_read_back_from_json_compare_equal() -> None:
    """Their types and levels are ints: read back as the equal enum members."""
    rows = [
        (int(r[0]), r[1], r[2], r[3], int(r[4]), r[5], r[6], r[7])
        for r in many_rows(CHUNK // 5 + 1)
    ]
    log = RowLog(rows)
    assert list(log) == rows
    assert type(log[0][0]) is EventType


def test_rows_of_several_job_names() -> None:
    rows = [r for i in range(CHUNK // 5 + 1) for r in step_rows(i, job=f"job{i % 2}")]
    assert list(RowLog(rows)) == rows


def test_snapshot_shares_chunks_and_adds_rows() -> None:
    rows = many_rows(CHUNK // 5 + 10)
    log = RowLog(rows)
    more = step_rows(10_000)
    copy = log.snapshot(more)
    assert list(copy) == rows + more
    assert list(log) == rows


def test_list_sink_keeps_every_row_emitted() -> None:
    sink = ListEventSink()
    assert sink.rows == []
    rows = many_rows(CHUNK // 5 * 3)
    for r in rows:
        sink.emit(r)
    assert list(sink.rows) == rows
