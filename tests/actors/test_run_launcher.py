"""Launchers with real worker processes on a SQLite instance: per-run subprocesses and a warm
pool; both run the seed job to 55 and terminate a running run as CANCELED."""

from __future__ import annotations

import dataclasses
import os
import signal
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from anyio.abc import SocketAttribute

from dagloom.actors.job_source import LoaderJobSource
from dagloom.actors.run_coordinator import submit_run
from dagloom.actors.run_launcher import (
    InProcessRunLauncher,
    RunLauncher,
    SubprocessRunLauncher,
    WarmPoolRunLauncher,
    build_run_launcher,
)
from dagloom.errors import ActorUnavailableError, ConfigError
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.messages import Event, EventType, Run, RunStatus
from dagloom.messages.rpc import CancelRunRequest, LaunchRunRequest, RunEnded, SubmitRunRequest
from dagloom.transport import MemoryTransport

from ._runs import EXAMPLE, coordinator_over, stored_output, wait_for_end

pytestmark = pytest.mark.slow


def write_location(tmp_path: Path) -> dict[str, CodeOrigin]:
    """A code location with the seed job (outputs pickled under tmp_path/io) and a job whose
    op waits forever."""
    path = tmp_path / "location.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import anyio
            from dagloom import Definitions, FilesystemIOManager, job, op
            from dagloom.code.loader import load_definitions

            _seed = load_definitions(python_file={str(EXAMPLE)!r}).get_job_def("process_numbers")

            @op
            async def wait_forever(context):
                # Tell the test this op is running (storage shows events only once a batch
                # is written), then wait until cancelled.
                await anyio.connect_tcp("127.0.0.1", int(context.run_tags["port"]))
                await anyio.Event().wait()

            @job
            def stuck():
                wait_forever()

            @op
            def die():
                import os

                os._exit(3)  # the worker process dies without recording anything

            @job
            def dies():
                die()

            defs = Definitions(
                jobs=[_seed, stuck, dies],
                resources={{"io_manager": FilesystemIOManager(base_dir={str(tmp_path / "io")!r})}},
            )
            """
        )
    )
    return {"location": CodeOrigin(python_file=str(path))}


@asynccontextmanager
async def op_started_signal() -> AsyncIterator[tuple[int, anyio.Event]]:
    """A local port an op connects to when it runs, and the event set when it does."""
    connected = anyio.Event()

    async def accept(stream: Any) -> None:
        connected.set()
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, accept)
        yield port, connected
        tg.cancel_scope.cancel()


def make_launcher(kind: str, instance: DagloomInstance, origins: Any) -> RunLauncher:
    if kind == "subprocess":
        return SubprocessRunLauncher(instance, origins, terminate_grace=20)
    return WarmPoolRunLauncher(instance, origins, size=1)


def _member_pids(launcher: RunLauncher) -> set[int]:
    """The pids of a warm pool's member processes (none for other launchers)."""
    members = getattr(launcher, "_members", {})
    return {member.process.pid for member in members.values()}


@pytest.mark.parametrize("kind", ["subprocess", "warm_pool"])
async def test_the_seed_job_runs_in_a_worker_process_to_55(tmp_path: Path, kind: str) -> None:
    origins = write_location(tmp_path)
    with anyio.fail_after(120):
        async with DagloomInstance.open(tmp_path / "home") as instance:
            launcher = make_launcher(kind, instance, origins)
            async with coordinator_over(
                instance, launcher, LoaderJobSource(origins)
            ) as coordinator:
                runs = []
                members = _member_pids(launcher)
                for _ in range(2):
                    run = await submit_run(
                        coordinator, SubmitRunRequest(job_name="process_numbers")
                    )
                    ended = await wait_for_end(instance, run.run_id)
                    assert ended.status == RunStatus.SUCCESS
                    runs.append(ended)
                if kind == "warm_pool":
                    # The member started with the pool served both runs: launching was a
                    # message, not a process start.
                    assert len(members) == 1 and _member_pids(launcher) == members
            for run in runs:
                assert stored_output(tmp_path / "io", run.run_id, "sum_two_sums") == 55


@pytest.mark.parametrize("kind", ["subprocess", "warm_pool"])
async def test_cancelling_a_run_in_a_worker_process_records_it_canceled(
    tmp_path: Path, kind: str
) -> None:
    origins = write_location(tmp_path)
    with anyio.fail_after(120):
        async with DagloomInstance.open(tmp_path / "home") as instance:
            launcher = make_launcher(kind, instance, origins)
            async with (
                coordinator_over(instance, launcher, LoaderJobSource(origins)) as coordinator,
                op_started_signal() as (port, op_started),
            ):
                run = await submit_run(
                    coordinator, SubmitRunRequest(job_name="stuck", tags={"port": str(port)})
                )
                await op_started.wait()
                reply = await coordinator.ask(CancelRunRequest(run_id=run.run_id))
                assert reply.accepted, reply.message
                ended = await wait_for_end(instance, run.run_id)
            assert ended.status == RunStatus.CANCELED
            types = [r.event.event_type for r in await instance.get_events(run.run_id)]
            # The worker itself recorded the end, not the launcher on its behalf.
            assert types.count(EventType.RUN_CANCELED) == 1
            assert EventType.RUN_START in types


@pytest.mark.parametrize("launcher_type", [SubprocessRunLauncher, WarmPoolRunLauncher])
async def test_process_launchers_refuse_an_in_memory_instance(launcher_type: Any) -> None:
    async with DagloomInstance.ephemeral() as instance:
        with pytest.raises(ConfigError, match="in-memory"):
            launcher_type(instance, {})


def test_the_instance_config_picks_and_configures_the_launcher(tmp_path: Path) -> None:
    origins = write_location(tmp_path)
    instance = DagloomInstance.from_config(
        {"run_launcher": {"class": "WarmPoolRunLauncher", "config": {"size": 3}}}, home=tmp_path
    )
    launcher = build_run_launcher(instance, origins)
    assert isinstance(launcher, WarmPoolRunLauncher) and launcher.size == 3
    default = build_run_launcher(DagloomInstance.from_config({}, home=tmp_path), origins)
    assert isinstance(default, WarmPoolRunLauncher)
    bad = DagloomInstance.from_config(
        {"run_launcher": {"class": "WarmPoolRunLauncher", "config": {"size": 0}}}, home=tmp_path
    )
    with pytest.raises(ConfigError) as info:
        build_run_launcher(bad, origins)
    assert info.value.key_paths == ["run_launcher.config.size"]


async def test_a_worker_process_that_dies_leaves_its_run_recorded_as_failure(
    tmp_path: Path,
) -> None:
    origins = write_location(tmp_path)
    with anyio.fail_after(120):
        async with DagloomInstance.open(tmp_path / "home") as instance:
            launcher = SubprocessRunLauncher(instance, origins)
            async with coordinator_over(
                instance, launcher, LoaderJobSource(origins)
            ) as coordinator:
                run = await submit_run(coordinator, SubmitRunRequest(job_name="dies"))
                ended = await wait_for_end(instance, run.run_id)
            assert ended.status == RunStatus.FAILURE
            failure = (await instance.get_events(run.run_id))[-1].event
            assert "exited with code 3" in failure.message


VERSIONED = """
from dagloom import Definitions, FilesystemIOManager, job, op

@op
def answer() -> int:
    return {value}

@job
def versioned() -> None:
    answer()

defs = Definitions(
    jobs=[versioned], resources={{"io_manager": FilesystemIOManager(base_dir={base!r})}}
)
"""


async def test_a_warm_worker_runs_the_code_a_reloaded_location_validated(tmp_path: Path) -> None:
    """The warm member imported version 1; after the location reloads version 2 the next
    run is validated against it, and the same member imports it again before running."""
    path = tmp_path / "versioned.py"
    io = tmp_path / "io"
    path.write_text(VERSIONED.format(value=1, base=str(io)))
    origins = {"versioned": CodeOrigin(python_file=str(path))}
    location = LoaderJobSource(origins)  # stands for the code location the coordinator asks
    with anyio.fail_after(120):
        async with DagloomInstance.open(tmp_path / "home") as instance:
            launcher = WarmPoolRunLauncher(instance, origins, size=1)
            async with coordinator_over(instance, launcher, location) as coordinator:
                members = _member_pids(launcher)
                first = await submit_run(coordinator, SubmitRunRequest(job_name="versioned"))
                first = await wait_for_end(instance, first.run_id)
                path.write_text(VERSIONED.format(value=2, base=str(io)))
                location.reload("versioned")
                second = await submit_run(coordinator, SubmitRunRequest(job_name="versioned"))
                second = await wait_for_end(instance, second.run_id)
                assert len(members) == 1 and _member_pids(launcher) == members  # the same one
    assert first.status == second.status == RunStatus.SUCCESS
    assert first.job_snapshot_id != second.job_snapshot_id
    assert stored_output(io, first.run_id, "answer") == 1
    assert stored_output(io, second.run_id, "answer") == 2


async def test_a_run_whose_execute_run_times_out_stays_with_its_worker_and_runs_once(
    tmp_path: Path,
) -> None:
    """The first member is stopped (SIGSTOP, as a loop blocked by a sync op would be), so
    its `ExecuteRun` times out: the launcher keeps the run there instead of handing it to
    the second member, and once the first resumes it executes the run exactly once."""
    origins = write_location(tmp_path)
    with anyio.fail_after(120):
        async with DagloomInstance.open(tmp_path / "home") as instance:
            launcher = WarmPoolRunLauncher(instance, origins, size=2, call_timeout=0.5)
            async with anyio.create_task_group() as tg:
                await tg.start(launcher.run)
                first = launcher._members["run_launcher.0"].process
                run = await instance.create_run(
                    Run(job_name="process_numbers", code_location="location")
                )
                await instance.store_events(
                    [
                        Event(
                            run_id=run.run_id,
                            event_type=EventType.RUN_STARTING,
                            timestamp=time.time(),
                            job_name=run.job_name,
                        )
                    ]
                )
                os.kill(first.pid, signal.SIGSTOP)
                try:
                    reply = (
                        await MemoryTransport()
                        .ref(launcher)
                        .ask(LaunchRunRequest(run_id=run.run_id))
                    )
                    assert (reply.worker, reply.error) == ("run_launcher.0", "")
                    stored = await instance.get_run(run.run_id)
                    assert stored is not None
                    assert stored.status == RunStatus.STARTING  # nobody executes it yet
                finally:
                    os.kill(first.pid, signal.SIGCONT)
                ended = await wait_for_end(instance, run.run_id)
                tg.cancel_scope.cancel()
            records = await instance.get_events(run.run_id)
    assert ended.status == RunStatus.SUCCESS
    types = [r.event.event_type for r in records if r.event is not None]
    assert types.count(EventType.RUN_START) == 1
    assert types.count(EventType.RUN_SUCCESS) == 1


async def test_a_warm_pool_launches_runs_concurrently_around_a_stuck_worker(
    tmp_path: Path,
) -> None:
    """Launches are answered from child tasks: while the first member is stopped (its
    `ExecuteRun` unanswered), a second run goes to the other member (the run being offered
    counts toward the first's load) and is answered first; once the first resumes, both
    runs execute once and succeed."""
    origins = write_location(tmp_path)
    with anyio.fail_after(120):
        async with DagloomInstance.open(tmp_path / "home") as instance:
            launcher = WarmPoolRunLauncher(instance, origins, size=2, call_timeout=60)
            ref = MemoryTransport().ref(launcher)
            answered: list[tuple[str, str]] = []
            first_answer = anyio.Event()
            async with anyio.create_task_group() as tg:
                await tg.start(launcher.run)
                first = launcher._members["run_launcher.0"].process
                runs = []
                for _ in range(2):
                    run = await instance.create_run(
                        Run(job_name="process_numbers", code_location="location")
                    )
                    await instance.transition_run(
                        run.run_id,
                        Event(
                            run_id=run.run_id,
                            event_type=EventType.RUN_STARTING,
                            timestamp=time.time(),
                            job_name=run.job_name,
                        ),
                    )
                    runs.append(run)

                async def launch(run_id: str) -> None:
                    reply = await ref.ask(LaunchRunRequest(run_id=run_id))
                    answered.append((run_id, reply.worker))
                    first_answer.set()

                os.kill(first.pid, signal.SIGSTOP)
                try:
                    async with anyio.create_task_group() as launches:
                        launches.start_soon(launch, runs[0].run_id)
                        while runs[0].run_id not in launcher._asked:
                            await anyio.lowlevel.checkpoint()
                        launches.start_soon(launch, runs[1].run_id)
                        await first_answer.wait()
                        os.kill(first.pid, signal.SIGCONT)
                finally:
                    os.kill(first.pid, signal.SIGCONT)
                ended = [await wait_for_end(instance, run.run_id) for run in runs]
                tg.cancel_scope.cancel()
    assert answered == [
        (runs[1].run_id, "run_launcher.1"),
        (runs[0].run_id, "run_launcher.0"),
    ]
    assert [run.status for run in ended] == [RunStatus.SUCCESS, RunStatus.SUCCESS]


async def test_a_run_launched_while_the_only_warm_worker_restarts_waits_for_it(
    tmp_path: Path,
) -> None:
    """A run whose worker died is retried at once; with a pool of one, the retry reaches the
    launcher while the member is being started again, and must wait for it, not fail."""
    origins = write_location(tmp_path)
    with anyio.fail_after(180):
        async with DagloomInstance.open(tmp_path / "home") as instance:
            launcher = WarmPoolRunLauncher(instance, origins, size=1)
            async with coordinator_over(
                instance, launcher, LoaderJobSource(origins)
            ) as coordinator:
                died = await submit_run(coordinator, SubmitRunRequest(job_name="dies"))
                assert (await wait_for_end(instance, died.run_id)).status == RunStatus.FAILURE
                run = await submit_run(coordinator, SubmitRunRequest(job_name="process_numbers"))
                ended = await wait_for_end(instance, run.run_id)
            assert ended.status == RunStatus.SUCCESS, ended.failure


async def test_a_member_that_claims_a_run_and_dies_before_answering_keeps_it(
    tmp_path: Path,
) -> None:
    """A member can store its claim of a run (RUN_START) and die before its `ExecuteRun`
    reply leaves: the launcher finds the run claimed, so it is that member's, and the
    member's exit records it FAILURE rather than leaving it STARTED for good."""
    origins = write_location(tmp_path)
    with anyio.fail_after(120):
        async with DagloomInstance.open(tmp_path / "home") as instance:
            launcher = WarmPoolRunLauncher(instance, origins, size=1)
            async with anyio.create_task_group() as tg:
                await tg.start(launcher.run)
                member = launcher._members["run_launcher.0"]
                run = await instance.create_run(
                    Run(job_name="process_numbers", code_location="location")
                )
                await instance.transition_run(
                    run.run_id,
                    Event(run_id=run.run_id, event_type=EventType.RUN_STARTING, timestamp=1.0),
                )

                class ClaimsThenDies:
                    """The member's ref, as it answers when its process dies mid-call."""

                    async def ask(self, message: Any, **_: Any) -> Any:
                        await instance.transition_run(
                            run.run_id,
                            Event(run_id=run.run_id, event_type=EventType.RUN_START, timestamp=2.0),
                        )
                        member.process.kill()
                        raise ActorUnavailableError("connection lost", actor="member")

                launcher._members[member.name] = dataclasses.replace(
                    member, ref=cast(Any, ClaimsThenDies())
                )
                reply = (
                    await MemoryTransport().ref(launcher).ask(LaunchRunRequest(run_id=run.run_id))
                )
                assert (reply.worker, reply.error) == ("run_launcher.0", "")
                ended = await wait_for_end(instance, run.run_id)
                tg.cancel_scope.cancel()
    assert ended.status == RunStatus.FAILURE
    assert "run_launcher.0 exited" in ended.failure.message


async def test_a_launcher_cancels_a_run_only_while_it_has_not_ended() -> None:
    """What the warm pool records for a run its worker was not executing, and the Dask
    launcher for a task that outlived its grace: CANCELED with the launcher's message, once."""
    async with DagloomInstance.ephemeral() as instance:
        launcher = InProcessRunLauncher(instance, LoaderJobSource({}))
        run = await instance.create_run(Run(job_name="process_numbers"))
        await launcher._cancel_unfinished(run.run_id, "Run canceled; its worker w1 was gone.")
        await launcher._cancel_unfinished(run.run_id, "Run canceled a second time.")
        ended = await instance.get_run(run.run_id)
        assert ended is not None and ended.status == RunStatus.CANCELED
        events = [r.event for r in await instance.get_events(run.run_id) if r.event is not None]
        assert [e.message for e in events if e.event_type == EventType.RUN_CANCELED] == [
            "Run canceled; its worker w1 was gone."
        ]


@pytest.mark.parametrize(
    ("monitoring", "launcher", "expected"),
    [
        ({}, {}, 30.0),  # monitoring off: the default
        ({"enabled": True}, {}, 30.0),  # the default timeout, 120 s, leaves room for four
        ({"enabled": True, "heartbeat_timeout_seconds": 10}, {}, 2.5),
        (
            {"enabled": True, "heartbeat_timeout_seconds": 10},
            {"heartbeat_interval_seconds": 5},
            5.0,
        ),
        ({"heartbeat_timeout_seconds": 10}, {"heartbeat_interval_seconds": 50}, 50.0),
    ],
)
def test_workers_beat_often_enough_for_run_monitorings_timeout(
    tmp_path: Path, monitoring: dict[str, Any], launcher: dict[str, Any], expected: float
) -> None:
    """A live worker is never counted lost between two of its heartbeats: left to choose,
    it beats four times per heartbeat timeout."""
    origins = write_location(tmp_path)
    instance = DagloomInstance.from_config(
        {
            "run_launcher": {"class": "subprocess", "config": launcher},
            "run_monitoring": monitoring,
        },
        home=tmp_path,
    )
    built = build_run_launcher(instance, origins)
    assert isinstance(built, SubprocessRunLauncher)
    assert built._heartbeat_interval == expected


def test_an_interval_too_long_for_the_heartbeat_timeout_is_refused(tmp_path: Path) -> None:
    instance = DagloomInstance.from_config(
        {
            "run_launcher": {"class": "warm_pool", "config": {"heartbeat_interval_seconds": 30}},
            "run_monitoring": {"enabled": True, "heartbeat_timeout_seconds": 40},
        },
        home=tmp_path,
    )
    with pytest.raises(ConfigError, match="more than half") as info:
        build_run_launcher(instance, write_location(tmp_path))
    assert info.value.key_paths == ["run_launcher.config.heartbeat_interval_seconds"]


class EndSpy:
    """A coordinator ref that forwards to `target` and notes each `RunEnded` told."""

    def __init__(self, target: Any, expected: int) -> None:
        self.target = target
        self.ended: dict[str, RunStatus] = {}
        self.all_ended = anyio.Event()
        self._expected = expected

    async def tell(self, message: Any) -> None:
        if isinstance(message, RunEnded):
            self.ended[message.run_id] = message.status
            if len(self.ended) == self._expected:
                self.all_ended.set()
        await self.target.tell(message)


async def test_a_warm_pool_reports_the_end_of_every_run_in_flight(tmp_path: Path) -> None:
    """The pool watches its runs with one status read per poll: each end reaches the
    coordinator once, and the pool forgets the run."""
    origins = write_location(tmp_path)
    with anyio.fail_after(120):
        async with DagloomInstance.open(tmp_path / "home") as instance:
            launcher = WarmPoolRunLauncher(instance, origins, size=1, status_poll_interval=0.05)
            async with coordinator_over(
                instance, launcher, LoaderJobSource(origins)
            ) as coordinator:
                spy = EndSpy(launcher._coordinator, expected=3)
                launcher.report_to(cast(Any, spy))
                runs = [
                    await submit_run(coordinator, SubmitRunRequest(job_name="process_numbers"))
                    for _ in range(3)
                ]
                await spy.all_ended.wait()
                assert spy.ended == {run.run_id: RunStatus.SUCCESS for run in runs}
                assert launcher._where == {}


async def test_a_warm_pool_run_is_watched_to_its_end_without_waiting_for_a_poll(
    tmp_path: Path,
) -> None:
    """A member tells the launcher each run's end: the run's watchers in the launcher's
    process read the end then, though storage is polled only every hour and so is the
    pool's status read."""
    origins = write_location(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagloom.yaml").write_text("storage:\n  sqlite:\n    poll_interval_seconds: 3600\n")
    with anyio.fail_after(120):
        async with DagloomInstance.open(home) as instance:
            launcher = WarmPoolRunLauncher(instance, origins, size=1, status_poll_interval=3600)
            async with coordinator_over(
                instance, launcher, LoaderJobSource(origins)
            ) as coordinator:
                spy = EndSpy(launcher._coordinator, expected=2)
                launcher.report_to(cast(Any, spy))
                for _ in range(2):
                    run = await submit_run(
                        coordinator, SubmitRunRequest(job_name="process_numbers")
                    )
                    ended = await wait_for_end(instance, run.run_id)
                    assert ended.status == RunStatus.SUCCESS
                await spy.all_ended.wait()
                assert set(spy.ended.values()) == {RunStatus.SUCCESS}
                assert launcher._where == {}


def test_report_to_names_a_launcher_at_an_address() -> None:
    from dagloom.cli.run_worker import _launcher_address

    assert _launcher_address("run_launcher@127.0.0.1:5000") == ("run_launcher", "127.0.0.1:5000")
    assert _launcher_address("a@b@[::1]:5000") == ("a@b", "[::1]:5000")
    for bad in ("127.0.0.1:5000", "@127.0.0.1:5000", "run_launcher@localhost"):
        assert _launcher_address(bad) is None
