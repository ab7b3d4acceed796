"""Two daemons over one storage, killed at points hypothesis chooses: each runs the
scheduler and run-queue loops every minute, and a kill stops its process dead at a chosen
storage call or ask (before it or right after it), leases left held. Whatever the kill
points, the other daemon carries on: every tick is recorded once and succeeds, every
scheduled minute and every queued run runs once, no run is admitted (moved to STARTING or
launched) twice, and the queue's limit is never exceeded."""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dagloom as dg
from dagloom.daemon._instigators import origin_id
from dagloom.daemon.queue_loop import RunQueueLoop
from dagloom.daemon.scheduler import SchedulerLoop
from dagloom.definitions import Definitions
from dagloom.definitions.schedule import SCHEDULED_EXECUTION_TIME_TAG
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, InstigatorType, Run, RunStatus, TickStatus
from dagloom.messages.rpc import LaunchRunReply, LaunchRunRequest
from dagloom.storage.base import RunsFilter

from ._fakes import InProcessLocation, storing_coordinator
from ._stores import move, open_instance

T0 = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC).timestamp()
LIMIT = 4
ROUNDS = 16
QUIET = 12
"""Rounds at the end with no kill and no submission by hand: each kill stalls admission
and the schedule for at most two rounds (the 90 s leases), so these drain any backlog."""
ORIGIN = origin_id(InstigatorType.SCHEDULE, "here", "every_minute")


@dg.op
def noop() -> None:
    pass


@dg.job
def nothing() -> None:
    noop()


DEFS = Definitions(
    jobs=[nothing],
    schedules=[
        dg.ScheduleDefinition(
            name="every_minute",
            job=nothing,
            cron_schedule="* * * * *",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            catch_up="all",
        )
    ],
)


class Killed(BaseException):
    """The daemon's process died here: no `except Exception` of the daemon sees it."""


@dataclass
class KillSwitch:
    """Counts a daemon's calls to storage and asks to other actors; at call number
    `at` the process dies, before the call or right after it (`after`). Dead, every
    further call raises, so nothing it would do in a `finally` (releasing a lease)
    happens, as after SIGKILL."""

    at: int | None = None
    after: bool = False
    calls: int = 0
    dead: bool = False

    async def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        await anyio.lowlevel.checkpoint()  # the other daemon may act between any two calls
        if self.dead:
            raise Killed
        self.calls += 1
        if self.at is not None and self.calls >= self.at:
            self.dead = True
            if self.after:
                await method(*args, **kwargs)
            raise Killed
        return await method(*args, **kwargs)


class Killable:
    """`target` as one daemon process sees it: every coroutine method goes through the
    switch; `schedule_storage` is wrapped the same way."""

    def __init__(self, target: Any, switch: KillSwitch) -> None:
        self._target = target
        self._switch = switch

    @property
    def schedule_storage(self) -> Any:
        return Killable(self._target.schedule_storage, self._switch)

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._target, name)
        if not inspect.iscoroutinefunction(found):
            return found

        async def through_switch(*args: Any, **kwargs: Any) -> Any:
            return await self._switch.call(found, *args, **kwargs)

        return through_switch


@dataclass
class Launcher:
    """The run launcher: takes each run to STARTED (a worker claimed it), records every
    launch, and the number of runs in progress at each."""

    instance: DagloomInstance
    launched: list[str] = field(default_factory=list)
    in_progress: list[int] = field(default_factory=list)
    actor: str = "run_launcher"

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        assert isinstance(message, LaunchRunRequest)
        await anyio.lowlevel.checkpoint()
        # The launcher is an actor of its own: a daemon that dies (or gives up waiting) while
        # a launch is in flight does not stop the launcher from finishing it.
        with anyio.CancelScope(shield=True):
            self.launched.append(message.run_id)
            moved = await move(self.instance, message.run_id, EventType.RUN_START, T0)
            assert moved.applied, f"run {message.run_id} was launched but not STARTING"
            running = RunsFilter(statuses=[RunStatus.STARTING, RunStatus.STARTED])
            self.in_progress.append(await self.instance.get_runs_count(running))
        return LaunchRunReply(worker="w")


@dataclass
class Process:
    """One daemon process: its loops, as an owner of its own, behind one kill switch."""

    scheduler: SchedulerLoop
    queue: RunQueueLoop
    switch: KillSwitch


def start_process(
    instance: DagloomInstance, coordinator: Any, launcher: Launcher, owner: str
) -> Process:
    switch = KillSwitch()
    view = cast(Any, Killable(instance, switch))
    location = Killable(InProcessLocation("here", DEFS), switch)
    scheduler = SchedulerLoop(
        view,
        {"here": cast(Any, location)},
        cast(Any, Killable(coordinator, switch)),
        owner=owner,
        lease_seconds=90,
    )
    queue = RunQueueLoop(
        view,
        cast(Any, Killable(launcher, switch)),
        max_concurrent_runs=LIMIT,
        owner=owner,
        lease_seconds=90,
    )
    return Process(scheduler, queue, switch)


Kill = tuple[int, int, int, bool, int]
"""(round, daemon, call number, after the call, minutes down)."""

KILLS = st.lists(
    st.tuples(
        st.integers(0, ROUNDS - 1),
        st.integers(0, 1),
        st.integers(1, 14),
        st.booleans(),
        st.integers(1, 6),
    ),
    max_size=5,
)


async def end_round(instance: DagloomInstance, launcher: Launcher, now: float) -> None:
    """What the workers and run monitoring do between rounds: runs that started end, and
    a run left STARTING by a daemon that died before launching it is failed."""
    for run in await instance.get_runs(RunsFilter(statuses=[RunStatus.STARTED])):
        await move(instance, run.run_id, EventType.RUN_SUCCESS, now)
    for run in await instance.get_runs(RunsFilter(statuses=[RunStatus.STARTING])):
        assert run.run_id not in launcher.launched
        await move(instance, run.run_id, EventType.RUN_FAILURE, now)


async def crash_scenario(backend: str, tmp_path: Path, kills: list[Kill]) -> None:
    async with open_instance(backend, tmp_path) as instance, storing_coordinator(instance) as coord:
        launcher = Launcher(instance)
        restarts = 0

        def fresh(i: int) -> Process:
            nonlocal restarts
            restarts += 1
            return start_process(instance, coord, launcher, f"daemon{i}-{restarts}")

        processes = [fresh(0), fresh(1)]
        down_until = [0.0, 0.0]
        died = 0
        now = T0
        for round_ in range(ROUNDS + QUIET):
            now += 60
            if round_ < ROUNDS:  # a run submitted by hand, besides the scheduled one
                await instance.create_run(
                    Run(job_name="nothing", status=RunStatus.QUEUED, create_time=now)
                )
            for at_round, victim, call, after, minutes in kills:
                # Only one daemon is ever down, so the other carries on.
                other_up = down_until[1 - victim] <= now
                if at_round == round_ and other_up and processes[victim].switch.at is None:
                    switch = processes[victim].switch
                    switch.at, switch.after = switch.calls + call, after
                    down_until[victim] = now + 60 * minutes

            async def round_of(i: int, at: float) -> None:
                nonlocal died
                process = processes[i]
                if process.switch.dead:
                    if at < down_until[i]:
                        return
                    processes[i] = process = fresh(i)  # restarted, as a new owner
                try:
                    await process.scheduler.tick(at)
                    await process.queue.tick(at)
                except* Killed:
                    died += 1

            async with anyio.create_task_group() as tg:
                for i in (0, 1):
                    tg.start_soon(round_of, i, now + 5 * i)
            await end_round(instance, launcher, now + 30)

        ticks = await instance.schedule_storage.get_ticks(ORIGIN)
        fired = [t.timestamp for t in ticks]
        assert len(fired) == len(set(fired)), "a tick fired twice"
        assert all(t.status == TickStatus.SUCCESS for t in ticks)
        runs = await instance.get_runs()
        scheduled = [r.tags[SCHEDULED_EXECUTION_TIME_TAG] for r in runs if r.tags]
        assert len(scheduled) == len(set(scheduled)), "a minute ran twice"
        assert sorted(len(t.run_ids) for t in ticks) == [1] * len(ticks)
        assert Counter(launcher.launched).most_common(1)[0][1] == 1, "a run launched twice"
        for run in runs:
            starting = await instance.get_events(run.run_id, event_types=[EventType.RUN_STARTING])
            assert len(starting) <= 1, f"run {run.run_id} was admitted twice"
        assert max(launcher.in_progress) <= LIMIT
        # The quiet rounds at the end drain the queue, whoever died when.
        left = await instance.get_runs(RunsFilter(statuses=[RunStatus.QUEUED]))
        assert left == []
        assert all(r.status in (RunStatus.SUCCESS, RunStatus.FAILURE) for r in runs)
        if kills:
            assert died >= 1


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(kills=KILLS)
def test_daemons_killed_anywhere_leave_no_tick_or_admission_doubled(kills: list[Kill]) -> None:
    anyio.run(crash_scenario, "memory", Path(), kills)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(kills=KILLS)
def test_daemons_killed_anywhere_on_shared_storage(
    backend: str, tmp_path_factory: pytest.TempPathFactory, kills: list[Kill]
) -> None:
    anyio.run(crash_scenario, backend, tmp_path_factory.mktemp("crash"), kills)
