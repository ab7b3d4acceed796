"""Test actors for the runtime and supervisor tests, built on the real Health service."""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus

from dagloom.actors import ActorHealth, HealthReporter
from dagloom.messages.rpc import PingReply, PingRequest


class Flaky(HealthReporter):
    """Crashes in its first `failures` runs before serving; then crashes handling a ping
    while `crash_on_ping` is set. Records how its runs ended."""

    def __init__(self, name: str = "flaky", *, failures: int = 0) -> None:
        super().__init__(self._report, name=name)
        self.failures = failures
        self.runs = 0
        self.cancelled = 0
        self.crash_on_ping = False

    def _report(self) -> list[ActorHealth]:
        if self.crash_on_ping:
            raise RuntimeError("ping crash")
        return []

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise RuntimeError(f"start crash {self.runs}")
        try:
            await self.serve(task_status=task_status)
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise


class Slow(HealthReporter):
    """Holds every ping until `gate` opens; sets `entered` when it starts one."""

    def __init__(self, name: str = "slow", **kwargs: object) -> None:
        super().__init__(list, name=name, **kwargs)  # type: ignore[arg-type]
        self.entered = anyio.Event()
        self.gate = anyio.Event()

    async def handle(self, message: PingRequest) -> PingReply:
        self.entered.set()
        await self.gate.wait()
        return await super().handle(message)


class RecordingSleep:
    """A supervisor sleep that returns at once and remembers each delay."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await anyio.lowlevel.checkpoint()


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
