"""Run retries: when a failed run is retried, as which run, with which steps, exactly once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagloom.actors.run_worker import HEARTBEAT_TAG, WORKER_TAG
from dagloom.daemon import (
    AUTO_RETRY_RUN_ID_TAG,
    RETRY_NUMBER_TAG,
    WILL_RETRY_TAG,
    FailedRun,
    GroupRun,
    MonitorCheck,
    RetryAction,
    RetrySettings,
    RunFailureReason,
    failure_reason,
    retry_decision,
)
from dagloom.messages import RunStatus
from dagloom.storage.base import StepStatus

ON = RetrySettings(enabled=True, max_retries=2)
STEPS = ("extract", "transform", "load", "report")
HALF_DONE = {
    "extract": StepStatus.SUCCESS,
    "transform": StepStatus.FAILURE,
    "load": StepStatus.SKIPPED,
}


def failed(
    run_id: str = "root",
    *,
    status: RunStatus = RunStatus.FAILURE,
    reason: RunFailureReason = RunFailureReason.STEP_FAILURE,
    parent: str | None = None,
    root: str | None = None,
    steps: tuple[str, ...] = STEPS,
    **tags: str,
) -> FailedRun:
    return FailedRun(
        run_id,
        status,
        {k.replace("__", "/"): v for k, v in tags.items()},
        reason,
        parent_run_id=parent,
        root_run_id=root,
        step_keys=steps,
        step_statuses=HALF_DONE,
    )


def test_a_first_failure_is_retried_from_failure_with_lineage_and_tags() -> None:
    run = failed(team="data", dagloom__heartbeat="1", dagloom__run_worker="w")
    decision = retry_decision(run, [], ON)
    assert decision.action == RetryAction.RETRY
    assert (decision.parent_run_id, decision.root_run_id) == ("root", "root")
    assert decision.retry_number == 1
    assert decision.step_keys_to_execute == ("transform", "load", "report")
    assert decision.tags == {"team": "data", RETRY_NUMBER_TAG: "1"}
    assert HEARTBEAT_TAG not in decision.tags and WORKER_TAG not in decision.tags
    assert decision.run_id is not None
    assert decision.failed_run_tags == {
        WILL_RETRY_TAG: "true",
        AUTO_RETRY_RUN_ID_TAG: decision.run_id,
    }
    assert retry_decision(run, [], ON) == decision  # the same decision, the same run id


def test_all_steps_re_executes_everything() -> None:
    decision = retry_decision(failed(dagster__retry_strategy="ALL_STEPS"), [], ON)
    assert decision.action == RetryAction.RETRY and decision.step_keys_to_execute is None


def test_a_retry_of_a_retry_keeps_the_root_and_counts_the_group() -> None:
    group = [GroupRun("retry-1", RunStatus.FAILURE, "root", {RETRY_NUMBER_TAG: "1"})]
    run = failed("retry-1", parent="root", root="root", dagloom__retry_number="1")
    decision = retry_decision(run, group, ON)
    assert decision.action == RetryAction.RETRY
    assert (decision.parent_run_id, decision.root_run_id, decision.retry_number) == (
        "retry-1",
        "root",
        2,
    )
    assert decision.tags[RETRY_NUMBER_TAG] == "2"


@pytest.mark.parametrize(
    ("run", "group", "settings", "fragment"),
    [
        (failed(status=RunStatus.CANCELED), [], ON, "not FAILURE"),
        (failed(), [], RetrySettings(enabled=False, max_retries=5), "disabled"),
        (failed(), [], RetrySettings(enabled=True, max_retries=0), "max_retries is 0"),
        (failed(dagster__max_retries="0"), [], ON, "max_retries is 0"),
        (failed(dagster__max_retries="many"), [], ON, "dagster/max_retries='many'"),
        (failed(dagster__retry_strategy="SOME"), [], ON, "FROM_FAILURE, ALL_STEPS"),
        (
            failed(),
            [],
            RetrySettings(enabled=True, max_retries=2, retry_on_asset_or_op_failure=False),
            "retry_on_asset_or_op_failure is off",
        ),
        (failed(dagster__retry_on_asset_or_op_failure="false"), [], ON, "is off"),
        (failed(dagster__retry_on_asset_or_op_failure="maybe"), [], ON, "true or false"),
        (
            failed("b", parent="a", root="root"),
            [GroupRun("a", RunStatus.FAILURE, "root"), GroupRun("b", RunStatus.FAILURE, "a")],
            ON,
            "holds 3 run(s)",
        ),
        (failed(dagloom__will_retry="false"), [], ON, "already decided"),
        (failed(steps=("extract",)), [], ON, "nothing to re-execute"),
    ],
)
def test_runs_that_are_not_retried_say_why(
    run: FailedRun, group: list[GroupRun], settings: RetrySettings, fragment: str
) -> None:
    decision = retry_decision(run, group, settings)
    assert decision.action == RetryAction.NO_RETRY
    assert fragment in decision.reason


def test_a_run_exception_is_retried_even_when_step_failures_are_not() -> None:
    settings = RetrySettings(enabled=True, max_retries=1, retry_on_asset_or_op_failure=False)
    run = failed(reason=RunFailureReason.WORKER_LOST, dagloom__max_retries="1")
    assert retry_decision(run, [], settings).action == RetryAction.RETRY


def test_the_no_retry_decision_is_recorded_on_the_run_only_when_retries_are_on() -> None:
    assert retry_decision(failed(dagster__max_retries="0"), [], ON).failed_run_tags == {
        WILL_RETRY_TAG: "false"
    }
    assert retry_decision(failed(), [], RetrySettings()).failed_run_tags == {}


def test_manual_re_executions_count_against_max_retries_but_are_not_the_retry() -> None:
    manual = GroupRun("manual", RunStatus.SUCCESS, "root", {})
    decision = retry_decision(failed(), [manual], ON)
    assert decision.action == RetryAction.RETRY and decision.retry_number == 2


@pytest.mark.parametrize(
    ("status", "action"),
    [(RunStatus.NOT_STARTED, RetryAction.SUBMIT), (RunStatus.STARTED, RetryAction.DONE)],
)
def test_an_existing_retry_is_found_again_after_a_crash(
    status: RunStatus, action: RetryAction
) -> None:
    first = retry_decision(failed(), [], ON)
    assert first.run_id is not None
    child = GroupRun(first.run_id, status, "root", dict(first.tags))
    # Found by its retry-number tag, before the failed run was tagged...
    again = retry_decision(failed(), [child], ON)
    assert (again.action, again.run_id, again.retry_number) == (action, first.run_id, 1)
    # ...and by the failed run's auto-retry tag after it was.
    tagged = failed(**{k.replace("/", "__"): v for k, v in first.failed_run_tags.items()})
    untagged_child = GroupRun(first.run_id, status, "root", {})
    assert retry_decision(tagged, [untagged_child], ON).action == action


@given(
    max_retries=st.integers(0, 6),
    failures=st.integers(1, 8),
    crash_points=st.sets(st.integers(0, 8)),
)
def test_each_failure_is_retried_exactly_once_up_to_max_retries(
    max_retries: int, failures: int, crash_points: set[int]
) -> None:
    """A chain of runs that all fail: the retry loop decides on each failure (deciding twice
    where it "crashed" before recording), and creates exactly `max_retries` retries, each
    once, numbered 1, 2, ..."""
    settings = RetrySettings(enabled=True, max_retries=max_retries)
    group: list[GroupRun] = []
    current = failed("root")
    created: list[str] = []
    for step in range(failures):
        decision = retry_decision(current, group, settings)
        if step in crash_points:
            assert retry_decision(current, group, settings) == decision
        if decision.action != RetryAction.RETRY:
            assert decision.action == RetryAction.NO_RETRY
            break
        assert decision.run_id is not None and decision.run_id not in created
        created.append(decision.run_id)
        group.append(GroupRun(decision.run_id, RunStatus.FAILURE, current.run_id, decision.tags))
        assert retry_decision(current, group, settings).action == RetryAction.DONE
        tags = {k.replace("/", "__"): v for k, v in decision.tags.items()}
        current = failed(decision.run_id, parent=current.run_id, root="root", **tags)
    assert len(created) == min(max_retries, failures)
    assert [g.tags[RETRY_NUMBER_TAG] for g in group] == [str(i + 1) for i in range(len(group))]


@pytest.mark.parametrize(
    ("keys", "check", "reason"),
    [
        (["a"], None, RunFailureReason.STEP_FAILURE),
        ([], None, RunFailureReason.RUN_EXCEPTION),
        ([], MonitorCheck.START_TIMEOUT, RunFailureReason.START_TIMEOUT),
        (["a"], MonitorCheck.WORKER_LOST, RunFailureReason.WORKER_LOST),
        ([], MonitorCheck.MAX_RUNTIME, RunFailureReason.MAX_RUNTIME),
    ],
)
def test_the_failure_reason_comes_from_monitoring_else_from_the_failed_steps(
    keys: list[str], check: MonitorCheck | None, reason: RunFailureReason
) -> None:
    assert failure_reason(keys, check) == reason
