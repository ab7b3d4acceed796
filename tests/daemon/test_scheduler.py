"""The scheduler loop with an injected clock: a `* * * * *` schedule fires once a minute,
a tick interrupted anywhere is redone without submitting its run twice, and two daemons
(one killed at random points) fire every tick exactly once."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

import dagloom as dg
from dagloom.daemon._instigators import origin_id, toggled
from dagloom.daemon.scheduler import SCHEDULER_LEASE, SchedulerLoop
from dagloom.definitions import Definitions
from dagloom.definitions.schedule import SCHEDULED_EXECUTION_TIME_TAG
from dagloom.errors import ActorUnavailableError, DefinitionError
from dagloom.instance import DagloomInstance
from dagloom.messages import InstigatorType, Run, TickStatus
from dagloom.messages.rpc import EvaluateScheduleRequest

from ._fakes import FailingRef, InProcessLocation, storing_coordinator
from ._stores import BACKENDS, open_instance

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


def catching_up(mode: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="every_minute",
        job=nothing,
        cron_schedule="* * * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        catch_up=mode,
    )


@pytest.mark.parametrize(
    ("mode", "fired"),
    [
        # Down from 12:01:10 to 12:10:10: 12:02 .. 12:10 fell due meanwhile.
        (None, ["12:01", "12:10"]),
        ("latest", ["12:01", "12:10"]),
        ("all", ["12:01", "12:06", "12:07", "12:08", "12:09", "12:10"]),  # the latest 5
        ("none", ["12:01", "12:10"]),  # 12:10 is 10 s late, within the 60 s grace
    ],
)
async def test_each_schedule_catches_up_after_downtime_as_it_chose(
    mode: str | None, fired: list[str]
) -> None:
    defs = Definitions(jobs=[nothing], schedules=[catching_up(mode) if mode else every_minute])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        scheduler = loop(instance, coord, defs=defs, lease_seconds=60)
        await scheduler.tick(T0)  # 12:00:30: first seen, nothing before it is ever due
        await scheduler.tick(T0 + 40)  # 12:01:10
        await scheduler.tick(T0 + 580)  # 12:10:10, after nine minutes down
        assert [m[11:16] for m in minutes(await scheduled_runs(instance))] == fired


async def test_catch_up_none_skips_a_tick_past_the_grace() -> None:
    defs = Definitions(jobs=[nothing], schedules=[catching_up("none")])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        scheduler = loop(instance, coord, defs=defs)
        await scheduler.tick(T0)
        await scheduler.tick(T0 + 40)  # 12:01:10
        await scheduler.tick(T0 + 630)  # 12:11:00: on time; 12:10 is 60 s late, in grace
        await scheduler.tick(T0 + 950)  # 12:16:20: 12:16 on time; 12:12 .. 12:15 past grace
        times = [m[11:16] for m in minutes(await scheduled_runs(instance))]
        assert times == ["12:01", "12:10", "12:11", "12:16"]


def test_a_schedule_refuses_an_unknown_catch_up_naming_itself() -> None:
    with pytest.raises(DefinitionError, match=r"'nightly'.*catch_up"):
        dg.ScheduleDefinition(name="nightly", job=nothing, cron_schedule="0 0 * * *", catch_up="x")


class PausingLocation(InProcessLocation):
    """A location whose first schedule evaluation waits for `resume`, as a daemon paused
    (swapped out, stopped in a debugger) in the middle of a tick would."""

    def __init__(self, name: str, definitions: Definitions) -> None:
        super().__init__(name, definitions)
        self.paused = anyio.Event()
        self.resume = anyio.Event()

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        if isinstance(message, EvaluateScheduleRequest) and not self.paused.is_set():
            self.paused.set()
            await self.resume.wait()
        return await super().ask(message, timeout=timeout)


EVALUATIONS = [0]


@dg.schedule(
    job=nothing,
    cron_schedule="* * * * *",
    name="every_minute",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def each_evaluation_differs(context: Any) -> dg.RunRequest:
    EVALUATIONS[0] += 1
    return dg.RunRequest(run_key=f"e{EVALUATIONS[0]}")


async def test_a_daemon_paused_past_its_lease_cannot_finish_the_tick_another_took_over() -> None:
    EVALUATIONS[0] = 0
    defs = Definitions(jobs=[nothing], schedules=[each_evaluation_differs])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        slow_location = PausingLocation("here", defs)
        slow = SchedulerLoop(
            instance, {"here": cast(Any, slow_location)}, coord, owner="a", lease_seconds=30
        )
        other = loop(instance, coord, owner="b", lease_seconds=30, defs=defs)
        await slow.tick(T0)  # 12:00:30: takes the lease, nothing due yet
        async with anyio.create_task_group() as tg:
            tg.start_soon(slow.tick, T0 + 40)  # 12:01 is recorded STARTED, then "a" pauses
            with anyio.fail_after(10):
                await slow_location.paused.wait()
            # "a"'s lease ran out at 12:01:40; "b" takes it over and redoes the 12:01 tick.
            await other.tick(T0 + 75)
            lease = await instance.schedule_storage.get_lease(SCHEDULER_LEASE)
            assert lease is not None and lease.owner == "b"
            slow_location.resume.set()  # "a" wakes up and tries to go on under its old token
        # "b" evaluated first (run key e1); "a"'s later evaluation (e2) submitted nothing.
        assert EVALUATIONS[0] == 2
        ticks = await instance.schedule_storage.get_ticks(ORIGIN)
        assert [(t.status, t.run_keys) for t in ticks] == [(TickStatus.SUCCESS, ["e1"])]
        runs = await scheduled_runs(instance)
        assert minutes(runs) == ["2026-03-01T12:01:00+00:00"]
        assert ticks[0].run_ids == [runs[0].run_id]


class Killed(Exception):
    """The daemon process died here."""


class KillableRef:
    """A ref to `target` that, once `armed` with a count, raises `Killed` before or after
    delivering that many more asks: a daemon dying at a random point of its round."""

    def __init__(self, target: Any, rng: random.Random) -> None:
        self.target = target
        self.rng = rng
        self.countdown: int | None = None

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        if self.countdown is not None:
            self.countdown -= 1
            if self.countdown <= 0:
                self.countdown = None
                if self.rng.random() < 0.5:
                    raise Killed
                await self.target.ask(message, timeout=timeout)
                raise Killed
        return await self.target.ask(message, timeout=timeout)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_daemons_racing_each_minute_one_killed_mid_round_fire_every_tick_once(
    backend: str, tmp_path: Path
) -> None:
    rng = random.Random(11)
    count = 1000 if backend == "memory" else 100
    defs = Definitions(jobs=[nothing], schedules=[catching_up("all")])
    async with open_instance(backend, tmp_path) as instance, storing_coordinator(instance) as coord:
        locations = [KillableRef(InProcessLocation("here", defs), rng) for _ in range(2)]
        coordinators = [KillableRef(coord, rng) for _ in range(2)]
        daemons = [
            SchedulerLoop(
                instance,
                {"here": cast(Any, locations[i])},
                cast(Any, coordinators[i]),
                owner=name,
                lease_seconds=90,
            )
            for i, name in enumerate(("a", "b"))
        ]
        down_until = [0.0, 0.0]
        kills = 0
        now = T0
        await daemons[0].tick(now)  # first seen at 12:00:30
        for _ in range(count):
            now += 60
            # Now and then, while both are up, arm a death at a random ask of the lease
            # holder's round (so one is always up to carry on).
            armed = any(r.countdown is not None for r in (*locations, *coordinators))
            if rng.random() < 0.1 and max(down_until) <= now and not armed:
                holder = await instance.schedule_storage.get_lease(SCHEDULER_LEASE)
                victim = "ab".index(holder.owner) if holder is not None else rng.randrange(2)
                refs = (locations[victim], coordinators[victim])
                refs[rng.randrange(2)].countdown = rng.randint(1, 3)

            async def round_of(i: int, at: float) -> None:
                nonlocal kills
                if at < down_until[i]:
                    return
                try:
                    await daemons[i].tick(at)
                except Killed:
                    kills += 1
                    down_until[i] = at + rng.choice([30, 120, 300])  # restarts later

            async with anyio.create_task_group() as tg:
                for i in rng.sample(range(2), 2):
                    tg.start_soon(round_of, i, now + rng.random() * 20)
        # A few last minutes with both up, for whichever holds the lease to catch up.
        for ref in (*locations, *coordinators):
            ref.countdown = None
        for _ in range(4):
            now += 60
            await daemons[0].tick(now)
            await daemons[1].tick(now)
        ticks = await instance.schedule_storage.get_ticks(ORIGIN)
        fired = sorted(t.timestamp for t in ticks)
        assert len(fired) == len(set(fired)), "a tick fired twice"
        assert all(t.status == TickStatus.SUCCESS for t in ticks)
        runs = await scheduled_runs(instance)
        times = minutes(runs)
        assert len(times) == len(set(times)), "a minute ran twice"
        assert sorted(r.run_id for r in runs) == sorted(i for t in ticks for i in t.run_ids)
        assert kills > 5
        # The survivor takes the lease over at most 90 s after a death and catches up `all`
        # (at most 5 at once) missed minutes, so no minute since the first is missed.
        first = datetime(2026, 3, 1, 12, 1, tzinfo=UTC).timestamp()
        expected = [first + 60 * m for m in range(int((now - first) // 60) + 1)]
        assert fired == expected
