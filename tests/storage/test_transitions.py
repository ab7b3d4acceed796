"""The run status state machine as a table: the moves a run's lifecycle needs are allowed,
the rest are not (pure, no storage)."""

from __future__ import annotations

import pytest

from dagloom.messages import EventType, LogLevel, RunStatus
from dagloom.messages.rows import NO_PAYLOAD, EventRow
from dagloom.storage.base import (
    FINISHED_STATUSES,
    RUN_STATUS_BY_EVENT,
    RUN_TRANSITION_SOURCES,
    RUN_TRANSITIONS,
    RunTransition,
    allowed_transition,
    batch_moves,
    without_refused,
)

S = RunStatus

NEEDED = [
    (S.NOT_STARTED, S.STARTING),  # the default coordinator launches
    (S.NOT_STARTED, S.QUEUED),  # the queued coordinator enqueues
    (S.QUEUED, S.STARTING),  # the queue admits
    (S.STARTING, S.STARTED),  # a worker claims
    (S.NOT_STARTED, S.STARTED),  # execute_in_process claims the run it created
    (S.STARTED, S.SUCCESS),
    (S.STARTED, S.FAILURE),
    (S.STARTED, S.CANCELING),
    (S.CANCELING, S.CANCELED),
    (S.STARTED, S.CANCELED),  # Ctrl-C in the process executing it
    (S.QUEUED, S.CANCELED),  # a queued run canceled
    (S.STARTING, S.FAILURE),  # a launch that failed
    (S.STARTING, S.CANCELED),  # stopped before it executed
    (S.CANCELING, S.SUCCESS),  # ended by itself before the cancel reached it
    (S.CANCELING, S.FAILURE),  # its worker died while canceling
]


@pytest.mark.parametrize(("old", "new"), NEEDED)
def test_the_moves_a_lifecycle_needs_are_allowed(old: RunStatus, new: RunStatus) -> None:
    assert allowed_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.QUEUED, S.NOT_STARTED),
        (S.QUEUED, S.STARTED),  # a queued run is launched (STARTING) first
        (S.STARTED, S.STARTING),
        (S.STARTED, S.QUEUED),
        (S.CANCELING, S.STARTED),
        (S.NOT_STARTED, S.SUCCESS),  # a run that never started cannot succeed
    ],
)
def test_moves_backwards_or_skipping_the_start_are_refused(old: RunStatus, new: RunStatus) -> None:
    assert not allowed_transition(old, new)


def test_every_status_has_a_row_and_the_finished_ones_are_final() -> None:
    assert set(RUN_TRANSITIONS) == set(RunStatus)
    for end in FINISHED_STATUSES:
        assert RUN_TRANSITIONS[end] == frozenset()
        assert not any(allowed_transition(end, new) for new in RunStatus)


def test_no_status_moves_to_itself_so_no_history_repeats() -> None:
    """A second RUN_START is a second execution: refused, as every repeated move is."""
    assert not any(allowed_transition(s, s) for s in RunStatus)
    # Moves only go forward in this order, so a stored history never loops.
    order = [S.UNSPECIFIED, S.NOT_STARTED, S.QUEUED, S.STARTING, S.STARTED, S.CANCELING]
    rank = {s: i for i, s in enumerate(order)} | {s: len(order) for s in FINISHED_STATUSES}
    for old, allowed in RUN_TRANSITIONS.items():
        assert all(rank[new] > rank[old] for new in allowed), old


def test_moves_only_reach_statuses_an_event_sets() -> None:
    """Every allowed target has its lifecycle event; the SQL compare-and-set lists, for each,
    exactly the statuses the table allows it from."""
    targets = set().union(*RUN_TRANSITIONS.values())
    assert targets <= set(RUN_STATUS_BY_EVENT.values())
    for new, sources in RUN_TRANSITION_SOURCES.items():
        assert set(sources) == {old for old in RunStatus if allowed_transition(old, new)}


def test_a_batch_loses_exactly_its_refused_rows() -> None:
    def at(kind: EventType, ts: float) -> EventRow:
        return (kind, "", ts, "", LogLevel.INFO, "job", NO_PAYLOAD, None)

    rows_a = [at(EventType.RUN_START, 1.0), at(EventType.STEP_START, 2.0)]
    rows_b = [at(EventType.RUN_SUCCESS, 3.0), at(EventType.RUN_CANCELED, 4.0)]
    batches = [("a", rows_a), ("b", rows_b)]
    moves = batch_moves(batches)
    assert [(b, i, m.run_id, m.status) for b, i, m in moves] == [
        (0, 0, "a", S.STARTED),
        (1, 0, "b", S.SUCCESS),
        (1, 1, "b", S.CANCELED),
    ]
    assert (moves[0][2].start_time, moves[1][2].end_time) == (1.0, 3.0)
    applied = RunTransition(applied=True, status=S.STARTED)
    refused = RunTransition(applied=False, status=S.SUCCESS)
    assert without_refused(batches, moves, [applied, None, applied]) is None
    assert without_refused(batches, moves, [applied, applied, refused]) == [
        ("a", rows_a),
        ("b", rows_b[:1]),
    ]
