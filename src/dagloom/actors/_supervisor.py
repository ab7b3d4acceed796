"""The supervisor: runs child actors in its task group and restarts the ones that crash."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskStatus

from dagloom._logging import get_logger
from dagloom.actors._backoff import Backoff
from dagloom.actors._runtime import Actor, ActorHealth, Clock

Sleep = Callable[[float], Awaitable[None]]
"""How a supervisor waits out a backoff delay; `anyio.sleep` unless a test injects one."""


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Whether and how a supervisor restarts a crashed actor.

    A non-restartable actor's crash propagates out of `Supervisor.run`, ending its siblings.
    A restartable one is restarted after `backoff.delay(n)`, n counting consecutive crashes
    from 0; a run that lasted `reset_after` seconds starts the count again. After
    `max_restarts` consecutive restarts (None: no limit) the next crash propagates.
    """

    restartable: bool = True
    backoff: Backoff = field(default_factory=Backoff)
    max_restarts: int | None = None
    reset_after: float = 60.0


@dataclass(slots=True)
class _Child:
    actor: Actor[Any, Any]
    policy: RestartPolicy


def unwrap_exception_group(exc: BaseException) -> BaseException:
    """The error inside `exc` when it is an exception group of one (nested groups of one
    too), as a task group makes of what its one failing child raised; else `exc` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class Supervisor:
    """Runs actors as children in its own task group, recording and restarting crashes.

    Every crash is logged through structlog as `actor_crashed` (keys `actor`, `supervisor`,
    `error`, `crashes`, `restart_in`) and shows in the actor's `health()` (restarts, last
    error). Cancellation is never caught: cancelling `run` stops every child, and backoff
    waits are cancelled with it. When `run` exits, for any reason, it closes its children,
    so callers still waiting on them get `ActorUnavailableError` instead of hanging.
    """

    def __init__(
        self,
        name: str = "supervisor",
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._children: list[_Child] = []
        self._running = False
        self._log = get_logger("dagloom.actors")

    def add(self, actor: Actor[Any, Any], policy: RestartPolicy | None = None) -> None:
        """Supervise `actor` under `policy` (restartable with default backoff if None).

        Call before `run`; raises `RuntimeError` afterwards and `ValueError` for a name
        already supervised here.
        """
        if self._running:
            raise RuntimeError(f"supervisor {self.name!r} is running; add children before run")
        if any(child.actor.name == actor.name for child in self._children):
            raise ValueError(f"supervisor {self.name!r} already has an actor {actor.name!r}")
        self._children.append(_Child(actor, policy or RestartPolicy()))

    def health(self) -> list[ActorHealth]:
        """The health of every child, in the order they were added; never blocks."""
        return [child.actor.health() for child in self._children]

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the children in order, each ready before the next starts, then report ready.

        A restartable child that crashes while starting is retried (with backoff) before
        the next one starts. Blocks until every child has returned, or raises (an
        ExceptionGroup, from the task group) what a child that will not be restarted
        raised. Not re-entrant; the children are closed when it exits.
        """
        if self._running:
            raise RuntimeError(f"supervisor {self.name!r} is already running")
        self._running = True
        try:
            async with anyio.create_task_group() as tg:
                for child in self._children:
                    await tg.start(self._supervise, child)
                task_status.started()
        finally:
            for child in self._children:
                child.actor.close()
            self._running = False

    async def _supervise(self, child: _Child, *, task_status: TaskStatus[None]) -> None:
        actor, policy = child.actor, child.policy
        crashes = 0
        reported = False
        while True:
            started_at = self._clock()
            try:
                async with anyio.create_task_group() as tg:
                    await tg.start(actor.run)
                    if not reported:
                        task_status.started()
                        reported = True
                return
            except Exception as exc:  # the supervision point: every crash is recorded here
                error = unwrap_exception_group(exc)  # log the error itself, not its group
                if self._clock() - started_at >= policy.reset_after:
                    crashes = 0
                restart = policy.restartable and (
                    policy.max_restarts is None or crashes < policy.max_restarts
                )
                delay = policy.backoff.delay(crashes) if restart else None
                self._log.error(
                    "actor_crashed",
                    actor=actor.name,
                    supervisor=self.name,
                    error=repr(error),
                    crashes=crashes + 1,
                    restart_in=delay,
                    exc_info=error,
                )
                if delay is None:
                    raise
                crashes += 1
                actor._record_restart(repr(error))
                await self._sleep(delay)
