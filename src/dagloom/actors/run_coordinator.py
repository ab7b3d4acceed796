"""Run coordinators: accept submitted runs, then launch them at once or queue them.

`DefaultRunCoordinator` launches every run when it is submitted; `QueuedRunCoordinator`
stores it QUEUED and admits queued runs by priority, then submission order, under
`max_concurrent_runs` and tag limits (the decision is `dagloom.daemon.runs_to_admit`). Both
validate a run (its job exists, its run config fits) before storing it, through a
`RunValidator`, and both cancel runs.

A submission is stored and acknowledged, or not stored at all: one whose asker gave up
before the coordinator took it is dropped unhandled; one that fails before its run is
handed on is rolled back; one handled while its asker gave up is stored, and the asker
learns of it by submitting again with the same `request_id` (`submission_run_id`), which
returns the stored run instead of storing another.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, assert_never

import anyio
import anyio.lowlevel
import structlog
from anyio.abc import TaskStatus
from pydantic import BaseModel, ConfigDict, Field

from dagloom._components import ComponentFamily, build_component
from dagloom.actors._protocol import serves
from dagloom.actors._runtime import Actor, Clock, Envelope
from dagloom.actors.code_location import checked_run, refusal, run_snapshot_id
from dagloom.actors.job_source import JobSource, pick_location, unknown_location
from dagloom.actors.run_worker import run_end_event
from dagloom.code.snapshot import check_key_of
from dagloom.daemon import QueuedRun, TagConcurrencyLimit, runs_to_admit
from dagloom.definitions.asset_key import AssetKey
from dagloom.errors import (
    ActorUnavailableError,
    ConfigError,
    DagloomError,
    DefinitionError,
    LeaseLostError,
    StorageError,
)
from dagloom.messages import Event, EventType, LogLevel, Run, RunStatus
from dagloom.messages.rpc import (
    AdmitRunsReply,
    AdmitRunsRequest,
    CancelRunReply,
    CancelRunRequest,
    LaunchRunReply,
    LaunchRunRequest,
    RunCoordinatorBase,
    RunEnded,
    RunEndedReply,
    SubmitRunReply,
    SubmitRunRequest,
    TerminateRunReply,
    TerminateRunRequest,
    ValidateRunReply,
    ValidateRunRequest,
)
from dagloom.storage.base import FINISHED_STATUSES, RunsFilter, RunTransition

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef

RunCoordinatorRequest = SubmitRunRequest | CancelRunRequest | RunEnded | AdmitRunsRequest
RunCoordinatorReply = SubmitRunReply | CancelRunReply | RunEndedReply | AdmitRunsReply

IN_PROGRESS = (RunStatus.STARTING, RunStatus.STARTED, RunStatus.CANCELING)
"""Statuses of runs launched and not finished: what counts against the queue's limits."""

REQUEST_ID_TAG = "dagloom/request_id"
"""Run tag holding the `request_id` of the submission that stored the run."""

_REQUEST_IDS = uuid.UUID("7d0f5a43-52b1-4a0e-9a8e-0f3c4e6b1d27")
"""The uuid5 namespace run ids are derived in from request ids."""


def submission_run_id(request: SubmitRunRequest) -> str:
    """The id a submission stores its run under: the caller's `run_id`; else one derived
    from its `request_id`, so every retry of a submission names the same run and storage's
    unique run id turns a second store into a no-op; else a fresh uuid4."""
    if request.run_id:
        return request.run_id
    if request.request_id:
        return str(uuid.uuid5(_REQUEST_IDS, request.request_id))
    return str(uuid.uuid4())


def same_submission(run: Run, request: SubmitRunRequest) -> bool:
    """Whether the stored `run` is the one an earlier try of `request` stored."""
    return bool(request.request_id) and run.tags.get(REQUEST_ID_TAG) == request.request_id


# -- validation ------------------------------------------------------------------------------


class RunValidator(Protocol):
    """Checks a submission before any run is stored: the job exists, the run config fits.

    Answers with a `ValidateRunReply` (valid, with the snapshot id of the job the run would
    execute, which is stored on the run; or the problems with their key paths and the whole
    message); raises only when it cannot answer (`ActorUnavailableError`).
    """

    async def validate(self, request: SubmitRunRequest) -> ValidateRunReply: ...


class JobSourceValidator:
    """Validates against jobs this process can load (a `JobSource`): for a coordinator
    beside its code location, and for tests. Blocks while a location first imports."""

    def __init__(self, jobs: JobSource) -> None:
        self._jobs = jobs

    async def validate(self, request: SubmitRunRequest) -> ValidateRunReply:
        checks = [check_key_of(c) for c in request.asset_check_selection]
        try:
            job = self._jobs.get_job(
                request.location_name,
                request.job_name,
                [list(k.path) for k in request.asset_selection],
                asset_check_selection=checks,
            )
            keys = [AssetKey(k.path) for k in request.asset_selection]
            snapshot_id = run_snapshot_id(job, [*keys, *checks], {})
        except DagloomError as exc:
            return refusal(exc)
        return checked_run(job, request.run_config_json, request.tags, snapshot_id)


class CodeLocationValidator:
    """Validates by asking the code location actor of the run's location (`ValidateRun`),
    for a coordinator on a node without user code."""

    def __init__(
        self, locations: Mapping[str, ActorRef[Any, Any]], *, timeout: float = 60.0
    ) -> None:
        self._locations = dict(locations)
        self._timeout = timeout

    async def validate(self, request: SubmitRunRequest) -> ValidateRunReply:
        ref = self._locations.get(pick_location(request.location_name, self._locations))
        if ref is None:
            return refusal(unknown_location(request.location_name, self._locations))
        reply = await ref.ask(
            ValidateRunRequest(
                job_name=request.job_name,
                run_config_json=request.run_config_json,
                asset_selection=request.asset_selection,
                tags=request.tags,
                asset_check_selection=request.asset_check_selection,
            ),
            timeout=self._timeout,
        )
        assert isinstance(reply, ValidateRunReply)
        return reply


# -- configuration ---------------------------------------------------------------------------


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagConcurrencyLimitConfig(_Config):
    """One entry of `tag_concurrency_limits`, as in Dagster's dagster.yaml."""

    key: str
    limit: int = Field(ge=0)
    value: str | dict[str, Any] | None = None  # {applyLimitPerUniqueValue: true} per value


class DefaultRunCoordinatorConfig(_Config):
    """`run_coordinator: {class: DefaultRunCoordinator, config: ...}` (short name `default`)."""

    launch_timeout_seconds: float = Field(default=60.0, gt=0)


class QueuedRunCoordinatorConfig(DefaultRunCoordinatorConfig):
    """`run_coordinator: {class: QueuedRunCoordinator, config: ...}` (short name `queued`).

    `dequeue_use_threads` and `dequeue_num_workers` are accepted as Dagster's dagster.yaml
    writes them; admission here is one actor's loop, so they change nothing.
    """

    max_concurrent_runs: int = 10  # negative: no limit
    tag_concurrency_limits: list[TagConcurrencyLimitConfig] = Field(default_factory=list)
    dequeue_interval_seconds: float = Field(default=5.0, gt=0)
    dequeue_use_threads: bool = False
    dequeue_num_workers: int | None = Field(default=None, ge=1)

    def limits(self) -> list[TagConcurrencyLimit]:
        out = []
        for entry in self.tag_concurrency_limits:
            if isinstance(entry.value, dict):
                per_value = bool(entry.value.get("applyLimitPerUniqueValue"))
                out.append(TagConcurrencyLimit(entry.key, entry.limit, None, per_value))
            else:
                out.append(TagConcurrencyLimit(entry.key, entry.limit, entry.value))
        return out


@dataclass(frozen=True, slots=True)
class CoordinatorContext:
    """What a run coordinator's `from_config` gets besides its config: the instance, a ref
    to the launcher, how to validate runs, and the actor's name."""

    instance: DagloomInstance
    launcher: ActorRef[Any, Any]
    validator: RunValidator | None = None
    name: str = "run_coordinator"


RUN_COORDINATORS = ComponentFamily(
    section="run_coordinator",
    requirement="an actor serving the RunCoordinator protocol",
    accepts=serves(RunCoordinatorBase),
    builtins={
        name: f"dagloom.actors.run_coordinator:{cls}"
        for names, cls in (
            (("default", "DefaultRunCoordinator"), "DefaultRunCoordinator"),
            (("queued", "QueuedRunCoordinator"), "QueuedRunCoordinator"),
        )
        for name in names
    },
)
"""The run coordinators: `default` launches at once, `queued` queues under limits; a user's
is any actor serving `RunCoordinator`, named by `module` and `class`."""


# -- launching and admitting ----------------------------------------------------------------


ADMISSION_LEASE = "run_queue/admission"
"""The storage lease whoever admits queued runs holds while it does (coordinators and the
daemon's queue loop alike), so admissions never overlap and limits hold across processes.
Distinct from any lease a daemon holds to run its `run_queue` loop: it is held for one
admission round only."""


LAUNCH_CONCURRENCY = 16
"""How many admitted runs one admission round hands to the launcher at once."""


def _starting_event(run: Run, clock: Clock) -> Event:
    return Event(
        run_id=run.run_id,
        event_type=EventType.RUN_STARTING,
        timestamp=clock(),
        job_name=run.job_name,
        message="Launching run.",
        level=LogLevel.INFO,
    )


async def launch_stored_run(
    instance: DagloomInstance,
    launcher: ActorRef[Any, Any],
    run: Run,
    *,
    timeout: float,  # noqa: ASYNC109 - the launcher's ask deadline, over gRPC too
    clock: Clock = time.time,
    name: str = "run_coordinator",
    starting: RunTransition | None = None,
) -> bool:
    """Mark the stored run STARTING (unless `starting` says it already was) and hand it to
    `launcher`; a run no worker took is recorded FAILURE. A run storage will not move to
    STARTING (canceled meanwhile, or admitted by someone else) is not launched. Returns
    whether a worker took it.

    A launcher that does not answer may still have handed the run on, so the FAILURE is a
    transition only from STARTING, which storage refuses once a worker claimed the run:
    then the run is launched after all.
    """
    log = structlog.get_logger("dagloom.actors")
    if starting is None:
        starting = await instance.transition_run(run.run_id, _starting_event(run, clock))
    if not starting.applied:  # canceled meanwhile
        return False
    try:
        reply = await launcher.ask(LaunchRunRequest(run_id=run.run_id), timeout=timeout)
        assert isinstance(reply, LaunchRunReply)
        error = reply.error
    except (ActorUnavailableError, TimeoutError) as exc:
        error = f"the run launcher did not answer: {exc}"
    if error:
        # A launcher that did not answer may still have handed the run on: a run a
        # worker already claimed is its worker's to end, so only a run still STARTING
        # is failed here, in one compare-and-set (and a worker's later claim of it is
        # then refused).
        outcome = await instance.transition_run(
            run.run_id,
            run_end_event(
                run,
                EventType.RUN_FAILURE,
                f"Run could not be launched: {error}",
                DagloomError(error),
            ),
            only_from=(RunStatus.STARTING,),
        )
        if not outcome.applied:
            log.warning(
                "run_launch_unanswered_but_claimed",
                actor=name,
                run_id=run.run_id,
                status=outcome.status.name,
            )
            return True
        log.error("run_launch_failed", actor=name, run_id=run.run_id, error=error)
        return False
    log.info("run_launched", actor=name, run_id=run.run_id, worker=reply.worker)
    return True


async def admit_queued_runs(
    instance: DagloomInstance,
    launcher: ActorRef[Any, Any],
    *,
    max_concurrent_runs: int | None,
    tag_limits: Sequence[TagConcurrencyLimit] = (),
    owner: str,
    launch_timeout: float = 60.0,
    lease_seconds: float = 300.0,
    clock: Clock = time.time,
    name: str = "run_coordinator",
) -> list[str]:
    """Launch the queued runs `runs_to_admit` picks; return the ids of those a worker took.

    The one place queued runs are admitted, by a `QueuedRunCoordinator` and by the daemon's
    queue loop. A paused queue (`max_concurrent_runs` 0) returns [] having read nothing.
    Otherwise first two counts without any lease: when nothing is queued, or every slot
    is taken, it returns [] having written nothing. Otherwise it holds the
    `ADMISSION_LEASE` in storage as `owner` while it reads the queue and the in-progress
    runs and moves the chosen runs to STARTING, all of them in one storage transaction
    that also checks the lease's fencing token (`DagloomInstance.transition_runs`), and
    releases it before launching them: when another owner holds the lease it admits
    nothing and returns [] (that owner is admitting; the queue is looked at again on the
    next tick). So two admitters never count the same free slots, and
    `max_concurrent_runs` and the tag limits hold across daemons and coordinators; a
    holder paused past its lease while reading (another has taken it since) moves
    nothing; each run's QUEUED -> STARTING move is a compare-and-set besides, so no run is
    launched twice. A holder that dies leaves the lease to expire after `lease_seconds`.
    The runs moved to STARTING are then handed to the launcher concurrently (at most
    `LAUNCH_CONCURRENCY` at once); the call returns once every launch has answered or
    timed out.
    """
    limited = max_concurrent_runs is not None and max_concurrent_runs >= 0
    if limited and max_concurrent_runs == 0:
        return []  # a paused queue: nothing to read (a coordinator asks at each run's end)
    in_progress_filter = RunsFilter(statuses=list(IN_PROGRESS))
    queued_filter = RunsFilter(statuses=[RunStatus.QUEUED])
    # Reads only: an idle or full queue takes no lease (a write) at all.
    if await instance.get_runs_count_async(queued_filter) == 0:
        return []
    if limited and await instance.get_runs_count_async(in_progress_filter) >= (
        max_concurrent_runs or 0
    ):
        return []
    storage = instance.schedule_storage
    lease = await storage.acquire_lease(ADMISSION_LEASE, owner, duration=lease_seconds, now=clock())
    if lease is None:
        return []
    released = False

    async def release() -> None:
        nonlocal released
        if not released:
            released = True
            with anyio.CancelScope(shield=True):
                await storage.release_lease(ADMISSION_LEASE, owner)

    try:
        # Only the tag limits look at the in-progress runs' tags; without them a count
        # serves, and when that count fills every slot the queue need not be read at all.
        in_progress_tags: list[Mapping[str, str]]
        if tag_limits:
            in_progress_tags = [r.tags for r in await instance.get_runs_async(in_progress_filter)]
        else:
            in_progress_tags = [{}] * await instance.get_runs_count_async(in_progress_filter)
        if limited and len(in_progress_tags) >= (max_concurrent_runs or 0):
            return []
        queued = list(reversed(await instance.get_runs_async(queued_filter)))
        if not queued:
            return []
        # Oldest first; storage lists newest first, and the sort is stable for equal times.
        queued.sort(key=lambda r: r.create_time)
        chosen = runs_to_admit(
            [QueuedRun(r.run_id, r.tags) for r in queued],
            in_progress_tags,
            max_concurrent_runs=max_concurrent_runs,
            tag_limits=tag_limits,
        )
        if not chosen:
            return []
        by_id = {r.run_id: r for r in queued}
        # Every chosen run moves to STARTING in one transaction, under the lease's fence:
        # paused past the lease while reading, this round's counts may be stale, and
        # another admitter that took the lease since is the one to admit.
        try:
            outcomes = await instance.transition_runs(
                [_starting_event(by_id[run_id], clock) for run_id in chosen], fence=lease.fence
            )
        except LeaseLostError as exc:
            structlog.get_logger("dagloom.actors").warning(
                "admission_lease_lost", actor=name, error=str(exc)
            )
            return []
        starting = [
            (by_id[run_id], transition)
            for run_id, transition in zip(chosen, outcomes, strict=True)
            if transition is not None and transition.applied
        ]
        # The runs now count as in progress: the next admitter may count them.
        await release()
        # The launcher is asked for the runs concurrently (at most LAUNCH_CONCURRENCY at
        # once), so one round waits about as long as its slowest launch rather than the
        # sum of them.
        taken: dict[str, bool] = {}
        limiter = anyio.CapacityLimiter(LAUNCH_CONCURRENCY)

        async def launch(run: Run, transition: RunTransition) -> None:
            async with limiter:
                taken[run.run_id] = await launch_stored_run(
                    instance,
                    launcher,
                    run,
                    timeout=launch_timeout,
                    clock=clock,
                    name=name,
                    starting=transition,
                )

        async with anyio.create_task_group() as tg:
            for run, transition in starting:
                tg.start_soon(launch, run, transition)
        return [run.run_id for run, _ in starting if taken.get(run.run_id)]
    finally:
        await release()


# -- the coordinators ------------------------------------------------------------------------


class _Coordinator(Actor[RunCoordinatorRequest, RunCoordinatorReply]):
    """What both coordinators share: validating, storing, launching and cancelling runs."""

    service = RunCoordinatorBase
    drop_abandoned_asks = True

    def __init__(
        self,
        instance: DagloomInstance,
        launcher: ActorRef[Any, Any],
        *,
        validator: RunValidator | None = None,
        name: str = "run_coordinator",
        launch_timeout: float = 60.0,
        inbox_size: int = 64,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(name, inbox_size=inbox_size, clock=clock)
        self._instance = instance
        self._launcher = launcher
        self._validator = validator
        self._launch_timeout = launch_timeout
        self._log = structlog.get_logger("dagloom.actors")

    async def _submit(
        self, request: SubmitRunRequest, first: tuple[EventType, str]
    ) -> SubmitRunReply | tuple[Run, RunTransition]:
        """Validate and store the submitted run, moved by its first lifecycle event (`first`:
        its type and message); return the run as stored before the move and the move, to be
        handed on, or the reply when there is nothing more to do (refused, or stored by an
        earlier try)."""
        run_id = submission_run_id(request)
        if request.request_id:
            earlier = await self._instance.get_run(run_id)
            if earlier is not None and same_submission(earlier, request):
                return self._resubmitted(earlier)
        verdict: ValidateRunReply | None = None
        if self._validator is not None:
            verdict = await self._validator.validate(request)
            if not verdict.valid:
                self._log.info("run_refused", actor=self.name, job=request.job_name)
                return SubmitRunReply(error=verdict.error, problems=verdict.problems)
        # A partitioned config gave the run its partition's config and tags.
        run_config_json = request.run_config_json
        tags = dict(request.tags)
        if verdict is not None and verdict.partition_run_config_json:
            run_config_json = verdict.partition_run_config_json
            tags = {**verdict.partition_tags, **tags}
        if request.request_id:
            tags[REQUEST_ID_TAG] = request.request_id
        try:
            return await self._store_new(
                Run(
                    run_id=run_id,
                    job_name=request.job_name,
                    status=RunStatus.NOT_STARTED,
                    code_location=request.location_name,
                    run_config_json=run_config_json,
                    # The code that runs must be the code validated here (workers check it).
                    job_snapshot_id=verdict.job_snapshot_id if verdict is not None else "",
                    tags=tags,
                    asset_selection=list(request.asset_selection),
                    asset_check_selection=list(request.asset_check_selection),
                    parent_run_id=request.parent_run_id,
                    root_run_id=request.root_run_id,
                    step_keys_to_execute=list(request.step_keys_to_execute),
                ),
                *first,
            )
        except StorageError:
            # Another coordinator stored this submission's run between the read and here.
            earlier = await self._instance.get_run(run_id) if request.request_id else None
            if earlier is not None and same_submission(earlier, request):
                return self._resubmitted(earlier)
            raise

    def _resubmitted(self, run: Run) -> SubmitRunReply:
        self._log.info("run_resubmitted", actor=self.name, run_id=run.run_id)
        return SubmitRunReply(run=run)

    async def _store_new(
        self, run: Run, event_type: EventType, message: str
    ) -> tuple[Run, RunTransition]:
        """Store new `run` moved by its first lifecycle event (`create_run_moved`: one
        storage write where storage allows, and neither stored if either fails). Storing
        finishes even if the submission is cancelled meanwhile; then the run is deleted, so
        a submission that raises leaves nothing stored."""
        with anyio.CancelScope(shield=True):
            stored = await self._instance.create_run_moved(
                run, lambda new: self._event(new, event_type, message)
            )
        try:
            await anyio.lowlevel.checkpoint()  # a cancellation that came meanwhile
        except BaseException:
            with anyio.CancelScope(shield=True):
                try:
                    await self._instance.delete_run(run.run_id)
                except DagloomError as exc:
                    self._log.error(
                        "run_roll_back_failed", actor=self.name, run_id=run.run_id, error=str(exc)
                    )
            raise
        return stored

    def _event(self, run: Run, event_type: EventType, message: str) -> Event:
        return Event(
            run_id=run.run_id,
            event_type=event_type,
            timestamp=self._clock(),
            job_name=run.job_name,
            message=message,
            level=LogLevel.INFO,
        )

    async def _launch(self, run: Run, starting: RunTransition) -> bool:
        """Hand the run its submission stored and moved to STARTING (`starting`) to the
        launcher (`launch_stored_run`)."""
        return await launch_stored_run(
            self._instance,
            self._launcher,
            run,
            timeout=self._launch_timeout,
            clock=self._clock,
            name=self.name,
            starting=starting,
        )

    async def _cancel(self, run_id: str) -> CancelRunReply:
        run = await self._instance.get_run(run_id)
        if run is None:
            return CancelRunReply(accepted=False, message=f"no run with id {run_id!r}")
        if run.status in FINISHED_STATUSES:
            return CancelRunReply(
                accepted=False, message=f"run {run_id} already finished ({run.status.name})"
            )
        if run.status == RunStatus.QUEUED:
            moved = await self._instance.transition_run(
                run_id, run_end_event(run, EventType.RUN_CANCELED, "Run canceled while queued.")
            )
            if moved.applied:
                return CancelRunReply(accepted=True, message="canceled while queued")
        canceling = await self._instance.transition_run(
            run_id, self._event(run, EventType.RUN_CANCELING, "Canceling run.")
        )
        if not canceling.applied:
            return CancelRunReply(
                accepted=False, message=f"run {run_id} is {canceling.status.name}"
            )
        try:
            reply = await self._launcher.ask(
                TerminateRunRequest(run_id=run_id), timeout=self._launch_timeout
            )
            assert isinstance(reply, TerminateRunReply)
            terminated = reply.terminated
        except (ActorUnavailableError, TimeoutError):
            terminated = False
        if terminated:
            return CancelRunReply(accepted=True, message="terminating")
        # No worker has it (it never started, or its worker is gone): nobody else will
        # record the end, so the coordinator does.
        await self._instance.transition_run(
            run_id,
            run_end_event(run, EventType.RUN_CANCELED, "Run canceled; no worker was executing it."),
        )
        return CancelRunReply(accepted=True, message="canceled; no worker was executing it")


class DefaultRunCoordinator(_Coordinator):
    """Launches each run as soon as it is submitted.

    `SubmitRun` validates, stores the run, marks it STARTING and asks the launcher to
    launch it, then replies with the run as stored at submission; a refused submission
    stores nothing and replies with `error` and `problems`. Submitting again with the same
    `request_id` replies with the run the first try stored and launches nothing; submitting
    with a `run_id` that exists otherwise fails the ask (`ActorUnavailableError` from the
    storage error), so a retried submission never runs twice. `CancelRun` cancels a queued
    or running run. `NotifyRunEnded` and `AdmitRuns` have nothing to do here.
    """

    config_model: type[BaseModel] = DefaultRunCoordinatorConfig

    @classmethod
    def from_config(
        cls, config: DefaultRunCoordinatorConfig, context: CoordinatorContext
    ) -> DefaultRunCoordinator:
        """The coordinator `run_coordinator: {class: DefaultRunCoordinator}` configures."""
        return cls(
            context.instance,
            context.launcher,
            validator=context.validator,
            name=context.name,
            launch_timeout=config.launch_timeout_seconds,
        )

    batched = (SubmitRunRequest,)

    async def handle(self, message: RunCoordinatorRequest) -> RunCoordinatorReply:
        match message:
            case SubmitRunRequest():
                return await self._submit_and_launch(message)
            case CancelRunRequest():
                return await self._cancel(message.run_id)
            case RunEnded():
                return RunEndedReply()
            case AdmitRunsRequest():
                return AdmitRunsReply()
            case _:
                assert_never(message)

    async def handle_batch(
        self, messages: Sequence[RunCoordinatorRequest]
    ) -> list[RunCoordinatorReply | Exception | None]:
        """Submissions asked together are handled side by side: their runs are stored in
        one storage transaction where storage allows (`create_run_moved` calls meeting in
        its writer) and launched concurrently; each answered or failed on its own."""
        outcomes: list[RunCoordinatorReply | Exception | None] = [None] * len(messages)

        async def one(index: int, message: RunCoordinatorRequest) -> None:
            try:
                outcomes[index] = await self.handle(message)
            except Exception as exc:
                outcomes[index] = exc

        async with anyio.create_task_group() as tg:
            for index, message in enumerate(messages):
                tg.start_soon(one, index, message)
        return outcomes

    async def _submit_and_launch(self, message: SubmitRunRequest) -> SubmitRunReply:
        submitted = await self._submit(message, (EventType.RUN_STARTING, "Launching run."))
        if isinstance(submitted, SubmitRunReply):
            return submitted
        run, starting = submitted
        await self._launch(run, starting)
        return SubmitRunReply(run=run)


class QueuedRunCoordinator(_Coordinator):
    """Stores submitted runs QUEUED and launches them by priority tag, then submission order,
    within limits.

    At most `max_concurrent_runs` runs are in progress at once (None or negative: no limit)
    and each `TagConcurrencyLimit` holds; a run a tag limit blocks waits while runs behind
    it that the limit does not concern go ahead. Queue state lives in storage, not here:
    admission reads the QUEUED and in-progress runs each time, so a restarted coordinator
    (or one of several) picks up where the last left off.

    The queue is looked at after each submission, on `NotifyRunEnded` (told by workers and
    launchers, so a freed slot is reused at once; repeated notices are harmless), on
    `AdmitRuns` (the daemon's queue loop), and every `dequeue_interval` seconds by this
    actor's own timer (None: no timer), which also catches runs whose end nobody reported.
    """

    config_model: type[BaseModel] = QueuedRunCoordinatorConfig

    @classmethod
    def from_config(
        cls, config: QueuedRunCoordinatorConfig, context: CoordinatorContext
    ) -> QueuedRunCoordinator:
        """The coordinator `run_coordinator: {class: QueuedRunCoordinator, config}` configures."""
        return cls(
            context.instance,
            context.launcher,
            max_concurrent_runs=config.max_concurrent_runs,
            tag_concurrency_limits=config.limits(),
            dequeue_interval=config.dequeue_interval_seconds,
            validator=context.validator,
            name=context.name,
            launch_timeout=config.launch_timeout_seconds,
        )

    def __init__(
        self,
        instance: DagloomInstance,
        launcher: ActorRef[Any, Any],
        *,
        max_concurrent_runs: int | None = 10,
        tag_concurrency_limits: Sequence[TagConcurrencyLimit] = (),
        dequeue_interval: float | None = 5.0,
        validator: RunValidator | None = None,
        name: str = "run_coordinator",
        launch_timeout: float = 60.0,
        inbox_size: int = 64,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(
            instance,
            launcher,
            validator=validator,
            name=name,
            launch_timeout=launch_timeout,
            inbox_size=inbox_size,
            clock=clock,
        )
        self.max_concurrent_runs = max_concurrent_runs
        self.tag_concurrency_limits = tuple(tag_concurrency_limits)
        self._dequeue_interval = dequeue_interval
        # Unique per coordinator, so coordinators sharing a storage take turns admitting.
        self._owner = f"{name}/{uuid.uuid4()}"

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled, with the dequeue timer as a child when it has one."""
        async with self._open_children() as tg:
            if self._dequeue_interval is not None:
                tg.start_soon(self._timer, self._dequeue_interval)
            await self.serve(task_status=task_status)

    async def _timer(self, interval: float) -> None:
        while True:
            # Through the inbox, so admission still happens one message at a time; a busy
            # inbox means the queue will be looked at soon anyway, so ticks never pile up.
            if not self.statistics().current_buffer_used:
                self.deliver_nowait(Envelope(AdmitRunsRequest()))
            await anyio.sleep(interval)

    async def handle(self, message: RunCoordinatorRequest) -> RunCoordinatorReply:
        match message:
            case SubmitRunRequest():
                submitted = await self._submit(message, (EventType.RUN_ENQUEUED, "Run queued."))
                if isinstance(submitted, SubmitRunReply):
                    return submitted
                run, queued = submitted
                run.status = queued.status
                self._log.info("run_queued", actor=self.name, run_id=run.run_id)
                await self._admit()
                return SubmitRunReply(run=run)
            case CancelRunRequest():
                reply = await self._cancel(message.run_id)
                await self._admit()
                return reply
            case RunEnded():
                await self._admit()
                return RunEndedReply()
            case AdmitRunsRequest():
                return AdmitRunsReply(launched_run_ids=await self._admit())
            case _:
                assert_never(message)

    async def _admit(self) -> list[str]:
        return await admit_queued_runs(
            self._instance,
            self._launcher,
            max_concurrent_runs=self.max_concurrent_runs,
            tag_limits=self.tag_concurrency_limits,
            owner=self._owner,
            launch_timeout=self._launch_timeout,
            clock=self._clock,
            name=self.name,
        )


# -- client side and configuration ----------------------------------------------------------


async def submit_run(
    coordinator: ActorRef[Any, Any],
    request: SubmitRunRequest,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - passed on to ask, a deadline over gRPC
) -> Run:
    """Submit a run and return it as stored; raise what the coordinator refused.

    Raises `ConfigError` (with every problem's key path) for a run config that does not
    fit, `DefinitionError` for an unknown job or location. Blocks until the coordinator
    replies (the run may not have started yet).
    """
    reply = await coordinator.ask(request, timeout=timeout)
    assert isinstance(reply, SubmitRunReply)
    if reply.error:
        if reply.problems:
            raise ConfigError(
                f"invalid run config for job {request.job_name!r}",
                problems=[(tuple(p.key_path.split(".")), p.message) for p in reply.problems],
            )
        raise DefinitionError(reply.error, name=request.job_name)
    assert reply.run is not None
    return reply.run


def build_run_coordinator(
    instance: DagloomInstance,
    launcher: ActorRef[Any, Any],
    *,
    validator: RunValidator | None = None,
    name: str = "run_coordinator",
) -> Actor[Any, Any]:
    """The coordinator the instance's `run_coordinator` section configures (default:
    `DefaultRunCoordinator`), built as every component is (`RUN_COORDINATORS`).

    Raises `ConfigError` naming the file and `run_coordinator.module`, `.class` or the
    config key path at fault. Builds the actor only; the wiring runs it.
    """
    spec = instance.config.run_coordinator
    context = CoordinatorContext(instance, launcher, validator, name)
    if spec is None:
        coordinator = build_component(RUN_COORDINATORS, None, "default", {}, context)
    else:
        coordinator = build_component(
            RUN_COORDINATORS,
            spec.module,
            spec.class_name,
            spec.config,
            context,
            source=instance.config_source,
        )
    assert isinstance(coordinator, Actor)  # the family accepts actors only
    return coordinator
