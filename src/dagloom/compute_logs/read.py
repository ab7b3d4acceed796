"""Reading a run's compute logs: one chunk from a cursor, or a tail that follows a running
step until its run ends. What the CLI, the gRPC API and the webserver call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio

from dagloom.compute_logs.base import DEFAULT_READ_BYTES, LogChunk
from dagloom.compute_logs.capture import IOType
from dagloom.errors import RunNotFoundError
from dagloom.storage.base import FINISHED_STATUSES

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance

__all__ = ["read_compute_log", "tail_compute_log"]


async def read_compute_log(
    instance: DagloomInstance,
    run_id: str,
    step_key: str,
    io_type: IOType = "stdout",
    cursor: int = 0,
    *,
    attempt: int | None = None,
    max_bytes: int = DEFAULT_READ_BYTES,
) -> LogChunk:
    """The step's captured `io_type` from byte `cursor` on (at most `max_bytes`), of
    `attempt` (default: the latest); an empty chunk when there is none yet. Pass the
    returned cursor back to read on. Raises `RunNotFoundError` for an unknown run,
    `DagloomError` for a run id or step key that cannot name a log."""
    if await instance.get_run(run_id) is None:
        raise RunNotFoundError(run_id)
    return await instance.compute_log_manager.read(
        run_id, step_key, io_type, attempt=attempt, cursor=cursor, max_bytes=max_bytes
    )


async def tail_compute_log(
    instance: DagloomInstance,
    run_id: str,
    step_key: str,
    io_type: IOType = "stdout",
    cursor: int = 0,
    *,
    attempt: int | None = None,
    poll_interval: float = 0.5,
    max_bytes: int = DEFAULT_READ_BYTES,
) -> AsyncIterator[LogChunk]:
    """Chunks of the step's output as it is written, until the run has ended and the log is
    read to its end. Without `attempt`, follows the latest attempt: when a retry starts, the
    rest of the previous attempt comes first, then the new one from byte 0 (each chunk
    names its attempt). Polls every `poll_interval` seconds while nothing new is written.
    Raises `RunNotFoundError` for an unknown run. Cancelling it stops the tail."""
    manager = instance.compute_log_manager
    current = attempt
    while True:
        run = await instance.get_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        ended = run.status in FINISHED_STATUSES  # read after this sees all it wrote
        if attempt is None:
            found = await manager.attempts(run_id, step_key)
            latest = found[-1] if found else None
        else:
            latest = attempt
        if current is None:
            current = latest
        moved = False
        while current is not None:
            chunk = await manager.read(
                run_id, step_key, io_type, attempt=current, cursor=cursor, max_bytes=max_bytes
            )
            if not chunk.data:
                break
            moved = True
            cursor = chunk.cursor
            yield chunk
        if current is not None and latest is not None and latest > current:
            current, cursor = latest, 0
            continue
        if ended and not moved:
            return
        if not moved:
            await anyio.sleep(poll_interval)
