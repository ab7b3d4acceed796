"""What the loop tests share: a code location answered in-process from a Definitions, a
coordinator that stores runs QUEUED and launches none, and refs that fail on purpose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio

from dagloom.actors.code_location import evaluate_schedule, evaluate_sensor
from dagloom.actors.run_coordinator import QueuedRunCoordinator
from dagloom.code.snapshot import location_snapshot
from dagloom.definitions import Definitions
from dagloom.errors import ActorUnavailableError
from dagloom.instance import DagloomInstance
from dagloom.messages.rpc import EvaluateScheduleRequest, EvaluateSensorRequest, GetSnapshotRequest
from dagloom.transport import ActorRef, MemoryTransport


class InProcessLocation:
    """A code location ref answered from `definitions` in this process, counting asks."""

    def __init__(self, name: str, definitions: Definitions) -> None:
        self.name = name
        self.definitions = definitions
        self.snapshot = location_snapshot(definitions, location_name=name, loaded_at=0.0)
        self.evaluations = 0

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        await anyio.lowlevel.checkpoint()
        match message:
            case GetSnapshotRequest():
                return self.snapshot
            case EvaluateScheduleRequest():
                self.evaluations += 1
                return evaluate_schedule(self.definitions, message, now=0.0)
            case EvaluateSensorRequest():
                self.evaluations += 1
                return evaluate_sensor(self.definitions, message)
        raise AssertionError(f"unexpected {message!r}")


class FailingRef:
    """A ref to `target` that raises `ActorUnavailableError` on chosen asks: before
    delivering them (`before`) or after they were served (`after`), by 1-based number."""

    def __init__(
        self,
        target: ActorRef[Any, Any],
        *,
        before: frozenset[int] = frozenset(),
        after: frozenset[int] = frozenset(),
    ) -> None:
        self.target = target
        self.before = before
        self.after = after
        self.asks = 0

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        self.asks += 1
        if self.asks in self.before:
            raise ActorUnavailableError("killed before the ask", actor="run_coordinator")
        reply = await self.target.ask(message, timeout=timeout)
        if self.asks in self.after:
            raise ActorUnavailableError("killed after the ask", actor="run_coordinator")
        return reply


@asynccontextmanager
async def storing_coordinator(instance: DagloomInstance) -> AsyncIterator[ActorRef[Any, Any]]:
    """A running coordinator that stores every submitted run QUEUED and admits none."""
    coordinator = QueuedRunCoordinator(
        instance, cast(Any, None), max_concurrent_runs=0, dequeue_interval=None
    )
    async with anyio.create_task_group() as tg:
        await tg.start(coordinator.run)
        yield MemoryTransport().ref(coordinator)
        tg.cancel_scope.cancel()
