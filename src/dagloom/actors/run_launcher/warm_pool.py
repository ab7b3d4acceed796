"""The warm-pool launcher: long-lived worker processes that already imported the code."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
from anyio.abc import Process, TaskStatus
from pydantic import BaseModel

from dagloom.actors._runtime import Clock, ReplySlot
from dagloom.actors.run_launcher._process import check_shareable, log_path, worker_command
from dagloom.actors.run_launcher.base import RunLauncher, RunLauncherReply
from dagloom.actors.run_launcher.config import (
    LauncherContext,
    WarmPoolRunLauncherConfig,
    heartbeat_interval,
)
from dagloom.actors.run_worker import RunWorker
from dagloom.errors import ActorUnavailableError, DagloomError
from dagloom.execution.origin import CodeOrigin
from dagloom.messages import RunStatus
from dagloom.messages.rpc import (
    ExecuteRunReply,
    ExecuteRunRequest,
    LaunchRunReply,
    RunEnded,
    StopRunReply,
    StopRunRequest,
    TerminateRunReply,
    WorkerExited,
)
from dagloom.storage.base import FINISHED_STATUSES, RunsFilter
from dagloom.transport import GrpcRef, GrpcTransport

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef


_UNCLAIMED = frozenset({RunStatus.NOT_STARTED, RunStatus.QUEUED, RunStatus.STARTING})
"""Statuses of a run no worker has claimed yet."""


@dataclass(frozen=True, slots=True)
class _Member:
    """One worker process of the pool (the runs it was given are in `_where`)."""

    name: str
    process: Process
    ref: GrpcRef[Any, Any]


class WorkerStartError(DagloomError):
    """A pool worker process exited or stayed silent before it served; `log` has its stderr."""

    def __init__(self, message: str, *, log: str) -> None:
        super().__init__(message)
        self.log = log


class WarmPoolRunLauncher(RunLauncher):
    """Keeps `size` worker processes (`dagloom run-worker --serve`) that imported every code
    location in `origins` at start, and launches a run by telling the least busy one
    `ExecuteRun` over gRPC: launching is a message, not a process start. The launcher
    serves itself on `host` for its members, which tell it `RunEnded` as each run ends:
    the run's watchers in this process (event streams, waits for the end) then read its
    end at once rather than at their next storage poll.

    `run` starts the members one by one and reports ready once all serve (a member that
    fails to start raises `WorkerStartError` naming its log). Each launched run is watched
    in storage too (the fallback when a member's notice is lost); its end is forwarded to
    the coordinator. A member that does not answer
    `ExecuteRun` within `call_timeout` keeps the run (see `RunLauncher._unanswered`); an
    unreachable one is skipped for the next. `TerminateRun` asks the member to
    stop the run (recorded CANCELED by it); when the member is unreachable the launcher
    records the run CANCELED itself. A member that exits is replaced, and its unfinished
    runs are recorded FAILURE (or CANCELED if they were being terminated); a run launched
    while every member is being replaced waits up to `call_timeout` for one to serve.
    Cancelling `run` terminates the members, which record their runs CANCELED.

    Storage must be shared with the members (SQLite or Postgres): an ephemeral instance is
    refused.
    """

    def __init__(
        self,
        instance: DagloomInstance,
        origins: Mapping[str, CodeOrigin],
        *,
        size: int = 2,
        name: str = "run_launcher",
        coordinator: ActorRef[Any, Any] | None = None,
        python: str = sys.executable,
        host: str = "127.0.0.1",
        start_timeout: float = 120.0,
        call_timeout: float = 30.0,
        heartbeat_interval: float = 30.0,
        status_poll_interval: float = 0.25,
        inbox_size: int = 64,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(
            name, instance, coordinator=coordinator, inbox_size=inbox_size, clock=clock
        )
        if size < 1:
            raise ValueError("a warm pool needs at least one worker")
        check_shareable(instance, type(self).__name__)
        self.size = size
        self._origins = dict(origins)
        self._python = python
        self._host = host
        self._start_timeout = start_timeout
        self._call_timeout = call_timeout
        self._heartbeat_interval = heartbeat_interval
        self._status_poll_interval = status_poll_interval
        self._in_flight = anyio.Event()  # set when a run is handed to a member
        self._members: dict[str, _Member] = {}
        self._where: dict[str, str] = {}  # run id -> name of the member executing it
        self._launching: dict[str, anyio.Event] = {}  # run id -> set once its launch ends
        self._asked: dict[str, str] = {}  # run id being launched -> member asked now
        self._terminating: set[str] = set()
        self._grpc: GrpcTransport | None = None
        self._restarting = 0  # members being started again after they exited
        self._joined = anyio.Event()  # set (then replaced) each time a member serves
        self._address = ""  # where this launcher serves its members' `RunEnded`

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the members, serve until cancelled, then terminate the members."""
        self._grpc = GrpcTransport(host=self._host)
        self._grpc.expose(self)
        try:
            async with self._open_children() as tg:
                self._address = await tg.start(self._grpc.run)
                tg.start_soon(self._watch_runs)
                for i in range(self.size):
                    await tg.start(self._member, f"{self.name}.{i}")
                await self.serve(task_status=task_status)
        finally:
            self._grpc.close()

    async def _member(self, name: str, *, task_status: TaskStatus[None]) -> None:
        """Start one member, report it ready once it serves, and watch it until it exits."""
        command = worker_command(
            self._instance.home,
            self._origins,
            python=self._python,
            extra=[
                "--serve",
                "--host",
                self._host,
                "--port",
                "0",
                "--heartbeat-interval",
                str(self._heartbeat_interval),
                "--report-to",
                f"{self.name}@{self._address}",
            ],
        )
        log = log_path(self._instance, name)
        with log.open("ab") as stderr:
            process = await anyio.open_process(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
            )
        try:
            address = await self._read_address(process, log)
            assert self._grpc is not None
            ref = self._grpc.ref(RunWorker, name=_served_name(process), address=address)
            self._members[name] = _Member(name, process, ref)
            self._joined.set()
            self._joined = anyio.Event()
            task_status.started()
            code = await process.wait()
            await self._notify_self(WorkerExited(worker=name, exit_code=code))
        finally:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    process.terminate()  # the member records its runs CANCELED and exits
                    with anyio.move_on_after(10):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                await process.aclose()

    async def _read_address(self, process: Process, log: Any) -> str:
        assert process.stdout is not None
        line = b""
        with anyio.move_on_after(self._start_timeout):
            while not line.endswith(b"\n"):
                try:
                    line += await process.stdout.receive()
                except anyio.EndOfStream:
                    break
        address = line.decode().strip()
        if not address:
            raise WorkerStartError(f"a warm pool worker did not start (see {log})", log=str(log))
        return address

    async def _run_ended(self, run_id: str) -> None:
        # The run's end event is stored: streams of the run in this process read it now.
        self._instance.event_log_storage.wake_run_watchers(run_id)
        while (pending := self._launching.get(run_id)) is not None:
            await pending.wait()  # a member may tell the end before its `ExecuteRun` reply
        if self._where.pop(run_id, None) is None:
            return  # its end was reported already: told by its member and found by the poll
        self._terminating.discard(run_id)
        await self._report_end(run_id)

    async def _launch(self, run_id: str) -> None:
        # Answered from a child task, so the inbox moves on: the runs of one admission
        # round reach the members together rather than one gRPC round trip after another.
        assert self._children is not None, "launches are handled only while serving"
        self._children.start_soon(self._answer_launch, self._detach_reply(), run_id)

    async def _answer_launch(self, slot: ReplySlot[RunLauncherReply] | None, run_id: str) -> None:
        try:
            reply = await self._launch_once(run_id)
        except Exception as exc:  # a supervision point: one launch fails, the launcher lives
            self._log.exception("run_launch_crashed", actor=self.name, run_id=run_id)
            reply = LaunchRunReply(error=f"the launcher failed to launch it: {exc!r}")
        except BaseException:
            if slot is not None:
                slot.set_error(
                    ActorUnavailableError(
                        f"run launcher {self.name!r} stopped while launching run {run_id}",
                        actor=self.name,
                    )
                )
            raise
        if slot is not None:
            slot.set_reply(reply)

    async def _launch_once(self, run_id: str) -> LaunchRunReply:
        """Launch `run_id` unless it is launched or being launched (then wait for that
        launch and answer as it did): one launch of a run at a time, as when launches
        were served one after another."""
        while (pending := self._launching.get(run_id)) is not None:
            await pending.wait()
        if run_id in self._where:
            return LaunchRunReply(worker=self._where[run_id])
        done = self._launching[run_id] = anyio.Event()
        try:
            return await self._give_to_member(run_id)
        finally:
            del self._launching[run_id]
            self._asked.pop(run_id, None)
            done.set()

    async def _give_to_member(self, run_id: str) -> LaunchRunReply:
        if not self._members and self._restarting:
            # Every member exited and is being started again (a retry launched right after
            # its run's worker died): wait for one rather than refuse the run.
            with anyio.move_on_after(self._call_timeout):
                while not self._members:
                    await self._joined.wait()
        errors = []
        # Runs being offered count toward a member's load, so concurrent launches spread.
        load = Counter(self._where.values())
        load.update(self._asked.values())
        for member in sorted(self._members.values(), key=lambda m: load[m.name]):
            self._asked[run_id] = member.name
            try:
                reply = await member.ref.ask(
                    ExecuteRunRequest(run_id=run_id), timeout=self._call_timeout
                )
            except ActorUnavailableError as exc:
                if await self._claimed(run_id):
                    # The member took the run, then its connection broke (it died running
                    # it): the run is its, so its exit records it (`_worker_exited`).
                    await self._keep(run_id, member)
                    return LaunchRunReply(worker=member.name)
                # Not served: the next member may take the run (its claim keeps it single).
                errors.append(f"{member.name}: {exc}")
                continue
            except TimeoutError:
                await self._keep(run_id, member)
                return await self._unanswered(
                    run_id, member.ref, self._call_timeout, name=member.name
                )
            assert isinstance(reply, ExecuteRunReply)
            if not reply.accepted:
                return LaunchRunReply(error=reply.message)
            await self._keep(run_id, member)
            return LaunchRunReply(worker=member.name)
        return LaunchRunReply(error="no warm pool worker is serving: " + "; ".join(errors))

    async def _claimed(self, run_id: str) -> bool:
        """Whether a worker claimed the run (it has moved past STARTING) since it was
        handed to this launcher, which asks one member at a time."""
        run = await self._instance.get_run(run_id)
        return run is not None and run.status not in _UNCLAIMED

    async def _keep(self, run_id: str, member: _Member) -> None:
        """Note that `member` has the run; `_watch_runs` looks out for its end. A member
        that exited while it was being asked (`_worker_exited` has run for it) lost the
        run with it: recorded as `_worker_exited` records its runs."""
        if self._members.get(member.name) is member:
            self._where[run_id] = member.name
            self._in_flight.set()
            return
        run = await self._instance.get_run(run_id)
        if run is None:
            return
        await self._record_worker_lost(
            run,
            terminating=run_id in self._terminating,
            canceled="Run canceled with its worker.",
            failure=f"warm pool worker {member.name} exited",
        )
        self._terminating.discard(run_id)
        await self._report_end(run_id)

    async def _watch_runs(self) -> None:
        """Tell this launcher `RunEnded` for each run in flight once storage shows it ended:
        one read of the in-flight runs that ended every `status_poll_interval` seconds,
        waiting while none is in flight. A failed read is logged and tried again."""
        reported: set[str] = set()
        while True:
            if not self._where:
                self._in_flight = anyio.Event()
                await self._in_flight.wait()
            await anyio.sleep(self._status_poll_interval)
            watched = [run_id for run_id in self._where if run_id not in reported]
            reported.intersection_update(self._where)
            if not watched:
                continue
            try:
                ended = await self._instance.get_runs_async(
                    RunsFilter(run_ids=watched, statuses=sorted(FINISHED_STATUSES))
                )
            except DagloomError as exc:
                self._log.warning("run_status_poll_failed", actor=self.name, error=str(exc))
                continue
            for run in ended:
                reported.add(run.run_id)
                await self._notify_self(RunEnded(run_id=run.run_id))

    async def _terminate(self, run_id: str) -> TerminateRunReply:
        while (pending := self._launching.get(run_id)) is not None:
            await pending.wait()  # a run being launched is stopped once its member has it
        member = self._members.get(self._where.get(run_id, ""))
        if member is None:
            return TerminateRunReply(terminated=False)
        self._terminating.add(run_id)
        try:
            reply = await member.ref.ask(StopRunRequest(run_id=run_id), timeout=self._call_timeout)
            assert isinstance(reply, StopRunReply)
            stopped = reply.stopped
        except (ActorUnavailableError, TimeoutError):
            stopped = False
        if not stopped:
            await self._cancel_unfinished(
                run_id, f"Run canceled; its worker {member.name} was not executing it."
            )
        return TerminateRunReply(terminated=True)

    async def _worker_exited(self, name: str, exit_code: int) -> None:
        member = self._members.pop(name, None)
        if member is None:
            return
        for run_id in sorted(r for r, m in self._where.items() if m == name):
            self._where.pop(run_id, None)
            run = await self._instance.get_run(run_id)
            if run is None:
                continue
            terminating = run_id in self._terminating
            self._terminating.discard(run_id)
            await self._record_worker_lost(
                run,
                terminating=terminating,
                canceled="Run canceled with its worker.",
                failure=f"warm pool worker {name} exited with code {exit_code}",
            )
            await self._report_end(run_id)
        if self._children is not None:
            self._restarting += 1
            self._children.start_soon(self._restart, name)

    async def _restart(self, name: str) -> None:
        assert self._children is not None
        try:
            await self._children.start(self._member, name)
        finally:
            self._restarting -= 1

    config_model: ClassVar[type[BaseModel]] = WarmPoolRunLauncherConfig

    @classmethod
    def from_config(
        cls, config: WarmPoolRunLauncherConfig, context: LauncherContext
    ) -> WarmPoolRunLauncher:
        """The launcher `run_launcher: {class: warm_pool, config}` configures."""
        return cls(
            context.instance,
            context.origins,
            size=config.size,
            host=config.host,
            name=context.name,
            start_timeout=config.start_timeout_seconds,
            heartbeat_interval=heartbeat_interval(config, context.instance),
        )


def _served_name(process: Process) -> str:
    # The worker process names its RunWorker after its pid (see dagloom.cli.run_worker).
    return f"run-worker-{process.pid}"
