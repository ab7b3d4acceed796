"""The run worker: executes stored runs, writing their events to storage, and heartbeats."""

from __future__ import annotations

import functools
import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, assert_never

import anyio
import orjson
from anyio.abc import TaskStatus

from dagloom._logging import get_logger
from dagloom.actors._runtime import Actor, Clock
from dagloom.actors.job_source import JobSource, OriginSource
from dagloom.errors import RunClaimRefusedError, StorageError
from dagloom.execution.events import error_info, run_start_row
from dagloom.execution.run_tags import HEARTBEAT_TAG as HEARTBEAT_TAG
from dagloom.execution.run_tags import WORKER_TAG as WORKER_TAG
from dagloom.execution.run_thread import run_on_own_thread
from dagloom.messages import Event, EventType, LogLevel, Run, RunFailureData, RunStatus
from dagloom.messages.rows import EventRow, event_of
from dagloom.messages.rpc import (
    ExecuteRunReply,
    ExecuteRunRequest,
    RunEnded,
    RunWorkerBase,
    StopRunReply,
    StopRunRequest,
)
from dagloom.storage.base import FINISHED_STATUSES

if TYPE_CHECKING:
    from dagloom.execution.result import ExecuteInProcessResult
    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef

RunWorkerRequest = ExecuteRunRequest | StopRunRequest
RunWorkerReply = ExecuteRunReply | StopRunReply


def run_end_event(
    run: Run, event_type: EventType, message: str, error: BaseException | None = None
) -> Event:
    """A lifecycle event of `run` (an end, usually) for those who record it in its worker's
    stead (a load error, a dead worker process, a cancel nobody executes), to store with
    `DagloomInstance.transition_run`: storage refuses it if the run has moved on already. A
    RUN_FAILURE carries `error` (class, message, stack) in its RunFailureData."""
    event = Event(
        run_id=run.run_id,
        event_type=event_type,
        timestamp=time.time(),
        job_name=run.job_name,
        message=message,
        level=LogLevel.ERROR,
    )
    if event_type == EventType.RUN_FAILURE:
        event.run_failure = RunFailureData(error=error_info(error) if error is not None else None)
    return event


def is_resumed(run: Run) -> bool:
    """Whether a stored run is being resumed: it is STARTING yet started before (a resume
    claim moved it back from STARTED; a run's start time is set by its first RUN_START)."""
    return run.status == RunStatus.STARTING and bool(run.start_time)


def resumed_steps(step_keys: Sequence[str], succeeded: Collection[str]) -> list[str]:
    """The steps a resumed run still executes: those of `step_keys` (the steps it was to
    execute, in order) that are not in `succeeded`. Pure."""
    return [key for key in step_keys if key not in succeeded]


class RunWorker(Actor[RunWorkerRequest, RunWorkerReply]):
    """Executes runs that are already stored, each in a task of its own task group.

    `ExecuteRun` replies at once (accepted, or refused with a reason: no such run, already
    finished, at `max_concurrent_runs`); asking again for a run it is executing is accepted
    and changes nothing. Accepting is not executing: the run first claims itself in storage
    (its RUN_START), and is left alone, logging `run_not_claimed`, when another executor
    claimed or ended it first; so a run handed to two workers executes once. The run loads
    the job from `jobs` (by the run's code location, job name and asset selection),
    executes it with the executor the job or its run config selects (and, when the job names
    no `io_manager`, a filesystem one under the instance's `storage_dir`, as Dagster's
    default, so a retry from failure can load the outputs of steps that succeeded), and
    writes every event to the instance's storage; a job that fails to load, a run config
    that no longer validates, or loaded code whose job snapshot id is not the one stored on the run
    (`SnapshotMismatchError`, after the source reloaded it where it can) ends the run as
    FAILURE, with a message naming both ids.

    Loading and executing happen on a thread of the run's own, in an event loop of its own
    (`run_on_own_thread`): ops (inline by default, async ones concurrently, as anywhere),
    resources, IO managers, hooks and the import of user code run there, so a sync op that
    sleeps or spins never delays this worker's loop, its heartbeats or the actors sharing
    it. The run reaches storage through the instance, which hands its calls and event rows
    to this loop (see `DagloomInstance`).

    A storage error never ends the worker: a heartbeat that fails is logged and tried again
    at the next beat, and a run whose end cannot be stored is logged and its error kept in
    `unrecorded` (a one-run worker process exits non-zero with it).

    Every `heartbeat_interval` seconds one task of the worker writes a heartbeat into the
    tags of each run executing then (`dagloom/heartbeat`, with `dagloom/run_worker` naming
    the worker): tags rather than the daemon-heartbeat table because run monitoring asks
    about one run at a time, and the daemon table keeps one row per daemon type. A run's
    first beat comes within one interval of its start, which monitoring counts as a beat,
    so a run shorter than the interval costs no heartbeat write at all.

    `StopRun` cancels the run's task, and through it the run's loop: the run is recorded
    CANCELED (by the executor, or here when it had not started executing yet) once the op
    it is in reaches a checkpoint (a sync op cannot be interrupted: it ends first). When a
    run of its own ends the worker tells `coordinator` `RunEnded` (if it has one), with the
    status storage kept. Cancelling `run` cancels every run it is executing, each recorded
    CANCELED, and returns once every run's thread has ended.
    """

    service = RunWorkerBase

    def __init__(
        self,
        instance: DagloomInstance,
        jobs: JobSource,
        *,
        name: str = "run_worker",
        coordinator: ActorRef[Any, Any] | None = None,
        max_concurrent_runs: int | None = None,
        heartbeat_interval: float = 30.0,
        inbox_size: int = 64,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(name, inbox_size=inbox_size, clock=clock)
        self._instance = instance
        self._jobs = jobs
        # A protocol check lists the protocol's members each time: once, not per run.
        self._origins: OriginSource | None = jobs if isinstance(jobs, OriginSource) else None
        self._coordinator = coordinator
        self._max_runs = max_concurrent_runs
        self._heartbeat_interval = heartbeat_interval
        self._runs: dict[str, anyio.CancelScope] = {}
        self.unrecorded: list[StorageError] = []
        """Storage errors that kept a failed run's end from being stored (see `_execute`)."""
        self._idle = anyio.Event()
        self._log = get_logger("dagloom.actors")

    def report_to(self, coordinator: ActorRef[Any, Any] | None) -> None:
        """Tell `coordinator` when runs end; call before `run` (wiring resolves the cycle
        between a coordinator and the worker its launcher owns)."""
        self._coordinator = coordinator

    @property
    def running(self) -> list[str]:
        """The ids of the runs executing now; never blocks."""
        return list(self._runs)

    async def wait_idle(self) -> None:
        """Block until no run is executing (at once if none is); each ended run's events
        are stored by then. Cancelling it only stops the wait."""
        while self._runs:
            self._idle = anyio.Event()
            await self._idle.wait()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; runs execute as children of this call's task group."""
        async with self._open_children() as children:
            children.start_soon(self._beat, name=f"{self.name} heartbeats")
            await self.serve(task_status=task_status)

    async def handle(self, message: RunWorkerRequest) -> RunWorkerReply:
        match message:
            case ExecuteRunRequest():
                return await self._execute_run(message.run_id)
            case StopRunRequest():
                scope = self._runs.get(message.run_id)
                if scope is not None:
                    scope.cancel()
                return StopRunReply(stopped=scope is not None)
            case _:
                assert_never(message)

    async def _execute_run(self, run_id: str) -> ExecuteRunReply:
        if run_id in self._runs:
            return ExecuteRunReply(accepted=True, message=f"{self.name} is already executing it")
        if self._max_runs is not None and len(self._runs) >= self._max_runs:
            return ExecuteRunReply(
                accepted=False,
                message=f"{self.name} is executing {len(self._runs)} run(s), its limit",
            )
        run = await self._instance.get_run(run_id)
        if run is None:
            return ExecuteRunReply(accepted=False, message=f"no run with id {run_id!r}")
        if run.status in FINISHED_STATUSES:
            return ExecuteRunReply(accepted=False, message=f"run {run_id} already finished")
        assert self._children is not None, "handle runs only inside run()"
        scope = anyio.CancelScope()
        self._runs[run_id] = scope
        self._children.start_soon(self._run_task, run, scope, name=f"run {run_id}")
        # Debug: the coordinator logs each launch, naming the worker, at info.
        self._log.debug("run_accepted", run_id=run_id, actor=self.name)
        return ExecuteRunReply(accepted=True, message=self.name)

    async def _run_task(self, run: Run, scope: anyio.CancelScope) -> None:
        status: RunStatus | None = RunStatus.FAILURE
        try:
            with scope:
                status = await self._execute(run)
            if scope.cancelled_caught:
                status = await self._record_stopped(run)
        finally:
            # Bookkeeping of this worker's own child; handlers never await between reading
            # and using this dict, so it needs no lock.
            self._runs.pop(run.run_id, None)
            if not self._runs:
                self._idle.set()
        if status is None:
            return
        # Debug: the run's end is stored as its end event, with the status it set.
        self._log.debug("run_ended", run_id=run.run_id, actor=self.name, status=status.name)
        if self._coordinator is not None:
            await self._coordinator.tell(RunEnded(run_id=run.run_id, status=status))

    def _end_not_recorded(self, run: Run, lost: StorageError) -> None:
        """Storage is unreachable even for the run's end: the worker lives on (a server keeps
        serving) and says so; a one-run worker process exits 1 with `unrecorded`."""
        self._log.error("run_end_not_recorded", run_id=run.run_id, actor=self.name, error=str(lost))
        self.unrecorded.append(lost)

    async def _record_stopped(self, run: Run) -> RunStatus:
        """Record CANCELED a run stopped before its executor recorded an end (which it does
        once it has started executing); return the status storage kept."""
        try:
            stored = await self._instance.get_run(run.run_id)
            if stored is not None and stored.status in FINISHED_STATUSES:
                return stored.status
            moved = await self._instance.transition_run(
                run.run_id,
                run_end_event(
                    run,
                    EventType.RUN_CANCELED,
                    f'Run of "{run.job_name}" was canceled before it started executing.',
                ),
            )
        except StorageError as lost:
            self._end_not_recorded(run, lost)
            return RunStatus.CANCELED
        return moved.status

    async def _execute(self, run: Run) -> RunStatus | None:
        """Execute `run` on a thread of its own and return the status storage kept for it;
        None when it was not this worker's to execute (its claim was refused)."""
        try:
            # The claim is stored from this loop: from the run's thread it would be a round
            # trip to this loop and back (two cross-thread wake-ups) before anything ran.
            start = run_start_row(run.job_name)
            claim = await self._instance.transition_run(run.run_id, event_of(run.run_id, start))
            if not claim.applied:
                raise RunClaimRefusedError(run.run_id, claim.status)
            result = await run_on_own_thread(
                functools.partial(self._load_and_execute, run, start),
                name=f"dagloom run {run.run_id}",
            )
        except RunClaimRefusedError as exc:
            self._log.info(
                "run_not_claimed", run_id=run.run_id, actor=self.name, status=exc.status.name
            )
            return None
        except Exception as exc:  # the supervision point of one run: it fails, the worker lives
            self._log.error(
                "run_failed_to_execute", run_id=run.run_id, actor=self.name, exc_info=exc
            )
            try:
                moved = await self._instance.transition_run(
                    run.run_id,
                    run_end_event(
                        run,
                        EventType.RUN_FAILURE,
                        f'Run of "{run.job_name}" could not execute: {type(exc).__name__}: {exc}',
                        exc,
                    ),
                )
            except StorageError as lost:
                self._end_not_recorded(run, lost)
                return RunStatus.FAILURE
            return moved.status
        return RunStatus.SUCCESS if result.success else RunStatus.FAILURE

    async def _load_and_execute(self, run: Run, start: EventRow) -> ExecuteInProcessResult:
        """Load the run's job and execute it, the run claimed already with RUN_START row
        `start`; on the run's own thread and loop, so neither the import of user code nor
        the ops block this worker's loop.

        What runs here reaches storage only through the instance (whose calls hop to this
        worker's loop) and actors not at all: their refs belong to the worker's loop, so
        asking one is for `_execute`, before or after this.
        """
        from dagloom.code.snapshot import check_key_of
        from dagloom.execution.run import execute_job_in_process, with_storage_io_manager

        jobs = self._jobs
        # A run validated against a job snapshot runs that snapshot or fails naming both.
        job = jobs.get_job(
            run.code_location,
            run.job_name,
            [list(k.path) for k in run.asset_selection],
            snapshot_id=run.job_snapshot_id,
            asset_check_selection=[check_key_of(c) for c in run.asset_check_selection],
        )
        # Outputs are kept in the instance's storage, so a retry or re-execution from
        # failure (or a resumed run) loads those of the steps it does not execute again.
        job = with_storage_io_manager(job, self._instance.storage_dir)
        run_config = orjson.loads(run.run_config_json) if run.run_config_json else {}
        origins = self._origins
        origin = origins.code_origin(run.code_location) if origins is not None else None
        resuming = is_resumed(run)
        steps = list(run.step_keys_to_execute)
        if resuming:
            records = await self._instance.get_events(
                run.run_id, event_types=[EventType.STEP_SUCCESS]
            )
            succeeded = {r.event.step_key for r in records if r.event is not None}
            steps = resumed_steps(steps or list(job.get_plan().steps), succeeded)
            self._log.info(
                "run_resumed", run_id=run.run_id, actor=self.name, steps_to_execute=steps
            )
        return await execute_job_in_process(
            job,
            run_config=run_config,
            instance=self._instance,
            raise_on_error=False,
            run_id=run.run_id,
            tags=dict(run.tags),
            run_is_stored=True,
            code_origin=origin,
            parent_run_id=run.parent_run_id or None,
            step_keys_to_execute=steps,
            heartbeat_interval=None,  # this worker beats for its runs (`_beat`)
            resuming=resuming,
            claimed=start,
        )

    async def _beat(self) -> None:
        """Beat for every run executing, once per interval, for as long as the worker runs."""
        while True:
            await anyio.sleep(self._heartbeat_interval)
            for run_id in list(self._runs):
                if run_id not in self._runs:
                    continue  # it ended during an earlier run's beat
                try:
                    await self._instance.add_run_tags(
                        run_id, {WORKER_TAG: self.name, HEARTBEAT_TAG: f"{self._clock():.3f}"}
                    )
                except StorageError as exc:  # a missed beat; the next one may get through
                    self._log.warning(
                        "run_heartbeat_failed", run_id=run_id, actor=self.name, error=str(exc)
                    )
