"""The Dask run launcher: each run's worker is a long-lived task on a Dask cluster."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
from anyio.abc import TaskStatus
from pydantic import BaseModel, ConfigDict, Field

from dagloom.actors._runtime import Clock
from dagloom.actors.job_source import pick_location, unknown_location
from dagloom.actors.run_launcher._process import check_shareable
from dagloom.actors.run_launcher.base import RunLauncher
from dagloom.actors.run_launcher.config import LauncherContext, heartbeat_interval
from dagloom.execution.origin import CodeOrigin
from dagloom.messages.rpc import LaunchRunReply, RunEnded, TerminateRunReply, WorkerExited

if TYPE_CHECKING:
    from distributed import Client, Future

    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef

__all__ = ["DaskRunLauncher", "DaskRunLauncherConfig", "run_task_key", "stop_event_name"]


class DaskRunLauncherConfig(BaseModel):
    """`run_launcher: {module: dagloom.dask, class: DaskRunLauncher, config: ...}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str  # the scheduler, e.g. tcp://scheduler-host:8786
    home: str | None = None  # DAGLOOM_HOME as the Dask workers see it (default: this one's)
    heartbeat_interval_seconds: float = Field(default=30.0, gt=0)
    terminate_grace_seconds: float = Field(default=30.0, ge=0)
    connect_timeout_seconds: float = Field(default=30.0, gt=0)


def run_task_key(run_id: str) -> str:
    """The Dask key of the task that is `run_id`'s worker."""
    return f"dagloom-run:{run_id}"


def stop_event_name(run_id: str) -> str:
    """The Dask `Event` that, once set, stops `run_id`'s worker task."""
    return f"dagloom-stop:{run_id}"


def run_worker_task(
    home: str, origins: Mapping[str, CodeOrigin], run_id: str, heartbeat_interval: float
) -> None:
    """Execute the stored run `run_id` on this Dask worker; blocks until the run ended.

    Leaves the worker's thread pool (`secede`) first, so a long run does not hold a slot
    its own steps (on the Dask executor) need. Heartbeats into storage like any run worker.
    Setting the Dask event `stop_event_name(run_id)` stops the run, recorded CANCELED.
    """
    from distributed import Event, get_client, secede

    from dagloom.cli.run_worker import execute_one

    secede()
    stop = Event(stop_event_name(run_id), client=get_client())

    async def stop_requested() -> None:
        # Event.wait blocks a thread; short waits let the thread end with the run.
        while not await anyio.to_thread.run_sync(stop.wait, 1.0, abandon_on_cancel=True):
            pass

    anyio.run(
        lambda: execute_one(
            Path(home), dict(origins), run_id, heartbeat_interval, stop_requested=stop_requested
        )
    )


class DaskRunLauncher(RunLauncher):
    """Launches each run as a fire-and-forget task on the Dask cluster at `address`.

    The task (`run_worker_task`) opens the instance at `home` (as the Dask workers see it;
    storage must be shared, SQLite on one host or Postgres: an ephemeral instance is
    refused), imports the run's code location, claims the run and executes it, heartbeating
    into storage so run monitoring tells a lost worker from a slow one. `LaunchRun` replies
    once the task is submitted. The run goes on if this launcher stops.

    `TerminateRun` sets the run's stop event: the task cancels the run, recorded CANCELED; a
    run still unfinished `terminate_grace` seconds later (its task never started, or its
    worker is gone) is recorded CANCELED here. A task that ends with an error or is lost
    leaves an unfinished run recorded FAILURE naming the error. Every end is told to the
    coordinator.
    """

    def __init__(
        self,
        instance: DagloomInstance,
        origins: Mapping[str, CodeOrigin],
        *,
        address: str,
        home: str | None = None,
        name: str = "run_launcher",
        coordinator: ActorRef[Any, Any] | None = None,
        heartbeat_interval: float = 30.0,
        terminate_grace: float = 30.0,
        connect_timeout: float = 30.0,
        inbox_size: int = 64,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(
            name, instance, coordinator=coordinator, inbox_size=inbox_size, clock=clock
        )
        check_shareable(instance, type(self).__name__)
        self.address = address
        self._home = home or str(instance.home)
        self._origins = dict(origins)
        self._heartbeat_interval = heartbeat_interval
        self._grace = terminate_grace
        self._connect_timeout = connect_timeout
        self._client: Client | None = None
        self._futures: dict[str, Future[None]] = {}
        self._errors: dict[str, str] = {}
        self._terminating: set[str] = set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect to the scheduler, serve until cancelled, then disconnect (runs go on)."""
        from distributed import Client

        client = await Client(
            self.address, asynchronous=True, set_as_default=False, timeout=self._connect_timeout
        )
        try:
            async with self._open_children():
                self._client = client
                await self.serve(task_status=task_status)
        finally:
            self._client = None
            # Fire-and-forget tasks outlive the client; a cancelled launcher still closes it.
            with anyio.CancelScope(shield=True):
                await client.close()

    async def _launch(self, run_id: str) -> LaunchRunReply:
        from distributed import fire_and_forget

        if run_id in self._futures:
            return LaunchRunReply(worker=run_task_key(run_id))
        run = await self._instance.get_run(run_id)
        if run is None:
            return LaunchRunReply(error=f"no run with id {run_id!r}")
        location = pick_location(run.code_location, self._origins)
        origin = self._origins.get(location)
        if origin is None:
            return LaunchRunReply(error=str(unknown_location(run.code_location, self._origins)))
        assert self._client is not None, "a launcher serves only while connected"
        future = self._client.submit(
            run_worker_task,
            self._home,
            {location: origin},
            run_id,
            self._heartbeat_interval,
            key=run_task_key(run_id),
            pure=False,
            retries=0,
        )
        fire_and_forget(future)
        self._futures[run_id] = future
        assert self._children is not None
        self._children.start_soon(self._watch, run_id, future)
        return LaunchRunReply(worker=run_task_key(run_id))

    async def _watch(self, run_id: str, future: Future[None]) -> None:
        """Wait for the run's task to end; an error is kept for `_worker_exited`."""
        try:
            await future
        except Exception as exc:  # the task failed or was lost: recorded by _worker_exited
            self._errors[run_id] = f"{type(exc).__name__}: {exc}"
            await self._notify_self(WorkerExited(worker=run_id, exit_code=1))
        else:
            await self._notify_self(WorkerExited(worker=run_id, exit_code=0))

    async def _worker_exited(self, run_id: str, exit_code: int) -> None:
        self._futures.pop(run_id, None)
        terminating = run_id in self._terminating
        self._terminating.discard(run_id)
        error = self._errors.pop(run_id, f"its Dask task {run_task_key(run_id)} ended")
        run = await self._instance.get_run(run_id)
        if run is not None:
            await self._record_worker_lost(
                run,
                terminating=terminating,
                canceled="Run canceled; its Dask task was stopped.",
                failure=f"its Dask task {run_task_key(run_id)} failed: {error}",
            )
        await self._report_end(run_id)

    async def _terminate(self, run_id: str) -> TerminateRunReply:
        from distributed import Event

        future = self._futures.get(run_id)
        if future is None:
            return TerminateRunReply(terminated=False)
        self._terminating.add(run_id)
        assert self._client is not None
        await Event(stop_event_name(run_id), client=self._client).set()
        assert self._children is not None
        self._children.start_soon(self._cancel_after_grace, run_id, future)
        return TerminateRunReply(terminated=True)

    async def _cancel_after_grace(self, run_id: str, future: Future[None]) -> None:
        """Record `run_id` CANCELED if its task has not ended it `terminate_grace` seconds
        after the stop, and cancel the task (one still queued never starts)."""
        with anyio.move_on_after(self._grace):
            async for _ in self._instance.watch_run_events(run_id):
                pass
            return
        await self._cancel_unfinished(
            run_id, f"Run canceled; its Dask task did not stop within {self._grace:g} s."
        )
        if self._client is not None:
            await self._client.cancel([future], force=True)
        await self._notify_self(RunEnded(run_id=run_id))

    config_model: ClassVar[type[BaseModel]] = DaskRunLauncherConfig

    @classmethod
    def from_config(
        cls, config: DaskRunLauncherConfig, context: LauncherContext
    ) -> DaskRunLauncher:
        """The launcher `run_launcher: {module: dagloom.dask, class: DaskRunLauncher}`
        configures."""
        return cls(
            context.instance,
            context.origins,
            address=config.address,
            home=config.home,
            name=context.name,
            heartbeat_interval=heartbeat_interval(config, context.instance),
            terminate_grace=config.terminate_grace_seconds,
            connect_timeout=config.connect_timeout_seconds,
        )
