"""The worker-pool launcher: hands each run to a run worker on one of the worker nodes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from dagloom.actors._runtime import Clock
from dagloom.actors.run_launcher.base import RunLauncher
from dagloom.actors.run_launcher.config import LauncherContext, WorkerPoolRunLauncherConfig
from dagloom.errors import ActorUnavailableError
from dagloom.messages.rpc import (
    ExecuteRunReply,
    ExecuteRunRequest,
    LaunchRunReply,
    StopRunReply,
    StopRunRequest,
    TerminateRunReply,
)

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef


class WorkerPoolRunLauncher(RunLauncher):
    """Launches runs on run workers that live on other nodes (or this one), by ref.

    `LaunchRun` offers the run to the workers in turn, starting after the one that took the
    last run, and replies with the first that accepts; a worker that is unreachable or
    full is skipped, and when none accepts the reply's `error` says why each refused.
    `TerminateRun` asks every worker to stop the run, so the launcher keeps no state and a
    restart loses nothing. Workers tell the coordinator themselves when runs end.
    """

    def __init__(
        self,
        instance: DagloomInstance,
        workers: Sequence[ActorRef[Any, Any]],
        *,
        name: str = "run_launcher",
        coordinator: ActorRef[Any, Any] | None = None,
        call_timeout: float = 30.0,
        inbox_size: int = 64,
        clock: Clock = time.time,
    ) -> None:
        if not workers:
            raise ValueError("a worker-pool launcher needs at least one worker")
        super().__init__(
            name, instance, coordinator=coordinator, inbox_size=inbox_size, clock=clock
        )
        self._workers = list(workers)
        self._next = 0
        self._timeout = call_timeout

    async def _terminate(self, run_id: str) -> TerminateRunReply:
        stopped = False
        for worker in self._workers:
            try:
                reply = await worker.ask(StopRunRequest(run_id=run_id), timeout=self._timeout)
            except (ActorUnavailableError, TimeoutError):
                continue
            assert isinstance(reply, StopRunReply)
            stopped = stopped or reply.stopped
        return TerminateRunReply(terminated=stopped)

    async def _launch(self, run_id: str) -> LaunchRunReply:
        refusals: list[str] = []
        count = len(self._workers)
        for offset in range(count):
            index = (self._next + offset) % count
            worker = self._workers[index]
            try:
                reply = await worker.ask(ExecuteRunRequest(run_id=run_id), timeout=self._timeout)
            except (ActorUnavailableError, TimeoutError) as exc:
                refusals.append(f"{worker.actor}: {exc}")
                continue
            assert isinstance(reply, ExecuteRunReply)
            if reply.accepted:
                self._next = (index + 1) % count
                return LaunchRunReply(worker=worker.actor)
            refusals.append(f"{worker.actor}: {reply.message}")
        return LaunchRunReply(error="no run worker took the run: " + "; ".join(refusals))

    config_model: ClassVar[type[BaseModel]] = WorkerPoolRunLauncherConfig

    @classmethod
    def from_config(
        cls, config: WorkerPoolRunLauncherConfig, context: LauncherContext
    ) -> WorkerPoolRunLauncher:
        """The launcher a topology's `launcher: {kind: worker_pool}` makes, over the run
        workers of its worker nodes (`context.workers`, at least one)."""
        return cls(
            context.instance,
            context.workers,
            name=context.name,
            call_timeout=config.call_timeout_seconds,
        )
