"""The backfill loop: submits the runs of requested backfills, a bounded number per round.

Runs go to the run coordinator like any other (a queued coordinator holds them under its
limits). Each run's id is derived from the backfill and the run's index (`_backfills`), and
is also its request id, so a round that is redone (the daemon restarted between submitting
and recording its cursor, or a second daemon took over) submits no partition twice. The
cursor (`num_submitted`) is recorded after every `record_every` submissions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from dagloom.actors.run_coordinator import submit_run
from dagloom.daemon._backfills import next_runs, total_runs
from dagloom.daemon._submit import hold_lease
from dagloom.errors import ConfigError, DefinitionError
from dagloom.execution.events import error_info
from dagloom.messages import Backfill, BackfillStatus
from dagloom.messages.rpc import SubmitRunRequest

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef

_log = structlog.get_logger("dagloom.daemon")


class BackfillLoop:
    """Each round, under the storage lease `backfills` (one daemon at a time), submits up
    to `max_runs_per_tick` runs of the requested backfills, oldest first, and marks a
    backfill COMPLETED once all its runs are submitted. A refused submission (unknown job,
    invalid run config) marks the backfill FAILED with the error; a coordinator that does
    not answer raises, and the next round goes on from the recorded cursor. A backfill
    canceled meanwhile is left alone (its status is re-read before each write)."""

    name = "backfills"
    lease = "backfills"

    def __init__(
        self,
        instance: DagloomInstance,
        coordinator: ActorRef[Any, Any],
        *,
        owner: str,
        interval: float = 1.0,
        max_runs_per_tick: int = 250,
        record_every: int = 25,
        ask_timeout: float = 60.0,
        lease_seconds: float | None = None,
    ) -> None:
        self.interval = interval
        self.submitted: list[str] = []  # run ids the last round submitted
        self._instance = instance
        self._coordinator = coordinator
        self._owner = owner
        self._max_runs = max_runs_per_tick
        self._record_every = max(record_every, 1)
        self._timeout = ask_timeout
        self._lease_seconds = (
            lease_seconds if lease_seconds is not None else max(60.0, 3 * interval)
        )

    async def tick(self, now: float) -> None:
        """One round (see the class). Blocks while the coordinator stores the runs."""
        self.submitted = []
        storage = self._instance.schedule_storage
        if not await hold_lease(
            storage, self.lease, self._owner, now=now, duration=self._lease_seconds
        ):
            return
        runs = self._instance.run_storage
        budget = self._max_runs
        requested = await runs.get_backfills([BackfillStatus.REQUESTED])
        for backfill in reversed(requested):  # oldest first
            if budget <= 0:
                break
            budget -= await self._advance(backfill, budget)

    async def _advance(self, backfill: Backfill, budget: int) -> int:
        """Submit up to `budget` runs of `backfill`; return how many were submitted."""
        planned = next_runs(backfill, budget)
        done = 0
        for run in planned:
            request = SubmitRunRequest(
                location_name=backfill.location_name,
                job_name=backfill.job_name,
                run_config_json=backfill.run_config_json or "{}",
                tags=run.tags,
                asset_selection=list(backfill.asset_selection),
                run_id=run.run_id,
                request_id=run.run_id,
            )
            try:
                await submit_run(self._coordinator, request, timeout=self._timeout)
            except (ConfigError, DefinitionError) as exc:
                await self._record(backfill, done, BackfillStatus.FAILED, exc)
                _log.warning("backfill_failed", backfill_id=backfill.backfill_id, error=str(exc))
                return done
            self.submitted.append(run.run_id)
            done += 1
            if done % self._record_every == 0 and not await self._record(backfill, done):
                return done  # canceled meanwhile
        finished = backfill.num_submitted + done >= total_runs(backfill)
        await self._record(backfill, done, BackfillStatus.COMPLETED if finished else None)
        if finished:
            _log.info("backfill_submitted", backfill_id=backfill.backfill_id)
        return done

    async def _record(
        self,
        backfill: Backfill,
        done: int,
        status: BackfillStatus | None = None,
        error: Exception | None = None,
    ) -> bool:
        """Record the cursor (and a new status); False when the stored backfill is no
        longer REQUESTED (canceled), in which case nothing is written."""
        runs = self._instance.run_storage
        stored = await runs.get_backfill(backfill.backfill_id)
        if stored is None or stored.status != BackfillStatus.REQUESTED:
            return False
        stored.num_submitted = max(stored.num_submitted, backfill.num_submitted + done)
        if status is not None:
            stored.status = status
        if error is not None:
            stored.error = error_info(error)
        await runs.update_backfill(stored)
        return True


__all__ = ["BackfillLoop"]
