"""Sensor ticks: when a sensor is due, and run-key dedup over its whole history."""

from __future__ import annotations

import pytest
from hypothesis import given
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
