"""Whether a sensor is due for a tick, and which of its run requests to act on.

Pure and sync: the sensor loop feeds it the last tick's time, the clock's `now` and the runs
storage holds for the sensor's run keys, and gets back what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dagloom.daemon._tags import RUN_KEY_TAG, derived_run_id
from dagloom.definitions.run_request import RunRequest
from dagloom.definitions.sensor import SENSOR_NAME_TAG
from dagloom.messages import RunStatus


@dataclass(frozen=True, slots=True)
class SensorTickState:
    """What the sensor loop knows about one sensor's timing.

    `last_tick_time` is when its last tick started (seconds since the epoch; None: it never
    ticked); `last_tick_finished` is False when that tick was recorded STARTED and never
    completed (its daemon died mid-tick).
    """

    minimum_interval_seconds: float
    last_tick_time: float | None = None
    last_tick_finished: bool = True


@dataclass(frozen=True, slots=True)
class SensorDue:
    """Whether the sensor ticks now, whether that tick resumes the interrupted one, and the
    earliest time it could next be due (seconds since the epoch)."""

    due: bool
    next_due_at: float
    resume: bool = False


def sensor_due(state: SensorTickState, *, now: float) -> SensorDue:
    """Whether `state`'s sensor is due for a tick at `now`.

    Due when it never ticked, when its last tick never finished (that tick is resumed, so
    the runs it reserved are submitted), or when at least `minimum_interval_seconds` have
    passed since its last tick started. A last tick in the future (the clock went back) is
    due at once rather than stalled until the clock catches up; the tick then recorded puts
    the interval back on course. Idempotent: the same state and `now` give the same answer.
    """
    interval = max(0.0, state.minimum_interval_seconds)
    last = state.last_tick_time
    if last is None:
        return SensorDue(due=True, next_due_at=now)
    if not state.last_tick_finished:
        return SensorDue(due=True, next_due_at=now, resume=True)
    elapsed = now - last
    if elapsed < 0 or elapsed >= interval:
        return SensorDue(due=True, next_due_at=now)
    return SensorDue(due=False, next_due_at=last + interval)


@dataclass(frozen=True, slots=True)
class KeyedRun:
    """A run storage holds for one of the sensor's run keys: its id and status."""

    run_id: str
    status: RunStatus


@dataclass(frozen=True, slots=True)
class SensorSubmissions:
    """What a sensor tick's run requests come to.

    `create` are the requests to create and submit as new runs, in the order the sensor
    returned them. `submit` are the ids of runs created for a key earlier but never
    submitted (NOT_STARTED: a daemon died between the two), to submit now. `skipped_keys`
    are keys whose run already went ahead, and `duplicate_keys` keys requested more than
    once in this tick (only the first request counts).
    """

    create: tuple[RunRequest, ...]
    submit: tuple[str, ...] = ()
    skipped_keys: tuple[str, ...] = ()
    duplicate_keys: tuple[str, ...] = ()


def sensor_submissions(
    requests: Sequence[RunRequest], existing: Mapping[str, KeyedRun]
) -> SensorSubmissions:
    """Dedupe a tick's run requests by run key over the sensor's whole history.

    `existing` maps each run key the sensor has ever created a run for to that run (the
    first one, when a key has several: retries copy their parent's tags). A request without
    a run key always makes a new run. A keyed request makes a new run only when its key is
    not in `existing`; a key whose run is still NOT_STARTED is submitted again instead, so a
    tick interrupted between creating and submitting a run completes it exactly once. Pure:
    the same input gives the same output.
    """
    create: list[RunRequest] = []
    submit: list[str] = []
    skipped: list[str] = []
    duplicates: list[str] = []
    seen: set[str] = set()
    for request in requests:
        key = request.run_key
        if key is None:
            create.append(request)
            continue
        if key in seen:
            if key not in duplicates:
                duplicates.append(key)
            continue
        seen.add(key)
        run = existing.get(key)
        if run is None:
            create.append(request)
        elif run.status == RunStatus.NOT_STARTED:
            submit.append(run.run_id)
        else:
            skipped.append(key)
    return SensorSubmissions(
        create=tuple(create),
        submit=tuple(submit),
        skipped_keys=tuple(skipped),
        duplicate_keys=tuple(duplicates),
    )


@dataclass(frozen=True, slots=True)
class SensorRunIdentity:
    """What names the run a sensor created for one run key, over the sensor's whole history.

    The same identity always gives the same `run_id`, so two daemons (or one before and after
    a crash) acting on the same keyed request create one run: storage refuses a second run
    with an id it holds. `tags` are what the run is tagged with and can be searched by.
    Unkeyed requests have no identity: each makes a new run.
    """

    location_name: str
    sensor_name: str
    run_key: str

    @property
    def run_id(self) -> str:
        """The id of the run for this key; the same on every daemon."""
        return derived_run_id("sensor", self.location_name, self.sensor_name, self.run_key)

    @property
    def tags(self) -> dict[str, str]:
        """`dagloom/sensor_name` and `dagloom/run_key`."""
        return {SENSOR_NAME_TAG: self.sensor_name, RUN_KEY_TAG: self.run_key}
