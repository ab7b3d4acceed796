"""The subprocess launcher: a new `dagloom run-worker --run-id` process for every run."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
from anyio.abc import Process, TaskStatus
from pydantic import BaseModel

from dagloom.actors._runtime import Clock
from dagloom.actors.job_source import pick_location, unknown_location
from dagloom.actors.run_launcher._process import check_shareable, log_path, worker_command
from dagloom.actors.run_launcher.base import RunLauncher
from dagloom.actors.run_launcher.config import (
    LauncherContext,
    SubprocessRunLauncherConfig,
    heartbeat_interval,
)
from dagloom.actors.run_worker import is_resumed
from dagloom.execution.origin import CodeOrigin
from dagloom.messages import Run
from dagloom.messages.rpc import LaunchRunReply, TerminateRunReply, WorkerExited

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef


class SubprocessRunLauncher(RunLauncher):
    """Launches each run in a new worker process, for isolation from this one and each other.

    The process (`python -m dagloom.cli.run_worker --run-id ID`) opens the same instance
    (so storage must be SQLite or Postgres: an ephemeral instance is refused) and imports
    the run's code location from `origins`; its stderr goes to
    `home/logs/run_workers/<run id>.log`. `LaunchRun` replies once the process is started,
    not once the run is.

    `TerminateRun` sends SIGTERM: the worker cancels the run, which is recorded CANCELED;
    a process still alive `terminate_grace` seconds later is killed. When a process exits,
    the launcher checks storage: a run it left unfinished is recorded CANCELED (if it was
    being terminated) or FAILURE (naming the exit code and log), and the coordinator is
    told `RunEnded` either way. Cancelling `run` stops watching; worker processes keep
    executing their runs and record their own ends.

    A resume launch (`is_resumed`: run monitoring judged the run's worker lost) of a run
    whose process still lives kills that process and starts a new one.
    """

    def __init__(
        self,
        instance: DagloomInstance,
        origins: Mapping[str, CodeOrigin],
        *,
        name: str = "run_launcher",
        coordinator: ActorRef[Any, Any] | None = None,
        python: str = sys.executable,
        terminate_grace: float = 10.0,
        heartbeat_interval: float = 30.0,
        inbox_size: int = 64,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(
            name, instance, coordinator=coordinator, inbox_size=inbox_size, clock=clock
        )
        check_shareable(instance, type(self).__name__)
        self._origins = dict(origins)
        self._python = python
        self._grace = terminate_grace
        self._heartbeat_interval = heartbeat_interval
        self._processes: dict[str, Process] = {}
        self._launched_at_start: dict[str, float] = {}
        """The run's start time when its process was launched (0: it had not started)."""
        self._terminating: set[str] = set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; process monitors are children of this call."""
        async with self._open_children():
            await self.serve(task_status=task_status)

    async def _terminate(self, run_id: str) -> TerminateRunReply:
        process = self._processes.get(run_id)
        if process is None:
            return TerminateRunReply(terminated=False)
        self._terminating.add(run_id)
        process.terminate()
        assert self._children is not None
        self._children.start_soon(self._kill_after_grace, process)
        return TerminateRunReply(terminated=True)

    async def _launch(self, run_id: str) -> LaunchRunReply:
        run = await self._instance.get_run(run_id)
        if run_id in self._processes:
            if not (run is not None and self._lost_to(run)):
                return LaunchRunReply(worker=f"process {self._processes[run_id].pid}")
            # Resumed while its process lives on, silent (stopped, or cut off from storage):
            # that process is lost to the run. Untracked first, so its exit records nothing.
            lost = self._processes.pop(run_id)
            lost.kill()
            self._log.warning("run_worker_replaced", run_id=run_id, pid=lost.pid)
        if run is None:
            return LaunchRunReply(error=f"no run with id {run_id!r}")
        name = pick_location(run.code_location, self._origins)
        origin = self._origins.get(name)
        if origin is None:
            return LaunchRunReply(error=str(unknown_location(run.code_location, self._origins)))
        command = worker_command(
            self._instance.home,
            {name: origin},
            python=self._python,
            extra=["--run-id", run_id, "--heartbeat-interval", str(self._heartbeat_interval)],
        )
        log = log_path(self._instance, run_id)
        with log.open("ab") as stderr:
            process = await anyio.open_process(
                command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
            )
        self._processes[run_id] = process
        self._launched_at_start[run_id] = run.start_time
        assert self._children is not None
        self._children.start_soon(self._watch, run_id, process)
        return LaunchRunReply(worker=f"process {process.pid}")

    def _lost_to(self, run: Run) -> bool:
        """Whether the tracked process of `run` is lost to it: the run is being resumed
        and started since that process was launched (so that process claimed it, and was
        then judged lost); a second LaunchRun of the same resume is not that."""
        return is_resumed(run) and run.start_time != self._launched_at_start.get(run.run_id)

    async def _watch(self, run_id: str, process: Process) -> None:
        code = await process.wait()
        if self._processes.get(run_id) is not process:
            return  # replaced by a resume's new process: nothing to record for this one
        await self._notify_self(WorkerExited(worker=run_id, exit_code=code))

    async def _kill_after_grace(self, process: Process) -> None:
        await anyio.sleep(self._grace)
        if process.returncode is None:
            process.kill()

    async def _worker_exited(self, run_id: str, exit_code: int) -> None:
        self._processes.pop(run_id, None)
        self._launched_at_start.pop(run_id, None)
        terminating = run_id in self._terminating
        self._terminating.discard(run_id)
        run = await self._instance.get_run(run_id)
        if run is not None:
            log = log_path(self._instance, run_id)
            await self._record_worker_lost(
                run,
                terminating=terminating,
                canceled=(
                    f"Run canceled; its worker process was terminated (exit code {exit_code})."
                ),
                failure=f"its worker process exited with code {exit_code} (log: {log})",
            )
        await self._report_end(run_id)

    config_model: ClassVar[type[BaseModel]] = SubprocessRunLauncherConfig

    @classmethod
    def from_config(
        cls, config: SubprocessRunLauncherConfig, context: LauncherContext
    ) -> SubprocessRunLauncher:
        """The launcher `run_launcher: {class: subprocess, config}` configures."""
        return cls(
            context.instance,
            context.origins,
            name=context.name,
            terminate_grace=config.terminate_grace_seconds,
            heartbeat_interval=heartbeat_interval(config, context.instance),
        )
