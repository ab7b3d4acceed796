"""Retries: RetryPolicy with backoff and jitter, RetryRequested, and Failure (not retried).
Delays are asserted from STEP_UP_FOR_RETRY events, never from elapsed time."""

from __future__ import annotations

import random

import pytest

from dagloom import (
    Backoff,
    DefinitionError,
    Failure,
    Jitter,
    MetadataValue,
    OpExecutionContext,
    RetryPolicy,
    RetryRequested,
    job,
    op,
)
from dagloom.definitions.metadata import from_metadata_message
from dagloom.definitions.retry import calculate_delay
from dagloom.messages import EventType

BASE = 0.001  # tiny, so retried runs stay fast; only the recorded numbers are asserted


class Flaky(Exception):
    """What a flaky op raises."""


def _flaky_job(policy: RetryPolicy, fail_times: int, *, is_async: bool = False):
    attempts: list[int] = []

    if is_async:

        @op(retry_policy=policy)
        async def flaky(context: OpExecutionContext) -> int:
            attempts.append(context.retry_number)
            if len(attempts) <= fail_times:
                raise Flaky(f"attempt {len(attempts)}")
            return len(attempts)

    else:

        @op(retry_policy=policy)
        def flaky(context: OpExecutionContext) -> int:
            attempts.append(context.retry_number)
            if len(attempts) <= fail_times:
                raise Flaky(f"attempt {len(attempts)}")
            return len(attempts)

    @job
    def flaky_job():
        flaky()

    return flaky_job, attempts


def _retries(result) -> list[tuple[int, int, float]]:
    return [
        (e.step_retry.attempt, e.step_retry.max_retries, e.step_retry.delay_seconds)
        for e in result.filter_events(EventType.STEP_UP_FOR_RETRY)
    ]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_step_retried_until_it_succeeds(is_async: bool) -> None:
    flaky_job, attempts = _flaky_job(RetryPolicy(max_retries=3), fail_times=2, is_async=is_async)
    result = flaky_job.execute_in_process()
    assert result.success
    assert result.output_for_node("flaky") == 3
    assert attempts == [0, 1, 2]
    assert _retries(result) == [(1, 3, 0.0), (2, 3, 0.0)]
    assert len(result.filter_events(EventType.STEP_START)) == 1
    assert len(result.filter_events(EventType.STEP_RESTARTED)) == 2
    assert len(result.filter_events(EventType.STEP_SUCCESS)) == 1
    assert result.filter_events(EventType.STEP_FAILURE) == []


def test_retry_event_records_the_error_of_the_failed_attempt() -> None:
    flaky_job, _ = _flaky_job(RetryPolicy(max_retries=1), fail_times=1)
    result = flaky_job.execute_in_process()
    (retry,) = result.filter_events(EventType.STEP_UP_FOR_RETRY)
    assert retry.step_key == "flaky"
    assert retry.step_retry.error.cls_name == "Flaky"
    assert retry.step_retry.error.message == "attempt 1"


def test_step_fails_when_retries_are_exhausted() -> None:
    flaky_job, attempts = _flaky_job(RetryPolicy(max_retries=2), fail_times=10)
    result = flaky_job.execute_in_process(raise_on_error=False)
    assert not result.success
    assert attempts == [0, 1, 2]
    assert [r[0] for r in _retries(result)] == [1, 2]
    (failure,) = result.get_step_failure_events()
    assert failure.step_failure.error.message == "attempt 3"
    with pytest.raises(Flaky):
        _flaky_job(RetryPolicy(max_retries=2), fail_times=10)[0].execute_in_process()


def test_fixed_delay_is_the_same_for_every_retry() -> None:
    flaky_job, _ = _flaky_job(RetryPolicy(max_retries=3, delay=BASE), fail_times=3)
    result = flaky_job.execute_in_process()
    assert [r[2] for r in _retries(result)] == [BASE, BASE, BASE]


def test_linear_backoff_grows_the_delay_by_the_base_each_retry() -> None:
    policy = RetryPolicy(max_retries=3, delay=BASE, backoff=Backoff.LINEAR)
    flaky_job, _ = _flaky_job(policy, fail_times=3)
    result = flaky_job.execute_in_process()
    assert [r[2] for r in _retries(result)] == pytest.approx([BASE, 2 * BASE, 3 * BASE])


def test_exponential_backoff_doubles_the_delay_as_dagster_computes_it() -> None:
    policy = RetryPolicy(max_retries=4, delay=BASE, backoff=Backoff.EXPONENTIAL)
    flaky_job, _ = _flaky_job(policy, fail_times=4)
    result = flaky_job.execute_in_process()
    assert [r[2] for r in _retries(result)] == pytest.approx([BASE, 3 * BASE, 7 * BASE, 15 * BASE])


def test_full_jitter_keeps_each_delay_between_zero_and_the_backoff_delay() -> None:
    policy = RetryPolicy(max_retries=3, delay=BASE, backoff=Backoff.EXPONENTIAL, jitter=Jitter.FULL)
    flaky_job, _ = _flaky_job(policy, fail_times=3)
    delays = [r[2] for r in _retries(flaky_job.execute_in_process())]
    ceilings = [BASE, 3 * BASE, 7 * BASE]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))


def test_plus_minus_jitter_keeps_each_delay_within_twice_the_delay() -> None:
    policy = RetryPolicy(max_retries=3, delay=BASE, jitter=Jitter.PLUS_MINUS)
    flaky_job, _ = _flaky_job(policy, fail_times=3)
    delays = [r[2] for r in _retries(flaky_job.execute_in_process())]
    assert len(delays) == 3
    assert all(0 <= d <= 2 * BASE for d in delays)


def test_jitter_draws_from_the_random_source() -> None:
    class Fixed(random.Random):
        def random(self) -> float:
            return 0.25

    assert calculate_delay(2, Backoff.LINEAR, Jitter.FULL, 1.0, Fixed()) == 0.5
    assert calculate_delay(1, None, Jitter.PLUS_MINUS, 1.0, Fixed()) == 0.5
    assert calculate_delay(3, Backoff.EXPONENTIAL, None, 1.0) == 7.0


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(DefinitionError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(DefinitionError):
        RetryPolicy(delay=-1)
    with pytest.raises(DefinitionError):
        RetryPolicy(backoff=Backoff.LINEAR)


def test_job_op_retry_policy_applies_to_every_op() -> None:
    attempts: list[int] = []

    @op
    def flaky(context: OpExecutionContext) -> None:
        attempts.append(context.retry_number)
        if context.retry_number == 0:
            raise Flaky("first")

    @job(op_retry_policy=RetryPolicy(max_retries=1, delay=BASE))
    def retried():
        flaky()

    result = retried.execute_in_process()
    assert result.success
    assert attempts == [0, 1]
    assert _retries(result) == [(1, 1, BASE)]


def test_node_retry_policy_overrides_the_ops_own() -> None:
    attempts: list[int] = []

    @op(retry_policy=RetryPolicy(max_retries=0))
    def flaky(context: OpExecutionContext) -> None:
        attempts.append(context.retry_number)
        if context.retry_number < 2:
            raise Flaky("again")

    @job
    def retried():
        flaky.with_retry_policy(RetryPolicy(max_retries=2))()

    assert retried.execute_in_process().success
    assert attempts == [0, 1, 2]


def test_retry_requested_reruns_the_step_with_its_own_limits() -> None:
    attempts: list[int] = []

    @op
    def asks(context: OpExecutionContext) -> str:
        attempts.append(context.retry_number)
        if context.retry_number < 2:
            raise RetryRequested(max_retries=3, seconds_to_wait=BASE)
        return "done"

    @job
    def asking():
        asks()

    result = asking.execute_in_process()
    assert result.output_for_node("asks") == "done"
    assert attempts == [0, 1, 2]
    assert _retries(result) == [(1, 3, BASE), (2, 3, BASE)]


def test_retry_requested_beyond_its_limit_fails_the_step() -> None:
    @op
    def always() -> None:
        raise RetryRequested(max_retries=1)

    @job
    def asking():
        always()

    result = asking.execute_in_process(raise_on_error=False)
    assert not result.success
    assert len(result.filter_events(EventType.STEP_UP_FOR_RETRY)) == 1
    (failure,) = result.get_step_failure_events()
    assert failure.step_failure.error.cls_name == "RetryRequested"


def test_failure_carries_description_and_metadata_and_is_not_retried() -> None:
    attempts: list[int] = []

    @op(retry_policy=RetryPolicy(max_retries=3))
    def refuse(context: OpExecutionContext) -> None:
        attempts.append(context.retry_number)
        raise Failure(
            description="bad input file",
            metadata={"path": MetadataValue.path("/data/in.csv"), "rows": 0},
        )

    @job
    def refusing():
        refuse()

    result = refusing.execute_in_process(raise_on_error=False)
    assert attempts == [0]
    assert result.filter_events(EventType.STEP_UP_FOR_RETRY) == []
    (failure,) = result.get_step_failure_events()
    data = failure.step_failure
    assert data.user_failure is True
    assert data.error.cls_name == "Failure"
    assert data.error.message == "bad input file"
    assert "bad input file" in failure.message
    assert {k: from_metadata_message(v) for k, v in data.metadata.items()} == {
        "path": "/data/in.csv",
        "rows": 0,
    }
    assert data.metadata["path"].path == "/data/in.csv"
    with pytest.raises(Failure, match="bad input file"):
        refusing.execute_in_process()


def test_failure_with_allow_retries_is_retried() -> None:
    attempts: list[int] = []

    @op(retry_policy=RetryPolicy(max_retries=2))
    def refuse(context: OpExecutionContext) -> None:
        attempts.append(context.retry_number)
        raise Failure("transient", allow_retries=True)

    @job
    def refusing():
        refuse()

    result = refusing.execute_in_process(raise_on_error=False)
    assert attempts == [0, 1, 2]
    (failure,) = result.get_step_failure_events()
    assert failure.step_failure.user_failure is True


def test_downstream_of_a_retried_step_runs_once_it_succeeds() -> None:
    flaky_calls: list[int] = []

    @op(retry_policy=RetryPolicy(max_retries=1, delay=BASE))
    def flaky(context: OpExecutionContext) -> int:
        flaky_calls.append(context.retry_number)
        if context.retry_number == 0:
            raise Flaky("first")
        return 5

    @op
    def after(x: int) -> int:
        return x + 1

    @job
    def retried():
        after(flaky())

    result = retried.execute_in_process()
    assert result.output_for_node("after") == 6
    types = [e.event_type for e in result.all_node_events if e.step_key == "after"]
    assert types.count(EventType.STEP_START) == 1
