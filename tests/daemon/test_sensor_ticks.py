"""Sensor ticks: when a sensor is due, and run-key dedup over its whole history."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagloom.daemon import (
    RUN_KEY_TAG,
    KeyedRun,
    SensorDue,
    SensorRunIdentity,
    SensorTickState,
    sensor_due,
    sensor_submissions,
)
from dagloom.definitions import RunRequest
from dagloom.definitions.sensor import SENSOR_NAME_TAG
from dagloom.messages import RunStatus


@pytest.mark.parametrize(
    ("tick_state", "now", "expected"),
    [
        pytest.param(SensorTickState(30), 100.0, SensorDue(True, 100.0), id="never-ticked"),
        pytest.param(SensorTickState(30, 80.0), 100.0, SensorDue(False, 110.0), id="too-soon"),
        pytest.param(SensorTickState(30, 70.0), 100.0, SensorDue(True, 100.0), id="exactly-due"),
        pytest.param(SensorTickState(30, 10.0), 100.0, SensorDue(True, 100.0), id="overdue"),
        pytest.param(
            SensorTickState(30, 95.0, last_tick_finished=False),
            100.0,
            SensorDue(True, 100.0, resume=True),
            id="interrupted-tick-is-resumed-at-once",
        ),
        pytest.param(
            SensorTickState(30, 5000.0), 100.0, SensorDue(True, 100.0), id="clock-went-back"
        ),
        pytest.param(SensorTickState(0, 100.0), 100.0, SensorDue(True, 100.0), id="no-interval"),
    ],
)
def test_a_sensor_is_due_once_its_interval_has_passed(
    tick_state: SensorTickState, now: float, expected: SensorDue
) -> None:
    assert sensor_due(tick_state, now=now) == expected


def keyed(*keys: str | None) -> list[RunRequest]:
    return [RunRequest(run_key=key, tags={"n": str(i)}) for i, key in enumerate(keys)]


def test_run_keys_seen_before_are_skipped_and_unsubmitted_runs_are_submitted() -> None:
    existing = {
        "done": KeyedRun("r-done", RunStatus.SUCCESS),
        "failed": KeyedRun("r-failed", RunStatus.FAILURE),
        "created": KeyedRun("r-created", RunStatus.NOT_STARTED),
        "queued": KeyedRun("r-queued", RunStatus.QUEUED),
    }
    requests = keyed("new", "done", None, "created", "failed", "new", "queued", None, "new")
    out = sensor_submissions(requests, existing)
    assert [(r.run_key, r.tags["n"]) for r in out.create] == [
        ("new", "0"),
        (None, "2"),
        (None, "7"),
    ]
    assert out.submit == ("r-created",)
    assert out.skipped_keys == ("done", "failed", "queued")
    assert out.duplicate_keys == ("new",)


@given(
    st.lists(st.none() | st.sampled_from("abcdef"), max_size=20),
    st.dictionaries(st.sampled_from("abcdefgh"), st.sampled_from(list(RunStatus)), max_size=8),
)
def test_each_key_is_acted_on_at_most_once_over_history(
    keys: list[str | None], statuses: dict[str, RunStatus]
) -> None:
    existing = {key: KeyedRun(f"run-{key}", status) for key, status in statuses.items()}
    out = sensor_submissions(keyed(*keys), existing)
    created = [r.run_key for r in out.create if r.run_key is not None]
    submitted = [run_id.removeprefix("run-") for run_id in out.submit]
    acted = created + submitted
    assert len(acted) == len(set(acted))
    assert not set(created) & set(existing)
    assert all(existing[key].status == RunStatus.NOT_STARTED for key in submitted)
    assert set(acted) | set(out.skipped_keys) == {k for k in keys if k is not None}
    assert not set(acted) & set(out.skipped_keys)
    assert sum(r.run_key is None for r in out.create) == keys.count(None)
    assert set(out.duplicate_keys) == {k for k in set(keys) if k and keys.count(k) > 1}


def test_a_sensor_run_identity_is_one_run_id_per_key() -> None:
    ident = SensorRunIdentity("loc", "files", "a.csv")
    assert ident.run_id == SensorRunIdentity("loc", "files", "a.csv").run_id
    assert ident.run_id != SensorRunIdentity("loc", "files", "b.csv").run_id
    assert ident.run_id != SensorRunIdentity("loc", "files2", "a.csv").run_id
    assert ident.run_id != SensorRunIdentity("loc2", "files", "a.csv").run_id
    # Joined parts cannot collide: ("ab", "c") and ("a", "bc") differ.
    assert SensorRunIdentity("l", "ab", "c").run_id != SensorRunIdentity("l", "a", "bc").run_id
    assert ident.tags == {SENSOR_NAME_TAG: "files", RUN_KEY_TAG: "a.csv"}


class _Crash(Exception):
    """The simulated daemon dies here."""


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=5), min_size=1, max_size=20),
    st.sets(st.integers(0, 80), max_size=20),
)
def test_a_sensor_loop_killed_anywhere_runs_each_key_exactly_once(
    ticks: list[list[str]], crash_at: set[int]
) -> None:
    """The sensor loop's protocol over these functions: look up the runs of the requested
    keys, create each new run NOT_STARTED under its derived id, then submit it. Killing the
    loop between any two steps (and the sensor asking for the same keys again later, as
    sensors do) leaves exactly one submitted run per key."""
    runs: dict[str, tuple[str, RunStatus]] = {}  # storage: run id -> (run key, status)
    point = 0

    def maybe_crash() -> None:
        nonlocal point
        point += 1
        if point in crash_at:
            raise _Crash

    everything = sorted({key for tick in ticks for key in tick})
    for keys in [*ticks, everything]:  # a last tick, uninterrupted, that asks for every key
        if keys is everything:
            crash_at = set()
        existing = {key: KeyedRun(run_id, status) for run_id, (key, status) in runs.items()}
        out = sensor_submissions([RunRequest(run_key=key) for key in keys], existing)
        try:
            for run_id in out.submit:
                runs[run_id] = (runs[run_id][0], RunStatus.QUEUED)
                maybe_crash()
            for request in out.create:
                assert request.run_key is not None
                run_id = SensorRunIdentity("loc", "files", request.run_key).run_id
                assert run_id not in runs
                runs[run_id] = (request.run_key, RunStatus.NOT_STARTED)
                maybe_crash()
                runs[run_id] = (request.run_key, RunStatus.QUEUED)
                maybe_crash()
        except _Crash:
            continue
    assert sorted(key for key, _ in runs.values()) == everything
    assert all(status == RunStatus.QUEUED for _, status in runs.values())
