"""The Dask executor on an in-process local cluster: fast checks of its contract."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from dagloom.code.loader import load_definitions
from dagloom.dask import dask_executor
from dagloom.dask.executor import LocalClusterConfig, close_local_clusters, local_cluster_address
from dagloom.errors import ConfigError
from dagloom.execution.origin import CodeOrigin
from dagloom.execution.run import execute_job_in_process
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType

from ._cluster import (
    dask_run_config,
    poll_until,
    started_marks,
    tail_until,
    write_definitions,
    write_job_definitions,
)

LOCAL = LocalClusterConfig(n_workers=2, threads_per_worker=4, processes=False)


@pytest.fixture(scope="module")
def address() -> Any:
    """The scheduler of an in-process local cluster of two workers (threads)."""
    yield local_cluster_address(LOCAL)
    close_local_clusters()


@pytest.fixture(scope="module")
def defs_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_definitions(tmp_path_factory.mktemp("dask_local"))


async def _execute(
    path: Path, name: str, address: str, options: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    job = load_definitions(python_file=path).get_job_def(name)
    async with DagloomInstance.ephemeral() as instance:
        return await execute_job_in_process(
            job,
            run_config=dask_run_config(address, **(options or {})),
            instance=instance,
            raise_on_error=False,
            code_origin=CodeOrigin(python_file=str(path)),
            **kwargs,
        )


async def test_the_seed_job_runs_as_dask_tasks_to_55(defs_path: Path, address: str) -> None:
    """Run config picks the executor by name; each step's events are led by an engine event
    naming the Dask worker that ran it."""
    with anyio.fail_after(120):
        result = await _execute(defs_path, "process_numbers", address)
    assert result.success, [e.message for e in result.all_events]
    assert result.output_for_node("sum_two_sums") == 55
    workers = [
        e
        for e in result.all_events
        if e.event_type == EventType.ENGINE_EVENT and "Dask worker" in e.message
    ]
    assert len(workers) == 6
    assert all(
        e.event_specific_data.metadata["dask_worker"].text.startswith("tcp://") for e in workers
    )


async def test_a_step_failing_once_succeeds_on_its_retry(defs_path: Path, address: str) -> None:
    with anyio.fail_after(120):
        result = await _execute(defs_path, "retrying", address)
    assert result.success
    types = [e.event_type for e in result.all_events if e.step_key == "flaky"]
    assert types.count(EventType.STEP_UP_FOR_RETRY) == 1
    assert result.output_for_node("flaky") == 1


async def test_two_runs_of_one_job_at_once_keep_apart(defs_path: Path, address: str) -> None:
    """Each attempt's task key carries its run id, so the runs share no task."""
    results: list[Any] = []

    async def one() -> None:
        results.append(await _execute(defs_path, "fan", address, tags={"width": "20"}))

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)
    assert [r.success for r in results] == [True, True]
    assert results[0].run_id != results[1].run_id
    assert [r.output_for_node("count") for r in results] == [20, 20]


async def test_an_in_memory_io_manager_is_refused_naming_the_dask_executor(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in_memory.py"
    path.write_text(
        textwrap.dedent(
            """
            from dagloom import job, op
            from dagloom.dask import dask_executor

            @op
            def one():
                return 1

            @job(executor_def=dask_executor)
            def in_memory():
                one()
            """
        )
    )
    job = load_definitions(python_file=path).get_job_def("in_memory")
    with anyio.fail_after(60):
        result = await job.execute_in_process_async(raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == EventType.RUN_FAILURE)
    assert "dask executor" in failure.message and "FilesystemIOManager" in failure.message


def test_cluster_config_takes_one_kind_and_names_the_key_path() -> None:
    with pytest.raises(ConfigError) as info:
        dask_executor.configured(
            {"cluster": {"existing": {"address": "tcp://x:1"}, "local": {"n_workers": 1}}}
        )
    assert "one of `existing` and `local`" in str(info.value)
    with pytest.raises(ConfigError) as info:
        dask_executor.configured({"cluster": {"existing": {}}})
    assert "execution.config.cluster.existing.address" in str(info.value)


async def test_cancelling_a_run_releases_its_dask_tasks(defs_path: Path, address: str) -> None:
    """The run's futures are released on cancellation: the scheduler forgets its tasks."""
    from distributed import Client

    marks_dir = defs_path.parent
    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            # No grace period: the sleeping steps are abandoned at once.
            tg.start_soon(_execute, defs_path, "slow_fan", address, {"cancel_grace_seconds": 0})
            await poll_until(lambda: bool(started_marks(marks_dir)))
            run_id = started_marks(marks_dir)[0][0]
            tg.cancel_scope.cancel()
        async with Client(address, asynchronous=True, set_as_default=False) as client:
            while True:
                keys = await client.run_on_scheduler(
                    lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks]
                )
                if not [k for k in keys if k.startswith(run_id)]:
                    break
                await anyio.sleep(0.05)  # polling the scheduler until it forgets the tasks


async def test_a_step_that_ignores_the_cancel_is_abandoned_after_the_grace_period(
    tmp_path: Path, address: str
) -> None:
    """The op never polls `run_canceled()`: the cancelled run waits out the grace period,
    not the op, then releases its task, which the scheduler forgets."""
    import time

    from distributed import Client

    defs_path = write_definitions(tmp_path)  # marks of its own
    marks_dir = tmp_path
    release = tmp_path / "release"
    grace = 1.0
    try:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: _execute(
                        defs_path,
                        "gated",
                        address,
                        {"cancel_grace_seconds": grace},
                        tags={"release": str(release)},
                    )
                )
                await poll_until(lambda: bool(started_marks(marks_dir, kind="gated")))
                run_id = started_marks(marks_dir, kind="gated")[0][0]
                cancelled_at = time.monotonic()
                tg.cancel_scope.cancel()
            waited = time.monotonic() - cancelled_at
            assert grace <= waited < grace + 30, waited
            assert not release.exists()  # the op is still blocked: it was abandoned
            async with Client(address, asynchronous=True, set_as_default=False) as client:
                while True:
                    keys = await client.run_on_scheduler(
                        lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks]
                    )
                    if not [k for k in keys if k.startswith(run_id)]:
                        break
                    await anyio.sleep(0.05)  # polling the scheduler until it forgets the task
    finally:
        release.touch()  # let the abandoned op end and free its worker thread


async def test_a_running_steps_events_reach_the_event_log_before_it_ends(
    defs_path: Path, address: str
) -> None:
    """STEP_START of a step still running (blocked on a file) is already stored."""
    marks_dir = defs_path.parent
    release = marks_dir / "release"
    job = load_definitions(python_file=defs_path).get_job_def("gated")
    with anyio.fail_after(120):
        async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
            results: list[Any] = []

            async def run() -> None:
                results.append(
                    await execute_job_in_process(
                        job,
                        run_config=dask_run_config(address),
                        instance=instance,
                        raise_on_error=False,
                        code_origin=CodeOrigin(python_file=str(defs_path)),
                        tags={"release": str(release)},
                    )
                )

            tg.start_soon(run)
            await poll_until(lambda: bool(started_marks(marks_dir, kind="gated")))
            run_id = started_marks(marks_dir, kind="gated")[0][0]

            async def started() -> bool:
                records = await instance.get_events(run_id)
                return any(
                    r.event.event_type == EventType.STEP_START and r.event.step_key == "gate"
                    for r in records
                )

            while not await started():  # noqa: ASYNC110 - storage is polled as a watcher would
                await anyio.sleep(0.05)
            assert not release.exists()
            release.touch()
    (result,) = results
    assert result.success
    kinds = [e.event_type for e in result.all_events if e.step_key == "gate"]
    assert kinds.count(EventType.STEP_START) == 1
    assert kinds.count(EventType.STEP_SUCCESS) == 1


async def test_a_cancelled_run_stops_a_step_that_polls_run_canceled(
    defs_path: Path, address: str
) -> None:
    """Dask cannot interrupt the op; it sees `run_canceled()` turn True within the grace
    period and returns."""
    marks_dir = defs_path.parent
    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_execute, defs_path, "cancellable", address)
            await poll_until(lambda: bool(started_marks(marks_dir, kind="polling")))
            run_id = started_marks(marks_dir, kind="polling")[0][0]
            assert not started_marks(marks_dir, run_id, kind="stopped")
            tg.cancel_scope.cancel()
        # The run's own thread finishes the cancel: the op sees it and stops.
        await poll_until(lambda: bool(started_marks(marks_dir, run_id, kind="stopped")))


async def test_a_steps_prints_on_a_worker_reach_its_compute_log(
    tmp_path: Path, address: str
) -> None:
    """What an op prints on a Dask worker's thread lands in that step's compute log."""
    from dagloom.compute_logs import read_compute_log

    path = tmp_path / "printing.py"
    write_job_definitions(
        path,
        """
        import sys

        @op
        def speak():
            print("hello from a dask worker")
            sys.stderr.write("and its stderr\\n")
            return 1

        @job
        def printing():
            speak()
        """,
        "printing",
    )
    job = load_definitions(python_file=path).get_job_def("printing")
    async with DagloomInstance.open(tmp_path / "home") as instance:
        with anyio.fail_after(120):
            result = await execute_job_in_process(
                job,
                run_config=dask_run_config(address),
                instance=instance,
                raise_on_error=False,
                code_origin=CodeOrigin(python_file=str(path)),
            )
        assert result.success, [e.message for e in result.all_events]
        out = await read_compute_log(instance, result.run_id, "speak")
        err = await read_compute_log(instance, result.run_id, "speak", "stderr")
    assert out.data == b"hello from a dask worker\n"
    assert err.data == b"and its stderr\n"


async def test_a_running_steps_prints_on_a_threaded_worker_can_be_tailed(
    tmp_path: Path, address: str
) -> None:
    """On a worker of several threads the step's own prints are kept in memory and still
    reach its compute log while it runs, then the rest once, without repeats."""
    from dagloom.compute_logs import read_compute_log

    path = tmp_path / "tailing.py"
    release = tmp_path / "release"
    write_job_definitions(
        path,
        f"""
        import time
        from pathlib import Path

        @op
        def chatty():
            print("first line")
            deadline = time.monotonic() + 120
            while not Path({str(release)!r}).exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            print("last line")
            return 1

        @job
        def tailing():
            chatty()
        """,
        "tailing",
    )
    job = load_definitions(python_file=path).get_job_def("tailing")
    results: list[Any] = []
    async with DagloomInstance.open(tmp_path / "home") as instance:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:

                async def run() -> None:
                    results.append(
                        await execute_job_in_process(
                            job,
                            run_config=dask_run_config(address),
                            instance=instance,
                            raise_on_error=False,
                            code_origin=CodeOrigin(python_file=str(path)),
                        )
                    )

                tg.start_soon(run)
                await tail_until(instance, "chatty", b"first line\n")
                assert not results  # the step still runs
                release.touch()
        (result,) = results
        assert result.success, [e.message for e in result.all_events]
        out = await read_compute_log(instance, result.run_id, "chatty")
    assert out.data == b"first line\nlast line\n"


def test_a_workers_memory_log_keeps_each_stream_up_to_the_limit() -> None:
    """Past the limit a stream is cut with the marker line and later output is dropped;
    after `take` nothing more is kept."""
    from dagloom.compute_logs.capture import STDERR, STDOUT, truncation_marker
    from dagloom.dask.executor import _MemoryLog
    from dagloom.execution.multiprocess import StepTask
    from dagloom.execution.origin import JobOrigin

    origin = JobOrigin(CodeOrigin(python_file="defs.py"), "job")
    task = StepTask(origin, "run", {}, {}, "step", 0, ())
    log = _MemoryLog(task, 8)
    log.write(STDOUT, "12345")
    log.write(STDOUT, "6789")
    log.write(STDOUT, "dropped")
    log.write(STDERR, "err")
    assert log.take() == (b"12345678" + truncation_marker(8), b"err")
    log.write(STDERR, "late")
    assert log.take() == (b"12345678" + truncation_marker(8), b"err")


def test_the_batcher_sends_an_attempts_events_only_once_it_has_run_for_the_interval() -> None:
    """An attempt younger than the interval sends nothing (its result carries its events);
    an older one sends each pending batch once, numbered from its first row, with the
    output written since the last batch."""
    from dagloom.dask.executor import _EventBatcher

    class Output:
        data = (bytearray(), bytearray())

        def since(self, offsets: tuple[int, int]) -> tuple[bytes, bytes]:
            return (bytes(self.data[0][offsets[0] :]), bytes(self.data[1][offsets[1] :]))

    output = Output()
    batcher = _EventBatcher(0.1)
    worker = object()
    batcher._attempts["r:a:0"] = [worker, 10.0, 0, [], output, [0, 0]]  # opened at t=10
    batcher.add("r:a:0", b"e0")
    batcher.add("r:a:0", b"e1")
    output.data[0].extend(b"hello ")
    assert batcher.due(10.05) == []
    assert batcher.due(10.15) == [
        (worker, {"key": "r:a:0", "i": 0, "rows": [b"e0", b"e1"], "out": [0, b"hello ", 0, b""]})
    ]
    assert batcher.due(10.2) == []
    batcher.add("r:a:0", b"e2")
    assert batcher.due(10.3) == [(worker, {"key": "r:a:0", "i": 2, "rows": [b"e2"]})]
    output.data[0].extend(b"world")
    output.data[1].extend(b"oops")
    assert batcher.due(10.4) == [
        (worker, {"key": "r:a:0", "i": 3, "rows": [], "out": [6, b"world", 0, b"oops"]})
    ]
    batcher.close("r:a:0")
    batcher.close("r:a:0")
    assert batcher.due(11.0) == []


def test_streamed_batches_are_emitted_once_and_in_order() -> None:
    """A batch is taken from the first row not yet emitted; a later or older one is not."""
    import orjson

    from dagloom.dask.executor import _DaskSubmitter
    from dagloom.messages import LogLevel
    from dagloom.messages.rows import row

    emitted: list[str] = []
    submitter = _DaskSubmitter(
        None,  # type: ignore[arg-type]  # never submits here
        "r",
        lambda event: emitted.append(event[3]),
        stream=True,
    )
    submitter.in_flight["r:a:0"] = None  # type: ignore[assignment]

    def rows(*messages: str) -> list[bytes]:
        return [
            orjson.dumps(row(EventType.ENGINE_EVENT, "a", m, LogLevel.DEBUG, "job"))
            for m in messages
        ]

    def message(key: str, first: int, *messages: str) -> tuple[float, Any]:
        return (0.0, {"key": key, "i": first, "rows": rows(*messages)})

    submitter.on_streamed(message("r:a:0", 2, "e2"))  # ahead of what was emitted: skipped
    submitter.on_streamed(message("r:a:0", 0, "e0", "e1"))
    submitter.on_streamed(message("r:a:0", 0, "e0", "e1"))  # again: nothing new
    submitter.on_streamed(message("other:a:0", 2, "x"))  # another run
    submitter.on_streamed(message("r:b:0", 0, "y"))  # not in flight
    submitter.on_streamed(message("r:a:0", 1, "e1", "e2", "e3"))  # overlaps: takes the tail
    assert emitted == ["e0", "e1", "e2", "e3"]


def test_streamed_output_reaches_the_attempts_log_once_from_where_it_stands() -> None:
    """Each streamed chunk is appended from the log's end: a repeated or overlapping chunk
    adds only what is new, one past the end (a lost chunk) is left for the result."""
    from dagloom.dask.executor import _DaskSubmitter

    class Log:
        data = (bytearray(), bytearray())

        def write_bytes(self, stream: int, data: bytes) -> None:
            self.data[stream].extend(data)

    log = Log()
    submitter = _DaskSubmitter(None, "r", lambda event: None, stream=True)  # type: ignore[arg-type]
    submitter.in_flight["r:a:0"] = None  # type: ignore[assignment]
    submitter._logs["r:a:0"] = log  # type: ignore[assignment]

    def chunk(out_at: int, out: bytes, err_at: int, err: bytes) -> tuple[float, Any]:
        return (0.0, {"key": "r:a:0", "i": 0, "rows": [], "out": [out_at, out, err_at, err]})

    submitter.on_streamed(chunk(0, b"hel", 0, b""))
    submitter.on_streamed(chunk(0, b"hel", 0, b"e"))
    submitter.on_streamed(chunk(1, b"ello", 1, b"rr"))
    submitter.on_streamed(chunk(9, b"lost", 3, b""))
    assert log.data == (bytearray(b"hello"), bytearray(b"err"))
    assert submitter._written["r:a:0"] == [5, 3]


async def test_a_topology_launcher_of_kind_dask_is_a_dask_run_launcher(
    tmp_path: Path, address: str
) -> None:
    """`launcher: {kind: dask, address, home}` starts a DaskRunLauncher on that scheduler."""
    import functools

    from dagloom.dask import DaskRunLauncher
    from dagloom.topology import parse_topology
    from dagloom.topology.wiring import RunningNode, run_node

    defs = write_definitions(tmp_path)
    launcher = {"kind": "dask", "address": address, "home": str(tmp_path / "home")}
    topology = parse_topology(
        {
            "locations": {"defs": {"python_file": str(defs)}},
            "nodes": {
                "one": {
                    "api": {"port": None},
                    "coordinator": {},
                    "launcher": launcher,
                    "code_locations": ["defs"],
                }
            },
        }
    )
    with anyio.fail_after(60):
        async with (
            DagloomInstance.open(tmp_path / "home") as instance,
            anyio.create_task_group() as tg,
        ):
            node: RunningNode = await tg.start(
                functools.partial(run_node, topology, "one", instance=instance)
            )
            actor = node.actors["run_launcher"]
            tg.cancel_scope.cancel()
    assert isinstance(actor, DaskRunLauncher)
    assert actor.address == address
