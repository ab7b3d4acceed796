"""An instance used from a run's own thread: its coroutine methods hop to the loop that
entered it, and its event sink hands rows over there, in order, on every backend."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from dagloom.errors import StorageError
from dagloom.execution.run_thread import run_on_own_thread
from dagloom.execution.sink import ListEventSink
from dagloom.instance import DagloomInstance
from dagloom.instance._threads import HandoffEventSink, HandoffSweeper, on_foreign_loop
from dagloom.messages import Run, RunStatus
from dagloom.messages.rows import row_of
from tests.instance.test_instance import run_events
from tests.storage.pg import PG_URL, fresh_schema


@asynccontextmanager
async def _postgres() -> AsyncIterator[DagloomInstance]:
    async for schema in fresh_schema():
        config = {"storage": {"postgres": {"postgres_url": PG_URL, "schema": schema}}}
        async with DagloomInstance.from_config(config) as instance:
            yield instance


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_instance(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], object]:
    """Opens a fresh instance on the parameter's backend: `async with open_instance()`."""
    if request.param == "memory":
        return DagloomInstance.ephemeral
    if request.param == "sqlite":
        return functools.partial(DagloomInstance.open, tmp_path)
    return _postgres


async def test_coroutine_methods_hop_to_the_owner_loop_from_a_run_thread(
    open_instance: Callable[[], DagloomInstance],
) -> None:
    async with open_instance() as instance:

        async def on_the_run_thread() -> tuple[bool, Run | None]:
            foreign = on_foreign_loop(instance.owner_loop)
            run = await instance.create_run(Run(job_name="hopping"))
            await instance.add_run_tags(run.run_id, {"where": "run thread"})
            return foreign, await instance.get_run(run.run_id)

        with anyio.fail_after(30):
            foreign, stored = await run_on_own_thread(on_the_run_thread, name="dagloom run t")
        assert foreign
        assert stored is not None and stored.tags["where"] == "run thread"
        assert not on_foreign_loop(instance.owner_loop)


async def test_the_event_sink_of_a_run_thread_stores_every_row_in_order(
    open_instance: Callable[[], DagloomInstance],
) -> None:
    """1,200 steps' events (more than two batches) emitted on the run's thread, with a
    flush in the middle, are all stored in emit order and move the run's status."""
    async with open_instance() as instance:
        run = await instance.create_run(Run(job_name="handed_over"))
        events = run_events(run.run_id, 1200)

        async def execute() -> list[object]:
            sink = instance.event_sink(run.run_id, keep=True)
            assert isinstance(sink, HandoffEventSink)
            for i, event in enumerate(events):
                sink.emit(row_of(event))
                if i == 1000:
                    await sink.flush()
            await sink.flush()
            await sink.flush()  # twice is safe
            return list(sink.rows)

        with anyio.fail_after(60):
            kept = await run_on_own_thread(execute, name="dagloom run t")
        stored = await instance.get_events(run.run_id)
        after = await instance.get_run(run.run_id)
    assert [r.event for r in stored] == events
    assert kept == [row_of(e) for e in events]
    assert after is not None and after.status == RunStatus.SUCCESS


async def test_rows_of_a_live_run_are_stored_without_a_flush(
    open_instance: Callable[[], DagloomInstance],
) -> None:
    """Rows emitted on the run's thread and not flushed reach storage by themselves (after
    the sink's linger), so a watcher of the live run sees them while the run goes on."""
    async with open_instance() as instance:
        run = await instance.create_run(Run(job_name="live"))
        events = run_events(run.run_id, 1)[:3]
        # The run's loop, and its event the watcher sets once it has read every row.
        run_side: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

        async def execute() -> None:
            read = asyncio.Event()
            run_side.append((asyncio.get_running_loop(), read))
            sink = instance.event_sink(run.run_id)
            for event in events:
                sink.emit(row_of(event))
            await read.wait()  # no flush until the watcher has seen them
            await sink.flush()

        async def watch() -> list[object]:
            got: list[object] = []
            async for batch in instance.watch_run_event_batches(run.run_id, stop_at_end=False):
                got += [r.event for r in batch]
                if len(got) >= len(events):
                    loop, read = run_side[0]
                    loop.call_soon_threadsafe(read.set)
                    return got
            return got

        with anyio.fail_after(30):
            watched = asyncio.ensure_future(watch())
            await run_on_own_thread(execute, name="dagloom run t")
            got = await watched
    assert got == events


async def test_the_event_sink_on_the_owner_loop_is_the_storage_sink_itself() -> None:
    async with DagloomInstance.ephemeral() as instance:
        assert not isinstance(instance.event_sink("r"), HandoffEventSink)


class _FailingFlush(ListEventSink):
    async def flush(self) -> None:
        raise StorageError("disk full", location="here")


async def test_a_failed_flush_on_the_owner_loop_is_raised_on_the_run_thread() -> None:
    targets: list[ListEventSink] = []

    def make_target() -> ListEventSink:
        targets.append(_FailingFlush())
        return targets[-1]

    owner = asyncio.get_running_loop()
    first = row_of(run_events("r", 0)[0])

    sweeper = HandoffSweeper(owner)

    async def emit_and_flush() -> None:
        sink = HandoffEventSink(owner, make_target, sweeper)
        sink.emit(first)
        await sink.flush()

    try:
        with anyio.fail_after(30), pytest.raises(StorageError, match="disk full"):
            await run_on_own_thread(emit_and_flush, name="dagloom run t")
    finally:
        sweeper.close()
    assert [t.rows for t in targets] == [[first]]


async def test_the_sweeper_runs_while_sinks_are_listed_and_starts_again_after_idling() -> None:
    """Rows a run thread emits are handed over by the sweeper's rounds; once no sink is
    listed the sweeping task ends, and the next sink listed from a run thread starts it."""
    owner = asyncio.get_running_loop()
    sweeper = HandoffSweeper(owner, interval=0.001, idle_rounds=1)
    targets: list[ListEventSink] = []

    def make_target() -> ListEventSink:
        targets.append(ListEventSink())
        return targets[-1]

    first, second = (row_of(e) for e in run_events("r", 1)[:2])

    async def emit(row: object) -> HandoffEventSink:
        sink = HandoffEventSink(owner, make_target, sweeper)
        sink.emit(row)  # type: ignore[arg-type]
        return sink

    async def until(condition: Callable[[], bool]) -> None:
        while not condition():
            await anyio.lowlevel.checkpoint()

    try:
        with anyio.fail_after(30):
            sink = await run_on_own_thread(functools.partial(emit, first), name="dagloom run t")
            await until(lambda: bool(targets) and targets[0].rows == [first])  # no flush
            await sink._flush_on_owner()  # unlisted: the sweeper idles, then ends
            await until(lambda: sweeper._task is None)
            await run_on_own_thread(functools.partial(emit, second), name="dagloom run t")
            await until(lambda: len(targets) == 2 and targets[1].rows == [second])
    finally:
        sweeper.close()
