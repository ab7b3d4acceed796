"""The run monitoring loop on real storage with an injected clock: each verdict is carried
out once, and a run whose worker process was SIGKILLed ends FAILURE."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from dagloom.actors.run_worker import HEARTBEAT_TAG, WORKER_TAG
from dagloom.cli.run_worker import origins_to_json
from dagloom.daemon import MonitoringSettings
from dagloom.daemon.monitoring_loop import RunMonitoringLoop
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, Run, RunStatus
from dagloom.messages.rpc import TerminateRunReply, TerminateRunRequest
from tests.actors.test_run_launcher import op_started_signal, write_location

from ._stores import BACKENDS, move, open_instance, run_at

T0 = 1_000_000.0
SETTINGS = MonitoringSettings(
    start_timeout_seconds=180,
    cancel_timeout_seconds=60,
    heartbeat_timeout_seconds=120,
    max_runtime_seconds=0,
)


class FakeLauncher:
    """Answers TerminateRun and remembers which runs it was asked to stop."""

    actor = "run_launcher"

    def __init__(self) -> None:
        self.terminated: list[str] = []

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - the ActorRef signature
        assert isinstance(message, TerminateRunRequest)
        self.terminated.append(message.run_id)
        return TerminateRunReply(terminated=True)


async def end_message(instance: DagloomInstance, run: Run) -> str:
    stored = await instance.get_run(run.run_id)
    assert stored is not None
    ends = [
        r.event
        for r in await instance.get_events(run.run_id)
        if r.event is not None
        and r.event.event_type in (EventType.RUN_FAILURE, EventType.RUN_CANCELED)
    ]
    assert len(ends) == 1, ends
    return f"{stored.status.name}: {ends[0].message}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_each_verdict_is_carried_out_when_due_and_not_before(
    backend: str, tmp_path: Path
) -> None:
    async with open_instance(backend, tmp_path) as instance:
        launcher = FakeLauncher()
        loop = RunMonitoringLoop(instance, launcher, SETTINGS)  # type: ignore[arg-type]
        not_started = await run_at(instance, RunStatus.NOT_STARTED, at=T0)
        starting = await run_at(instance, RunStatus.STARTING, at=T0)
        silent = await run_at(
            instance, RunStatus.STARTED, at=T0, tags={HEARTBEAT_TAG: str(T0 + 100)}
        )
        alive = await run_at(instance, RunStatus.STARTED, at=T0 + 150)
        too_long = await run_at(
            instance,
            RunStatus.STARTED,
            at=T0 + 150,
            tags={"dagster/max_runtime": "30", HEARTBEAT_TAG: str(T0 + 170)},
        )
        canceling = await run_at(instance, RunStatus.CANCELING, at=T0 + 150)

        await loop.tick(T0 + 179)  # nothing is due yet
        for run in (not_started, starting, silent, alive, too_long, canceling):
            stored = await instance.get_run(run.run_id)
            assert stored is not None and stored.status == run.status

        await loop.tick(T0 + 230)
        assert (await end_message(instance, not_started)).startswith(
            "FAILURE: Run monitoring (start_timeout): Run timed out while not started"
        )
        assert (await end_message(instance, starting)).startswith(
            "FAILURE: Run monitoring (start_timeout): Run timed out while starting"
        )
        assert (await end_message(instance, silent)).startswith(
            "FAILURE: Run monitoring (worker_lost): Run worker lost: its worker sent no "
            "heartbeat for 130 s"
        )
        assert (await end_message(instance, too_long)).startswith(
            "FAILURE: Run monitoring (max_runtime): Exceeded maximum runtime of 30 seconds"
        )
        assert (await end_message(instance, canceling)).startswith(
            "CANCELED: Run monitoring (cancel_timeout): Run was canceling for 80 s"
        )
        stored_alive = await instance.get_run(alive.run_id)
        assert stored_alive is not None and stored_alive.status == RunStatus.STARTED
        # Workers are stopped where the run must end while its worker may be alive.
        assert sorted(launcher.terminated) == sorted(
            [not_started.run_id, starting.run_id, too_long.run_id]
        )


async def test_two_loops_end_a_run_once(backend: str, tmp_path: Path) -> None:
    async with open_instance(backend, tmp_path) as instance:
        launchers = [FakeLauncher(), FakeLauncher()]
        loops = [RunMonitoringLoop(instance, la, SETTINGS) for la in launchers]  # type: ignore[arg-type]
        runs = [await run_at(instance, RunStatus.STARTING, at=T0) for _ in range(5)]
        async with anyio.create_task_group() as tg:
            for loop in loops:
                tg.start_soon(loop.tick, T0 + 500)
        for run in runs:
            await end_message(instance, run)  # exactly one end each
        assert sorted(launchers[0].terminated + launchers[1].terminated) == sorted(
            r.run_id for r in runs
        )
        await loops[0].tick(T0 + 1000)  # ended runs are not looked at again
        assert len(launchers[0].terminated + launchers[1].terminated) == 5


async def test_a_run_that_ended_meanwhile_is_left_as_it_ended(backend: str, tmp_path: Path) -> None:
    async with open_instance(backend, tmp_path) as instance:
        run = await run_at(instance, RunStatus.STARTED, at=T0)
        launcher = FakeLauncher()
        loop = RunMonitoringLoop(instance, launcher, SETTINGS)  # type: ignore[arg-type]
        await move(instance, run.run_id, EventType.RUN_SUCCESS, T0 + 10)
        await loop.tick(T0 + 10_000)
        stored = await instance.get_run(run.run_id)
        assert stored is not None and stored.status == RunStatus.SUCCESS
        assert launcher.terminated == []


@pytest.mark.slow
async def test_a_sigkilled_worker_process_leaves_its_run_failed_within_two_polls(
    tmp_path: Path,
) -> None:
    """A run worker process killed with SIGKILL records nothing; the loop fails its run,
    saying the worker was lost, once two poll intervals passed since its last heartbeat."""
    origins = write_location(tmp_path)
    poll = 60.0
    settings = MonitoringSettings(heartbeat_timeout_seconds=poll)
    with anyio.fail_after(120):
        async with (
            DagloomInstance.open(tmp_path / "home") as instance,
            op_started_signal() as (port, op_started),
        ):
            run = await instance.create_run(
                Run(job_name="stuck", code_location="location", tags={"port": str(port)})
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
                    "--heartbeat-interval",
                    "0.05",
                ]
            )
            async with process:
                await op_started.wait()
                # Its first heartbeat comes within one interval of the start.
                stored = await instance.get_run(run.run_id)
                while stored is None or HEARTBEAT_TAG not in stored.tags:
                    await anyio.sleep(0.01)
                    stored = await instance.get_run(run.run_id)
                assert stored.status == RunStatus.STARTED
                os.kill(process.pid, signal.SIGKILL)
                assert await process.wait() == -signal.SIGKILL
            stored = await instance.get_run(run.run_id)
            assert stored is not None and stored.status == RunStatus.STARTED
            beat = float(stored.tags[HEARTBEAT_TAG])
            loop = RunMonitoringLoop(instance, None, settings, interval=poll)
            await loop.tick(beat + poll / 2)
            still = await instance.get_run(run.run_id)
            assert still is not None and still.status == RunStatus.STARTED
            await loop.tick(beat + 2 * poll)
            message = await end_message(instance, run)
            assert message.startswith("FAILURE: Run monitoring (worker_lost): Run worker lost: ")
            assert stored.tags[WORKER_TAG] in message


async def test_a_run_executing_in_process_heartbeats_so_monitoring_leaves_it(
    tmp_path: Path,
) -> None:
    """`execute_job_in_process` with an instance (`dagloom job execute`) writes heartbeat
    tags while the run executes: a long run is not taken for a dead one."""
    from dagloom import job, op
    from dagloom.execution.run import execute_job_in_process

    release = anyio.Event()
    beating = anyio.Event()

    @op
    async def long_op() -> int:
        await release.wait()
        return 1

    @job
    def long_job() -> None:
        long_op()

    async with open_instance("sqlite", tmp_path) as instance:

        async def watch() -> None:
            while True:
                runs = await instance.get_runs()
                # RUN_START reaches storage with the sink's first batch, the tag with a beat.
                if runs and runs[0].status == RunStatus.STARTED and HEARTBEAT_TAG in runs[0].tags:
                    beating.set()
                    return
                await anyio.sleep(0.01)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                tg.start_soon(
                    lambda: execute_job_in_process(
                        long_job, instance=instance, heartbeat_interval=0.02
                    )
                )
                await beating.wait()
                (run,) = await instance.get_runs()
                beat = float(run.tags[HEARTBEAT_TAG])
                assert run.tags[WORKER_TAG].startswith(f"pid {os.getpid()} on ")
                loop = RunMonitoringLoop(instance, None, SETTINGS)
                await loop.tick(beat + 100)  # long after the start, soon after the beat
                stored = await instance.get_run(run.run_id)
                assert stored is not None and stored.status == RunStatus.STARTED
                release.set()
        stored = await instance.get_run(run.run_id)
        assert stored is not None and stored.status == RunStatus.SUCCESS


ONCE = """
from pathlib import Path

import anyio
from dagloom import Definitions, FilesystemIOManager, job, op

HERE = Path({here!r})


@op
def first() -> int:
    with (HERE / "calls.txt").open("a") as calls:
        calls.write("first\\n")
    return 20


@op
async def hang_once(context, value: int) -> int:
    if not (HERE / "fixed").exists():
        await anyio.connect_tcp("127.0.0.1", int(context.run_tags["port"]))
        await anyio.Event().wait()
    return value + 1


@job
def once() -> None:
    hang_once(first())


defs = Definitions(
    jobs=[once], resources={{"io_manager": FilesystemIOManager(base_dir={io!r})}}
)
"""


@pytest.mark.slow
async def test_a_sigkilled_run_ends_failure_and_its_retry_succeeds_from_failure(
    tmp_path: Path,
) -> None:
    """The whole path: a worker process is SIGKILLed mid-run; monitoring fails the run as
    worker lost; the retry loop re-executes it from failure in a new worker process, which
    reuses the output of the step that had succeeded and succeeds."""
    from dagloom.actors.job_source import LoaderJobSource
    from dagloom.actors.run_launcher import SubprocessRunLauncher
    from dagloom.daemon import RetrySettings, derived_run_id
    from dagloom.daemon.retry_loop import RunRetryLoop
    from dagloom.execution.origin import CodeOrigin
    from tests.actors._runs import coordinator_over, stored_output, wait_for_end

    path = tmp_path / "once_defs.py"
    path.write_text(ONCE.format(here=str(tmp_path), io=str(tmp_path / "io")))
    origins = {"location": CodeOrigin(python_file=str(path))}
    poll = 60.0
    with anyio.fail_after(120):
        async with (
            DagloomInstance.open(tmp_path / "home") as instance,
            op_started_signal() as (port, op_started),
        ):
            run = await instance.create_run(
                Run(
                    job_name="once",
                    code_location="location",
                    tags={"port": str(port), "dagster/max_retries": "1"},
                )
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
                    "--heartbeat-interval",
                    "0.05",
                ]
            )
            async with process:
                await op_started.wait()
                while True:  # until `first` and `hang_once` are stored, and a heartbeat
                    stats = {s.step_key for s in await instance.get_step_stats(run.run_id)}
                    beating = await instance.get_run(run.run_id)
                    assert beating is not None
                    if stats == {"first", "hang_once"} and HEARTBEAT_TAG in beating.tags:
                        break
                    await anyio.sleep(0.01)
                os.kill(process.pid, signal.SIGKILL)
                await process.wait()
            stored = await instance.get_run(run.run_id)
            assert stored is not None
            beat = float(stored.tags[HEARTBEAT_TAG])
            monitoring = RunMonitoringLoop(
                instance, None, MonitoringSettings(heartbeat_timeout_seconds=poll)
            )
            await monitoring.tick(beat + 2 * poll)
            assert "(worker_lost)" in await end_message(instance, run)

            (tmp_path / "fixed").touch()
            launcher = SubprocessRunLauncher(instance, origins)
            async with coordinator_over(
                instance, launcher, LoaderJobSource(origins)
            ) as coordinator:
                await RunRetryLoop(instance, coordinator, RetrySettings(enabled=True)).tick(0)
                retry = await wait_for_end(instance, derived_run_id("retry", run.run_id))
            assert retry.status == RunStatus.SUCCESS
            assert list(retry.step_keys_to_execute) == ["hang_once"]
            assert stored_output(tmp_path / "io", retry.run_id, "hang_once") == 21
    assert (tmp_path / "calls.txt").read_text() == "first\n"
