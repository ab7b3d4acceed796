"""Waking event watchers: a per-run notifier, and the watch loop every backend shares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio

from dagloom.messages import EventRecord
from dagloom.storage.base import RUN_END_EVENTS, EventLogStorage

WATCH_PAGE = 1000
"""Events read per query while a watcher catches up."""


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


async def watch_events(
    storage: EventLogStorage,
    notifier: RunEventNotifier,
    run_id: str,
    *,
    after: int | None,
    stop_at_end: bool,
    poll_interval: float | None,
) -> AsyncIterator[EventRecord]:
    """Yield a run's events after `after` as `storage.get_events` finds them.

    Between empty reads the loop waits for `notifier`, or at most `poll_interval` seconds
    (None: wait for the notifier alone), the fallback that finds writes from other processes.
    """
    cursor = after
    while True:
        waiter = notifier.waiter(run_id)
        records = await storage.get_events(run_id, after=cursor, limit=WATCH_PAGE)
        for record in records:
            cursor = record.storage_id
            yield record
            event = record.event
            if stop_at_end and event is not None and event.event_type in RUN_END_EVENTS:
                return
        if len(records) == WATCH_PAGE:
            continue
        if poll_interval is None:
            await waiter.wait()
        else:
            with anyio.move_on_after(poll_interval):
                await waiter.wait()
