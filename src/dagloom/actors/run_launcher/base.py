"""What every run launcher shares: its protocol's message types and reporting ends of runs."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from dagloom.actors._runtime import Actor, Clock, Envelope
from dagloom.errors import ActorUnavailableError
from dagloom.messages import RunStatus
from dagloom.messages.rpc import (
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

    async def _notify_self(self, message: RunEnded | WorkerExited) -> None:
        """Put a monitor's finding in this launcher's own inbox; dropped once it is closed."""
        # A closed launcher is shutting down; storage already holds what matters.
        with contextlib.suppress(ActorUnavailableError):
            await self.deliver(Envelope(message))
