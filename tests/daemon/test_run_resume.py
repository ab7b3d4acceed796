"""Resuming runs whose worker was lost: the resume claim in the run state machine, the
attempts counted from the run's events, the monitoring loop's per-run claims, and a worker
process SIGKILLed mid-run resumed on a new one that executes only the remaining steps."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagloom.actors.run_worker import HEARTBEAT_TAG, is_resumed, resumed_steps
from dagloom.daemon import WILL_RETRY_TAG, MonitoringSettings, RetrySettings, derived_run_id
from dagloom.daemon._monitoring import (
    MonitorAction,
    MonitoredRun,
    monitoring_verdict,
    resume_attempts,
    resume_claim_event,
)
from dagloom.daemon._run_claims import RunClaims, run_claim_name
from dagloom.daemon.monitoring_loop import RunMonitoringLoop
from dagloom.daemon.retry_loop import RunRetryLoop
from dagloom.instance import DagloomInstance
from dagloom.messages import EngineEventData, Event, EventType, LogLevel, Run, RunStatus
from dagloom.messages.rpc import (
    LaunchRunReply,
    LaunchRunRequest,
    SubmitRunReply,
    SubmitRunRequest,
)
from dagloom.storage.base import (
    RESUME_ATTEMPT_KEY,
    RUN_TRANSITIONS,
    event_status_change,
    is_resume_claim,
)

from ._stores import BACKENDS, move, open_instance, run_at

T0 = 1_000_000.0
SETTINGS = MonitoringSettings(heartbeat_timeout_seconds=120, max_resume_run_attempts=2)


# -- pure ------------------------------------------------------------------------------------


def test_a_resume_claim_moves_a_started_run_only() -> None:
    claim = resume_claim_event("r", "job", 1, "resume", now=T0)
    assert is_resume_claim(claim.event_type, claim.engine_event)
    change = event_status_change(claim)
    assert change.resume and change.status == RunStatus.STARTING
    assert change.sources == (RunStatus.STARTED,)
    # An ordinary RUN_STARTING (a launch) never moves a started run back.
    plain = Event(run_id="r", event_type=EventType.RUN_STARTING, timestamp=T0)
    assert not event_status_change(plain).resume
    assert RunStatus.STARTED not in event_status_change(plain).sources
    assert RunStatus.STARTING not in RUN_TRANSITIONS[RunStatus.STARTED]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([EventType.RUN_STARTING, EventType.RUN_START, EventType.ENGINE_EVENT]),
            st.booleans(),
        ),
        max_size=20,
    )
)
def test_resume_attempts_count_the_resume_claims_only(kinds: list[tuple[EventType, bool]]) -> None:
    events = []
    for i, (event_type, marked) in enumerate(kinds):
        event = Event(run_id="r", event_type=event_type, timestamp=T0 + i, level=LogLevel.INFO)
        if marked:
            event.engine_event = resume_claim_event("r", "", i + 1, "", now=T0).engine_event
        elif event_type == EventType.ENGINE_EVENT:
            event.engine_event = EngineEventData()
        events.append(event)
    expected = sum(1 for t, m in kinds if t == EventType.RUN_STARTING and m)
    assert resume_attempts(events) == expected


@given(
    st.lists(st.sampled_from("abcdefgh"), unique=True),
    st.sets(st.sampled_from("abcdefghij")),
)
def test_resumed_steps_are_those_not_succeeded_in_order(keys: list[str], done: set[str]) -> None:
    left = resumed_steps(keys, done)
    assert left == [k for k in keys if k not in done]
    assert set(left).isdisjoint(done)
    assert set(left) | (set(keys) & done) == set(keys)


def test_a_run_is_resumed_when_starting_after_it_started_before() -> None:
    assert is_resumed(Run(run_id="r", status=RunStatus.STARTING, start_time=T0))
    assert not is_resumed(Run(run_id="r", status=RunStatus.STARTING))
    assert not is_resumed(Run(run_id="r", status=RunStatus.STARTED, start_time=T0))


@given(st.integers(0, 5), st.integers(0, 6))
def test_a_lost_worker_is_resumed_while_attempts_remain_then_failed_saying_so(
    allowed: int, done: int
) -> None:
    settings = MonitoringSettings(heartbeat_timeout_seconds=120, max_resume_run_attempts=allowed)
    lost = MonitoredRun(
        run_id="r",
        status=RunStatus.STARTED,
        create_time=T0,
        start_time=T0,
        tags={HEARTBEAT_TAG: str(T0)},
        resume_attempts=done,
    )
    verdict = monitoring_verdict(lost, settings, now=T0 + 500)
    if done < allowed:
        assert verdict.action == MonitorAction.RESUME
        assert f"attempt {done + 1} of {allowed}" in verdict.message
    else:
        assert verdict.action == MonitorAction.FAIL
        if allowed:
            assert (
                f"after {done} resume attempt(s), exhausting "
                f"run_monitoring.max_resume_run_attempts ({allowed})" in verdict.message
            )


# -- storage and the loop --------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class FakeLauncher:
    """Accepts every LaunchRun and remembers the runs it was asked to launch."""

    actor = "run_launcher"

    def __init__(self) -> None:
        self.launched: list[str] = []

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - the ActorRef signature
        assert isinstance(message, LaunchRunRequest)
        self.launched.append(message.run_id)
        return LaunchRunReply(worker="fake")


async def resume_claims(instance: DagloomInstance, run_id: str) -> list[int | None]:
    """The attempt numbers of the run's resume claims, in order."""
    records = await instance.get_events(run_id, event_types=[EventType.RUN_STARTING])
    return [
        r.event.engine_event.metadata[RESUME_ATTEMPT_KEY].int
        for r in records
        if r.event is not None
        and r.event.engine_event is not None
        and RESUME_ATTEMPT_KEY in r.event.engine_event.metadata
    ]


async def test_storage_takes_one_of_two_racing_resume_claims(backend: str, tmp_path: Path) -> None:
    async with open_instance(backend, tmp_path) as instance:
        run = await run_at(instance, RunStatus.STARTED, at=T0)
        outcomes = []

        async def claim() -> None:
            event = resume_claim_event(run.run_id, run.job_name, 1, "resume", now=T0 + 1)
            outcomes.append((await instance.transition_run(run.run_id, event)).applied)

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(claim)
        assert sorted(outcomes) == [False, False, False, True]
        assert await resume_claims(instance, run.run_id) == [1]
        # A new worker claims the resumed run as any run: STARTING -> STARTED.
        assert (await move(instance, run.run_id, EventType.RUN_START, T0 + 2)).applied
        # A run that is not STARTED is never resumed: STARTING, or finished.
        for status in (RunStatus.STARTING, RunStatus.SUCCESS):
            other = await run_at(instance, RunStatus.STARTING, at=T0)
            if status == RunStatus.SUCCESS:
                await move(instance, other.run_id, EventType.RUN_START, T0)
                await move(instance, other.run_id, EventType.RUN_SUCCESS, T0)
            event = resume_claim_event(other.run_id, "job", 1, "resume", now=T0 + 1)
            moved = await instance.transition_run(other.run_id, event)
            assert not moved.applied and moved.status == status


async def test_a_lost_run_is_resumed_until_the_attempts_are_spent_then_failed(
    backend: str, tmp_path: Path
) -> None:
    async with open_instance(backend, tmp_path) as instance:
        launcher = FakeLauncher()
        loop = RunMonitoringLoop(instance, launcher, SETTINGS)  # type: ignore[arg-type]
        run = await run_at(instance, RunStatus.STARTED, at=T0, tags={HEARTBEAT_TAG: str(T0)})
        now = T0
        for attempt in (1, 2):
            now += 200
            await loop.tick(now)
            stored = await instance.get_run(run.run_id)
            assert stored is not None and stored.status == RunStatus.STARTING
            assert await resume_claims(instance, run.run_id) == list(range(1, attempt + 1))
            assert launcher.launched == [run.run_id] * attempt
            await loop.tick(now + 1)  # resumed just now: left alone
            assert launcher.launched == [run.run_id] * attempt
            # The new worker claims it, then is lost in turn.
            await move(instance, run.run_id, EventType.RUN_START, now + 5)
        await loop.tick(now + 200)
        stored = await instance.get_run(run.run_id)
        assert stored is not None and stored.status == RunStatus.FAILURE
        failures = await instance.get_events(run.run_id, event_types=[EventType.RUN_FAILURE])
        assert len(failures) == 1 and failures[0].event is not None
        assert (
            "after 2 resume attempt(s), exhausting run_monitoring.max_resume_run_attempts (2)"
            in (failures[0].event.message)
        )
        assert launcher.launched == [run.run_id] * 2


async def test_a_resume_never_launched_is_failed_by_the_start_timeout(
    backend: str, tmp_path: Path
) -> None:
    """As after a daemon that died between the resume claim and the launch: the run sits
    STARTING with its attempt counted, and the start timeout ends it."""
    async with open_instance(backend, tmp_path) as instance:
        loop = RunMonitoringLoop(instance, None, SETTINGS)
        run = await run_at(instance, RunStatus.STARTED, at=T0, tags={HEARTBEAT_TAG: str(T0)})
        await loop.tick(T0 + 200)
        assert await resume_claims(instance, run.run_id) == [1]
        await loop.tick(T0 + 200 + SETTINGS.start_timeout_seconds - 1)
        stored = await instance.get_run(run.run_id)
        assert stored is not None and stored.status == RunStatus.STARTING
        await loop.tick(T0 + 201 + SETTINGS.start_timeout_seconds)
        failures = await instance.get_events(run.run_id, event_types=[EventType.RUN_FAILURE])
        assert [f.event.message.split(":")[0] for f in failures if f.event is not None] == [
            "Run monitoring (start_timeout)"
        ]
        assert await resume_claims(instance, run.run_id) == [1]


async def test_two_loops_resume_each_run_once(backend: str, tmp_path: Path) -> None:
    async with open_instance(backend, tmp_path) as instance:
        launchers = [FakeLauncher(), FakeLauncher()]
        loops = [
            RunMonitoringLoop(instance, la, SETTINGS, owner=f"daemon-{i}")  # type: ignore[arg-type]
            for i, la in enumerate(launchers)
        ]
        runs = [
            await run_at(instance, RunStatus.STARTED, at=T0, tags={HEARTBEAT_TAG: str(T0)})
            for _ in range(6)
        ]
        async with anyio.create_task_group() as tg:
            for loop in loops:
                tg.start_soon(loop.tick, T0 + 300)
        for run in runs:
            assert await resume_claims(instance, run.run_id) == [1]
        launched = launchers[0].launched + launchers[1].launched
        assert sorted(launched) == sorted(r.run_id for r in runs)
        # Every claim was released: a later tick by either loop can claim again.
        for run in runs:
            lease = await instance.schedule_storage.get_lease(run_claim_name(run.run_id))
            assert lease is None or lease.owner == ""


async def test_a_run_claimed_by_another_daemon_is_left_to_it(backend: str, tmp_path: Path) -> None:
    async with open_instance(backend, tmp_path) as instance:
        launcher = FakeLauncher()
        loop = RunMonitoringLoop(instance, launcher, SETTINGS, owner="mine")  # type: ignore[arg-type]
        run = await run_at(instance, RunStatus.STARTED, at=T0, tags={HEARTBEAT_TAG: str(T0)})
        other = RunClaims(instance, "theirs", duration=100)
        async with other.claim(run.run_id, T0 + 300) as fence:
            assert fence is not None
            await loop.tick(T0 + 300)
            assert launcher.launched == []
            stored = await instance.get_run(run.run_id)
            assert stored is not None and stored.status == RunStatus.STARTED
        # Released: the next tick acts. A claim left by a daemon that died expires too.
        async with other.claim(run.run_id, T0 + 300):
            pass
        await loop.tick(T0 + 301)
        assert launcher.launched == [run.run_id]


class CountingCoordinator:
    """Stores each submitted run (once per run id) and counts the submissions."""

    actor = "run_coordinator"

    def __init__(self, instance: DagloomInstance) -> None:
        self.instance = instance
        self.submitted: list[str] = []

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - the ActorRef signature
        assert isinstance(message, SubmitRunRequest)
        self.submitted.append(message.run_id)
        await anyio.lowlevel.checkpoint()  # let another loop interleave here
        run = await self.instance.get_run(message.run_id)
        if run is None:
            run = await self.instance.create_run(
                Run(
                    run_id=message.run_id,
                    job_name=message.job_name,
                    tags=dict(message.tags),
                    parent_run_id=message.parent_run_id,
                    root_run_id=message.root_run_id,
                    status=RunStatus.QUEUED,
                )
            )
        return SubmitRunReply(run=run)


async def test_two_retry_loops_submit_each_retry_once(backend: str, tmp_path: Path) -> None:
    async with open_instance(backend, tmp_path) as instance:
        coordinators = [CountingCoordinator(instance), CountingCoordinator(instance)]
        loops = [
            RunRetryLoop(instance, c, RetrySettings(enabled=True), owner=f"daemon-{i}")  # type: ignore[arg-type]
            for i, c in enumerate(coordinators)
        ]
        failed = []
        for _ in range(4):
            run = await run_at(
                instance, RunStatus.STARTED, at=T0, tags={"dagster/max_retries": "1"}
            )
            await move(instance, run.run_id, EventType.RUN_FAILURE, T0 + 1)
            failed.append(run)
        async with anyio.create_task_group() as tg:
            for loop in loops:
                tg.start_soon(loop.tick, T0 + 10)
        submitted = coordinators[0].submitted + coordinators[1].submitted
        assert sorted(submitted) == sorted(derived_run_id("retry", r.run_id) for r in failed)
        for run in failed:
            stored = await instance.get_run(run.run_id)
            assert stored is not None and stored.tags[WILL_RETRY_TAG] == "true"


# -- a real worker process ---------------------------------------------------------------------

THREE = """
from pathlib import Path

import anyio
from dagloom import Definitions, FilesystemIOManager, job, op

HERE = Path({here!r})


def called(name: str) -> None:
    with (HERE / "calls.txt").open("a") as calls:
        calls.write(name + "\\n")


@op
def first() -> int:
    called("first")
    return 20


@op
async def hang_once(context, value: int) -> int:
    called("hang_once")
    if not (HERE / "fixed").exists():
        await anyio.connect_tcp("127.0.0.1", int(context.run_tags["port"]))
        await anyio.Event().wait()
    return value + 1


@op
def last(value: int) -> int:
    called("last")
    return value * 2


@job
def three() -> None:
    last(hang_once(first()))


defs = Definitions(
    jobs=[three], resources={{"io_manager": FilesystemIOManager(base_dir={io!r})}}
)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["subprocess", "warm_pool", "subprocess_stopped"])
async def test_a_sigkilled_worker_is_resumed_on_a_new_one_that_runs_the_remaining_steps(
    tmp_path: Path, kind: str
) -> None:
    """A worker process (one per run, or a warm pool's only member) is SIGKILLed while its
    run's second step runs; with resuming on, the launcher leaves the run STARTED, monitoring
    resumes it once its heartbeat is overdue, and the new worker executes the second and
    third steps only, loading the first step's stored output, and the run succeeds. A
    worker process SIGSTOPped instead (alive, silent) is killed by the launcher when the run
    is resumed, and replaced."""
    from dagloom.actors.run_coordinator import launch_stored_run
    from dagloom.actors.run_launcher import SubprocessRunLauncher, WarmPoolRunLauncher
    from dagloom.execution.origin import CodeOrigin
    from dagloom.transport import MemoryTransport
    from tests.actors._runs import stored_output, wait_for_end
    from tests.actors.test_run_launcher import op_started_signal

    path = tmp_path / "three_defs.py"
    path.write_text(THREE.format(here=str(tmp_path), io=str(tmp_path / "io")))
    origins = {"location": CodeOrigin(python_file=str(path))}
    poll = 60.0
    instance = DagloomInstance.from_config(
        {
            "run_monitoring": {
                "enabled": True,
                "max_resume_run_attempts": 1,
                "heartbeat_timeout_seconds": poll,
                "poll_interval_seconds": poll,
            }
        },
        home=tmp_path / "home",
    )
    with anyio.fail_after(120):
        async with instance, op_started_signal() as (port, op_started):
            launcher: SubprocessRunLauncher | WarmPoolRunLauncher
            if kind.startswith("subprocess"):
                launcher = SubprocessRunLauncher(instance, origins, heartbeat_interval=poll)
            else:
                launcher = WarmPoolRunLauncher(instance, origins, size=1, heartbeat_interval=poll)

            def worker_of(run_id: str) -> Any:
                """The process executing `run_id`, None once the launcher saw it exit."""
                if isinstance(launcher, SubprocessRunLauncher):
                    return launcher._processes.get(run_id)
                name = launcher._where.get(run_id)
                return None if name is None else launcher._members[name].process

            ref = MemoryTransport().ref(launcher)
            async with anyio.create_task_group() as tg:
                await tg.start(launcher.run)
                run = await instance.create_run(
                    Run(job_name="three", code_location="location", tags={"port": str(port)})
                )
                assert await launch_stored_run(instance, ref, run, timeout=30)
                await op_started.wait()
                while True:  # until the events of `first` and `hang_once` are stored
                    stats = {s.step_key for s in await instance.get_step_stats(run.run_id)}
                    if stats == {"first", "hang_once"}:
                        break
                    await anyio.sleep(0.01)
                lost = worker_of(run.run_id)
                if kind == "subprocess_stopped":
                    os.kill(lost.pid, signal.SIGSTOP)
                else:
                    os.kill(lost.pid, signal.SIGKILL)
                    while True:  # until the launcher has seen it exit
                        if worker_of(run.run_id) is None:
                            break
                        await anyio.sleep(0.01)
                stored = await instance.get_run(run.run_id)
                assert stored is not None and stored.status == RunStatus.STARTED
                beat = float(
                    stored.tags.get(HEARTBEAT_TAG, stored.start_time)
                )  # start counts as a beat

                (tmp_path / "fixed").touch()
                monitoring = RunMonitoringLoop.from_instance(instance, ref)
                assert monitoring is not None
                await monitoring.tick(beat + poll / 2)  # not overdue yet
                assert await resume_claims(instance, run.run_id) == []
                await monitoring.tick(beat + 2 * poll)
                assert await resume_claims(instance, run.run_id) == [1]
                ended = await wait_for_end(instance, run.run_id)
                if kind == "subprocess_stopped":
                    assert await lost.wait() == -signal.SIGKILL
                while kind.startswith("subprocess"):  # until the new worker process has exited
                    if worker_of(run.run_id) is None:
                        break
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
    assert ended.status == RunStatus.SUCCESS
    assert stored_output(tmp_path / "io", run.run_id, "last") == 42
    # `first` ran once, in the lost worker; `hang_once` in both; `last` in the new one.
    assert (tmp_path / "calls.txt").read_text().split() == [
        "first",
        "hang_once",
        "hang_once",
        "last",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["in_process", "worker_pool"])
async def test_a_lost_run_is_resumed_by_a_launcher_with_in_process_workers(
    tmp_path: Path, kind: str
) -> None:
    """A run whose worker process (`dagloom run-worker --run-id`, as a `dagloom dev` that
    was killed) died mid-run is resumed by a later daemon on an in-process launcher, or on
    a worker pool's worker by ref, executing the remaining steps only."""
    from dagloom.actors.job_source import LoaderJobSource
    from dagloom.actors.run_launcher import InProcessRunLauncher
    from dagloom.actors.run_worker import RunWorker
    from dagloom.cli.run_worker import origins_to_json
    from dagloom.execution.origin import CodeOrigin
    from dagloom.topology.dispatch import WorkerPoolRunLauncher
    from dagloom.transport import MemoryTransport
    from tests.actors._runs import stored_output, wait_for_end
    from tests.actors.test_run_launcher import op_started_signal

    path = tmp_path / "three_defs.py"
    path.write_text(THREE.format(here=str(tmp_path), io=str(tmp_path / "io")))
    origins = {"location": CodeOrigin(python_file=str(path))}
    poll = 60.0
    with anyio.fail_after(120):
        async with (
            DagloomInstance.open(tmp_path / "home") as instance,
            op_started_signal() as (port, op_started),
        ):
            run = await instance.create_run(
                Run(job_name="three", code_location="location", tags={"port": str(port)})
            )
            process = await anyio.open_process(
                [
                    sys.executable,
                    "-m",
                    "dagloom.cli.run_worker",
                    "--home",
                    str(tmp_path / "home"),
                    "--locations-json",
                    origins_to_json(origins),
                    "--run-id",
                    run.run_id,
                ]
            )
            async with process:
                await op_started.wait()
                while True:  # until the events of `first` and `hang_once` are stored
                    stats = {s.step_key for s in await instance.get_step_stats(run.run_id)}
                    if stats == {"first", "hang_once"}:
                        break
                    await anyio.sleep(0.01)
                os.kill(process.pid, signal.SIGKILL)
                await process.wait()
            stored = await instance.get_run(run.run_id)
            assert stored is not None and stored.status == RunStatus.STARTED
            beat = float(
                stored.tags.get(HEARTBEAT_TAG, stored.start_time)
            )  # start counts as a beat

            (tmp_path / "fixed").touch()
            transport = MemoryTransport()
            jobs = LoaderJobSource(origins)
            async with anyio.create_task_group() as tg:
                if kind == "in_process":
                    launcher: Any = InProcessRunLauncher(instance, jobs)
                else:
                    worker = RunWorker(instance, jobs, name="remote_worker")
                    await tg.start(worker.run)
                    launcher = WorkerPoolRunLauncher(instance, [transport.ref(worker)])
                await tg.start(launcher.run)
                settings = MonitoringSettings(
                    heartbeat_timeout_seconds=poll, max_resume_run_attempts=1
                )
                monitoring = RunMonitoringLoop(instance, transport.ref(launcher), settings)
                await monitoring.tick(beat + 2 * poll)
                assert await resume_claims(instance, run.run_id) == [1]
                ended = await wait_for_end(instance, run.run_id)
                tg.cancel_scope.cancel()
    assert ended.status == RunStatus.SUCCESS
    assert stored_output(tmp_path / "io", run.run_id, "last") == 42
    calls = (tmp_path / "calls.txt").read_text().split()
    assert calls == ["first", "hang_once", "hang_once", "last"]
