"""What the scheduler and sensor loops share: reading the code locations' snapshots, holding
a loop's lease, turning a tick's run requests into submissions, and recording a tick.

A submission carries a run id derived from what the run is for (`ScheduledRunIdentity`,
`SensorRunIdentity`) and the same value as its request id, so submitting it again (a tick
redone after a crash, a second daemon) returns the run stored the first time and launches
nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from dagloom.actors.run_coordinator import submit_run
from dagloom.errors import ConfigError, DefinitionError
from dagloom.execution.events import error_info
from dagloom.messages import ErrorInfo, Tick, TickStatus
from dagloom.messages.rpc import (
    EvaluateScheduleRequest,
    EvaluateSensorRequest,
    GetSnapshotRequest,
    LocationSnapshot,
    RunRequestMessage,
    SubmitRunRequest,
    TickResult,
)
from dagloom.storage.base import Fence, ScheduleStorage
from dagloom.transport import ActorRef

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance

_log = structlog.get_logger("dagloom.daemon")


@dataclass(frozen=True, slots=True)
class Location:
    """A code location the loop serves: its name, a ref to its actor, its latest snapshot."""

    name: str
    ref: ActorRef[Any, Any]
    snapshot: LocationSnapshot


async def loaded_locations(
    locations: Mapping[str, ActorRef[Any, Any]], *, ask_timeout: float
) -> tuple[list[Location], list[Exception]]:
    """The snapshots of the locations that answer and loaded their code, and what the
    others raised (a location that is down holds up none of the rest)."""
    found: list[Location] = []
    problems: list[Exception] = []
    for name, ref in locations.items():
        try:
            snapshot = await ref.ask(GetSnapshotRequest(), timeout=ask_timeout)
        except Exception as exc:  # a supervision point: one location being down stops none else
            _log.warning("daemon_location_unavailable", location=name, error=repr(exc))
            problems.append(exc)
            continue
        assert isinstance(snapshot, LocationSnapshot)
        if snapshot.load_error is not None and not snapshot.schedules and not snapshot.sensors:
            continue
        found.append(Location(name, ref, snapshot))
    return found, problems


async def hold_lease(
    storage: ScheduleStorage, name: str, owner: str, *, now: float, duration: float
) -> Fence | None:
    """Take or renew the loop's lease and return its fence; None when another daemon holds
    it (this round is then theirs). A daemon that stops renewing loses it `duration`
    seconds later, and with it every write under the returned fence."""
    lease = await storage.acquire_lease(name, owner, duration=duration, now=now)
    return lease.fence if lease is not None else None


class LeasedInstigatorLoop:
    """What the scheduler and sensor loops hold alike: the instance, the code locations, the
    coordinator runs are submitted to, this daemon's id as lease owner, and the lease.

    A subclass names its `lease` and calls `_leased_locations(now)` at the start of a round;
    the round's storage writes then go under `fence`, the lease's fencing token, so a daemon
    paused past its lease has them refused (`LeaseLostError`) once another took the lease,
    and ends its round there. `lease_seconds` defaults to three intervals, at least 60 s.
    """

    name: str
    lease: str

    def __init__(
        self,
        instance: DagloomInstance,
        locations: Mapping[str, ActorRef[Any, Any]],
        coordinator: ActorRef[Any, Any],
        *,
        owner: str,
        interval: float,
        lease_seconds: float | None,
        ask_timeout: float,
    ) -> None:
        self.interval = interval
        self._instance = instance
        self._locations = dict(locations)
        self._coordinator = coordinator
        self._owner = owner
        self._lease_seconds = (
            lease_seconds if lease_seconds is not None else max(60.0, 3 * interval)
        )
        self._timeout = ask_timeout
        self.fence: Fence | None = None
        self._log = structlog.get_logger("dagloom.daemon").bind(loop=self.name)

    async def _leased_locations(self, now: float) -> tuple[list[Location], list[Exception]] | None:
        """None when another daemon holds the lease (the round is theirs); otherwise the
        locations that answered and what the others raised (`loaded_locations`)."""
        storage = self._instance.schedule_storage
        self.fence = await hold_lease(
            storage, self.lease, self._owner, now=now, duration=self._lease_seconds
        )
        if self.fence is None:
            return None
        return await loaded_locations(self._locations, ask_timeout=self._timeout)

    async def _evaluated(
        self, location: Location, request: EvaluateScheduleRequest | EvaluateSensorRequest
    ) -> TickResult:
        """The code location's answer to `request`; an evaluation that does not answer
        within the ask timeout becomes a result with the `timed_out` error."""
        try:
            result = await location.ref.ask(request, timeout=self._timeout)
        except TimeoutError:
            return TickResult(error=timed_out(self._timeout))
        assert isinstance(result, TickResult)
        return result

    async def _submit(self, submissions: list[SubmitRunRequest]) -> Submitted:
        """Submit a tick's runs, unless the lease was lost meanwhile (`LeaseLostError`):
        an evaluation may take long, and the new holder redoes the tick."""
        if submissions and self.fence is not None:
            await self._instance.schedule_storage.check_fence(self.fence)
        return await submit_all(self._coordinator, submissions, ask_timeout=self._timeout)


def submission(
    location: str,
    request: RunRequestMessage,
    *,
    default_job: str,
    run_id: str,
    tags: Mapping[str, str],
) -> SubmitRunRequest:
    """The submission of one requested run, under the derived `run_id` (also its request
    id), with `tags` on top of the request's own."""
    return SubmitRunRequest(
        location_name=location,
        job_name=request.job_name or default_job,
        run_config_json=request.run_config_json,
        tags={**request.tags, **tags},
        asset_selection=list(request.asset_selection),
        asset_check_selection=list(request.asset_check_selection),
        run_id=run_id,
        request_id=run_id,
    )


@dataclass(slots=True)
class Submitted:
    """What submitting a tick's runs came to: the stored runs' ids and the refusals."""

    run_ids: list[str] = field(default_factory=list)
    errors: list[ErrorInfo] = field(default_factory=list)


async def submit_all(
    coordinator: ActorRef[Any, Any], submissions: list[SubmitRunRequest], *, ask_timeout: float
) -> Submitted:
    """Submit each run in order; a refused one (unknown job, bad run config) is recorded
    and the rest go on. A coordinator that does not answer raises (`ActorUnavailableError`,
    `TimeoutError`): the tick stays unfinished and is redone, which is safe because every
    submission is idempotent."""
    done = Submitted()
    for request in submissions:
        try:
            run = await submit_run(coordinator, request, timeout=ask_timeout)
        except (ConfigError, DefinitionError) as exc:
            done.errors.append(error_info(exc))
            continue
        done.run_ids.append(run.run_id)
    return done


def named_error(error: ErrorInfo, kind: str, name: str) -> ErrorInfo:
    """`error` with a message that says which schedule or sensor met it."""
    return ErrorInfo(
        cls_name=error.cls_name,
        message=f"{kind} {name!r} failed: {error.message}",
        stack=error.stack,
        cause=error.cause,
    )


def finished(
    tick: Tick,
    *,
    now: float,
    run_ids: list[str],
    run_keys: list[str],
    skip_reason: str = "",
    error: ErrorInfo | None = None,
) -> Tick:
    """`tick` ended at `now`: FAILURE with `error`, else SUCCESS when it stored runs, else
    SKIPPED (with `skip_reason`)."""
    ended = Tick.parse(bytes(tick))
    ended.tick_id = tick.tick_id
    ended.end_time = now
    ended.run_ids = list(run_ids)
    ended.run_keys = list(run_keys)
    ended.skip_reason = skip_reason
    if error is not None:
        ended.status = TickStatus.FAILURE
        ended.error = error
    elif run_ids:
        ended.status = TickStatus.SUCCESS
    else:
        ended.status = TickStatus.SKIPPED
    return ended


def timed_out(timeout: float) -> ErrorInfo:
    """The error of an evaluation the code location did not answer in `timeout` seconds."""
    return ErrorInfo(
        cls_name="UserCodeTimeoutError",
        message=f"no answer from the code location in {timeout:g}s",
    )
