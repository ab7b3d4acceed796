"""The root `Subscription`: a run's events from a cursor, in batches
(`pipelineRunLogs`, Dagster's name and payload), and run status changes across the
instance (`runStatusChanges`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any, cast

import anyio
import strawberry
from strawberry.scalars import JSON

from dagloom.instance import DagloomInstance
from dagloom.messages import EventRecord
from dagloom.messages import Run as RunMessage
from dagloom.storage.base import RUN_END_EVENTS, RunsFilter
from dagloom.webserver._operations import guarded
from dagloom.webserver.schema._unions import named_union
from dagloom.webserver.schema.runs import (
    DagsterRunEvent,
    Run,
    RunStatus,
    event_json,
    event_object,
    parse_event_cursor,
)

EVENT_BATCH = 5000
"""Events per subscription message at most: a 10,000-step run (~50,000 events) streams in
about ten messages rather than one per event."""

STATUS_POLL_SECONDS = 1.0
"""How often `runStatusChanges` reads the newest runs."""
STATUS_WINDOW = 500
"""How many of the newest runs `runStatusChanges` watches, besides the unfinished ones."""

_ENDED = {RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED}


@strawberry.type
class PipelineRunLogsSubscriptionSuccess:
    records: strawberry.Private[list[EventRecord]]
    run: Run
    hasMorePastEvents: bool

    @strawberry.field
    def messages(self) -> list[DagsterRunEvent]:
        return [event_object(r) for r in self.records]

    @strawberry.field(
        description="The same events as plain JSON objects: far cheaper for large batches."
    )
    def messagesJson(self) -> JSON:
        return cast(JSON, [event_json(r) for r in self.records])

    @strawberry.field(description="The cursor after this batch: resume from it.")
    def cursor(self) -> str:
        return str(self.records[-1].storage_id) if self.records else ""


@strawberry.type
class PipelineRunLogsSubscriptionFailure:
    missingRunId: str | None
    message: str


PipelineRunLogsSubscriptionPayload = named_union(
    "PipelineRunLogsSubscriptionPayload",
    (PipelineRunLogsSubscriptionSuccess, PipelineRunLogsSubscriptionFailure),
)


@strawberry.type
class RunStatusChange:
    runId: str
    jobName: str
    status: RunStatus
    updateTime: float


@strawberry.type
class RunStatusChanges:
    changes: list[RunStatusChange]


async def _head(instance: DagloomInstance, run_id: str) -> int:
    """The storage id of the run's newest event (0 when it has none)."""
    after = 0
    while True:
        page = await instance.get_events(run_id, after=after or None, limit=EVENT_BATCH)
        if not page:
            return after
        after = page[-1].storage_id


async def _wait_for_event(instance: DagloomInstance, run_id: str, after: int) -> bool:
    """Block until the run has an event after `after`; False when it ended without one."""
    watch = instance.watch_run_events(run_id, after=after or None, stop_at_end=True)
    async with contextlib.aclosing(watch):  # type: ignore[type-var]
        async for _ in watch:
            return True
    return False


async def run_event_batches(
    instance: DagloomInstance, run_id: str, after: int
) -> AsyncGenerator[list[EventRecord], None]:
    """A run's events after `after`, in batches of at most `EVENT_BATCH`, as they are
    stored; ends after the run's terminal event. Each batch is one storage read; while a
    full batch is being sent, the next one is already being read."""
    pending: asyncio.Future[list[EventRecord]] | None = None
    try:
        while True:
            if pending is not None:
                records, pending = await pending, None
            else:
                records = await instance.get_events(run_id, after=after or None, limit=EVENT_BATCH)
            if records:
                after = records[-1].storage_id
                if any(
                    r.event is not None and r.event.event_type in RUN_END_EVENTS for r in records
                ):
                    yield records
                    return
                if len(records) == EVENT_BATCH:
                    pending = asyncio.ensure_future(
                        instance.get_events(run_id, after=after, limit=EVENT_BATCH)
                    )
                yield records
                continue
            run = await instance.get_run(run_id)
            if run is None or RunStatus.of(run.status) in _ENDED:
                return
            # When the watch ends without an event, the run ended: one last read picks up
            # anything stored meanwhile.
            await _wait_for_event(instance, run_id, after)
    finally:
        if pending is not None:
            pending.cancel()


def _changes(seen: dict[str, Any], runs: list[RunMessage]) -> list[RunStatusChange]:
    out = []
    for run in runs:
        status = RunStatus.of(run.status)
        if seen.get(run.run_id) != status:
            seen[run.run_id] = status
            out.append(
                RunStatusChange(
                    runId=run.run_id,
                    jobName=run.job_name,
                    status=status,
                    updateTime=max(run.create_time, run.start_time, run.end_time),
                )
            )
    return out


@strawberry.type
class Subscription:
    @strawberry.subscription(extensions=guarded("view_runs"))
    async def pipelineRunLogs(
        self, info: strawberry.Info, runId: strawberry.ID, cursor: str | None = None
    ) -> AsyncGenerator[PipelineRunLogsSubscriptionPayload, None]:  # type: ignore[valid-type]
        """The run's events after `cursor` (a storage id; "HEAD": only new ones), in
        batches, until the run's terminal event."""
        instance: DagloomInstance = info.context.instance
        run_id = str(runId)
        run = await instance.get_run(run_id)
        if run is None:
            yield PipelineRunLogsSubscriptionFailure(
                missingRunId=run_id, message=f"Could not load run with id {run_id}"
            )
            return
        if cursor == "HEAD":
            after = await _head(instance, run_id)
        else:
            try:
                after = parse_event_cursor(cursor)
            except ValueError as exc:
                yield PipelineRunLogsSubscriptionFailure(missingRunId=None, message=str(exc))
                return
        async for batch in run_event_batches(instance, run_id, after):
            run = await instance.get_run(run_id) or run
            yield PipelineRunLogsSubscriptionSuccess(
                records=batch, run=Run(run=run), hasMorePastEvents=False
            )

    @strawberry.subscription(extensions=guarded("view_runs"))
    async def runStatusChanges(
        self, info: strawberry.Info
    ) -> AsyncGenerator[RunStatusChanges, None]:
        """Runs whose status changed, in batches: first the newest runs as they stand (an
        empty batch when there are none), then each change seen (the newest runs and every
        unfinished one are read each second)."""
        instance: DagloomInstance = info.context.instance
        seen: dict[str, RunStatus] = {}
        first = True
        while True:
            runs = await instance.get_runs_async(RunsFilter(), limit=STATUS_WINDOW)
            newest = {r.run_id for r in runs}
            open_ids = [i for i, s in seen.items() if s not in _ENDED and i not in newest]
            if open_ids:
                runs += await instance.get_runs_async(RunsFilter(run_ids=open_ids))
            changes = _changes(seen, runs)
            if changes or first:
                yield RunStatusChanges(changes=changes)
            first = False
            # Forget finished runs that fell out of the window.
            for run_id in [i for i, s in seen.items() if s in _ENDED and i not in newest]:
                del seen[run_id]
            await anyio.sleep(STATUS_POLL_SECONDS)
