"""What the run actor tests share: the seed job with a filesystem IO manager, jobs that wait
on events, and waiting for a run to end.

Runs execute on threads of their own, each with its own event loop, so the events a test and
a run's op share are `CrossThreadEvent`s, not anyio's (which belong to one loop).
"""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from dagloom import Definitions, FilesystemIOManager, job, op
from dagloom.actors.job_source import DefinitionsJobSource
from dagloom.actors.run_coordinator import (
    DefaultRunCoordinator,
    JobSourceValidator,
    QueuedRunCoordinator,
)
from dagloom.actors.run_launcher.in_process import InProcessRunLauncher
from dagloom.code.loader import load_definitions
from dagloom.instance import DagloomInstance
from dagloom.messages import Run
from dagloom.transport import MemoryTransport

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "numbers.py"

BLOCKING_LIMIT = 120.0


class CrossThreadEvent:
    """An event set from any thread and awaited on any thread's event loop.

    `wait` blocks its task (not its loop) until `set`; cancelling it only stops the wait.
    `wait_blocking` blocks the calling thread (for sync ops), for at most `BLOCKING_LIMIT`
    seconds: a sync op cannot be cancelled, so a failed test must not leave it blocking the
    stack's shutdown for ever.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flag = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def set(self) -> None:
        with self._lock:
            self._flag.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    def is_set(self) -> bool:
        return self._flag.is_set()

    async def wait(self) -> None:
        with self._lock:
            if self._flag.is_set():
                return
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((asyncio.get_running_loop(), future))
        await future

    def wait_blocking(self) -> None:
        self._flag.wait(BLOCKING_LIMIT)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Events:
    """`CrossThreadEvent`s by name, made on first use; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, CrossThreadEvent] = {}

    def __getitem__(self, name: str) -> CrossThreadEvent:
        with self._lock:
            found = self._events.get(name)
            if found is None:
                found = self._events[name] = CrossThreadEvent()
            return found

    def clear(self) -> None:
        with self._lock:
            self._events.clear()


GATES = Events()
"""Per-test gates an op waits on, by the run's `gate` tag; reset by `fresh_gates`."""
STARTED = Events()
"""Set by the gated op when the run with that `gate` tag has started executing."""
ORDER: list[str] = []
"""The `gate` tags of gated runs, in the order they started executing."""


def fresh_gates() -> None:
    GATES.clear()
    STARTED.clear()
    ORDER.clear()


@op
async def wait_at_gate(context: Any) -> str:
    gate = context.run_tags["gate"]
    ORDER.append(gate)
    STARTED[gate].set()
    await GATES[gate].wait()
    return gate


@job
def gated() -> None:
    wait_at_gate()


@op
def block_at_gate(context: Any) -> str:
    gate = context.run_tags["gate"]
    STARTED[gate].set()
    GATES[gate].wait_blocking()  # blocks the run's thread, as time.sleep would
    return gate


@job
def sync_gated() -> None:
    block_at_gate()


@op
def explode() -> int:
    raise RuntimeError("the op broke")


@op
def never(value: int) -> int:
    return value


@job
def failing() -> None:
    never(explode())


def seed_definitions(io_dir: Path) -> Definitions:
    """The seed's op job, loaded by path, with its outputs pickled under `io_dir`, beside
    the gated (in async or sync code) and failing jobs."""
    seed = load_definitions(python_file=EXAMPLE).get_job_def("process_numbers")
    return Definitions(
        jobs=[seed, gated, sync_gated, failing],
        resources={"io_manager": FilesystemIOManager(base_dir=str(io_dir))},
    )


def stored_output(io_dir: Path, run_id: str, step: str) -> Any:
    with (io_dir / run_id / step / "result").open("rb") as handle:
        return pickle.load(handle)


async def wait_for_end(instance: DagloomInstance, run_id: str) -> Run:
    """Block until the run's terminal event is stored; return the run."""
    async for _ in instance.watch_run_events(run_id):
        pass
    run = await instance.get_run(run_id)
    assert run is not None
    return run


@asynccontextmanager
async def running_stack(
    instance: DagloomInstance, io_dir: Path, *, queued: int | None = None
) -> AsyncIterator[tuple[Any, InProcessRunLauncher]]:
    """A coordinator (queued with that limit, else default) over an in-process launcher,
    both running; yields a ref to the coordinator and the launcher."""
    transport = MemoryTransport()
    jobs = DefinitionsJobSource({"numbers": seed_definitions(io_dir)})
    launcher = InProcessRunLauncher(instance, jobs, heartbeat_interval=3600)
    coordinator: DefaultRunCoordinator | QueuedRunCoordinator
    if queued is None:
        coordinator = DefaultRunCoordinator(
            instance, transport.ref(launcher), validator=JobSourceValidator(jobs)
        )
    else:
        coordinator = QueuedRunCoordinator(
            instance,
            transport.ref(launcher),
            max_concurrent_runs=queued,
            dequeue_interval=None,
            validator=JobSourceValidator(jobs),
        )
    launcher.report_to(transport.ref(coordinator))
    async with anyio.create_task_group() as tg:
        await tg.start(launcher.run)
        await tg.start(coordinator.run)
        yield transport.ref(coordinator), launcher
        tg.cancel_scope.cancel()


@asynccontextmanager
async def coordinator_over(
    instance: DagloomInstance, launcher: Any, jobs: Any
) -> AsyncIterator[Any]:
    """A default coordinator over `launcher`, validating against `jobs`, both running;
    yields a ref to the coordinator."""
    transport = MemoryTransport()
    coordinator = DefaultRunCoordinator(
        instance, transport.ref(launcher), validator=JobSourceValidator(jobs)
    )
    launcher.report_to(transport.ref(coordinator))
    async with anyio.create_task_group() as tg:
        await tg.start(launcher.run)
        await tg.start(coordinator.run)
        yield transport.ref(coordinator)
        tg.cancel_scope.cancel()


@asynccontextmanager
async def definitions_stack(
    instance: DagloomInstance, defs: Definitions, location: str = "here"
) -> AsyncIterator[Any]:
    """A default coordinator over an in-process launcher running `defs` as `location`, both
    running; yields a ref to the coordinator."""
    jobs = DefinitionsJobSource({location: defs})
    launcher = InProcessRunLauncher(instance, jobs, heartbeat_interval=3600)
    async with coordinator_over(instance, launcher, jobs) as coordinator:
        yield coordinator
