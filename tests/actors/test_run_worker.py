"""The run worker: executes stored runs, records their ends, heartbeats, honours StopRun."""

from __future__ import annotations

import itertools
import textwrap
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import assert_never

import anyio
import orjson
import pytest
import structlog

from dagloom.actors import Actor
from dagloom.actors.code_location import load_location
from dagloom.actors.job_source import DefinitionsJobSource, JobSource, LoaderJobSource
from dagloom.actors.run_coordinator import RunCoordinatorReply, RunCoordinatorRequest
from dagloom.actors.run_worker import HEARTBEAT_TAG, WORKER_TAG, RunWorker
from dagloom.code.loader import load_definitions
from dagloom.code.snapshot import job_snapshot
from dagloom.errors import SnapshotMismatchError
from dagloom.execution.multiprocess import close_pools
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, Run, RunStatus
from dagloom.messages.rpc import (
    AdmitRunsReply,
    AdmitRunsRequest,
    CancelRunReply,
    CancelRunRequest,
    ExecuteRunReply,
    ExecuteRunRequest,
    RunCoordinatorBase,
    RunEnded,
    RunEndedReply,
    StopRunReply,
    StopRunRequest,
    SubmitRunReply,
    SubmitRunRequest,
)
from dagloom.transport import MemoryRef, MemoryTransport

from ._runs import (
    EXAMPLE,
    GATES,
    STARTED,
    fresh_gates,
    seed_definitions,
    stored_output,
    wait_for_end,
)


def run_threads() -> list[str]:
    """The names of the run threads alive now."""
    return [t.name for t in threading.enumerate() if t.name.startswith("dagloom run ")]


WorkerRef = MemoryRef[ExecuteRunRequest | StopRunRequest, ExecuteRunReply | StopRunReply]


class EndsRecorder(Actor[RunCoordinatorRequest, RunCoordinatorReply]):
    """A stand-in coordinator that records the RunEnded notices it is told."""

    service = RunCoordinatorBase

    def __init__(self) -> None:
        super().__init__("ends")
        self.ended: list[tuple[str, RunStatus]] = []
        self.told = anyio.Event()

    async def handle(self, message: RunCoordinatorRequest) -> RunCoordinatorReply:
        match message:
            case RunEnded():
                self.ended.append((message.run_id, message.status))
                self.told.set()
                return RunEndedReply()
            case SubmitRunRequest():
                return SubmitRunReply()
            case CancelRunRequest():
                return CancelRunReply()
            case AdmitRunsRequest():
                return AdmitRunsReply()
            case _:
                assert_never(message)


@asynccontextmanager
async def serving(
    instance: DagloomInstance, jobs: JobSource
) -> AsyncIterator[
    tuple[
        MemoryRef[ExecuteRunRequest | StopRunRequest, ExecuteRunReply | StopRunReply],
        RunWorker,
        EndsRecorder,
    ]
]:
    transport = MemoryTransport()
    ends = EndsRecorder()
    worker = RunWorker(instance, jobs, coordinator=transport.ref(ends), heartbeat_interval=3600)
    async with anyio.create_task_group() as tg:
        await tg.start(ends.run)
        await tg.start(worker.run)
        yield transport.ref(worker), worker, ends
        tg.cancel_scope.cancel()


async def test_a_stored_run_executes_heartbeats_and_is_reported_ended(tmp_path: Path) -> None:
    jobs = DefinitionsJobSource({"numbers": seed_definitions(tmp_path)})
    with anyio.fail_after(30):
        async with (
            DagloomInstance.ephemeral() as instance,
            serving(instance, jobs) as (
                ref,
                worker,
                ends,
            ),
        ):
            run = await instance.create_run(Run(job_name="process_numbers"))
            reply = await ref.ask(ExecuteRunRequest(run_id=run.run_id))
            assert isinstance(reply, ExecuteRunReply) and reply.accepted
            again = await ref.ask(ExecuteRunRequest(run_id=run.run_id))
            assert again.accepted  # type: ignore[union-attr]  # asking twice changes nothing
            await worker.wait_idle()
            await ends.told.wait()
            stored = await instance.get_run(run.run_id)
            assert stored is not None and stored.status == RunStatus.SUCCESS
            # Shorter than one heartbeat interval (an hour here): no heartbeat was written.
            assert WORKER_TAG not in stored.tags and HEARTBEAT_TAG not in stored.tags
            assert ends.ended == [(run.run_id, RunStatus.SUCCESS)]
            finished = await ref.ask(ExecuteRunRequest(run_id=run.run_id))
            assert not finished.accepted and "already finished" in finished.message  # type: ignore[union-attr]
    assert stored_output(tmp_path, run.run_id, "sum_two_sums") == 55


async def test_a_job_without_an_io_manager_keeps_its_outputs_in_the_instances_storage(
    tmp_path: Path,
) -> None:
    """As with Dagster's default `fs_io_manager`: a retry or re-execution from failure of
    the run (another run, perhaps on another worker) can load what its steps returned."""
    plain = load_definitions(python_file=EXAMPLE)
    jobs = DefinitionsJobSource({"numbers": plain})
    with anyio.fail_after(30):
        async with (
            DagloomInstance.open(tmp_path / "home") as instance,
            serving(instance, jobs) as (ref, worker, _),
        ):
            run = await instance.create_run(Run(job_name="process_numbers"))
            await ref.ask(ExecuteRunRequest(run_id=run.run_id))
            await worker.wait_idle()
            ended = await instance.get_run(run.run_id)
            storage_dir = instance.storage_dir
    assert ended is not None and ended.status == RunStatus.SUCCESS
    assert stored_output(storage_dir, run.run_id, "sum_two_sums") == 55


async def test_a_runs_events_are_stored_in_the_order_it_executed_them(tmp_path: Path) -> None:
    """Every event the executor emits on the run's thread reaches storage, in order: the
    same sequence as the job executed in-process without storage."""
    definitions = seed_definitions(tmp_path)
    jobs = DefinitionsJobSource({"numbers": definitions})
    with anyio.fail_after(30):
        async with DagloomInstance.ephemeral() as instance, serving(instance, jobs) as (ref, w, _):
            run = await instance.create_run(Run(job_name="process_numbers"))
            await ref.ask(ExecuteRunRequest(run_id=run.run_id))
            await w.wait_idle()
            records = await instance.get_events(run.run_id)
    stored = [(r.event.event_type.name, r.event.step_key) for r in records if r.event is not None]
    direct = await definitions.get_job_def("process_numbers").execute_in_process_async()
    assert stored == [(e.event_type_value, e.step_key or "") for e in direct.all_events]
    assert [r.storage_id for r in records] == sorted(r.storage_id for r in records)
    assert run_threads() == []


async def test_heartbeats_flow_while_a_sync_op_blocks_the_run(tmp_path: Path) -> None:
    """The run's thread is blocked in a sync op; the worker's loop goes on writing the run's
    heartbeat (its clock is read, and the tag written, beat after beat) and answering asks,
    as a warm-pool worker answers gRPC."""
    fresh_gates()
    ticks = itertools.count(1)
    during_block: list[float] = []
    beating = anyio.Event()

    def clock() -> float:
        now = float(next(ticks))
        if STARTED["sync"].is_set() and not GATES["sync"].is_set():
            during_block.append(now)
            if len(during_block) == 3:
                beating.set()
        return now

    jobs = DefinitionsJobSource({"numbers": seed_definitions(tmp_path)})
    instance = DagloomInstance.ephemeral()
    worker = RunWorker(instance, jobs, heartbeat_interval=0.001, clock=clock)
    with anyio.fail_after(30):
        async with instance, anyio.create_task_group() as tg:
            await tg.start(worker.run)
            ref = MemoryTransport().ref(worker)
            run = await instance.create_run(Run(job_name="sync_gated", tags={"gate": "sync"}))
            await ref.ask(ExecuteRunRequest(run_id=run.run_id))
            try:
                await STARTED["sync"].wait()
                await beating.wait()
                beat = await instance.get_run(run.run_id)
                # The worker also answers its own protocol meanwhile.
                asked = await ref.ask(StopRunRequest(run_id="another"))
                blocked = not GATES["sync"].is_set()
            finally:
                GATES["sync"].set()
            await worker.wait_idle()
            ended = await instance.get_run(run.run_id)
            tg.cancel_scope.cancel()
    assert blocked and beat is not None and float(beat.tags[HEARTBEAT_TAG]) >= during_block[1]
    assert beat.tags[WORKER_TAG] == worker.name
    assert isinstance(asked, StopRunReply) and not asked.stopped
    assert ended is not None and ended.status == RunStatus.SUCCESS
    assert run_threads() == []


async def test_unknown_runs_are_refused_and_stop_of_an_idle_run_is_a_no(tmp_path: Path) -> None:
    jobs = DefinitionsJobSource({"numbers": seed_definitions(tmp_path)})
    with anyio.fail_after(30):
        async with DagloomInstance.ephemeral() as instance, serving(instance, jobs) as (ref, _, _):
            reply = await ref.ask(ExecuteRunRequest(run_id="nope"))
            assert not reply.accepted and "no run" in reply.message  # type: ignore[union-attr]
            stop = await ref.ask(StopRunRequest(run_id="nope"))
            assert isinstance(stop, StopRunReply) and not stop.stopped


async def test_a_job_that_cannot_be_loaded_ends_the_run_as_failure(tmp_path: Path) -> None:
    jobs = DefinitionsJobSource({"numbers": seed_definitions(tmp_path)})
    with anyio.fail_after(30):
        async with (
            DagloomInstance.ephemeral() as instance,
            serving(instance, jobs) as (
                ref,
                _worker,
                ends,
            ),
        ):
            run = await instance.create_run(Run(job_name="gone", code_location="numbers"))
            await ref.ask(ExecuteRunRequest(run_id=run.run_id))
            ended = await wait_for_end(instance, run.run_id)
            await ends.told.wait()
    assert ended.status == RunStatus.FAILURE
    assert ends.ended == [(run.run_id, RunStatus.FAILURE)]


async def test_a_run_another_worker_claimed_is_left_alone(tmp_path: Path) -> None:
    """The claim is refused (the run is STARTED elsewhere): nothing executes, no failure is
    recorded, nobody is told the run ended, and the worker says why."""
    jobs = DefinitionsJobSource({"numbers": seed_definitions(tmp_path)})
    with anyio.fail_after(30), structlog.testing.capture_logs() as logs:
        async with (
            DagloomInstance.ephemeral() as instance,
            serving(instance, jobs) as (ref, worker, ends),
        ):
            run = await instance.create_run(
                Run(job_name="process_numbers", status=RunStatus.STARTED)
            )
            reply = await ref.ask(ExecuteRunRequest(run_id=run.run_id))
            assert reply.accepted  # type: ignore[union-attr]
            await worker.wait_idle()
            stored = await instance.get_run(run.run_id)
            events = await instance.get_events(run.run_id)
    assert stored is not None and stored.status == RunStatus.STARTED
    assert events == [] and ends.ended == []
    assert not (tmp_path / run.run_id).exists()
    assert {
        "event": "run_not_claimed",
        "log_level": "info",
        "run_id": run.run_id,
        "actor": worker.name,
        "status": "STARTED",
    } in logs


async def test_stop_run_cancels_a_running_run(tmp_path: Path) -> None:
    fresh_gates()
    jobs = DefinitionsJobSource({"numbers": seed_definitions(tmp_path)})
    with anyio.fail_after(30), structlog.testing.capture_logs() as logs:
        async with (
            DagloomInstance.ephemeral() as instance,
            serving(instance, jobs) as (
                ref,
                worker,
                ends,
            ),
        ):
            run = await instance.create_run(Run(job_name="gated", tags={"gate": "held"}))
            await ref.ask(ExecuteRunRequest(run_id=run.run_id))
            await STARTED["held"].wait()
            stop = await ref.ask(StopRunRequest(run_id=run.run_id))
            assert stop.stopped  # type: ignore[union-attr]
            await worker.wait_idle()
            await ends.told.wait()
            stored = await instance.get_run(run.run_id)
            events = [r.event.event_type for r in await instance.get_events(run.run_id)]
    assert not GATES["held"].is_set()
    assert stored is not None and stored.status == RunStatus.CANCELED
    assert run_threads() == []
    assert events[-1] == EventType.RUN_CANCELED
    assert ends.ended == [(run.run_id, RunStatus.CANCELED)]
    # The executor recorded the end; the worker does not try to record it again.
    assert not [e for e in logs if e["event"] == "run_transition_refused"]


async def test_a_worker_loading_code_itself_runs_the_multiprocess_executor(tmp_path: Path) -> None:
    """The worker hands the location's origin to the multiprocess executor, whose step
    processes import the same file."""
    path = tmp_path / "location.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from dagloom import Definitions, FilesystemIOManager
            from dagloom.code.loader import load_definitions

            _job = load_definitions(python_file={str(EXAMPLE)!r}).get_job_def("process_numbers")
            defs = Definitions(
                jobs=[_job],
                resources={{"io_manager": FilesystemIOManager(base_dir={str(tmp_path)!r})}},
            )
            """
        )
    )
    jobs = LoaderJobSource({"numbers": CodeOrigin(python_file=str(path))})
    config = {"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}}
    try:
        with anyio.fail_after(120):
            async with (
                DagloomInstance.ephemeral() as instance,
                serving(instance, jobs) as (
                    ref,
                    _,
                    _,
                ),
            ):
                run = await instance.create_run(
                    Run(
                        job_name="process_numbers",
                        code_location="numbers",
                        run_config_json=orjson.dumps(config).decode(),
                    )
                )
                await ref.ask(ExecuteRunRequest(run_id=run.run_id))
                ended = await wait_for_end(instance, run.run_id)
    finally:
        close_pools()
    assert ended.status == RunStatus.SUCCESS
    assert stored_output(tmp_path, run.run_id, "sum_two_sums") == 55


async def test_a_run_validated_against_other_code_fails_naming_both_snapshot_ids(
    tmp_path: Path,
) -> None:
    jobs = DefinitionsJobSource({"numbers": seed_definitions(tmp_path)})
    validated = "0" * 64
    with anyio.fail_after(30):
        async with DagloomInstance.ephemeral() as instance, serving(instance, jobs) as (ref, _, _):
            run = await instance.create_run(
                Run(job_name="process_numbers", code_location="numbers", job_snapshot_id=validated)
            )
            await ref.ask(ExecuteRunRequest(run_id=run.run_id))
            ended = await wait_for_end(instance, run.run_id)
            failure = (await instance.get_events(run.run_id))[-1].event
    loaded = job_snapshot(seed_definitions(tmp_path).get_job_def("process_numbers")).snapshot_id
    assert ended.status == RunStatus.FAILURE
    assert failure is not None and failure.event_type == EventType.RUN_FAILURE
    assert "SnapshotMismatchError" in failure.message
    assert validated in failure.message and loaded in failure.message
    assert not (tmp_path / run.run_id).exists()  # no step ran


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


async def test_a_worker_loading_code_itself_reloads_it_for_a_run_validated_against_new_code(
    tmp_path: Path,
) -> None:
    """The worker imported version 1; the code location validated a run against version 2
    (the file changed): the worker imports the file again and runs version 2."""
    path = tmp_path / "versioned.py"
    path.write_text(VERSIONED.format(value=1, base=str(tmp_path)))
    origin = CodeOrigin(python_file=str(path))
    jobs = LoaderJobSource({"versioned": origin})
    jobs.load_all()
    path.write_text(VERSIONED.format(value=2, base=str(tmp_path)))
    # What the code location, reloading the changed file, validates runs against.
    validated = load_location(origin, location_name="versioned", loaded_at=0.0, fresh=True)
    snapshot_id = validated.job_snapshot_ids["versioned"]
    with anyio.fail_after(30):
        async with DagloomInstance.ephemeral() as instance, serving(instance, jobs) as (ref, _, _):
            run = await instance.create_run(
                Run(job_name="versioned", code_location="versioned", job_snapshot_id=snapshot_id)
            )
            await ref.ask(ExecuteRunRequest(run_id=run.run_id))
            ended = await wait_for_end(instance, run.run_id)
    assert ended.status == RunStatus.SUCCESS
    assert stored_output(tmp_path, run.run_id, "answer") == 2


def test_a_loader_source_refuses_a_snapshot_its_reloaded_code_does_not_have(
    tmp_path: Path,
) -> None:
    path = tmp_path / "versioned.py"
    path.write_text(VERSIONED.format(value=1, base=str(tmp_path)))
    jobs = LoaderJobSource({"versioned": CodeOrigin(python_file=str(path))})
    current = jobs.get_job("versioned", "versioned")
    assert jobs.get_job("versioned", "versioned", snapshot_id=job_snapshot(current).snapshot_id)
    with pytest.raises(SnapshotMismatchError) as info:
        jobs.get_job("versioned", "versioned", snapshot_id="f" * 64)
    assert info.value.expected == "f" * 64
    assert info.value.actual == job_snapshot(current).snapshot_id
    assert info.value.location == "versioned" and info.value.job_name == "versioned"
