"""What a run status or asset sensor is evaluated on: pure choices over stored runs and
materializations, and the cursors that remember how far a sensor has seen.

A run status sensor's cursor is `{"end_time": t, "run_id": id}`: the last run it was given,
in (end time, run id) order. Its first tick sees no run: the cursor starts at the newest run
already ended (as in Dagster, a new sensor does not fire for history). An asset sensor's
cursor is the storage id of the last materialization it was given (as a string).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dagloom.messages import EventRecord, Run, RunStatus
from dagloom.messages.rpc import SensorSnapshot

RUNS_PER_TICK = 25
"""The most runs one run status sensor tick is evaluated on; the rest wait for later ticks."""


@dataclass(frozen=True, slots=True)
class RunPosition:
    """Where a run stands in the order a run status sensor sees runs in."""

    end_time: float
    run_id: str

    def cursor(self) -> str:
        return json.dumps({"end_time": self.end_time, "run_id": self.run_id})

    @staticmethod
    def of(run: Run) -> RunPosition:
        return RunPosition(run.end_time, run.run_id)

    @staticmethod
    def parse(cursor: str | None) -> RunPosition | None:
        """The position a stored cursor names, or None for no (or an unreadable) cursor."""
        if not cursor:
            return None
        try:
            data = json.loads(cursor)
            return RunPosition(float(data["end_time"]), str(data["run_id"]))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True, slots=True)
class RunSelection:
    """The runs to evaluate a run status sensor on, oldest first, and its cursor after them."""

    runs: list[Run]
    cursor: str


def monitored_status(sensor: SensorSnapshot) -> RunStatus | None:
    """The run status a run status sensor watches; None for any other sensor."""
    if not sensor.monitored_run_status:
        return None
    return RunStatus[sensor.monitored_run_status]


def select_runs(
    sensor: SensorSnapshot,
    location_name: str,
    runs: Iterable[Run],
    cursor: str | None,
    *,
    limit: int = RUNS_PER_TICK,
) -> RunSelection:
    """The ended runs after `cursor` that the sensor monitors (its status; its jobs, or every
    job; its code location unless it monitors all), at most `limit`, in (end time, run id)
    order. With no cursor, none: the cursor starts after the newest matching run."""
    status = monitored_status(sensor)
    jobs = set(sensor.monitored_job_names)
    matching = sorted(
        (
            run
            for run in runs
            if run.status == status
            and (not jobs or run.job_name in jobs)
            and (sensor.monitor_all_code_locations or run.code_location == location_name)
        ),
        key=lambda run: (run.end_time, run.run_id),
    )
    position = RunPosition.parse(cursor)
    if position is None:
        start = RunPosition.of(matching[-1]) if matching else RunPosition(0.0, "")
        return RunSelection(runs=[], cursor=start.cursor())
    after = (position.end_time, position.run_id)
    chosen = [run for run in matching if (run.end_time, run.run_id) > after][:limit]
    last = RunPosition.of(chosen[-1]) if chosen else position
    return RunSelection(runs=chosen, cursor=last.cursor())


def asset_cursor(cursor: str | None) -> int | None:
    """The storage id an asset sensor's cursor names, or None before its first event."""
    try:
        return int(cursor) if cursor else None
    except ValueError:
        return None


def select_materialization(
    newest_first: Sequence[EventRecord], cursor: str | None
) -> EventRecord | None:
    """The newest materialization after the cursor, or None: as in Dagster, an asset sensor
    is evaluated on the latest new materialization of its asset (older ones it skipped over
    are not evaluated)."""
    after = asset_cursor(cursor)
    if not newest_first:
        return None
    newest = newest_first[0]
    return newest if after is None or newest.storage_id > after else None
