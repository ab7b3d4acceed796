"""Run monitoring verdicts: start timeouts, lost workers, max runtime, stuck cancellations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagloom.actors.run_worker import HEARTBEAT_TAG, WORKER_TAG
from dagloom.daemon import (
    MonitorAction,
    MonitorCheck,
    MonitoredRun,
    MonitoringSettings,
    max_runtime_of,
    monitoring_verdict,
)
from dagloom.messages import RunStatus

SETTINGS = MonitoringSettings(
    start_timeout_seconds=180,
    cancel_timeout_seconds=60,
    heartbeat_timeout_seconds=120,
    max_runtime_seconds=0,
    max_resume_run_attempts=0,
)


def run(
    status: RunStatus,
    *,
    created: float = 1000,
    started: float | None = None,
    status_time: float | None = None,
    resumes: int = 0,
    **tags: str,
) -> MonitoredRun:
    return MonitoredRun(
        "r1",
        status,
        created,
        {k.replace("__", "/"): v for k, v in tags.items()},
        start_time=started,
        status_time=status_time,
        resume_attempts=resumes,
    )


STARTED_AT = 2000.0
BEAT = {"dagloom__heartbeat": "2100", "dagloom__run_worker": "pool-3"}

CASES = [
    # (run, now, action, check, message fragment)
    (run(RunStatus.STARTING, status_time=1100), 1280, MonitorAction.LEAVE, None, ""),
    (
        run(RunStatus.STARTING, status_time=1100),
        1281,
        MonitorAction.FAIL,
        MonitorCheck.START_TIMEOUT,
        "timed out while starting",
    ),
    (
        run(RunStatus.NOT_STARTED),
        1181,
        MonitorAction.FAIL,
        MonitorCheck.START_TIMEOUT,
        "start_timeout_seconds (180 s)",
    ),
    (run(RunStatus.STARTED, started=STARTED_AT, **BEAT), 2220, MonitorAction.LEAVE, None, ""),
    (
        run(RunStatus.STARTED, started=STARTED_AT, **BEAT),
        2221,
        MonitorAction.FAIL,
        MonitorCheck.WORKER_LOST,
        "pool-3 sent no heartbeat for 121 s",
    ),
    (
        run(RunStatus.STARTED, started=STARTED_AT),
        2121,
        MonitorAction.FAIL,
        MonitorCheck.WORKER_LOST,
        "its worker sent no heartbeat for 121 s",
    ),
    (
        run(RunStatus.STARTED, started=STARTED_AT, dagloom__heartbeat="garbage"),
        2121,
        MonitorAction.FAIL,
        MonitorCheck.WORKER_LOST,
        "sent no heartbeat",
    ),
    (
        run(RunStatus.STARTED, started=STARTED_AT, dagster__max_runtime="60", **BEAT),
        2061,
        MonitorAction.FAIL,
        MonitorCheck.MAX_RUNTIME,
        "Exceeded maximum runtime of 60 seconds",
    ),
    (
        run(RunStatus.STARTED, started=STARTED_AT, dagloom__max_runtime="90", **BEAT),
        2061,
        MonitorAction.LEAVE,
        None,
        "",
    ),
    (
        run(RunStatus.CANCELING, started=STARTED_AT, status_time=3000),
        3060,
        MonitorAction.LEAVE,
        None,
        "",
    ),
    (
        run(RunStatus.CANCELING, started=STARTED_AT, status_time=3000),
        3061,
        MonitorAction.CANCEL,
        MonitorCheck.CANCEL_TIMEOUT,
        "cancel_timeout_seconds (60 s)",
    ),
    (run(RunStatus.QUEUED), 10**9, MonitorAction.LEAVE, None, ""),
    (run(RunStatus.SUCCESS, started=STARTED_AT), 10**9, MonitorAction.LEAVE, None, ""),
    (run(RunStatus.FAILURE, started=STARTED_AT), 10**9, MonitorAction.LEAVE, None, ""),
    (run(RunStatus.MANAGED, started=STARTED_AT), 10**9, MonitorAction.LEAVE, None, ""),
]


@pytest.mark.parametrize(("monitored", "now", "action", "check", "fragment"), CASES)
def test_each_check_has_its_verdict_and_says_why(
    monitored: MonitoredRun,
    now: float,
    action: MonitorAction,
    check: MonitorCheck | None,
    fragment: str,
) -> None:
    verdict = monitoring_verdict(monitored, SETTINGS, now=now)
    assert (verdict.action, verdict.check) == (action, check)
    assert fragment in verdict.message


def test_a_lost_worker_is_resumed_until_the_attempts_run_out() -> None:
    settings = MonitoringSettings(heartbeat_timeout_seconds=120, max_resume_run_attempts=2)
    lost = {"dagloom__heartbeat": "2000"}
    first = monitoring_verdict(
        run(RunStatus.STARTED, started=STARTED_AT, **lost), settings, now=2500
    )
    assert first.action == MonitorAction.RESUME and "attempt 1 of 2" in first.message
    last = monitoring_verdict(
        run(RunStatus.STARTED, started=STARTED_AT, resumes=2, **lost), settings, now=2500
    )
    assert last.action == MonitorAction.FAIL
    assert "after 2 resume attempt(s)" in last.message


def test_a_lost_worker_is_judged_before_the_max_runtime() -> None:
    monitored = run(RunStatus.STARTED, started=STARTED_AT, dagster__max_runtime="10")
    verdict = monitoring_verdict(monitored, SETTINGS, now=STARTED_AT + 500)
    assert verdict.check == MonitorCheck.WORKER_LOST and not verdict.terminate_worker


def test_the_max_runtime_verdict_stops_the_live_worker() -> None:
    settings = MonitoringSettings(max_runtime_seconds=30)
    monitored = run(RunStatus.STARTED, started=STARTED_AT, dagloom__heartbeat="2040")
    verdict = monitoring_verdict(monitored, settings, now=2041)
    assert verdict.check == MonitorCheck.MAX_RUNTIME and verdict.terminate_worker


@pytest.mark.parametrize(
    ("tags", "default", "expected"),
    [
        ({}, 0, None),
        ({}, 50, 50),
        ({"dagster/max_runtime": "20"}, 50, 20),
        ({"dagster/max_runtime_seconds": "25"}, 0, 25),
        ({"dagloom/max_runtime": "5", "dagster/max_runtime": "20"}, 0, 5),
        ({"dagster/max_runtime": "0"}, 50, 50),
        ({"dagster/max_runtime": "-3"}, 0, None),
        ({"dagster/max_runtime": "soon"}, 0, None),
        ({"dagster/max_runtime": "inf"}, 0, None),
    ],
)
def test_the_max_runtime_tag_overrides_the_instance_setting_when_it_is_a_positive_number(
    tags: dict[str, str], default: float, expected: float | None
) -> None:
    assert max_runtime_of(tags, default) == expected


@given(
    status=st.sampled_from(
        [RunStatus.NOT_STARTED, RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING]
    ),
    start_offset=st.integers(0, 500),
    beat_offset=st.none() | st.integers(0, 500),
    max_runtime=st.none() | st.integers(1, 500),
    elapsed=st.integers(0, 2000),
)
def test_a_run_left_alone_is_not_judged_before_its_recheck_time(
    status: RunStatus,
    start_offset: int,
    beat_offset: int | None,
    max_runtime: int | None,
    elapsed: int,
) -> None:
    """The loop may sleep until `recheck_at`: up to then the verdict stays LEAVE, and just
    after it the verdict is no longer LEAVE."""
    tags = {WORKER_TAG: "w"}
    started = 1000.0 + start_offset
    if beat_offset is not None:
        tags[HEARTBEAT_TAG] = str(started + beat_offset)
    if max_runtime is not None:
        tags["dagster/max_runtime"] = str(max_runtime)
    monitored = MonitoredRun("r", status, 1000.0, tags, start_time=started, status_time=started)
    now = started + elapsed
    verdict = monitoring_verdict(monitored, SETTINGS, now=now)
    if verdict.action != MonitorAction.LEAVE:
        return
    assert verdict.recheck_at is not None and verdict.recheck_at >= now
    assert monitoring_verdict(monitored, SETTINGS, now=verdict.recheck_at).action == (
        MonitorAction.LEAVE
    )
    after = monitoring_verdict(monitored, SETTINGS, now=verdict.recheck_at + 1)
    assert after.action != MonitorAction.LEAVE
