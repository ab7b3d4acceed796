"""What every run launcher shares: its protocol's message types and reporting ends of runs."""

from __future__ import annotations

import contextlib
import time
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, assert_never

from dagloom._logging import get_logger
from dagloom.actors._runtime import Actor, Clock, Envelope
from dagloom.actors.run_worker import run_end_event
from dagloom.errors import ActorUnavailableError, DagloomError
from dagloom.messages import EventType, Run, RunStatus
from dagloom.messages.rpc import (
    ExecuteRunReply,
    ExecuteRunRequest,
    LaunchRunReply,
    LaunchRunRequest,
    RunEnded,
    RunEndedReply,
    RunLauncherBase,
    TerminateRunReply,
    TerminateRunRequest,
    WorkerExited,
    WorkerExitedReply,
)
from dagloom.storage.base import FINISHED_STATUSES

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef

RunLauncherRequest = LaunchRunRequest | TerminateRunRequest | RunEnded | WorkerExited
RunLauncherReply = LaunchRunReply | TerminateRunReply | RunEndedReply | WorkerExitedReply


class RunLauncher(Actor[RunLauncherRequest, RunLauncherReply]):
    """The base of the launchers: serves `RunLauncher` and tells the coordinator of ends.

    `LaunchRun` gives a stored run a worker and replies with the worker's name, or with
    `error` set when none took it (the run is left as it was). `TerminateRun` stops a run
    this launcher started; the run ends CANCELED, recorded by the worker or, if the worker
    died first, by the launcher. `NotifyRunEnded` and `NotifyWorkerExited` come from the
    launcher's own monitors (through its inbox, so its state changes one message at a time);
    every run end it learns is forwarded to the coordinator (`report_to`), which treats a
    repeated notice as harmless.

    An implementation writes `_launch` and `_terminate`, and overrides `_run_ended` and
    `_worker_exited` when it keeps state about its runs or workers. A worker that does not
    answer `ExecuteRun` in time keeps the run (`_unanswered`): a launcher never offers a
    run to a second worker because the first was slow, and each worker claims its run in
    storage before executing it, so a run executes at most once.
    """

    service = RunLauncherBase

    def __init__(
        self,
        name: str,
        instance: DagloomInstance,
        *,
        coordinator: ActorRef[Any, Any] | None = None,
        inbox_size: int = 64,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(name, inbox_size=inbox_size, clock=clock)
        self._instance = instance
        self._coordinator = coordinator
        self._log = get_logger("dagloom.actors")

    def report_to(self, coordinator: ActorRef[Any, Any] | None) -> None:
        """Tell `coordinator` when runs end; call before `run`."""
        self._coordinator = coordinator

    async def _report_end(self, run_id: str) -> None:
        """Tell the coordinator `run_id` ended, with the status storage shows."""
        if self._coordinator is None:
            return
        run = await self._instance.get_run(run_id)
        status = run.status if run is not None else RunStatus.UNSPECIFIED
        await self._coordinator.tell(RunEnded(run_id=run_id, status=status))

    async def _unanswered(
        self,
        run_id: str,
        worker: ActorRef[Any, Any],
        call_timeout: float,
        *,
        name: str | None = None,
    ) -> LaunchRunReply:
        """Resolve an `ExecuteRun` of `run_id` that `worker` did not answer within `call_timeout`.

        The request may sit behind the worker's busy loop and still be served, or may have
        been dropped with its deadline: the run stays with `worker` (the reply names it,
        as `name` when given),
        and a child task offers it to that worker again until storage shows the run
        claimed or ended (`_offer_until_settled`). It is never offered to a second worker.
        Logs `run_launch_unanswered` with the status storage shows now.
        """
        run = await self._instance.get_run(run_id)
        status = run.status if run is not None else RunStatus.UNSPECIFIED
        self._log.warning(
            "run_launch_unanswered",
            actor=self.name,
            run_id=run_id,
            worker=worker.actor,
            status=status.name,
        )
        if run is None:
            return LaunchRunReply(error=f"no run with id {run_id!r}")
        assert self._children is not None, "a launcher that can time out runs children"
        self._children.start_soon(self._offer_until_settled, run, worker, call_timeout)
        return LaunchRunReply(worker=name or worker.actor)

    async def _offer_until_settled(
        self, run: Run, worker: ActorRef[Any, Any], call_timeout: float
    ) -> None:
        """Ask `worker` to execute `run` until it answers or storage shows the run past
        STARTING. Asking a worker again for a run it has changes nothing, and its claim
        keeps the run single. A refusal or an unreachable worker ends the run FAILURE,
        unless a claim got there first (the transition is refused then)."""
        while True:
            stored = await self._instance.get_run(run.run_id)
            if stored is None or stored.status != RunStatus.STARTING:
                return
            try:
                reply = await worker.ask(ExecuteRunRequest(run_id=run.run_id), timeout=call_timeout)
            except TimeoutError:
                continue
            except ActorUnavailableError as exc:
                error = f"its worker {worker.actor} is unreachable: {exc}"
            else:
                assert isinstance(reply, ExecuteRunReply)
                if reply.accepted:
                    return
                error = f"its worker {worker.actor} refused it: {reply.message}"
            await self._instance.transition_run(
                run.run_id,
                run_end_event(
                    run, EventType.RUN_FAILURE, f"Run failed: {error}.", DagloomError(error)
                ),
            )
            return

    async def _record_worker_lost(
        self, run: Run, *, terminating: bool, canceled: str, failure: str
    ) -> None:
        """Record `run`, whose worker exited under it: CANCELED with the message `canceled`
        if it was being terminated, else FAILURE because of `failure`.

        Idempotent: storage refuses the end of a run that has ended already.

        A STARTED run lost (not terminated) while the instance's run monitoring resumes
        runs (`run_monitoring.enabled` with `max_resume_run_attempts` > 0) is left STARTED,
        logging `run_worker_lost`: run monitoring resumes it on a new worker once its
        heartbeat is overdue, and fails it when its attempts are spent.
        """
        if run.status in FINISHED_STATUSES:
            return  # its worker ended it (the usual case): nothing to record, nor to refuse
        monitoring = self._instance.config.run_monitoring
        if (
            not terminating
            and run.status == RunStatus.STARTED
            and monitoring.enabled
            and monitoring.max_resume_run_attempts > 0
        ):
            self._log.warning("run_worker_lost", actor=self.name, run_id=run.run_id, error=failure)
            return
        if terminating:
            event = run_end_event(run, EventType.RUN_CANCELED, canceled)
        else:
            event = run_end_event(
                run, EventType.RUN_FAILURE, f"Run failed: {failure}.", DagloomError(failure)
            )
        await self._instance.transition_run(run.run_id, event)

    async def _cancel_unfinished(self, run_id: str, message: str) -> None:
        """Record `run_id` CANCELED with `message`, unless it has ended already (its worker
        stopped it in time, or it finished)."""
        run = await self._instance.get_run(run_id)
        if run is not None and run.status not in FINISHED_STATUSES:
            await self._instance.transition_run(
                run_id, run_end_event(run, EventType.RUN_CANCELED, message)
            )

    async def _notify_self(self, message: RunEnded | WorkerExited) -> None:
        """Put a monitor's finding in this launcher's own inbox; dropped once it is closed."""
        # A closed launcher is shutting down; storage already holds what matters.
        with contextlib.suppress(ActorUnavailableError):
            await self.deliver(Envelope(message))

    async def handle(self, message: RunLauncherRequest) -> RunLauncherReply | None:
        match message:
            case LaunchRunRequest():
                return await self._launch(message.run_id)
            case TerminateRunRequest():
                return await self._terminate(message.run_id)
            case RunEnded():
                await self._run_ended(message.run_id)
                return RunEndedReply()
            case WorkerExited():
                await self._worker_exited(message.worker, message.exit_code)
                return WorkerExitedReply()
            case _:
                assert_never(message)

    @abstractmethod
    async def _launch(self, run_id: str) -> LaunchRunReply | None:
        """Give the stored run `run_id` a worker; the reply names it or says why none took it.
        None: the reply was taken over (`_detach_reply`) and is given from a child task."""

    @abstractmethod
    async def _terminate(self, run_id: str) -> TerminateRunReply:
        """Stop the run `run_id` if this launcher started it; the reply says whether it did."""

    async def _run_ended(self, run_id: str) -> None:
        """A monitor saw `run_id` end: tell the coordinator."""
        await self._report_end(run_id)

    async def _worker_exited(self, worker: str, exit_code: int) -> None:
        """A monitor saw the process of `worker` exit; nothing to do for a launcher that
        starts no processes."""
