"""Stored schedule and sensor states: running by stored status else by default, the
definition's fields kept up to date without touching status or start time, and lookup by
name."""

from __future__ import annotations

import pytest

from dagloom.daemon._instigators import (
    find_state,
    is_running,
    origin_id,
    refreshed,
    schedule_state,
    sensor_state,
    started_at,
    toggled,
)
from dagloom.errors import DefinitionError
from dagloom.messages import InstigatorStatus, InstigatorType
from dagloom.messages.rpc import ScheduleSnapshot, SensorSnapshot

HOURLY = ScheduleSnapshot(name="hourly", cron_schedules=["0 * * * *"], job_name="etl")


def test_a_declared_state_follows_the_definitions_default() -> None:
    stopped = schedule_state("loc", HOURLY, now=10.0)
    assert stopped.origin_id == origin_id(InstigatorType.SCHEDULE, "loc", "hourly")
    assert not is_running(stopped)
    running = sensor_state("loc", SensorSnapshot(name="s", default_running=True), now=10.0)
    assert is_running(running) and started_at(running) == 10.0


def test_toggling_overrides_the_default_and_resets_the_start_time() -> None:
    state = sensor_state("loc", SensorSnapshot(name="s", default_running=True), now=10.0)
    stopped = toggled(state, running=False, now=20.0)
    assert stopped.status == InstigatorStatus.STOPPED and not is_running(stopped)
    started = toggled(stopped, running=True, now=30.0)
    assert is_running(started) and started_at(started) == 30.0


def test_refreshing_keeps_status_start_and_cursor_and_writes_only_changes() -> None:
    seen = schedule_state("loc", HOURLY, now=10.0)
    assert refreshed(None, seen) is seen
    stored = toggled(seen, running=True, now=20.0)
    stored.cursor = "c"
    assert refreshed(stored, schedule_state("loc", HOURLY, now=99.0)) is None
    changed = ScheduleSnapshot(name="hourly", cron_schedules=["30 * * * *"], job_name="etl")
    update = refreshed(stored, schedule_state("loc", changed, now=99.0))
    assert update is not None
    assert update.cron_schedules == ["30 * * * *"]
    assert (update.status, update.update_time, update.cursor) == (
        InstigatorStatus.RUNNING,
        20.0,
        "c",
    )


def test_find_state_names_what_is_known_and_asks_to_pick_a_location() -> None:
    a = schedule_state("a", HOURLY, now=0.0)
    b = schedule_state("b", HOURLY, now=0.0)
    assert find_state([a, b], InstigatorType.SCHEDULE, "hourly", "b") is b
    with pytest.raises(DefinitionError, match="several code locations"):
        find_state([a, b], InstigatorType.SCHEDULE, "hourly")
    with pytest.raises(DefinitionError, match="no schedule named 'daily'; known: hourly"):
        find_state([a], InstigatorType.SCHEDULE, "daily")
    with pytest.raises(DefinitionError, match="no sensor named 'hourly'"):
        find_state([a], InstigatorType.SENSOR, "hourly")
