"""Retrying storage operations that failed on a fault that may pass, for a bounded time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from dagloom._logging import get_logger
from dagloom.actors._backoff import Backoff
from dagloom.errors import StorageUnavailableError

T = TypeVar("T")

RETRY_TIMEOUT = 30.0
"""Seconds a storage operation keeps being retried after its first failure before the error
surfaces: long enough to ride out a Postgres failover or restart, short enough that a run on
storage that is gone ends within a minute."""

STORAGE_BACKOFF = Backoff(initial=0.05, maximum=2.0)
"""Waits between attempts: 50 ms, 100 ms, ... capped at 2 s, so a connection dropped once
is reconnected at once and a server that is down is not hammered."""

_log = get_logger("dagloom.storage")


def retry_deadline_passed(first_failure: float, now: float, timeout: float) -> bool:
    """Whether an operation that first failed at `first_failure` is past its retry budget."""
    return now - first_failure >= timeout


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    timeout: float,  # noqa: ASYNC109  # a retry budget, not a deadline on one call
    operation: str,
    location: str,
    backoff: Backoff = STORAGE_BACKOFF,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Await `attempt()` until it returns, retrying a `StorageUnavailableError` with
    `backoff` for `timeout` seconds after the first failure; then raise the last error.

    Any other error is raised at once. Cancellation stops the retries (between attempts it
    interrupts the wait; during one, it goes to the attempt). `attempt` must be safe to run
    again after a failure (a read, or a write that either committed wholly or not at all and
    knows which).
    """
    first_failure: float | None = None
    tries = 0
    while True:
        try:
            return await attempt()
        except StorageUnavailableError as exc:
            now = clock()
            if first_failure is None:
                first_failure = now
            if retry_deadline_passed(first_failure, now, timeout):
                final = StorageUnavailableError(
                    f"{exc} (gave up after {tries + 1} attempts in {now - first_failure:.1f} s)",
                    operation=exc.operation or operation,
                )
                final.location = exc.location
                raise final from exc
            delay = backoff.delay(tries)
            tries += 1
            _log.warning(
                "storage_retrying",
                location=location,
                operation=exc.operation or operation,
                attempt=tries,
                delay=round(delay, 3),
                error=str(exc),
            )
        await anyio.sleep(delay)
