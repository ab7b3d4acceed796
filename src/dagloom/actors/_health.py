"""The health reporter: the actor behind the `Health` service, answering pings with heartbeats."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import assert_never

from dagloom.actors._runtime import Actor, ActorHealth, Clock
from dagloom.messages.rpc import ActorHeartbeat, HealthBase, PingReply, PingRequest

HealthSource = Callable[[], Iterable[ActorHealth]]
"""Where a reporter reads heartbeats from, e.g. `Supervisor.health`."""


class HealthReporter(Actor[PingRequest, PingReply]):
    """Answers `Ping` with the health of the actors `source` reports, itself included.

    Stateless, so it is safe to restart and to ask concurrently through any transport.
    """

    service = HealthBase

    def __init__(
        self,
        source: HealthSource,
        *,
        name: str = "health",
        inbox_size: int = 64,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(name, inbox_size=inbox_size, clock=clock)
        self._source = source

    async def handle(self, message: PingRequest) -> PingReply:
        match message:
            case PingRequest():
                seen = {h.actor: h for h in self._source()}
                seen.setdefault(self.name, self.health())
                return PingReply(actors=[_heartbeat(h) for h in seen.values()], time=self._clock())
            case _:
                assert_never(message)


def _heartbeat(health: ActorHealth) -> ActorHeartbeat:
    return ActorHeartbeat(
        actor=health.actor,
        ready=health.ready,
        heartbeat=health.heartbeat,
        restarts=health.restarts,
        last_error=health.last_error or "",
    )
