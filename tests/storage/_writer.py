"""A child process that writes events to a SQLite file, for the durability tests.

    python _writer.py PATH RUN_ID BATCHES BATCH_SIZE

Prints `ack N` after batch N is durable; with BATCHES = 0 it writes until killed.
"""

from __future__ import annotations

import sys

import anyio

from dagloom.messages import Event, EventType, Run, RunStatus
from dagloom.storage.sqlite import sqlite_storages


async def main(path: str, run_id: str, batches: int, size: int) -> None:
    runs, events, _ = sqlite_storages(path, readers=1)
    await runs.open()
    try:
        # Stored as started: the run's end event below is a transition storage allows from there.
        await runs.add_run(Run(run_id=run_id, job_name="job", status=RunStatus.STARTED))
        n = 0
        while batches == 0 or n < batches:
            n += 1
            await events.store_events(
                [
                    Event(
                        run_id=run_id,
                        event_type=EventType.STEP_START,
                        step_key=f"{n}:{i}",
                        timestamp=float(n),
                    )
                    for i in range(size)
                ]
            )
            print(f"ack {n}", flush=True)
        await events.store_events(
            [Event(run_id=run_id, event_type=EventType.RUN_SUCCESS, timestamp=float(n))]
        )
    finally:
        await runs.close()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
