"""Schedules, sensors and the daemon through a real API server: list them with their state
and next tick, start and stop them, read their ticks, and each daemon loop's heartbeat and
last error, through `AsyncClient`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import anyio
import pytest

import dagloom as dg
from dagloom.api import AsyncClient
from dagloom.api.server import ApiServer, DagloomApiService
from dagloom.daemon.daemon import Daemon
from dagloom.daemon.scheduler import SchedulerLoop
from dagloom.daemon.sensors import SensorLoop
from dagloom.definitions import Definitions
from dagloom.errors import DefinitionError
from dagloom.instance import DagloomInstance
from dagloom.messages import InstigatorType, TickStatus
from tests.daemon._fakes import InProcessLocation, storing_coordinator


@dg.op
def noop() -> None:
    pass


@dg.job
def nothing() -> None:
    noop()


every_minute = dg.ScheduleDefinition(
    name="every_minute",
    job=nothing,
    cron_schedule="* * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


@dg.sensor(job=nothing, minimum_interval_seconds=30)
def keyed(context: Any) -> dg.RunRequest:
    return dg.RunRequest(run_key="only-once")


DEFS = Definitions(jobs=[nothing], schedules=[every_minute], sensors=[keyed])


class Flaky:
    """A daemon loop whose every round fails."""

    name = "flaky"
    interval = 3600.0

    async def tick(self, now: float) -> None:
        raise RuntimeError("the flaky loop broke")


@asynccontextmanager
async def served() -> AsyncIterator[tuple[AsyncClient, Daemon]]:
    """An API server over an instance whose daemon (not running its loops on its own: the
    test runs their rounds) has the scheduler, sensor and a failing loop."""
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        location = cast(Any, InProcessLocation("here", DEFS))
        locations = {"here": location}
        loops = [
            SchedulerLoop(instance, locations, coord, owner="d1"),
            SensorLoop(instance, locations, coord, owner="d1"),
            Flaky(),
        ]
        daemon = Daemon(instance.schedule_storage, loops)
        server = ApiServer(DagloomApiService(instance, coord, locations))
        async with anyio.create_task_group() as tg:
            address = await tg.start(server.run)
            async with AsyncClient.connect(address) as client:
                yield client, daemon
            tg.cancel_scope.cancel()


async def test_instigators_are_listed_started_stopped_and_their_ticks_read() -> None:
    async with served() as (client, daemon):
        assert await client.list_instigators() == []
        await daemon.run_round("scheduler")
        await daemon.run_round("sensors")
        listed = {i.state.name: i for i in await client.list_instigators()}
        assert set(listed) == {"every_minute", "keyed"}
        schedule, sensor = listed["every_minute"], listed["keyed"]
        assert schedule.running and not sensor.running
        assert schedule.state.instigator_type == InstigatorType.SCHEDULE
        next_minute = datetime.fromtimestamp(schedule.next_tick_time, UTC)
        assert next_minute.second == 0 and 0 < schedule.next_tick_time - time.time() <= 60
        assert sensor.next_tick_time == 0 and sensor.last_tick is None
        only_sensors = await client.list_instigators(InstigatorType.SENSOR)
        assert [i.state.name for i in only_sensors] == ["keyed"]

        started = await client.start_instigator(InstigatorType.SENSOR, "keyed")
        assert started.running and started.next_tick_time > 0
        await daemon.run_round("sensors")
        ticks = await client.get_ticks(InstigatorType.SENSOR, "keyed", location_name="here")
        assert [t.status for t in ticks] == [TickStatus.SUCCESS]
        assert ticks[0].run_keys == ["only-once"] and len(ticks[0].run_ids) == 1
        (after,) = await client.list_instigators(InstigatorType.SENSOR)
        assert after.last_tick is not None and after.last_tick.tick_id == ticks[0].tick_id
        # Next due 30 s after that tick.
        assert after.next_tick_time == pytest.approx(ticks[0].timestamp + 30)

        stopped = await client.stop_instigator(InstigatorType.SCHEDULE, "every_minute")
        assert not stopped.running and stopped.next_tick_time == 0
        (schedule,) = await client.list_instigators(InstigatorType.SCHEDULE)
        assert not schedule.running
        assert await client.get_ticks(InstigatorType.SCHEDULE, "every_minute") == []


async def test_an_unknown_instigator_is_refused_naming_the_known_ones() -> None:
    async with served() as (client, daemon):
        await daemon.run_round("sensors")
        with pytest.raises(DefinitionError, match="no sensor named 'nope'; known: keyed"):
            await client.start_instigator(InstigatorType.SENSOR, "nope")
        with pytest.raises(DefinitionError, match="no schedule named 'keyed'"):
            await client.get_ticks(InstigatorType.SCHEDULE, "keyed")
        with pytest.raises(DefinitionError, match="no sensor named 'keyed'"):
            await client.get_ticks(InstigatorType.SENSOR, "keyed", location_name="elsewhere")


async def test_daemon_status_shows_each_loops_heartbeat_and_last_error() -> None:
    async with served() as (client, daemon):
        empty = await client.daemon_status()
        assert empty.loops == [] and not empty.healthy
        for name in ("scheduler", "sensors", "flaky"):
            await daemon.run_round(name)
        status = await client.daemon_status()
        by_name = {loop.heartbeat.daemon_type: loop for loop in status.loops}
        assert list(by_name) == ["flaky", "scheduler", "sensors"]
        assert all(loop.healthy for loop in status.loops) and status.healthy
        flaky = by_name["flaky"].heartbeat
        assert flaky.last_error is not None and "the flaky loop broke" in flaky.last_error.message
        assert by_name["scheduler"].heartbeat.last_error is None
        assert {loop.heartbeat.daemon_id for loop in status.loops} == {daemon.daemon_id}
