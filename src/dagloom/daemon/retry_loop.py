"""The run retry loop: re-executes failed runs as `retry_decision` decides, and what it and
`dagloom run reexecute` share to describe a re-execution."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from dagloom.actors.run_coordinator import launch_stored_run, submit_run
from dagloom.daemon._monitoring import MonitorCheck
from dagloom.daemon._retries import (
    FailedRun,
    GroupRun,
    RetryAction,
    RetrySettings,
    failure_reason,
    retry_decision,
)
from dagloom.daemon._run_claims import RunClaims
from dagloom.daemon._tags import AUTO_RETRY_RUN_ID_TAG, RETRY_NUMBER_TAG, WILL_RETRY_TAG
from dagloom.errors import DagloomError, LeaseLostError
from dagloom.messages import EventType, Run, RunStatus
from dagloom.messages.rpc import SubmitRunRequest
from dagloom.storage.base import RunsFilter, StepStatus

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.storage.base import Fence
    from dagloom.transport import ActorRef

PARENT_RUN_ID_TAG = "dagloom/parent_run_id"
"""On a re-execution: the run it re-executes."""
ROOT_RUN_ID_TAG = "dagloom/root_run_id"
"""On a re-execution: the first run of its group; the retry loop finds a group by it."""

_MONITOR_CHECK = re.compile(r"^Run monitoring \((\w+)\):")


def reexecution_tags(parent: Run, tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags of a re-execution of `parent`: `tags` (default: the parent's, less what
    describes its own execution and retry bookkeeping), plus the lineage tags. Pure."""
    from dagloom.actors.run_coordinator import REQUEST_ID_TAG
    from dagloom.daemon._retries import NOT_INHERITED_TAGS

    if tags is None:
        dropped = NOT_INHERITED_TAGS | {RETRY_NUMBER_TAG, REQUEST_ID_TAG}
        tags = {k: v for k, v in parent.tags.items() if k not in dropped}
    root = parent.root_run_id or parent.run_id
    return {**tags, PARENT_RUN_ID_TAG: parent.run_id, ROOT_RUN_ID_TAG: root}


def steps_not_succeeded(run: FailedRun) -> list[str]:
    """The steps of `run` that did not succeed, in its order: what re-executing it from
    failure executes."""
    return [key for key in run.step_keys if run.step_statuses.get(key) != StepStatus.SUCCESS]


async def reexecution_steps(
    instance: DagloomInstance, parent: Run, *, from_failure: bool
) -> list[str]:
    """The steps a re-execution of `parent` executes: every step (an empty list) or, with
    `from_failure`, those that did not succeed (every step, when its events show none
    that did not: see `failed_run_view`). Raises `DagloomError` saying why when `parent`
    did not fail. Reads its events only."""
    if not from_failure:
        return []
    if parent.status != RunStatus.FAILURE:
        raise DagloomError(
            f"run {parent.run_id} is {parent.status.name}: only a failed run can be "
            "re-executed from failure"
        )
    # Empty when its events show no step that did not succeed: then every step executes.
    return steps_not_succeeded(await failed_run_view(instance, parent))


def reexecution_request(
    parent: Run,
    *,
    tags: Mapping[str, str] | None = None,
    step_keys_to_execute: Sequence[str] = (),
    run_id: str = "",
    request_id: str = "",
) -> SubmitRunRequest:
    """The submission of a re-execution of `parent`: the same job, code location, run
    config and asset selection, with `reexecution_tags(parent, tags)`, parent and root run ids,
    and only `step_keys_to_execute` (empty: every step). Pure."""
    return SubmitRunRequest(
        location_name=parent.code_location,
        job_name=parent.job_name,
        run_config_json=parent.run_config_json,
        tags=reexecution_tags(parent, tags),
        asset_selection=list(parent.asset_selection),
        asset_check_selection=list(parent.asset_check_selection),
        run_id=run_id,
        parent_run_id=parent.run_id,
        root_run_id=parent.root_run_id or parent.run_id,
        request_id=request_id,
        step_keys_to_execute=list(step_keys_to_execute),
    )


async def failed_run_view(instance: DagloomInstance, run: Run) -> FailedRun:
    """`run` as `retry_decision` sees it: why it failed (the run monitoring check that ended
    it, else its failed steps) and what each of its steps did, from its events.

    Its `step_keys` are the steps it was to execute, as far as its events tell (no step
    keys, meaning every step, when its events show no step that did not succeed).
    """
    check: MonitorCheck | None = None
    failed_steps: list[str] = []
    ends = await instance.get_events(run.run_id, event_types=[EventType.RUN_FAILURE])
    end = ends[-1].event if ends else None
    if end is not None:
        match = _MONITOR_CHECK.match(end.message)
        if match is not None and match.group(1) in MonitorCheck._value2member_map_:
            check = MonitorCheck(match.group(1))
        if end.run_failure is not None:
            failed_steps = list(end.run_failure.failed_step_keys)
    stats = sorted(await instance.get_step_stats(run.run_id), key=lambda s: s.start_time or 0)
    statuses: dict[str, StepStatus] = {s.step_key: s.status for s in stats}
    step_keys = tuple(run.step_keys_to_execute) or tuple(statuses)
    if all(statuses.get(key) == StepStatus.SUCCESS for key in step_keys):
        # Its events show no step that did not succeed, yet it failed: it ended (a lost
        # worker, a run-level error) before any event of the steps still to run was stored,
        # and which steps those are only the job knows. Re-executing "from failure" then
        # means every step; listing none says so.
        step_keys = ()
    return FailedRun(
        run_id=run.run_id,
        status=run.status,
        tags=dict(run.tags),
        failure=failure_reason(failed_steps, check),
        parent_run_id=run.parent_run_id or None,
        root_run_id=run.root_run_id or None,
        step_keys=step_keys,
        step_statuses=statuses,
    )


async def run_group(instance: DagloomInstance, run: Run) -> list[GroupRun]:
    """The runs of `run`'s group: its root and every re-execution tagged with that root."""
    root = run.root_run_id or run.run_id
    members = await instance.get_runs_async(RunsFilter(tags={ROOT_RUN_ID_TAG: root}))
    first = await instance.get_run(root)
    if first is not None:
        members.append(first)
    return [GroupRun(m.run_id, m.status, m.parent_run_id or None, dict(m.tags)) for m in members]


class RunRetryLoop:
    """Each tick, decides on every FAILURE run not yet decided (no `dagloom/will_retry`
    tag, or one whose retry was stored but never launched) with `retry_decision`, and acts.

    RETRY submits the retry run to `coordinator` under the decision's derived run id and a
    request id derived from the failed run, so submitting it again (a second daemon, a
    daemon that died before recording the decision) stores and launches nothing more; then
    the decision is recorded on the failed run (`dagloom/will_retry`,
    `dagloom/auto_retry_run_id`). A decision taken again after a crash finds the retry
    through its lineage tags (DONE), so each failure is retried exactly once. SUBMIT (the
    retry was stored, never launched) launches it through `launcher` when one is given.
    A coordinator that refuses the retry (its job is gone, its config no longer fits)
    records `dagloom/will_retry=false`, so it is not tried forever. Does nothing when
    retries are disabled.

    Each decision is taken under a per-run claim on the failed run (`RunClaims`, as
    `owner`), with the run read again under it and the claim's fence checked before the
    retry is submitted: a run another daemon's retry loop is deciding on is left to it, and
    one it has decided on meanwhile is seen decided. Runs already decided cost no claim.
    """

    name = "run_retries"

    def __init__(
        self,
        instance: DagloomInstance,
        coordinator: ActorRef[Any, Any],
        settings: RetrySettings,
        *,
        launcher: ActorRef[Any, Any] | None = None,
        interval: float = 30.0,
        submit_timeout: float = 60.0,
        owner: str | None = None,
    ) -> None:
        self.interval = interval
        self._claims = RunClaims(instance, owner or f"{self.name}/{uuid.uuid4()}")
        self._instance = instance
        self._coordinator = coordinator
        self._launcher = launcher
        self._settings = settings
        self._submit_timeout = submit_timeout
        self._log = structlog.get_logger("dagloom.daemon")

    @classmethod
    def from_instance(
        cls,
        instance: DagloomInstance,
        coordinator: ActorRef[Any, Any],
        *,
        launcher: ActorRef[Any, Any] | None = None,
    ) -> RunRetryLoop | None:
        """The loop the instance's `run_retries` section configures; None when `enabled` is
        false (the default)."""
        config = instance.config.run_retries
        if not config.enabled:
            return None
        return cls(instance, coordinator, RetrySettings.from_config(config), launcher=launcher)

    async def tick(self, now: float) -> None:
        """Decide on and act for every undecided failed run (see the class)."""
        if not self._settings.enabled:
            return
        failed = await self._instance.get_runs_async(RunsFilter(statuses=[RunStatus.FAILURE]))
        for run in reversed(failed):  # oldest first
            if not await self._undecided(run):
                continue
            async with self._claims.claim(run.run_id, now) as fence:
                if fence is None:
                    continue  # another daemon is deciding on it
                fresh = await self._instance.get_run(run.run_id)
                if fresh is None or not await self._undecided(fresh):
                    continue
                try:
                    await self._decide(fresh, fence)
                except LeaseLostError as exc:
                    self._log.warning("run_claim_lost", run_id=run.run_id, error=str(exc))

    async def _undecided(self, run: Run) -> bool:
        decided = run.tags.get(WILL_RETRY_TAG, "").lower()
        if decided == "false":
            return False
        return decided != "true" or await self._retry_pending(run)

    async def _retry_pending(self, run: Run) -> bool:
        retry = await self._instance.get_run(run.tags.get(AUTO_RETRY_RUN_ID_TAG, ""))
        return retry is None or retry.status == RunStatus.NOT_STARTED

    async def _decide(self, run: Run, fence: Fence) -> None:
        view = await failed_run_view(self._instance, run)
        decision = retry_decision(view, await run_group(self._instance, run), self._settings)
        await self._instance.schedule_storage.check_fence(fence)
        match decision.action:
            case RetryAction.NO_RETRY | RetryAction.DONE:
                pass
            case RetryAction.RETRY:
                assert decision.run_id is not None
                request = reexecution_request(
                    run,
                    tags=decision.tags,
                    step_keys_to_execute=decision.step_keys_to_execute or (),
                    run_id=decision.run_id,
                    request_id=f"retry:{run.run_id}",
                )
                try:
                    await submit_run(self._coordinator, request, timeout=self._submit_timeout)
                except DagloomError as exc:
                    self._log.error("run_retry_refused", run_id=run.run_id, error=str(exc))
                    await self._instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: "false"})
                    return
                self._log.info(
                    "run_retried",
                    run_id=run.run_id,
                    retry_run_id=decision.run_id,
                    reason=decision.reason,
                )
            case RetryAction.SUBMIT:
                retry = await self._instance.get_run(decision.run_id or "")
                if retry is not None and self._launcher is not None:
                    await launch_stored_run(
                        self._instance,
                        self._launcher,
                        retry,
                        timeout=self._submit_timeout,
                        name=self.name,
                    )
        if decision.failed_run_tags:
            await self._instance.add_run_tags(run.run_id, decision.failed_run_tags)
