"""The storage sink writes a small batch on its own after a short delay, so watchers of a
live run see events without waiting for the run to flush."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from dagloom.instance import DagloomInstance
from dagloom.messages import Event, EventType, Run
from dagloom.messages.rows import row_of
from dagloom.storage.memory import MemoryEventLogStorage
from dagloom.storage.sink import StorageEventSink


async def test_a_small_batch_is_stored_without_flush() -> None:
    async with DagloomInstance.ephemeral() as instance:
        run = await instance.create_run(Run(job_name="j"))
        sink = instance.event_sink(run.run_id)
        sink.emit(row_of(Event(run_id=run.run_id, event_type=EventType.RUN_START, job_name="j")))
        with anyio.fail_after(5):
            async for record in instance.watch_run_events(run.run_id, stop_at_end=False):
                assert record.event.event_type == EventType.RUN_START
                break
        assert sink.pending == 0


async def test_a_flush_ends_the_linger_wait() -> None:
    # The sink's linger task would otherwise keep its task group open for max_delay.
    storage = MemoryEventLogStorage()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            sink = StorageEventSink(storage, tg, "r", max_delay=60.0)
            sink.emit(row_of(Event(run_id="r", event_type=EventType.RUN_START)))
            await anyio.lowlevel.checkpoint()  # the linger task starts waiting
            await sink.flush()
    assert [r.event.event_type for r in await storage.get_events("r")] == [EventType.RUN_START]
