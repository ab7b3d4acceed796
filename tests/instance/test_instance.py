"""DagloomInstance: runs and events through the batched sink, persistence across processes,
mixed backends, and the errors of a bad home."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from dagloom.errors import LeaseLostError, RunNotFoundError, StorageError
from dagloom.instance import DagloomInstance
from dagloom.messages import Event, EventType, Run, RunStatus
from dagloom.messages.rows import row_of
from dagloom.storage import RunsFilter, StepStatus
from dagloom.storage.base import RunTransition
from tests.daemon._stores import open_instance
from tests.storage.pg import PG_URL, fresh_schema

ROOT = Path(__file__).resolve().parents[2]


def run_events(run_id: str, steps: int) -> list[Event]:
    events = [Event(run_id=run_id, event_type=EventType.RUN_START, timestamp=1.0)]
    for i in range(steps):
        events.append(Event(run_id=run_id, event_type=EventType.STEP_START, step_key=f"s{i}"))
        events.append(Event(run_id=run_id, event_type=EventType.STEP_SUCCESS, step_key=f"s{i}"))
    events.append(Event(run_id=run_id, event_type=EventType.RUN_SUCCESS, timestamp=2.0))
    return events


async def execute(instance: DagloomInstance, job: str, steps: int, batch: int = 500) -> Run:
    """What the executor does: create the run, emit into a sink, flush before finishing."""
    run = await instance.create_run(Run(job_name=job, tags={"team": "data"}))
    sink = instance.event_sink(run.run_id, batch_size=batch)
    for event in run_events(run.run_id, steps):
        sink.emit(row_of(event))
    await sink.flush()
    return run


async def test_a_run_persists_and_reads_back_from_a_new_instance(tmp_path: Path) -> None:
    async with DagloomInstance.open(tmp_path) as instance:
        run = await execute(instance, "etl", 1000, batch=64)
        assert run.run_id and run.create_time > 0 and run.status == RunStatus.NOT_STARTED
    async with DagloomInstance.open(tmp_path) as again:
        stored = await again.get_run(run.run_id)
        assert stored is not None
        assert (stored.status, stored.start_time, stored.end_time) == (RunStatus.SUCCESS, 1.0, 2.0)
        records = await again.get_events(run.run_id)
        assert [r.event for r in records] == run_events(run.run_id, 1000)
        stats = await again.get_step_stats(run.run_id)
        assert len(stats) == 1000 and {s.status for s in stats} == {StepStatus.SUCCESS}
        assert [r.run_id for r in await again.get_runs(RunsFilter(tags={"team": "data"}))] == [
            run.run_id
        ]


async def test_events_are_readable_after_the_writing_process_exits(tmp_path: Path) -> None:
    script = (
        "import anyio\n"
        "from dagloom.instance import DagloomInstance\n"
        "from tests.instance.test_instance import execute\n"
        "async def main():\n"
        f"    async with DagloomInstance.open({str(tmp_path)!r}) as instance:\n"
        "        run = await execute(instance, 'child', 10)\n"
        "        print(run.run_id)\n"
        "anyio.run(main)\n"
    )
    done = await anyio.run_process([sys.executable, "-c", script], cwd=ROOT)
    run_id = done.stdout.decode().strip()
    async with DagloomInstance.open(tmp_path) as instance:
        run = await instance.get_run(run_id)
        assert run is not None and run.status == RunStatus.SUCCESS
        assert len(await instance.get_events(run_id)) == 22


async def test_mixed_backends_still_move_run_status(tmp_path: Path) -> None:
    config = {
        "run_storage": {"class": "MemoryRunStorage"},
        "event_log_storage": {"class": "SqliteEventLogStorage"},
    }
    async with DagloomInstance.from_config(config, home=tmp_path) as instance:
        run = await execute(instance, "job", 3, batch=2)
        stored = await instance.get_run(run.run_id)
        assert stored is not None and stored.status == RunStatus.SUCCESS
        await instance.delete_run(run.run_id)
        assert await instance.get_events(run.run_id) == []
        with pytest.raises(RunNotFoundError):
            await instance.delete_run(run.run_id)


MIXED = {
    "run_storage": {"class": "MemoryRunStorage"},
    "event_log_storage": {"class": "SqliteEventLogStorage"},
}


def lifecycle_event(kind: EventType, ts: float = 1.0) -> Event:
    return Event(event_type=kind, timestamp=ts, message=kind.name)


@pytest.mark.parametrize("config", [None, MIXED], ids=["one-database", "runs-apart"])
async def test_transition_run_is_a_compare_and_set(
    tmp_path: Path, config: dict[str, object] | None
) -> None:
    """Applied moves store their event; refused ones store nothing and answer the winner,
    whether or not runs and events share a database."""
    instance = (
        DagloomInstance.ephemeral()
        if config is None
        else DagloomInstance.from_config(config, home=tmp_path)
    )
    async with instance:
        run = await instance.create_run(Run(job_name="job"))
        moves = [
            (EventType.RUN_START, RunTransition(applied=True, status=RunStatus.STARTED)),
            (EventType.RUN_START, RunTransition(applied=False, status=RunStatus.STARTED)),
            (EventType.RUN_CANCELED, RunTransition(applied=True, status=RunStatus.CANCELED)),
            (EventType.RUN_SUCCESS, RunTransition(applied=False, status=RunStatus.CANCELED)),
        ]
        for kind, expected in moves:
            assert await instance.transition_run(run.run_id, lifecycle_event(kind)) == expected
        stored = [r.event.event_type for r in await instance.get_events(run.run_id) if r.event]
        assert stored == [EventType.RUN_START, EventType.RUN_CANCELED]
        with pytest.raises(ValueError, match="STEP_START is not a run lifecycle event"):
            await instance.transition_run(run.run_id, lifecycle_event(EventType.STEP_START))
        with pytest.raises(RunNotFoundError):
            await instance.transition_run("nope", lifecycle_event(EventType.RUN_START))
        assert await instance.get_events("nope") == []


@pytest.mark.parametrize(
    "config", [None, "sqlite", MIXED], ids=["memory", "one-database", "runs-apart"]
)
async def test_a_run_is_created_moved_by_its_first_event(
    tmp_path: Path, config: dict[str, object] | str | None
) -> None:
    """`create_run_moved` stores the run and its first lifecycle event as `create_run` then
    `transition_run` would; submissions stored at once keep their errors apart, and one
    refused as a duplicate stores nothing and leaves the stored run as it was."""
    instance = (
        DagloomInstance.ephemeral()
        if config is None
        else DagloomInstance.open(tmp_path)
        if config == "sqlite"
        else DagloomInstance.from_config(config, home=tmp_path)
    )
    async with instance:

        def starting(run: Run) -> Event:
            return Event(event_type=EventType.RUN_STARTING, timestamp=run.create_time, message="go")

        run, moved = await instance.create_run_moved(Run(job_name="job", tags={"a": "1"}), starting)
        assert run.status == RunStatus.NOT_STARTED and run.run_id and run.create_time
        assert moved == RunTransition(applied=True, status=RunStatus.STARTING)
        stored = await instance.get_run(run.run_id)
        assert stored is not None and stored.status == RunStatus.STARTING
        assert stored.tags == {"a": "1"}
        events = [r.event for r in await instance.get_events(run.run_id) if r.event]
        assert [(e.event_type, e.run_id, e.timestamp) for e in events] == [
            (EventType.RUN_STARTING, run.run_id, run.create_time)
        ]

        outcomes: dict[str, object] = {}

        async def submit(run_id: str) -> None:
            try:
                outcomes[run_id] = (await instance.create_run_moved(Run(run_id=run_id), starting))[
                    1
                ]
            except StorageError as exc:
                outcomes[run_id] = exc

        async with anyio.create_task_group() as tg:
            for run_id in ("n1", run.run_id, "n2"):
                tg.start_soon(submit, run_id)
        assert outcomes["n1"] == outcomes["n2"] == moved
        assert isinstance(outcomes[run.run_id], StorageError)
        assert "already stored" in str(outcomes[run.run_id])
        assert await instance.get_run(run.run_id) == stored
        assert len(await instance.get_events(run.run_id)) == 1
        with pytest.raises(ValueError, match="STEP_START is not a run lifecycle event"):
            await instance.create_run_moved(
                Run(), lambda r: Event(event_type=EventType.STEP_START, timestamp=1.0)
            )


@pytest.mark.parametrize("config", [None, MIXED], ids=["one-database", "runs-apart"])
async def test_transition_runs_moves_several_runs_under_a_fence(
    tmp_path: Path, config: dict[str, object] | None
) -> None:
    """Each run moves as its own compare-and-set; a stale fence moves none of them."""
    instance = (
        DagloomInstance.open(tmp_path)
        if config is None
        else DagloomInstance.from_config(config, home=tmp_path)
    )
    async with instance:
        a, b, c = [
            await instance.create_run(Run(job_name="job", status=RunStatus.QUEUED))
            for _ in range(3)
        ]
        await instance.transition_run(b.run_id, lifecycle_event(EventType.RUN_CANCELED))
        storage = instance.schedule_storage
        lease = await storage.acquire_lease("admission", "d1", duration=10, now=0)
        assert lease is not None

        def starting(run_id: str) -> Event:
            event = lifecycle_event(EventType.RUN_STARTING)
            event.run_id = run_id
            return event

        outcomes = await instance.transition_runs(
            [starting(a.run_id), starting(b.run_id), starting("nope")], fence=lease.fence
        )
        assert outcomes == [
            RunTransition(applied=True, status=RunStatus.STARTING),
            RunTransition(applied=False, status=RunStatus.CANCELED),
            None,
        ]
        assert await storage.acquire_lease("admission", "d2", duration=10, now=20) is not None
        with pytest.raises(LeaseLostError):
            await instance.transition_runs([starting(c.run_id)], fence=lease.fence)
        stored = await instance.get_run(c.run_id)
        assert stored is not None and stored.status == RunStatus.QUEUED
        with pytest.raises(ValueError, match="given twice"):
            await instance.transition_runs([starting(c.run_id), starting(c.run_id)])
        with pytest.raises(ValueError, match="STEP_START is not a run lifecycle event"):
            await instance.transition_runs(
                [Event(run_id=c.run_id, event_type=EventType.STEP_START)]
            )


@pytest.mark.parametrize(
    "backend", ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "mixed"]
)
async def test_a_failure_only_from_starting_leaves_a_claimed_run_alone(
    tmp_path: Path, backend: str
) -> None:
    """`only_from` narrows the compare-and-set: a failure meant for a run still STARTING is
    refused once a worker claimed it (STARTED), and applies to one still STARTING."""
    async with contextlib.AsyncExitStack() as stack:
        if backend == "mixed":
            instance = await stack.enter_async_context(
                DagloomInstance.from_config(MIXED, home=tmp_path)
            )
        else:
            instance = await stack.enter_async_context(open_instance(backend, tmp_path))
        claimed = await instance.create_run(Run(job_name="job"))
        waiting = await instance.create_run(Run(job_name="job"))
        for run in (claimed, waiting):
            await instance.transition_run(run.run_id, lifecycle_event(EventType.RUN_STARTING))
        await instance.transition_run(claimed.run_id, lifecycle_event(EventType.RUN_START))
        for run, expected in (
            (claimed, RunTransition(applied=False, status=RunStatus.STARTED)),
            (waiting, RunTransition(applied=True, status=RunStatus.FAILURE)),
        ):
            moved = await instance.transition_run(
                run.run_id,
                lifecycle_event(EventType.RUN_FAILURE, ts=2.0),
                only_from=[RunStatus.STARTING],
            )
            assert moved == expected
        kinds = [r.event.event_type for r in await instance.get_events(claimed.run_id) if r.event]
        assert kinds == [EventType.RUN_STARTING, EventType.RUN_START]
        with pytest.raises(ValueError, match="only_from narrows a RUN_FAILURE"):
            await instance.transition_run(
                claimed.run_id,
                lifecycle_event(EventType.RUN_CANCELED),
                only_from=[RunStatus.STARTED],
            )


@pytest.mark.parametrize("config", [None, MIXED], ids=["one-database", "runs-apart"])
async def test_a_sink_drops_the_lifecycle_events_storage_refuses(
    tmp_path: Path, config: dict[str, object] | None
) -> None:
    """A run canceled before its executor's first batch lands keeps its status; the
    batch's other events are stored."""
    instance = (
        DagloomInstance.ephemeral()
        if config is None
        else DagloomInstance.from_config(config, home=tmp_path)
    )
    async with instance:
        run = await instance.create_run(Run(job_name="job"))
        await instance.transition_run(run.run_id, lifecycle_event(EventType.RUN_CANCELED))
        sink = instance.event_sink(run.run_id)
        for event in run_events(run.run_id, 1):
            sink.emit(row_of(event))
        await sink.flush()
        stored = await instance.get_run(run.run_id)
        assert stored is not None and stored.status == RunStatus.CANCELED
        kinds = [r.event.event_type for r in await instance.get_events(run.run_id) if r.event]
        assert kinds == [EventType.RUN_CANCELED, EventType.STEP_START, EventType.STEP_SUCCESS]


async def test_a_watcher_follows_a_run_through_the_sink() -> None:
    async with DagloomInstance.ephemeral() as instance:
        run = await instance.create_run(Run(job_name="job"))
        seen: list[EventType] = []
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    async for record in instance.watch_run_events(run.run_id):
                        assert record.event is not None
                        seen.append(record.event.event_type)

                tg.start_soon(watch)
                sink = instance.event_sink(run.run_id, batch_size=1)
                for event in run_events(run.run_id, 2):
                    sink.emit(row_of(event))
                await sink.flush()
        assert seen == [e.event_type for e in run_events(run.run_id, 2)]


async def test_the_ephemeral_home_is_removed_on_exit() -> None:
    async with DagloomInstance.ephemeral() as instance:
        home = instance.home
        assert home.is_dir() and instance.is_ephemeral
    assert not home.exists()


async def test_a_sink_needs_an_open_instance(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not open"):
        DagloomInstance.open(tmp_path).event_sink("r")


async def test_a_corrupt_database_in_the_home_gives_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dagloom.db").write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(StorageError, match="not a usable SQLite database"):
        async with DagloomInstance.open(tmp_path):
            pass


async def test_a_failed_write_fails_every_later_flush_with_its_error(tmp_path: Path) -> None:
    # Storage retries a write itself; one that still fails fails the sink for good, and
    # its events stay pending rather than being written out of order later.
    async with DagloomInstance.open(tmp_path) as instance:
        sink = instance.event_sink("r", batch_size=1000)
        sink.emit(row_of(Event(run_id="r", event_type=EventType.RUN_START)))
        database = instance.event_log_storage.database  # type: ignore[attr-defined]
        writer, database._writer = database._writer, None
        with pytest.raises(StorageError, match="not open") as first:
            await sink.flush()
        assert sink.pending == 1
        database._writer = writer
        with pytest.raises(StorageError) as again:
            await sink.flush()
        assert again.value is first.value and sink.pending == 1
        assert await instance.get_events("r") == []


async def test_a_keeping_sink_keeps_every_event_and_writes_each_once(tmp_path: Path) -> None:
    async with DagloomInstance.open(tmp_path) as instance:
        sink = instance.event_sink("r", batch_size=3, keep=True)
        sent = run_events("r", 5)
        for event in sent[:4]:
            sink.emit(row_of(event))
        await anyio.lowlevel.checkpoint()  # a full batch starts writing in the background
        for event in sent[4:]:
            sink.emit(row_of(event))
        await sink.flush()
        await sink.flush()
        assert sink.rows == [row_of(e) for e in sent] and sink.pending == 0
        assert [r.event for r in await instance.get_events("r")] == sent


def test_importing_the_instance_loads_no_database_driver() -> None:
    code = (
        "import sys, dagloom.instance, dagloom.storage\n"
        "bad = {'aiosqlite', 'asyncpg', 'aiohttp'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    async for name in fresh_schema():
        yield name


@pytest.mark.postgres
async def test_an_instance_on_postgres_runs_and_migrates(pg_schema: str) -> None:
    config = {"storage": {"postgres": {"postgres_url": PG_URL, "schema": pg_schema}}}
    instance = DagloomInstance.from_config(config)
    assert [info.current for _, info in await instance.schema_info()] == [0]
    async with instance:
        run = await execute(instance, "job", 600)
        stored = await instance.get_run(run.run_id)
        assert stored is not None and stored.status == RunStatus.SUCCESS
        assert len(await instance.get_events(run.run_id)) == 1202
    assert [info.up_to_date for _, info in await instance.migrate()] == [True]


async def test_an_error_in_the_body_propagates_unwrapped(tmp_path: Path) -> None:
    with pytest.raises(RunNotFoundError):
        async with DagloomInstance.open(tmp_path) as instance:
            sink = instance.event_sink("r", batch_size=1)
            sink.emit(row_of(Event(run_id="r", event_type=EventType.RUN_START)))
            raise RunNotFoundError("r")
    async with DagloomInstance.open(tmp_path) as instance:
        assert len(await instance.get_events("r")) == 1
