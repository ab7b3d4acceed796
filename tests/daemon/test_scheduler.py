"""The scheduler loop with an injected clock: a `* * * * *` schedule fires once a minute,
a tick interrupted anywhere is redone without submitting its run twice, and two daemons
(one killed at random points) fire every tick exactly once."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any, cast

import pytest

import dagloom as dg
from dagloom.daemon._instigators import origin_id, toggled
from dagloom.daemon.scheduler import SchedulerLoop
from dagloom.definitions import Definitions
from dagloom.definitions.schedule import SCHEDULED_EXECUTION_TIME_TAG
from dagloom.errors import ActorUnavailableError
from dagloom.instance import DagloomInstance
from dagloom.messages import InstigatorType, Run, TickStatus

from ._fakes import FailingRef, InProcessLocation, storing_coordinator

T0 = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC).timestamp()


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
stopped_by_default = dg.ScheduleDefinition(
    name="stopped_by_default", job=nothing, cron_schedule="* * * * *"
)


@dg.schedule(
    job=nothing, cron_schedule="* * * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)
def broken(context: Any) -> dg.RunRequest:
    raise RuntimeError("the schedule broke")


@dg.schedule(
    job=nothing, cron_schedule="* * * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)
def unknown_job(context: Any) -> dg.RunRequest:
    return dg.RunRequest(job_name="no_such_job")


DEFS = Definitions(jobs=[nothing], schedules=[every_minute, stopped_by_default])
ORIGIN = origin_id(InstigatorType.SCHEDULE, "here", "every_minute")


def loop(
    instance: DagloomInstance,
    coordinator: Any,
    *,
    owner: str = "d1",
    defs: Definitions = DEFS,
    **kw: Any,
) -> SchedulerLoop:
    location = InProcessLocation("here", defs)
    return SchedulerLoop(instance, {"here": cast(Any, location)}, coordinator, owner=owner, **kw)


async def scheduled_runs(instance: DagloomInstance) -> list[Run]:
    return await instance.get_runs()


def minutes(runs: list[Run]) -> list[str]:
    return sorted(r.tags[SCHEDULED_EXECUTION_TIME_TAG] for r in runs)


async def test_an_every_minute_schedule_fires_once_per_minute() -> None:
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        scheduler = loop(instance, coord)
        for step in range(0, 5 * 60 + 1, 10):
            await scheduler.tick(T0 + step)
        runs = await scheduled_runs(instance)
        # First seen at 12:00:30, so 12:01 .. 12:05 are due and nothing before.
        assert minutes(runs) == [f"2026-03-01T12:0{m}:00+00:00" for m in range(1, 6)]
        assert {r.job_name for r in runs} == {"nothing"}
        ticks = await instance.schedule_storage.get_ticks(ORIGIN)
        assert [t.status for t in ticks] == [TickStatus.SUCCESS] * 5
        assert all(len(t.run_ids) == 1 for t in ticks)
        # The default-stopped schedule is recorded but never ticks.
        other = origin_id(InstigatorType.SCHEDULE, "here", "stopped_by_default")
        assert await instance.schedule_storage.get_instigator_state(other) is not None
        assert await instance.schedule_storage.get_ticks(other) == []


async def test_a_stopped_schedule_stops_and_a_started_one_resumes_without_catching_up() -> None:
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        scheduler = loop(instance, coord)
        await scheduler.tick(T0 + 30)  # 12:01
        storage = instance.schedule_storage
        state = await storage.get_instigator_state(ORIGIN)
        assert state is not None
        await storage.set_instigator_state(toggled(state, running=False, now=T0 + 40))
        await scheduler.tick(T0 + 150)  # 12:03: stopped, nothing fires
        assert len(await scheduled_runs(instance)) == 1
        state = await storage.get_instigator_state(ORIGIN)
        assert state is not None
        await storage.set_instigator_state(toggled(state, running=True, now=T0 + 200))  # 12:03:50
        await scheduler.tick(T0 + 215)  # 12:04:05
        # 12:02 and 12:03 fell due while stopped and are never fired.
        assert minutes(await scheduled_runs(instance))[-1] == "2026-03-01T12:04:00+00:00"
        assert len(await scheduled_runs(instance)) == 2


@pytest.mark.parametrize("when", ["before_submit", "after_submit"])
async def test_a_tick_interrupted_around_its_submission_is_redone_with_one_run(when: str) -> None:
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        failing = FailingRef(
            coord, **{"before" if when == "before_submit" else "after": frozenset({1})}
        )
        first = loop(instance, failing, owner="dead", lease_seconds=20)
        with pytest.raises(ActorUnavailableError):
            await first.tick(T0 + 30)  # the 12:01 tick is recorded, then the daemon "dies"
        ticks = await instance.schedule_storage.get_ticks(ORIGIN)
        assert [t.status for t in ticks] == [TickStatus.STARTED]
        stored = len(await scheduled_runs(instance))
        assert stored == (0 if when == "before_submit" else 1)
        # A restarted daemon (a new owner) waits out the dead one's lease, then redoes it.
        restarted = loop(instance, coord, owner="restarted", lease_seconds=20)
        await restarted.tick(T0 + 40)
        assert (await instance.schedule_storage.get_ticks(ORIGIN))[0].status == TickStatus.STARTED
        await restarted.tick(T0 + 55)
        runs = await scheduled_runs(instance)
        assert minutes(runs) == ["2026-03-01T12:01:00+00:00"]
        ticks = await instance.schedule_storage.get_ticks(ORIGIN)
        assert [t.status for t in ticks] == [TickStatus.SUCCESS]
        assert ticks[0].run_ids == [runs[0].run_id]


async def test_two_daemons_killed_at_random_fire_each_of_many_ticks_once() -> None:
    rng = random.Random(7)
    count = 1000
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        daemons = [loop(instance, coord, owner=name, lease_seconds=90) for name in ("a", "b")]
        alive = [True, True]
        now = T0
        for _ in range(count):
            now += 60
            # Now and then one daemon dies or comes back; at least one is always up.
            if rng.random() < 0.05:
                victim = rng.randrange(2)
                alive[victim] = not alive[victim]
                if not any(alive):
                    alive[1 - victim] = True
            for i in rng.sample(range(2), 2):
                if alive[i]:
                    await daemons[i].tick(now + rng.random() * 20)
        runs = await scheduled_runs(instance)
        times = minutes(runs)
        assert len(times) == len(set(times))
        ticks = await instance.schedule_storage.get_ticks(ORIGIN)
        fired = [t.timestamp for t in ticks]
        assert len(fired) == len(set(fired))
        # Every minute was fired once, except those missed while the lease passed between
        # daemons (the latest missed minute is caught up, as in Dagster).
        assert len(runs) == len(ticks) > count * 0.9


async def test_two_daemons_firing_the_same_tick_at_once_store_one_run() -> None:
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        # A zero lease lets both act in the same round, as after a pause longer than the lease.
        a = loop(instance, coord, owner="a", lease_seconds=0)
        b = loop(instance, coord, owner="b", lease_seconds=0)
        for step in range(30, 600, 60):
            await a.tick(T0 + step)
            await b.tick(T0 + step)
        times = minutes(await scheduled_runs(instance))
        assert len(times) == 10 and len(set(times)) == 10


async def test_a_schedule_that_raises_or_names_an_unknown_job_records_a_failed_tick() -> None:
    defs = Definitions(jobs=[nothing], schedules=[broken, unknown_job, every_minute])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        scheduler = loop(instance, coord, defs=defs)
        await scheduler.tick(T0 + 30)
        storage = instance.schedule_storage
        [raised] = await storage.get_ticks(origin_id(InstigatorType.SCHEDULE, "here", "broken"))
        assert raised.status == TickStatus.FAILURE
        assert raised.error is not None and "schedule 'broken' failed" in raised.error.message
        assert "the schedule broke" in raised.error.message
        [unknown] = await storage.get_ticks(
            origin_id(InstigatorType.SCHEDULE, "here", "unknown_job")
        )
        assert unknown.status == TickStatus.FAILURE
        assert unknown.error is not None and "no_such_job" in unknown.error.message
        # The others went on.
        assert len(await scheduled_runs(instance)) == 1
