"""The daemon actor: hosts the control loops, ticks each on its interval, and reports how
each one is doing (heartbeats in storage, `GetStatus` on its inbox)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import assert_never

import anyio
import structlog
from anyio.abc import TaskStatus

from dagloom.actors._runtime import Actor, Clock
from dagloom.daemon._loop import DaemonLoop
from dagloom.errors import DagloomError
from dagloom.execution.events import error_info
from dagloom.messages import DaemonHeartbeat, ErrorInfo
from dagloom.messages.rpc import (
    DaemonBase,
    DaemonLoopStatus,
    DaemonStatusReply,
    DaemonStatusRequest,
)
from dagloom.storage.base import ScheduleStorage

Sleep = Callable[[float], Awaitable[None]]
"""How the daemon waits between rounds (`anyio.sleep`; tests inject a fake clock's)."""


@dataclass(slots=True)
class _LoopState:
    """What the daemon remembers about one loop since it started."""

    loop: DaemonLoop
    rounds: int = 0
    last_heartbeat: float = 0.0
    last_error: ErrorInfo | None = None
    last_error_time: float = 0.0


class Daemon(Actor[DaemonStatusRequest, DaemonStatusReply]):
    """Runs each of `loops` every `loop.interval` seconds until cancelled.

    After each round (`loop.tick(now)`, `now` from `clock`) it writes the loop's heartbeat
    to `storage` (daemon type = the loop's name), with the error the round raised, if any;
    an `Exception` from a round is logged and kept as the loop's last error, and the loop
    goes on at its next interval. A round that overruns its interval delays only its own
    loop. Cancelling the daemon cancels the rounds in flight; loops must therefore keep
    their work idempotent (ticks recorded before runs are submitted, derived run ids), which
    is also what makes a second daemon on the same storage harmless. Restarting it (a
    supervisor calls `run` again) keeps the counters and starts every loop afresh.
    """

    service = DaemonBase

    def __init__(
        self,
        storage: ScheduleStorage,
        loops: Sequence[DaemonLoop],
        *,
        name: str = "daemon",
        daemon_id: str | None = None,
        clock: Clock = time.time,
        sleep: Sleep = anyio.sleep,
        inbox_size: int = 64,
    ) -> None:
        super().__init__(name, inbox_size=inbox_size, clock=clock)
        names = [loop.name for loop in loops]
        if len(set(names)) != len(names):
            raise ValueError(f"daemon loops must have distinct names, got {names}")
        self._storage = storage
        self._loops = [_LoopState(loop) for loop in loops]
        self._sleep = sleep
        self.daemon_id = daemon_id or str(uuid.uuid4())
        self._log = structlog.get_logger("dagloom.daemon")

    @property
    def loops(self) -> list[DaemonLoop]:
        """The loops this daemon runs, in the order given."""
        return [state.loop for state in self._loops]

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start every loop, then serve status requests; runs until cancelled."""
        async with self._open_children() as tg:
            for state in self._loops:
                tg.start_soon(self._run_loop, state)
            await self.serve(task_status=task_status)

    async def run_round(self, name: str) -> ErrorInfo | None:
        """Do one round of the loop called `name` now and record its heartbeat; return what
        the round raised (None if nothing). `KeyError` for an unknown loop name.

        What `run` does on every interval; tests call it directly with an injected clock.
        """
        state = next((s for s in self._loops if s.loop.name == name), None)
        if state is None:
            raise KeyError(name)
        return await self._round(state)

    async def _run_loop(self, state: _LoopState) -> None:
        while True:
            await self._round(state)
            await self._sleep(max(state.loop.interval, 0.0))

    async def _round(self, state: _LoopState) -> ErrorInfo | None:
        loop = state.loop
        now = self._clock()
        error: ErrorInfo | None = None
        try:
            await loop.tick(now)
        except Exception as exc:  # a supervision point: one failed round, the loop goes on
            self._log.exception("daemon_loop_failed", actor=self.name, loop=loop.name)
            error = error_info(exc)
            state.last_error = error
            state.last_error_time = now
        state.rounds += 1
        state.last_heartbeat = self._clock()
        heartbeat = DaemonHeartbeat(
            daemon_type=loop.name,
            daemon_id=self.daemon_id,
            timestamp=state.last_heartbeat,
            errors=[error] if error is not None else [],
            last_error=state.last_error,
            last_error_time=state.last_error_time,
            interval=loop.interval,
        )
        try:
            await self._storage.add_daemon_heartbeat(heartbeat)
        except DagloomError as exc:
            # Storage being away is itself the loop's news; the next round tries again.
            self._log.error(
                "daemon_heartbeat_failed", actor=self.name, loop=loop.name, error=str(exc)
            )
        return error

    def status(self) -> DaemonStatusReply:
        """Each loop's rounds, last heartbeat and last error since this daemon started."""
        return DaemonStatusReply(
            daemon_id=self.daemon_id,
            loops=[
                DaemonLoopStatus(
                    name=s.loop.name,
                    interval=s.loop.interval,
                    last_heartbeat=s.last_heartbeat,
                    rounds=s.rounds,
                    last_error=s.last_error,
                    last_error_time=s.last_error_time,
                )
                for s in self._loops
            ],
        )

    async def handle(self, message: DaemonStatusRequest) -> DaemonStatusReply:
        match message:
            case DaemonStatusRequest():
                return self.status()
            case _:
                assert_never(message)
