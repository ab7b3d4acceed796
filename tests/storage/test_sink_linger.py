"""The storage sink writes a small batch on its own after a short delay, so watchers of a
live run see events without waiting for the run to flush."""

from __future__ import annotations

import anyio

from dagloom.instance import DagloomInstance
from dagloom.messages import Event, EventType, Run
from dagloom.messages.rows import row_of


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
