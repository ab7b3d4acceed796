"""The in-process launcher: runs execute on a run worker in this process, each on a thread
and event loop of its own."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
from anyio.abc import TaskStatus
from pydantic import BaseModel

from dagloom.actors._runtime import Clock
from dagloom.actors.job_source import JobSource
from dagloom.actors.run_launcher.base import RunLauncher
from dagloom.actors.run_launcher.config import (
    InProcessRunLauncherConfig,
    LauncherContext,
    heartbeat_interval,
)
from dagloom.actors.run_worker import RunWorker
from dagloom.messages.rpc import (
    ExecuteRunReply,
    ExecuteRunRequest,
    LaunchRunReply,
    StopRunReply,
    StopRunRequest,
    TerminateRunReply,
)
from dagloom.transport import MemoryTransport

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef


class InProcessRunLauncher(RunLauncher):
    """Launches runs on a `RunWorker` it owns, in its own task group.

    No process isolation: a run shares the process with everything else, which is what
    tests and `dagloom dev` want; but each run executes on its own thread and event loop
    (see `RunWorker`), so its ops, resources and the import of its code never block the
    loop this launcher, the API and the other actors share. The worker executes any number
    of runs at once (the coordinator limits how many are launched) and tells the coordinator
    itself when each ends. `TerminateRun` cancels the run; it is recorded CANCELED. Cancelling
    `run` cancels the worker and with it every run, each recorded CANCELED, and returns once
    every run's thread has ended.
    """

    def __init__(
        self,
        instance: DagloomInstance,
        jobs: JobSource,
        *,
        name: str = "run_launcher",
        coordinator: ActorRef[Any, Any] | None = None,
        heartbeat_interval: float = 30.0,
        inbox_size: int = 64,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(
            name, instance, coordinator=coordinator, inbox_size=inbox_size, clock=clock
        )
        self.worker = RunWorker(
            instance,
            jobs,
            name=f"{name}.worker",
            coordinator=coordinator,
            heartbeat_interval=heartbeat_interval,
            clock=clock,
        )
        self._worker_ref = MemoryTransport().ref(self.worker)

    def report_to(self, coordinator: ActorRef[Any, Any] | None) -> None:
        super().report_to(coordinator)
        self.worker.report_to(coordinator)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the worker as a child, then serve until cancelled."""
        async with self._open_children() as tg:
            await tg.start(self.worker.run)
            await self.serve(task_status=task_status)

    async def _launch(self, run_id: str) -> LaunchRunReply:
        reply = await self._worker_ref.ask(ExecuteRunRequest(run_id=run_id))
        assert isinstance(reply, ExecuteRunReply)
        if not reply.accepted:
            return LaunchRunReply(error=reply.message)
        return LaunchRunReply(worker=self.worker.name)

    async def _terminate(self, run_id: str) -> TerminateRunReply:
        stopped = await self._worker_ref.ask(StopRunRequest(run_id=run_id))
        assert isinstance(stopped, StopRunReply)
        return TerminateRunReply(terminated=stopped.stopped)

    config_model: ClassVar[type[BaseModel]] = InProcessRunLauncherConfig

    @classmethod
    def from_config(
        cls, config: InProcessRunLauncherConfig, context: LauncherContext
    ) -> InProcessRunLauncher:
        """The launcher `run_launcher: {class: in_process, config}` configures."""
        return cls(
            context.instance,
            context.job_source(),
            name=context.name,
            heartbeat_interval=heartbeat_interval(config, context.instance),
        )
