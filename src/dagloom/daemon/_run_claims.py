"""Per-run claims: a short storage lease on one run, taken by a daemon loop before it acts
on that run (ends it, resumes it, retries it), so loops of several daemons over one storage
do not act on one run at once.

A claim is taken per action, never per poll: a loop judges runs from what it has read, and
claims only a run it means to act on; under the claim it reads the run again and judges it
afresh, since another daemon may have acted meanwhile. The lease carries a fencing token:
before each write the holder checks it (`ScheduleStorage.check_fence`), so a holder paused
past its lease stops once another has claimed the run. The run's moves are compare-and-set
besides (`DagloomInstance.transition_run`), so even two holders could not both move it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.storage.base import Fence

RUN_CLAIM_PREFIX = "run_claim/"
"""Leases named `run_claim/<run id>` are per-run claims."""

DEFAULT_RUN_CLAIM_SECONDS = 300.0
"""How long a claim holds when its holder dies without releasing it."""


def run_claim_name(run_id: str) -> str:
    """The lease name of the claim on run `run_id`."""
    return f"{RUN_CLAIM_PREFIX}{run_id}"


class RunClaims:
    """Takes per-run claims as `owner` (one owner per loop of one daemon), each held for at
    most `duration` seconds from the `now` it is taken at (the wall clock, which every
    daemon over the storage shares)."""

    def __init__(
        self,
        instance: DagloomInstance,
        owner: str,
        *,
        duration: float = DEFAULT_RUN_CLAIM_SECONDS,
    ) -> None:
        self.owner = owner
        self._instance = instance
        self._duration = duration

    @contextlib.asynccontextmanager
    async def claim(self, run_id: str, now: float) -> AsyncIterator[Fence | None]:
        """Claim run `run_id` at `now` for the block: yields the claim's `Fence`, or None
        when another owner holds it (the block should then leave the run alone). Released
        on leaving the block, even when it is cancelled."""
        storage = self._instance.schedule_storage
        name = run_claim_name(run_id)
        lease = await storage.acquire_lease(name, self.owner, duration=self._duration, now=now)
        if lease is None:
            yield None
            return
        try:
            yield lease.fence
        finally:
            with anyio.CancelScope(shield=True):
                await storage.release_lease(name, self.owner)
