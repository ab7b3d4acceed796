"""The run queue loop on real storage: queue loops racing in several daemons never admit
more runs than the limits allow, and never one run twice."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from dagloom.actors.run_coordinator import ADMISSION_LEASE, IN_PROGRESS, admit_queued_runs
from dagloom.daemon import TagConcurrencyLimit
from dagloom.daemon.queue_loop import RunQueueLoop
from dagloom.messages import EventType, RunStatus
from dagloom.messages.rpc import LaunchRunReply, LaunchRunRequest
from dagloom.storage.base import RunsFilter

from ._stores import BACKENDS, move, open_instance, run_at

T0 = 1_000_000.0


class FakeLauncher:
    """Takes every run (it stays STARTING, so it counts against the limits), yielding to
    the loop first so racing admissions interleave; remembers each launch."""

    actor = "run_launcher"

    def __init__(
        self, launched: list[str], on_launch: Callable[[], Awaitable[object]] | None = None
    ) -> None:
        self.launched = launched
        self._on_launch = on_launch

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - the ActorRef signature
        assert isinstance(message, LaunchRunRequest)
        await anyio.lowlevel.checkpoint()
        self.launched.append(message.run_id)
        if self._on_launch is not None:
            await self._on_launch()
        return LaunchRunReply(worker="fake")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_racing_queue_loops_never_exceed_the_limits(backend: str, tmp_path: Path) -> None:
    async with open_instance(backend, tmp_path) as instance:
        launched: list[str] = []
        submitted: list[str] = []

        async def submit_urgent() -> None:
            # Submissions keep arriving while the loops admit, ahead of everything queued,
            # so loops reading the queue at different moments would pick different runs.
            urgent = await run_at(
                instance, RunStatus.QUEUED, at=T0 + 50, tags={"dagloom/priority": "9"}
            )
            submitted.append(urgent.run_id)

        loops = [
            RunQueueLoop(
                instance,
                FakeLauncher(launched, submit_urgent),  # type: ignore[arg-type]
                max_concurrent_runs=4,
                tag_limits=[TagConcurrencyLimit("team", 1, "red")],
            )
            for _ in range(3)
        ]
        red = [
            await run_at(instance, RunStatus.QUEUED, at=T0 + i, tags={"team": "red"})
            for i in range(3)
        ]
        other = [await run_at(instance, RunStatus.QUEUED, at=T0 + 10 + i) for i in range(8)]
        for round_ in range(4):
            async with anyio.create_task_group() as tg:
                for loop in loops:
                    tg.start_soon(loop.tick, T0 + 100 + round_)
            in_progress = await instance.get_runs(RunsFilter(statuses=[RunStatus.STARTING]))
            assert len(in_progress) == 4
            assert sum(r.tags.get("team") == "red" for r in in_progress) == 1
        assert len(launched) == len(set(launched)) == 4
        # The first red run is admitted; the red runs behind it do not block the others.
        assert launched[0] == red[0].run_id
        assert set(launched[1:]) == {r.run_id for r in other[:3]}
        assert len(submitted) == 4  # and none of them found room


async def test_a_queue_loop_admits_by_priority_and_a_paused_queue_admits_nothing(
    tmp_path: Path,
) -> None:
    async with open_instance("sqlite", tmp_path) as instance:
        launched: list[str] = []
        low = await run_at(instance, RunStatus.QUEUED, at=T0)
        high = await run_at(instance, RunStatus.QUEUED, at=T0 + 1, tags={"dagster/priority": "5"})
        paused = RunQueueLoop(instance, FakeLauncher(launched), max_concurrent_runs=0)  # type: ignore[arg-type]
        await paused.tick(T0 + 5)
        assert launched == [] and paused.launched == []
        loop = RunQueueLoop(instance, FakeLauncher(launched), max_concurrent_runs=1)  # type: ignore[arg-type]
        await loop.tick(T0 + 5)
        assert launched == loop.launched == [high.run_id]
        stored = await instance.get_run(low.run_id)
        assert stored is not None and stored.status == RunStatus.QUEUED


async def test_a_paused_queue_reads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """`max_concurrent_runs: 0` admits nothing whatever is stored, so a coordinator asked to
    admit at every run's end costs no storage read."""
    async with open_instance("memory", Path()) as instance:
        await run_at(instance, RunStatus.QUEUED, at=T0)

        async def no_read(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a paused queue read storage")

        monkeypatch.setattr(instance, "get_runs_count_async", no_read)
        monkeypatch.setattr(instance, "get_runs_async", no_read)
        launched: list[str] = []
        admitted = await admit_queued_runs(
            instance,
            FakeLauncher(launched),  # type: ignore[arg-type]
            max_concurrent_runs=0,
            owner="a",
            clock=lambda: T0,
        )
        assert admitted == launched == []


class CountingLauncher:
    """Takes every run, and records the most runs it ever saw in progress while taking one."""

    actor = "run_launcher"

    def __init__(self, instance: Any) -> None:
        self.instance = instance
        self.launched: list[str] = []
        self.most_in_progress = 0

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - the ActorRef signature
        assert isinstance(message, LaunchRunRequest)
        self.launched.append(message.run_id)
        in_progress = await self.instance.get_runs_count(RunsFilter(statuses=list(IN_PROGRESS)))
        self.most_in_progress = max(self.most_in_progress, in_progress)
        return LaunchRunReply(worker="fake")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_queue_loops_racing_submissions_and_ends_stay_within_the_limit(
    backend: str, tmp_path: Path
) -> None:
    """Three daemons' queue loops tick at once while runs of random priorities keep
    arriving and admitted runs keep ending: at no launch are more than `max_concurrent_runs`
    runs in progress, and no run is launched twice."""
    rng = random.Random(7)
    async with open_instance(backend, tmp_path) as instance:
        launcher = CountingLauncher(instance)
        loops = [
            RunQueueLoop(instance, launcher, max_concurrent_runs=3)  # type: ignore[arg-type]
            for _ in range(3)
        ]

        async def submit(count: int) -> None:
            for i in range(count):
                priority = str(rng.randint(0, 5))
                await run_at(
                    instance, RunStatus.QUEUED, at=T0 + i, tags={"dagloom/priority": priority}
                )

        await submit(10)
        for round_ in range(12):
            async with anyio.create_task_group() as tg:
                tg.start_soon(submit, 3)
                for loop in loops:
                    tg.start_soon(loop.tick, T0 + 100 + round_)
            starting = await instance.get_runs(RunsFilter(statuses=[RunStatus.STARTING]))
            for run in rng.sample(starting, k=min(2, len(starting))):
                await move(instance, run.run_id, EventType.RUN_START, T0 + 100 + round_)
                await move(instance, run.run_id, EventType.RUN_SUCCESS, T0 + 100 + round_)
        assert len(launcher.launched) == len(set(launcher.launched)) > 12
        assert launcher.most_in_progress == 3


class BlockingLauncher(CountingLauncher):
    """Blocks in its first launch until `release` is set, after telling `blocked`."""

    def __init__(self, instance: Any) -> None:
        super().__init__(instance)
        self.blocked = anyio.Event()
        self.release = anyio.Event()

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - the ActorRef signature
        if not self.blocked.is_set():
            self.blocked.set()
            await self.release.wait()
        return await super().ask(message, timeout=timeout)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_loop_admitting_while_another_is_mid_admission_admits_nothing(
    backend: str, tmp_path: Path
) -> None:
    """Daemon A chose three runs and is launching the first when a run that goes ahead of
    them arrives: daemon B, ticking then, must not count the free slots A is filling (it
    would admit the new run and one of A's, and A the rest: four runs under a limit of 3)."""
    async with open_instance(backend, tmp_path) as instance:
        for i in range(4):
            await run_at(instance, RunStatus.QUEUED, at=T0 + i)
        slow = BlockingLauncher(instance)
        fast = CountingLauncher(instance)
        first = RunQueueLoop(instance, slow, max_concurrent_runs=3)  # type: ignore[arg-type]
        second = RunQueueLoop(instance, fast, max_concurrent_runs=3)  # type: ignore[arg-type]
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(first.tick, T0 + 10)
                await slow.blocked.wait()
                urgent = await run_at(
                    instance, RunStatus.QUEUED, at=T0 + 5, tags={"dagloom/priority": "9"}
                )
                await second.tick(T0 + 11)
                slow.release.set()
        assert second.launched == []
        assert len(first.launched) == 3
        in_progress = await instance.get_runs_count(RunsFilter(statuses=list(IN_PROGRESS)))
        assert in_progress == 3
        await second.tick(T0 + 12)  # the lease is free again; the limit is reached
        stored = await instance.get_run(urgent.run_id)
        assert stored is not None and stored.status == RunStatus.QUEUED


def test_the_loops_are_configured_from_dagloom_yaml(tmp_path: Path) -> None:
    """`run_coordinator: queued` gives a queue loop with its limits; `run_monitoring` and
    `run_retries` give their loops only when enabled; a bad limit names its key path."""
    from dagloom.daemon.monitoring_loop import RunMonitoringLoop
    from dagloom.daemon.retry_loop import RunRetryLoop
    from dagloom.errors import ConfigError
    from dagloom.instance import DagloomInstance

    launcher: Any = object()
    plain = DagloomInstance.from_config({}, home=tmp_path)
    assert RunQueueLoop.from_instance(plain, launcher) is None
    assert RunMonitoringLoop.from_instance(plain, launcher) is None
    assert RunRetryLoop.from_instance(plain, launcher) is None
    configured = DagloomInstance.from_config(
        {
            "run_coordinator": {
                "class": "QueuedRunCoordinator",
                "config": {"max_concurrent_runs": 2, "dequeue_interval_seconds": 3},
            },
            "run_monitoring": {"enabled": True, "poll_interval_seconds": 7},
            "run_retries": {"enabled": True, "max_retries": 2},
        },
        home=tmp_path,
    )
    queue = RunQueueLoop.from_instance(configured, launcher)
    assert queue is not None and queue.interval == 3
    monitoring = RunMonitoringLoop.from_instance(configured, launcher)
    assert monitoring is not None and monitoring.interval == 7
    assert RunRetryLoop.from_instance(configured, launcher) is not None
    bad = DagloomInstance.from_config(
        {"run_coordinator": {"class": "queued", "config": {"max_concurrent_runs": "x"}}},
        home=tmp_path,
    )
    with pytest.raises(ConfigError) as info:
        RunQueueLoop.from_instance(bad, launcher)
    assert info.value.key_paths == ["run_coordinator.config.max_concurrent_runs"]


async def test_an_admitter_paused_past_its_lease_admits_nothing_after_a_takeover(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Admitter "a" reads the queue, then is paused long enough for its lease to expire and
    "b" to take it: the runs "a" chose are not moved (its fence is stale), so its counts,
    read before "b" admitted anything, cannot break the limits."""
    async with open_instance("memory", Path()) as instance:
        for i in range(2):
            await run_at(instance, RunStatus.QUEUED, at=T0 + i)
        reads = instance.get_runs_async

        async def paused_read(*args: Any, **kwargs: Any) -> Any:
            found = await reads(*args, **kwargs)
            taken = await instance.schedule_storage.acquire_lease(
                ADMISSION_LEASE, "b", duration=60, now=T0 + 10_000
            )
            assert taken is not None
            return found

        monkeypatch.setattr(instance, "get_runs_async", paused_read)
        launched: list[str] = []
        admitted = await admit_queued_runs(
            instance,
            FakeLauncher(launched),  # type: ignore[arg-type]
            max_concurrent_runs=5,
            owner="a",
            lease_seconds=300,
            clock=lambda: T0,
        )
        assert admitted == launched == []
        queued = await reads(RunsFilter(statuses=[RunStatus.QUEUED]))
        assert len(queued) == 2
        lease = await instance.schedule_storage.get_lease(ADMISSION_LEASE)
        assert lease is not None and lease.owner == "b"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_idle_or_full_queue_takes_no_lease(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admission that can admit nothing writes nothing: it takes no lease, so a busy queue
    loop does not compete with run workers for the storage's writes."""
    async with open_instance(backend, tmp_path) as instance:
        storage = instance.schedule_storage
        launched: list[str] = []
        taken: list[str] = []
        acquire = type(storage).acquire_lease

        async def counted(self: Any, name: str, owner: str, **kwargs: Any) -> Any:
            taken.append(name)
            return await acquire(self, name, owner, **kwargs)

        monkeypatch.setattr(type(storage), "acquire_lease", counted)

        async def admit() -> list[str]:
            return await admit_queued_runs(
                instance,
                FakeLauncher(launched),  # type: ignore[arg-type]
                max_concurrent_runs=1,
                owner="a",
                clock=lambda: T0,
            )

        assert await admit() == []  # nothing queued
        assert taken == []
        first = await run_at(instance, RunStatus.QUEUED, at=T0)
        assert await admit() == [first.run_id]
        assert taken == [ADMISSION_LEASE]
        await run_at(instance, RunStatus.QUEUED, at=T0 + 1)
        assert await admit() == []  # the only slot is taken by the first run
        assert taken == [ADMISSION_LEASE]
        assert launched == [first.run_id]
