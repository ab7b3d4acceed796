"""Run retries: whether a failed run is re-executed, and as what run.

Pure and sync: the retry loop feeds it the failed run (with its step outcomes), the runs of
its group and the `run_retries` settings, and gets back the decision, including the new run's
id, lineage, tags and steps, and the tags that record the decision on the failed run.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dagloom.actors.run_worker import HEARTBEAT_TAG, WORKER_TAG
from dagloom.daemon._monitoring import MonitorCheck
from dagloom.daemon._tags import (
    AUTO_RETRY_RUN_ID_TAG,
    MAX_RETRIES_TAGS,
    RETRY_NUMBER_TAG,
    RETRY_ON_ASSET_OR_OP_FAILURE_TAGS,
    RETRY_STRATEGY_TAGS,
    WILL_RETRY_TAG,
    derived_run_id,
    tag_value,
)
from dagloom.messages import RunStatus
from dagloom.storage.base import StepStatus

if TYPE_CHECKING:
    from dagloom.instance.config import RunRetriesConfig

NOT_INHERITED_TAGS = frozenset({HEARTBEAT_TAG, WORKER_TAG, WILL_RETRY_TAG, AUTO_RETRY_RUN_ID_TAG})
"""Tags that describe one run's execution or its retry bookkeeping: a retry starts afresh."""


class RetryStrategy(enum.StrEnum):
    """Which steps a retry re-executes (the `dagster/retry_strategy` tag)."""

    FROM_FAILURE = "FROM_FAILURE"
    """Only the steps that did not succeed; the others' stored outputs are reused."""
    ALL_STEPS = "ALL_STEPS"
    """Every step the failed run was to execute."""


class RunFailureReason(enum.StrEnum):
    """Why a run failed, as far as retries care."""

    STEP_FAILURE = "STEP_FAILURE"
    """One or more steps (ops, assets) failed."""
    RUN_EXCEPTION = "RUN_EXCEPTION"
    """The run failed outside any step (loading the job, its run config, the executor)."""
    START_TIMEOUT = "START_TIMEOUT"
    WORKER_LOST = "WORKER_LOST"
    MAX_RUNTIME = "MAX_RUNTIME"
    UNKNOWN = "UNKNOWN"


def failure_reason(
    failed_step_keys: Sequence[str], monitor_check: MonitorCheck | None = None
) -> RunFailureReason:
    """The reason for a failure: the run monitoring check that ended the run, when one did;
    else STEP_FAILURE when the failure names failed steps, else RUN_EXCEPTION."""
    match monitor_check:
        case MonitorCheck.START_TIMEOUT:
            return RunFailureReason.START_TIMEOUT
        case MonitorCheck.WORKER_LOST:
            return RunFailureReason.WORKER_LOST
        case MonitorCheck.MAX_RUNTIME:
            return RunFailureReason.MAX_RUNTIME
        case MonitorCheck.CANCEL_TIMEOUT | None:
            pass
    return RunFailureReason.STEP_FAILURE if failed_step_keys else RunFailureReason.RUN_EXCEPTION


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """The `run_retries` section: retries are off unless `enabled`; a run is retried up to
    `max_retries` times (its `dagster/max_retries` tag overrides); a run failed by its steps
    is retried only if `retry_on_asset_or_op_failure` (its tag overrides)."""

    enabled: bool = False
    max_retries: int = 0
    retry_on_asset_or_op_failure: bool = True

    @classmethod
    def from_config(cls, config: RunRetriesConfig) -> RetrySettings:
        """The settings of a validated `run_retries` section."""
        return cls(
            enabled=config.enabled,
            max_retries=config.max_retries,
            retry_on_asset_or_op_failure=config.retry_on_asset_or_op_failure,
        )


@dataclass(frozen=True, slots=True)
class FailedRun:
    """A finished run the retry loop looks at.

    `root_run_id` / `parent_run_id` are None for a run that re-executes nothing. `step_keys`
    are the steps the run was to execute, in plan order (its `step_keys_to_execute`, or
    every step of its plan when that is empty); `step_statuses` what its events say of each
    step that began (a step absent from it never began).
    """

    run_id: str
    status: RunStatus
    tags: Mapping[str, str]
    failure: RunFailureReason = RunFailureReason.UNKNOWN
    parent_run_id: str | None = None
    root_run_id: str | None = None
    step_keys: tuple[str, ...] = ()
    step_statuses: Mapping[str, StepStatus] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupRun:
    """Another run of the failed run's group (runs sharing its root): automatic retries and
    manual re-executions alike."""

    run_id: str
    status: RunStatus
    parent_run_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


class RetryAction(enum.StrEnum):
    """What the retry loop does about a failed run."""

    RETRY = "retry"
    """Create the retry run described by the decision and submit it."""
    SUBMIT = "submit"
    """The retry run exists but was never submitted (a daemon died in between): submit it."""
    DONE = "done"
    """The retry run exists and went ahead: nothing to do."""
    NO_RETRY = "no_retry"
    """The run is not retried; `reason` says why."""


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """A retry decision and everything needed to act on it.

    For RETRY, `run_id` is the new run's id (derived from the failed run's, so a decision
    acted on twice creates one run), `parent_run_id` the failed run, `root_run_id` its
    group's root, `tags` the new run's tags (the failed run's, less its execution
    bookkeeping, plus `dagloom/retry_number`), and `step_keys_to_execute` its steps (None:
    every step). For SUBMIT and DONE, `run_id` is the existing retry's id. `failed_run_tags`
    are to be set on the failed run, so the decision is recorded (empty when there is none
    to record, as when retries are disabled).
    """

    action: RetryAction
    reason: str
    run_id: str | None = None
    parent_run_id: str | None = None
    root_run_id: str | None = None
    retry_number: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)
    step_keys_to_execute: tuple[str, ...] | None = None
    failed_run_tags: Mapping[str, str] = field(default_factory=dict)


def retry_decision(
    run: FailedRun, group: Sequence[GroupRun], settings: RetrySettings
) -> RetryDecision:
    """Whether and how to retry `run`.

    `group` holds the runs whose root is `run`'s root (it may include the root and `run`
    itself; each counts once). Only a FAILURE run with retries enabled is considered. Its
    existing automatic retry (named by its `dagloom/auto_retry_run_id` tag, or a child
    tagged `dagloom/retry_number`) is reused: SUBMIT if still NOT_STARTED, else DONE. A run
    already decided `dagloom/will_retry=false` stays unretried. Otherwise it is retried when
    the group, root included, holds at most `max_retries` runs (so each failure is retried
    once, and a group re-executed by hand counts those runs too), unless it failed in its
    steps and `retry_on_asset_or_op_failure` is off, or a retry tag cannot be read (the
    reason names the tag), or FROM_FAILURE leaves no step to re-execute.

    Pure: the same input gives the same decision, so deciding again after a crash is safe.
    """
    if run.status != RunStatus.FAILURE:
        return _no(f"run {run.run_id} is {run.status.name}, not FAILURE", record=False)
    if not settings.enabled:
        return _no("run retries are disabled (run_retries.enabled)", record=False)

    root = run.root_run_id or run.run_id
    members = {member.run_id: member for member in group if member.run_id != run.run_id}
    existing = _existing_retry(run, members)
    if existing is not None:
        if existing.status == RunStatus.NOT_STARTED:
            action, reason = (
                RetryAction.SUBMIT,
                f"retry {existing.run_id} was created, not submitted",
            )
        else:
            action, reason = RetryAction.DONE, f"already retried by {existing.run_id}"
        number = _int(existing.tags.get(RETRY_NUMBER_TAG, "")) or 0
        return RetryDecision(
            action,
            reason,
            run_id=existing.run_id,
            parent_run_id=run.run_id,
            root_run_id=root,
            retry_number=number,
            tags=dict(existing.tags),
            failed_run_tags={WILL_RETRY_TAG: "true", AUTO_RETRY_RUN_ID_TAG: existing.run_id},
        )
    if run.tags.get(WILL_RETRY_TAG, "").lower() == "false":
        return _no(f"run {run.run_id} was already decided not to retry", record=False)

    max_retries = settings.max_retries
    found = tag_value(run.tags, MAX_RETRIES_TAGS)
    if found is not None:
        parsed = _int(found[1])
        if parsed is None or parsed < 0:
            return _no(f"tag {found[0]}={found[1]!r} is not a non-negative integer")
        max_retries = parsed
    strategy = RetryStrategy.FROM_FAILURE
    found = tag_value(run.tags, RETRY_STRATEGY_TAGS)
    if found is not None:
        try:
            strategy = RetryStrategy(found[1].strip().upper())
        except ValueError:
            names = ", ".join(s.value for s in RetryStrategy)
            return _no(f"tag {found[0]}={found[1]!r} is not one of {names}")
    on_step_failure = settings.retry_on_asset_or_op_failure
    found = tag_value(run.tags, RETRY_ON_ASSET_OR_OP_FAILURE_TAGS)
    if found is not None:
        flag = _bool(found[1])
        if flag is None:
            return _no(f"tag {found[0]}={found[1]!r} is not true or false")
        on_step_failure = flag

    if run.failure == RunFailureReason.STEP_FAILURE and not on_step_failure:
        return _no("the run failed in its steps and retry_on_asset_or_op_failure is off")
    group_size = len({root, run.run_id, *members})
    if group_size > max_retries:
        return _no(f"its group already holds {group_size} run(s); max_retries is {max_retries}")

    steps: tuple[str, ...] | None = None
    if strategy == RetryStrategy.FROM_FAILURE and run.step_keys:
        steps = tuple(
            key for key in run.step_keys if run.step_statuses.get(key) != StepStatus.SUCCESS
        )
        if not steps:
            return _no("every step succeeded; there is nothing to re-execute")
    run_id = derived_run_id("retry", run.run_id)
    tags = {k: v for k, v in run.tags.items() if k not in NOT_INHERITED_TAGS}
    tags[RETRY_NUMBER_TAG] = str(group_size)
    return RetryDecision(
        RetryAction.RETRY,
        f"retry {group_size} of {max_retries} ({strategy.value})",
        run_id=run_id,
        parent_run_id=run.run_id,
        root_run_id=root,
        retry_number=group_size,
        tags=tags,
        step_keys_to_execute=steps,
        failed_run_tags={WILL_RETRY_TAG: "true", AUTO_RETRY_RUN_ID_TAG: run_id},
    )


def _existing_retry(run: FailedRun, members: Mapping[str, GroupRun]) -> GroupRun | None:
    named = run.tags.get(AUTO_RETRY_RUN_ID_TAG)
    if named is not None and named in members:
        return members[named]
    for member in members.values():
        if member.parent_run_id == run.run_id and RETRY_NUMBER_TAG in member.tags:
            return member
    return None


def _no(reason: str, *, record: bool = True) -> RetryDecision:
    recorded = {WILL_RETRY_TAG: "false"} if record else {}
    return RetryDecision(RetryAction.NO_RETRY, reason, failed_run_tags=recorded)


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _bool(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text.strip().lower())
