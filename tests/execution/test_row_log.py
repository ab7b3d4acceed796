"""RowLog: the rows read back are equal to the rows appended, in order, whatever the mix of
compacted chunks, chunks kept as given and rows not yet compacted."""

from __future__ import annotations

import pytest

import dagloom as dg
from dagloom.execution.sink import ListEventSink
from dagloom.messages import EventType, LogLevel, StepFailureData
from dagloom.messages.row_log import CHUNK, RowLog, _Columns
from dagloom.messages.rows import (
    HANDLED_OUTPUT_DATA,
    LOADED_INPUT_DATA,
    NO_PAYLOAD,
    STEP_FAILURE_DATA,
    STEP_OUTPUT_DATA,
    EventRow,
)


@dg.op
def one() -> int:
    return 1


@dg.op
def plus(x: int) -> int:
    return x + 1


@dg.job
def pair() -> None:
    """Two steps, the second reading the first's output."""
    plus(one())


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


def test_messages_of_a_chunk_are_joined_and_read_back_as_given() -> None:
    rows = many_rows(CHUNK // 5 + 1)
    rows[7] = (*rows[7][:3], "", *rows[7][4:])  # an empty message among them
    log = RowLog(rows)
    assert isinstance(log._chunks[0], _Columns)
    assert isinstance(log._chunks[0].messages, str)
    assert list(log) == rows
    assert [log[i] for i in (0, 7, CHUNK - 1)] == [rows[i] for i in (0, 7, CHUNK - 1)]


def test_messages_that_cannot_be_joined_are_kept_each() -> None:
    for odd in ["caf\u00e9", "nul\x00in it"]:
        rows = many_rows(CHUNK // 5 + 1)
        rows[3] = (*rows[3][:3], odd, *rows[3][4:])
        log = RowLog(rows)
        assert isinstance(log._chunks[0], _Columns)
        assert isinstance(log._chunks[0].messages, tuple)
        assert list(log) == rows


def without_messages(rows: list[EventRow]) -> list[EventRow]:
    """`rows` as a run keeping its events only for its result emits them: no message where
    the row's other fields tell it."""
    standard = {
        EventType.STEP_START,
        EventType.LOADED_INPUT,
        EventType.STEP_OUTPUT,
        EventType.HANDLED_OUTPUT,
    }
    return [(*r[:3], None, *r[4:]) if r[0] in standard else r for r in rows]


def with_standard_messages(rows: list[EventRow]) -> list[EventRow]:
    out = []
    for r in rows:
        kind, key, payload, message = r[0], r[1], r[7], r[3]
        if kind == EventType.STEP_START:
            message = f'Started execution of step "{key}".'
        elif kind == EventType.LOADED_INPUT:
            message = (
                f'Loaded input "{payload[0]}" using input manager "{payload[1]}", from '
                f'output "{payload[3]}" of step "{payload[2]}"'
            )
        elif kind == EventType.STEP_OUTPUT:
            message = f'Yielded output "{payload[0]}".'
        elif kind == EventType.HANDLED_OUTPUT:
            message = f'Handled output "{payload[0]}" using IO manager "{payload[1]}"'
        out.append((*r[:3], message, *r[4:]))
    return out


def test_rows_without_messages_read_back_with_their_standard_messages() -> None:
    rows = many_rows(CHUNK // 5 * 2 + 3)  # chunks and a tail
    log = RowLog(without_messages(rows))
    expected = with_standard_messages(rows)
    assert list(log) == expected
    assert [log[i] for i in (0, 1, CHUNK + 2, len(rows) - 4)] == [
        expected[i] for i in (0, 1, CHUNK + 2, len(rows) - 4)
    ]
    # A chunk kept as given gets its messages too.
    odd = (200, "a", 1.0, "no such type", LogLevel.DEBUG, "job", NO_PAYLOAD, None)
    kept = RowLog([*without_messages(many_rows(CHUNK // 5)), odd])
    assert list(kept) == [*with_standard_messages(many_rows(CHUNK // 5)), odd]


def test_a_run_without_other_sinks_reads_back_the_messages_dagster_gives() -> None:
    messages = [e.message for e in pair.execute_in_process().all_events if e.step_key == "plus"]
    assert messages[:4] == [
        'Started execution of step "plus".',
        'Loaded input "x" using input manager "io_manager", from output "result" of step "one"',
        'Yielded output "result".',
        'Handled output "result" using IO manager "io_manager"',
    ]
    assert messages[4].startswith('Finished execution of step "plus" in ')


def test_columns_of_unusual_chunks_read_back_as_given() -> None:
    """Stamps far apart, keys repeated apart, loaded inputs' payloads of every shape."""
    from dagloom.messages import LoadedInputData

    rows = many_rows(CHUNK // 5 + 1)
    rows[1] = (*rows[1][:7], LoadedInputData(input_name="x"))  # a message: kept as it is
    rows[6] = (*rows[6][:7], ["x", "io_manager", "step_0", "result"])  # read back from JSON
    rows[11] = (*rows[11][:2], 1.0e12, *rows[11][3:])  # centuries apart
    rows[12] = (*rows[12][:1], "step_0", *rows[12][2:])  # an earlier key again
    log = RowLog(rows)
    assert isinstance(log._chunks[0], _Columns)
    assert list(log) == rows
    assert log[1] == rows[1] and log[6] == rows[6] and log[11] == rows[11]
    assert [type(r[2]) for r in log] == [float] * len(rows)


def test_stamps_and_keys_are_kept_compactly_and_exactly() -> None:
    rows = many_rows(CHUNK // 5 + 1)
    rows = [(*r[:2], r[2] + i * 1e-7, *r[3:]) for i, r in enumerate(rows)]
    chunk = RowLog(rows)._chunks[0]
    assert isinstance(chunk, _Columns)
    # The high bytes of stamps minutes apart are one value each.
    assert sum(isinstance(plane, int) for plane in chunk.stamps) >= 2
    assert len(chunk.keys) < CHUNK // 4  # one per run of a step's rows
    assert list(RowLog(rows)) == rows


def test_a_lazy_success_row_reads_back_with_its_message_and_no_payload() -> None:
    success = (EventType.STEP_SUCCESS, "s", 1.5, None, LogLevel.DEBUG, "job", NO_PAYLOAD, 1.234)
    expected = (*success[:3], 'Finished execution of step "s" in 1.23ms.', *success[4:7], None)
    rows = [*many_rows(CHUNK // 5), success, *many_rows(2)]
    log = RowLog(rows)
    assert log[CHUNK // 5 * 5] == expected
    assert list(log)[CHUNK // 5 * 5] == expected
    assert list(RowLog([success])) == [expected]
    # Among other payloads of rows of no payload kind: kept as they are.
    odd = (EventType.ENGINE_EVENT, "", 1.0, "odd", LogLevel.DEBUG, "job", NO_PAYLOAD, "text")
    rows = [*many_rows(CHUNK // 5 - 1), success, odd, *many_rows(2)]
    read = list(RowLog(rows))
    assert read[CHUNK // 5 * 5 - 5] == expected and read[CHUNK // 5 * 5 - 4] == odd


def test_a_chunk_of_rows_without_messages_one_level_and_usual_kinds() -> None:
    rows = [
        (*r[:3], None, LogLevel.DEBUG, *r[5:])
        for r in without_messages(many_rows(CHUNK // 4 + 1))
        if r[0] != EventType.STEP_SUCCESS
    ]
    log = RowLog(rows)
    chunk = log._chunks[0]
    assert isinstance(chunk, _Columns)
    assert chunk.kinds is None and isinstance(chunk.levels, int) and chunk.present == b""
    expected = with_standard_messages(rows)
    assert list(log) == expected
    assert [log[i] for i in (0, 5, CHUNK - 1)] == [expected[i] for i in (0, 5, CHUNK - 1)]


async def test_a_run_with_another_sink_gives_it_every_message() -> None:
    """Only a run whose events nothing but its result reads leaves messages out."""
    from dagloom.execution.run import execute_job_in_process

    watching = ListEventSink()
    result = await execute_job_in_process(pair, sink=watching)
    assert result.success
    seen = list(watching.rows.tail)
    assert all(isinstance(r[3], str) for r in seen)
    assert [r[7] for r in seen if r[0] == EventType.STEP_SUCCESS] == [None, None]
    assert [r[3] for r in seen] == [e.message for e in result.all_events]
