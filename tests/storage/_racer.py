"""Writers racing to move one run, each with its own event loop and its own storages over one
database: the race tests run them in threads, or in spawned processes.

Every writer tries the same lifecycle events in order (STARTING, START), then an end of its
own, so they conflict at each step; each returns what storage answered it.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from dagloom.messages import Event, EventType
from dagloom.storage.base import RunTransition
from tests.storage.contract import Storages, opened

ENDS = (
    EventType.RUN_SUCCESS,
    EventType.RUN_FAILURE,
    EventType.RUN_CANCELING,
    EventType.RUN_CANCELED,
)


def plan(writer: int) -> list[EventType]:
    """What writer number `writer` tries, in order."""
    return [EventType.RUN_STARTING, EventType.RUN_START, ENDS[writer % len(ENDS)]]


async def write(
    storages: Storages,
    run_id: str,
    kinds: Sequence[EventType],
    ready: Callable[[], Awaitable[object]],
) -> list[RunTransition]:
    """Open `storages`, wait for every writer (`ready`), then store each event in turn."""
    outcomes: list[RunTransition] = []
    async with opened(storages) as (_, events, _):
        await ready()
        for n, kind in enumerate(kinds):
            event = Event(run_id=run_id, event_type=kind, timestamp=float(n + 1))
            (outcome,) = await events.store_events([event])
            outcomes.append(outcome)
    return outcomes


def write_in_thread(
    make: Callable[[], Storages], run_id: str, writer: int, barrier: threading.Barrier
) -> list[RunTransition]:
    """`write` on an event loop of this thread's own, over storages of its own."""
    return anyio.run(write, make(), run_id, plan(writer), blocking(barrier.wait))


def blocking(wait: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    """`wait` as `write`'s `ready`: blocking the loop of a writer that has it to itself."""

    async def ready() -> object:
        return wait()

    return ready


def sqlite_writer_process(path: str, run_id: str, writer: int, barrier: Any, results: Any) -> None:
    """A spawned process's `write` on the SQLite file `path`; puts (writer, outcomes as
    (applied, status) pairs) on `results`."""
    from dagloom.storage.sqlite import sqlite_storages

    storages = sqlite_storages(path, readers=1)
    outcomes = anyio.run(write, storages, run_id, plan(writer), blocking(barrier.wait))
    results.put((writer, [(o.applied, int(o.status)) for o in outcomes]))


def thread_race(
    make: Callable[[], Storages],
) -> Callable[[str, int], Awaitable[list[list[RunTransition]]]]:
    """A `Race` of writers in threads, each with its own event loop and its own storages
    from `make` (over one database), released together by a barrier."""

    async def race(run_id: str, writers: int) -> list[list[RunTransition]]:
        barrier = threading.Barrier(writers, timeout=60)
        outcomes: list[list[RunTransition]] = [[] for _ in range(writers)]

        async def one(n: int) -> None:
            outcomes[n] = await anyio.to_thread.run_sync(write_in_thread, make, run_id, n, barrier)

        async with anyio.create_task_group() as tg:
            for n in range(writers):
                tg.start_soon(one, n)
        return outcomes

    return race
