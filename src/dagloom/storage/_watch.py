"""Waking event watchers: a per-run notifier, and the watch loop every backend shares."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio

from dagloom._logging import get_logger
from dagloom.errors import StorageError
from dagloom.messages import EventRecord
from dagloom.storage._retry import RETRY_TIMEOUT, STORAGE_BACKOFF, retry_deadline_passed
from dagloom.storage.base import RUN_END_EVENTS, EventLogStorage

WATCH_PAGE = 1000
"""Events read per query while a watcher catches up."""

_log = get_logger("dagloom.storage")


class RunEventNotifier:
    """Tells in-process watchers of a run that new events may be stored.

    A watcher takes `waiter(run_id)` *before* it queries, then waits on it: a write between
    the query and the wait has already set it, so no wake-up is lost. `notify` never blocks.
    Use from one event loop only.
    """

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: dict[str, anyio.Event] = {}

    def waiter(self, run_id: str) -> anyio.Event:
        """The event the next `notify(run_id)` sets."""
        waiter = self._waiters.get(run_id)
        if waiter is None:
            waiter = self._waiters[run_id] = anyio.Event()
        return waiter

    def notify(self, run_id: str) -> None:
        """Wake every watcher of `run_id` (a no-op when none is waiting)."""
        waiter = self._waiters.pop(run_id, None)
        if waiter is not None:
            waiter.set()


async def watch_event_batches(
    storage: EventLogStorage,
    notifier: RunEventNotifier,
    run_id: str,
    *,
    after: int | None,
    stop_at_end: bool,
    poll_interval: float | None,
    retry_timeout: float = RETRY_TIMEOUT,
) -> AsyncIterator[list[EventRecord]]:
    """Yield a run's events after `after` as `storage.get_events` finds them: each read's
    events as one list (never empty), in storage order.

    Between empty reads the loop waits for `notifier`, or at most `poll_interval` seconds
    (None: wait for the notifier alone), the fallback that finds writes from other processes.
    With `stop_at_end` the last list ends with the run's end event.

    A read that raises `StorageError` is tried again from the last event yielded, with
    backoff, so a follower rides out a lost connection without missing or repeating an
    event; after `retry_timeout` seconds of failed reads in a row the error is raised.
    """
    cursor = after
    first_failure: float | None = None
    failures = 0
    while True:
        waiter = notifier.waiter(run_id)
        try:
            records = await storage.get_events(run_id, after=cursor, limit=WATCH_PAGE)
        except StorageError as exc:
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            if retry_deadline_passed(first_failure, now, retry_timeout):
                raise
            delay = STORAGE_BACKOFF.delay(failures)
            failures += 1
            _log.warning(
                "watch_read_failed", run_id=run_id, cursor=cursor, retry_in=delay, error=str(exc)
            )
            await anyio.sleep(delay)
            continue
        first_failure, failures = None, 0
        if records:
            cursor = records[-1].storage_id
            if stop_at_end:
                for index, record in enumerate(records):
                    event = record.event
                    if event is not None and event.event_type in RUN_END_EVENTS:
                        yield records[: index + 1]
                        return
            yield records
        if len(records) == WATCH_PAGE:
            continue
        if poll_interval is None:
            await waiter.wait()
        else:
            with anyio.move_on_after(poll_interval):
                await waiter.wait()
