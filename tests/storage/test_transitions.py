"""The run status state machine as a table: the moves a run's lifecycle needs are allowed,
the rest are not (pure, no storage)."""

from __future__ import annotations

import pytest

from dagloom.messages import RunStatus
from dagloom.storage.base import (
    FINISHED_STATUSES,
    RUN_STATUS_BY_EVENT,
    RUN_TRANSITION_SOURCES,
    RUN_TRANSITIONS,
    allowed_transition,
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
