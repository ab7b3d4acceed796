"""What every storage backend owes: one suite, subclassed per backend.

A subclass provides the `storages` fixture yielding open (runs, events, schedules) storages
over one fresh database, and the `race` fixture: a `Race` running writers concurrently on
that database, each with storages of its own where the backend can have several (threads
with their own event loops). `opened` opens and closes a backend's three.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import anyio
import pytest

from dagloom.auth import Role, TokenStorage, new_token
from dagloom.auth.audit import AuditEntry, AuditStorage
from dagloom.errors import LeaseLostError, RunNotFoundError, StorageError
from dagloom.messages import (
    AssetCheckKeyMessage,
    AssetKeyMessage,
    AssetMaterializationData,
    DaemonHeartbeat,
    EngineEventData,
    ErrorInfo,
    Event,
    EventType,
    HandledOutputData,
    InstigatorState,
    InstigatorStatus,
    InstigatorType,
    LoadedInputData,
    LogLevel,
    MetadataValue,
    Run,
    RunFailureData,
    RunStatus,
    StepFailureData,
    StepOutputData,
    StepRetryData,
    StepSkippedData,
    Tick,
    TickStatus,
)
from dagloom.messages.rows import row
from dagloom.storage import _sql
from dagloom.storage._sql_storage import SqlEventLogStorage
from dagloom.storage.automation import AutomationEvaluationRecord, AutomationStorage
from dagloom.storage.base import (
    FINISHED_STATUSES,
    RUN_DURATION_BUCKETS,
    RUN_STATUS_BY_EVENT,
    RUN_TRANSITIONS,
    DurationHistogram,
    EventLogStorage,
    Fence,
    PartitionRunRecord,
    RunsFilter,
    RunStats,
    RunStorage,
    RunTransition,
    ScheduleStorage,
    StepStatus,
    allowed_transition,
    fold_run_stats,
)

Storages = tuple[RunStorage, EventLogStorage, ScheduleStorage]

Race = Callable[[str, int], Awaitable[list[list[RunTransition]]]]
"""Run `n` writers of `tests.storage._racer` on run `run_id` at once; each one's outcomes."""

EVENT_SETTING = {status: kind for kind, status in RUN_STATUS_BY_EVENT.items()}
"""The lifecycle event that moves a run to each status."""


@asynccontextmanager
async def opened(storages: Storages) -> AsyncIterator[Storages]:
    """Open each of the storages, and close each again on the way out."""
    for storage in storages:
        await storage.open()
    try:
        yield storages
    finally:
        for storage in storages:
            await storage.close()


def make_run(run_id: str, job: str = "job", **fields: object) -> Run:
    fields.setdefault("status", RunStatus.NOT_STARTED)
    return Run(run_id=run_id, job_name=job, **fields)  # type: ignore[arg-type]


def ev(run_id: str, kind: EventType, step: str = "", ts: float = 1.0, **fields: object) -> Event:
    return Event(run_id=run_id, event_type=kind, step_key=step, timestamp=ts, **fields)  # type: ignore[arg-type]


def materialization(
    run_id: str,
    path: list[str],
    step: str = "s",
    ts: float = 1.0,
    partition: str = "2024-01-01",
) -> Event:
    return ev(
        run_id,
        EventType.ASSET_MATERIALIZATION,
        step,
        ts,
        asset_materialization=AssetMaterializationData(
            asset_key=AssetKeyMessage(path=path),
            metadata={"rows": MetadataValue(int=3)},
            partition=partition,
        ),
    )


async def transition(storages: Storages, event: Event) -> RunTransition | None:
    """Store one lifecycle event as the instance would: in one step when the event log moves
    the runs itself, else the run storage first and the event only if not refused."""
    runs, events, _ = storages
    if events.updates_run_status_in(runs):
        moved = await events.store_events([event])
        return moved[0] if moved else None
    (outcome,) = await runs.handle_run_events([event])
    if outcome is None or outcome.applied:
        await events.store_events([event])
    return outcome


async def lifecycle_path(events: EventLogStorage, run_id: str) -> list[RunStatus]:
    """The statuses a run's stored lifecycle events moved it through, in order."""
    records = await events.get_events(run_id, event_types=list(RUN_STATUS_BY_EVENT))
    return [RUN_STATUS_BY_EVENT[r.event.event_type] for r in records if r.event]


def check_race(
    start: RunStatus,
    path: Sequence[RunStatus],
    final: RunStatus,
    outcomes: list[list[RunTransition]],
) -> None:
    """What racing writers must leave: a stored history that is a path through
    `RUN_TRANSITIONS` from `start` ending at the run's status, one applied transition per
    step of it (each step won once), and every refusal naming a status the run really had."""
    steps = list(zip([start, *path], path, strict=False))
    assert all(allowed_transition(old, new) for old, new in steps), path
    assert final == (path[-1] if path else start)
    applied = [o.status for writer in outcomes for o in writer if o.applied]
    assert sorted(applied) == sorted(path)
    assert {o.status for writer in outcomes for o in writer if not o.applied} <= {start, *path}


class StorageContract:
    """The behaviour every backend's three storages share."""

    # -- runs ----------------------------------------------------------------------------

    async def test_a_stored_run_reads_back_with_every_field(self, storages: Storages) -> None:
        runs, _, _ = storages
        run = Run(
            run_id="r1",
            job_name="etl",
            status=RunStatus.QUEUED,
            code_location="loc",
            run_config_json='{"ops": {}}',
            tags={"team": "data", "prio": "1"},
            asset_selection=[AssetKeyMessage(path=["a", "b"])],
            parent_run_id="p",
            root_run_id="root",
            create_time=10.5,
            job_snapshot_id="snap",
            step_keys_to_execute=["x", "y"],
            failure=ErrorInfo(cls_name="E", message="m", stack="s"),
            asset_check_selection=[
                AssetCheckKeyMessage(asset_key=AssetKeyMessage(path=["a", "b"]), name="positive")
            ],
        )
        assert await runs.add_run(run) == run
        assert await runs.get_run("r1") == run
        assert await runs.get_run("missing") is None

    async def test_adding_a_run_twice_is_an_error(self, storages: Storages) -> None:
        runs, _, _ = storages
        await runs.add_run(make_run("r1"))
        with pytest.raises(StorageError, match="already stored"):
            await runs.add_run(make_run("r1"))

    async def test_runs_filter_by_job_status_tags_and_time(self, storages: Storages) -> None:
        runs, _, _ = storages
        await runs.add_run(make_run("a", "j1", tags={"t": "1"}, create_time=1.0))
        await runs.add_run(make_run("b", "j2", tags={"t": "1", "u": "x"}, create_time=2.0))
        await runs.add_run(
            Run(run_id="c", job_name="j1", status=RunStatus.SUCCESS, create_time=3.0)
        )
        ids = lambda rs: [r.run_id for r in rs]  # noqa: E731
        assert ids(await runs.get_runs()) == ["c", "b", "a"]
        assert ids(await runs.get_runs(RunsFilter(job_name="j1"))) == ["c", "a"]
        assert ids(await runs.get_runs(RunsFilter(statuses=[RunStatus.SUCCESS]))) == ["c"]
        assert ids(await runs.get_runs(RunsFilter(tags={"t": "1"}))) == ["b", "a"]
        assert ids(await runs.get_runs(RunsFilter(tags={"t": "1", "u": "x"}))) == ["b"]
        assert ids(await runs.get_runs(RunsFilter(created_after=1.0))) == ["c", "b"]
        assert ids(await runs.get_runs(RunsFilter(created_before=3.0))) == ["b", "a"]
        assert ids(await runs.get_runs(RunsFilter(run_ids=["a", "c"]))) == ["c", "a"]
        assert await runs.get_runs_count(RunsFilter(job_name="j1")) == 2
        assert await runs.get_runs_count() == 3

    async def test_runs_paginate_with_a_cursor(self, storages: Storages) -> None:
        runs, _, _ = storages
        for i in range(5):
            await runs.add_run(make_run(f"r{i}"))
        first = await runs.get_runs(limit=2)
        assert [r.run_id for r in first] == ["r4", "r3"]
        second = await runs.get_runs(limit=2, cursor=first[-1].run_id)
        assert [r.run_id for r in second] == ["r2", "r1"]
        third = await runs.get_runs(limit=2, cursor=second[-1].run_id)
        assert [r.run_id for r in third] == ["r0"]

    async def test_tags_are_added_and_filterable(self, storages: Storages) -> None:
        runs, _, _ = storages
        await runs.add_run(make_run("r1", tags={"a": "1"}))
        await runs.add_run_tags("r1", {"a": "2", "b": "3"})
        run = await runs.get_run("r1")
        assert run is not None and run.tags == {"a": "2", "b": "3"}
        assert [r.run_id for r in await runs.get_runs(RunsFilter(tags={"a": "2"}))] == ["r1"]
        assert await runs.get_runs(RunsFilter(tags={"a": "1"})) == []
        with pytest.raises(RunNotFoundError):
            await runs.add_run_tags("nope", {"a": "1"})

    async def test_job_snapshots_are_content_addressed(self, storages: Storages) -> None:
        runs, _, _ = storages
        first = await runs.add_job_snapshot("job", b'{"ops": ["a"]}')
        again = await runs.add_job_snapshot("job", b'{"ops": ["a"]}')
        assert first == again
        assert await runs.get_job_snapshot(first) == b'{"ops": ["a"]}'
        assert await runs.get_job_snapshot("0" * 64) is None

    # -- events and run status -----------------------------------------------------------

    async def test_events_round_trip_with_every_payload(self, storages: Storages) -> None:
        _, events, _ = storages
        error = ErrorInfo(
            cls_name="ValueError",
            message="bad",
            stack="tb",
            cause=ErrorInfo(cls_name="KeyError", message="k", stack=""),
        )
        sent = [
            ev("r", EventType.RUN_START, job_name="job", message="started"),
            ev(
                "r",
                EventType.STEP_OUTPUT,
                "s",
                step_output=StepOutputData(output_name="result", mapping_key="m1"),
            ),
            ev(
                "r",
                EventType.STEP_FAILURE,
                "s",
                step_failure=StepFailureData(
                    error=error,
                    user_failure=True,
                    metadata={
                        "t": MetadataValue(text="x"),
                        "f": MetadataValue(float=1.5),
                        "b": MetadataValue(bool=False),
                        "j": MetadataValue(json="[1]"),
                        "u": MetadataValue(url="http://x"),
                        "p": MetadataValue(path="/p"),
                        "md": MetadataValue(md="# h"),
                        "n": MetadataValue(null=True),
                        "a": MetadataValue(asset=AssetKeyMessage(path=["x", "y"])),
                    },
                ),
            ),
            ev(
                "r",
                EventType.STEP_UP_FOR_RETRY,
                "s",
                step_retry=StepRetryData(attempt=1, max_retries=3, delay_seconds=0.5, error=error),
            ),
            ev(
                "r",
                EventType.STEP_SKIPPED,
                "t",
                step_skipped=StepSkippedData(upstream_step_keys=["s"]),
            ),
            ev(
                "r",
                EventType.HANDLED_OUTPUT,
                "s",
                handled_output=HandledOutputData(
                    output_name="result", manager_key="io_manager", mapping_key=""
                ),
            ),
            ev(
                "r",
                EventType.LOADED_INPUT,
                "t",
                loaded_input=LoadedInputData(
                    input_name="x",
                    manager_key="io",
                    upstream_step_key="s",
                    upstream_output_name="result",
                ),
            ),
            materialization("r", ["a", "b"]),
            ev(
                "r",
                EventType.ENGINE_EVENT,
                engine_event=EngineEventData(metadata={"pid": MetadataValue(int=42)}, error=None),
            ),
            ev("r", EventType.LOG_MESSAGE, "s", message="hello", level=LogLevel.WARNING),
            ev(
                "r",
                EventType.RUN_FAILURE,
                run_failure=RunFailureData(failed_step_keys=["s"], error=error),
            ),
        ]
        await events.store_events(sent)
        records = await events.get_events("r")
        assert [r.event for r in records] == sent
        ids = [r.storage_id for r in records]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)

    async def test_events_read_after_a_cursor_with_limit_and_type(self, storages: Storages) -> None:
        _, events, _ = storages
        await events.store_events([ev("r", EventType.STEP_START, f"s{i}") for i in range(10)])
        await events.store_events([ev("other", EventType.STEP_START, "x")])
        first = await events.get_events("r", limit=4)
        assert [r.event.step_key for r in first if r.event] == ["s0", "s1", "s2", "s3"]
        rest = await events.get_events("r", after=first[-1].storage_id)
        assert [r.event.step_key for r in rest if r.event] == [f"s{i}" for i in range(4, 10)]
        await events.store_events([ev("r", EventType.STEP_SUCCESS, "s0")])
        only = await events.get_events("r", event_types=[EventType.STEP_SUCCESS])
        assert [r.event.event_type for r in only if r.event] == [EventType.STEP_SUCCESS]

    async def test_a_batch_of_interleaved_runs_keeps_order_across_chunks(
        self, storages: Storages
    ) -> None:
        """Storage ids order every event, however a backend groups them, and a cursor or a
        limit may fall anywhere (chunks hold up to 1000 events of one run)."""
        _, events, _ = storages
        sent = [
            ev(f"r{i % 2}" if i < 300 else "r0", EventType.STEP_START, f"{i}") for i in range(2600)
        ]
        await events.store_events(sent)
        await events.store_events([materialization("r1", ["a"]), ev("r0", EventType.RUN_SUCCESS)])
        r0 = await events.get_events("r0")
        assert [r.event.step_key for r in r0 if r.event][:-1] == [
            e.step_key for e in sent if e.run_id == "r0"
        ]
        ids = [r.storage_id for r in r0]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        r1 = await events.get_events("r1")
        assert [r.event.step_key for r in r1 if r.event] == [f"{i}" for i in range(1, 300, 2)] + [
            "s"
        ]
        assert min(ids) < max(r.storage_id for r in r1) < max(ids)
        pages: list[str] = []
        cursor: int | None = None
        while page := await events.get_events("r0", after=cursor, limit=333):
            pages += [r.event.step_key for r in page if r.event]
            cursor = page[-1].storage_id
        assert pages == [r.event.step_key for r in r0 if r.event]
        middle = r0[1500].storage_id
        after = await events.get_events("r0", after=middle, limit=2)
        assert [r.storage_id for r in after] == ids[1501:1503]
        ends = await events.get_events("r0", after=middle, event_types=[EventType.RUN_SUCCESS])
        assert [r.storage_id for r in ends] == [ids[-1]]
        latest = await events.get_latest_materialization(["a"])
        assert latest is not None and latest.storage_id == r1[-1].storage_id

    async def test_run_events_move_run_status_and_times(self, storages: Storages) -> None:
        runs, events, _ = storages
        await runs.add_run(make_run("r"))
        for kind, status in [
            (EventType.RUN_ENQUEUED, RunStatus.QUEUED),
            (EventType.RUN_STARTING, RunStatus.STARTING),
            (EventType.RUN_START, RunStatus.STARTED),
        ]:
            await events.store_events([ev("r", kind, ts=5.0)])
            if not events.updates_run_status_in(runs):
                await runs.handle_run_events([ev("r", kind, ts=5.0)])
            run = await runs.get_run("r")
            assert run is not None and run.status == status
        final = [ev("r", EventType.STEP_START, "s", 6.0), ev("r", EventType.RUN_SUCCESS, ts=9.0)]
        await events.store_events(final)
        if not events.updates_run_status_in(runs):
            await runs.handle_run_events(final)
        run = await runs.get_run("r")
        assert run is not None
        assert (run.status, run.start_time, run.end_time) == (RunStatus.SUCCESS, 5.0, 9.0)

    # -- the run status state machine -----------------------------------------------------

    async def test_every_move_is_applied_or_refused_as_the_transition_table_says(
        self, storages: Storages
    ) -> None:
        """Table-driven from RUN_TRANSITIONS: every stored status against every lifecycle
        event; an applied move stores the event with the status, a refused one stores
        neither and answers the status that won."""
        runs, events, _ = storages
        for old in RUN_TRANSITIONS:
            for new, kind in EVENT_SETTING.items():
                run_id = f"{old.name}-{new.name}"
                await runs.add_run(make_run(run_id, status=old))
                outcome = await transition(storages, ev(run_id, kind, ts=7.0))
                allowed = allowed_transition(old, new)
                assert outcome == RunTransition(applied=allowed, status=new if allowed else old)
                run = await runs.get_run(run_id)
                assert run is not None and run.status == (new if allowed else old), run_id
                assert await lifecycle_path(events, run_id) == ([new] if allowed else []), run_id

    async def test_a_finished_run_stays_finished(self, storages: Storages) -> None:
        runs, events, _ = storages
        for end in FINISHED_STATUSES:
            run_id = f"done-{end.name}"
            await runs.add_run(make_run(run_id, status=end, end_time=3.0))
            for kind in RUN_STATUS_BY_EVENT:
                outcome = await transition(storages, ev(run_id, kind, ts=9.0))
                assert outcome == RunTransition(applied=False, status=end)
            run = await runs.get_run(run_id)
            assert run is not None and (run.status, run.end_time) == (end, 3.0)
            assert await events.get_events(run_id) == []

    async def test_a_second_start_is_refused_with_the_status_that_won(
        self, storages: Storages
    ) -> None:
        runs, events, _ = storages
        await runs.add_run(make_run("r"))
        first = await transition(storages, ev("r", EventType.RUN_START, ts=1.0))
        second = await transition(storages, ev("r", EventType.RUN_START, ts=2.0))
        assert first == RunTransition(applied=True, status=RunStatus.STARTED)
        assert second == RunTransition(applied=False, status=RunStatus.STARTED)
        run = await runs.get_run("r")
        assert run is not None and run.start_time == 1.0
        assert await lifecycle_path(events, "r") == [RunStatus.STARTED]

    async def test_a_late_start_after_a_cancel_changes_nothing(self, storages: Storages) -> None:
        runs, events, _ = storages
        await runs.add_run(make_run("r", status=RunStatus.QUEUED))
        await transition(storages, ev("r", EventType.RUN_CANCELED, ts=1.0))
        late = await transition(storages, ev("r", EventType.RUN_START, ts=2.0))
        assert late == RunTransition(applied=False, status=RunStatus.CANCELED)
        run = await runs.get_run("r")
        assert run is not None and (run.status, run.start_time) == (RunStatus.CANCELED, 0.0)
        assert await lifecycle_path(events, "r") == [RunStatus.CANCELED]

    async def test_a_failure_stores_its_error_on_the_run(self, storages: Storages) -> None:
        """The error a RUN_FAILURE carries is the run's `failure`, written with the status;
        a refused second failure does not replace it."""
        runs, _, _ = storages
        await runs.add_run(make_run("r", status=RunStatus.STARTED))
        error = ErrorInfo(
            cls_name="RuntimeError",
            message="the engine broke",
            stack="Traceback ...",
            cause=ErrorInfo(cls_name="OSError", message="disk", stack=""),
        )
        for message in ("the engine broke", "too late"):
            await transition(
                storages,
                ev(
                    "r",
                    EventType.RUN_FAILURE,
                    ts=4.0,
                    run_failure=RunFailureData(
                        error=ErrorInfo(
                            cls_name="RuntimeError",
                            message=message,
                            stack="Traceback ...",
                            cause=error.cause,
                        )
                    ),
                ),
            )
        run = await runs.get_run("r")
        assert run is not None
        assert (run.status, run.end_time, run.failure) == (RunStatus.FAILURE, 4.0, error)

    async def test_a_batch_drops_only_its_refused_lifecycle_rows(self, storages: Storages) -> None:
        """As the executor's sink writes: rows checked in order, refused ones not stored,
        the rest of the batch stored as given."""
        runs, events, _ = storages
        if not events.updates_run_status_in(runs):
            pytest.skip("the event log of this backend does not hold runs")
        await runs.add_run(make_run("r"))
        kinds = [
            EventType.RUN_START,
            EventType.STEP_START,
            EventType.RUN_START,
            EventType.STEP_SUCCESS,
            EventType.RUN_SUCCESS,
            EventType.RUN_CANCELED,
        ]
        rows = [
            row(kind, "s" if kind.name.startswith("STEP") else "", "", LogLevel.INFO, "job")
            for kind in kinds
        ]
        moved = await events.store_rows("r", rows)
        assert moved == [
            RunTransition(applied=True, status=RunStatus.STARTED),
            RunTransition(applied=False, status=RunStatus.STARTED),
            RunTransition(applied=True, status=RunStatus.SUCCESS),
            RunTransition(applied=False, status=RunStatus.SUCCESS),
        ]
        stored = [r.event.event_type for r in await events.get_events("r") if r.event]
        assert stored == [kinds[0], kinds[1], kinds[3], kinds[4]]
        run = await runs.get_run("r")
        assert run is not None and run.status == RunStatus.SUCCESS

    async def test_a_failed_event_write_moves_no_run(
        self, storages: Storages, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The lifecycle event and the status change are one transaction: when the event
        cannot be written, the run has not moved either."""
        runs, events, _ = storages
        if not isinstance(events, SqlEventLogStorage):
            pytest.skip("the memory backend cannot fail a write")
        await runs.add_run(make_run("r"))
        monkeypatch.setattr(_sql, "INSERT_CHUNK", "INSERT INTO no_such_table VALUES (?, ?, ?, ?)")
        with pytest.raises(StorageError):
            await events.store_events([ev("r", EventType.RUN_START)])
        run = await runs.get_run("r")
        assert run is not None and run.status == RunStatus.NOT_STARTED

    async def test_racing_writers_take_each_step_once(self, storages: Storages, race: Race) -> None:
        """Writers with storages of their own race to move one run through conflicting
        transitions; the stored history is a possible one and each step was won once."""
        runs, events, _ = storages
        for trial in range(3):
            run_id = f"race{trial}"
            await runs.add_run(make_run(run_id))
            with anyio.fail_after(120):
                outcomes = await race(run_id, 6)
            run = await runs.get_run(run_id)
            assert run is not None
            path = await lifecycle_path(events, run_id)
            check_race(RunStatus.NOT_STARTED, path, run.status, outcomes)
            assert path[:2] == [RunStatus.STARTING, RunStatus.STARTED]

    async def test_deleting_a_run_deletes_its_events_and_tags(self, storages: Storages) -> None:
        runs, events, _ = storages
        await runs.add_run(make_run("r", tags={"k": "v"}))
        await runs.add_run(make_run("keep", tags={"k": "v"}))
        await events.store_events([ev("r", EventType.RUN_START), ev("keep", EventType.RUN_START)])
        await runs.delete_run("r")
        if not events.updates_run_status_in(runs):
            await events.delete_events("r")
        assert await runs.get_run("r") is None
        assert await events.get_events("r") == []
        assert [r.run_id for r in await runs.get_runs(RunsFilter(tags={"k": "v"}))] == ["keep"]
        assert len(await events.get_events("keep")) == 1
        with pytest.raises(RunNotFoundError):
            await runs.delete_run("r")

    async def test_step_stats_fold_the_step_events(self, storages: Storages) -> None:
        _, events, _ = storages
        await events.store_events(
            [
                ev("r", EventType.STEP_START, "a", 1.0),
                materialization("r", ["x"], "a", 1.5),
                ev("r", EventType.STEP_SUCCESS, "a", 2.0),
                ev("r", EventType.STEP_START, "b", 2.0),
                ev("r", EventType.STEP_UP_FOR_RETRY, "b", 3.0),
                ev("r", EventType.STEP_RESTARTED, "b", 4.0),
                ev("r", EventType.STEP_FAILURE, "b", 5.0),
                ev("r", EventType.STEP_SKIPPED, "c", 5.0),
                ev("r", EventType.STEP_START, "d", 6.0),
            ]
        )
        stats = {s.step_key: s for s in await events.get_step_stats("r")}
        assert list(stats) == ["a", "b", "c", "d"]
        assert (stats["a"].status, stats["a"].start_time, stats["a"].end_time) == (
            StepStatus.SUCCESS,
            1.0,
            2.0,
        )
        assert stats["a"].materializations == (("x",),)
        assert (stats["b"].status, stats["b"].attempts) == (StepStatus.FAILURE, 2)
        assert stats["c"].status == StepStatus.SKIPPED
        assert stats["d"].status == StepStatus.IN_PROGRESS and stats["d"].end_time is None

    async def test_asset_materializations_are_indexed(self, storages: Storages) -> None:
        _, events, _ = storages
        await events.store_events([materialization("r1", ["a", "b"], ts=1.0)])
        await events.store_events([materialization("r2", ["a", "b"], ts=2.0)])
        await events.store_events([materialization("r2", ["c"], ts=3.0)])
        assert await events.get_asset_keys() == [("a", "b"), ("c",)]
        history = await events.get_materializations(["a", "b"])
        assert [r.event.run_id for r in history if r.event] == ["r2", "r1"]
        older = await events.get_materializations(["a", "b"], before=history[0].storage_id)
        assert [r.event.run_id for r in older if r.event] == ["r1"]
        latest = await events.get_latest_materialization(["a", "b"])
        assert latest is not None and latest.event is not None
        assert latest.event.run_id == "r2"
        data = latest.event.asset_materialization
        assert data is not None and data.partition == "2024-01-01"
        assert await events.get_latest_materialization(["nope"]) is None

    async def test_latest_materializations_are_read_in_batches(self, storages: Storages) -> None:
        _, events, _ = storages
        keys = [["k", str(i)] for i in range(_sql.LATEST_BATCH + 20)]
        await events.store_events([materialization("r1", k, ts=1.0) for k in keys])
        await events.store_events([materialization("r2", k, ts=2.0) for k in keys[::2]])
        observed = materialization("r3", ["k", "1"], ts=3.0)
        observed.event_type = EventType.ASSET_OBSERVATION
        await events.store_events([observed])
        latest = await events.get_latest_materializations([*keys, ["never"]])
        assert set(latest) == {tuple(k) for k in keys}
        runs = {k: r.event.run_id for k, r in latest.items() if r.event is not None}
        assert runs[("k", "0")] == "r2" and runs[("k", "1")] == "r1"
        assert runs[("k", str(_sql.LATEST_BATCH + 18))] == "r2"
        one = await events.get_latest_materialization(["k", "4"])
        assert one is not None and latest[("k", "4")].storage_id == one.storage_id
        assert await events.get_latest_materializations([]) == {}

    async def test_asset_observations_are_indexed_apart_from_materializations(
        self, storages: Storages
    ) -> None:
        _, events, _ = storages
        observed = materialization("r1", ["a"], ts=1.0)
        observed.event_type = EventType.ASSET_OBSERVATION
        later = materialization("r2", ["a"], ts=2.0)
        later.event_type = EventType.ASSET_OBSERVATION
        await events.store_events([observed, materialization("r1", ["a"], ts=1.5), later])
        seen = await events.get_observations(["a"])
        assert [r.event.run_id for r in seen if r.event] == ["r2", "r1"]
        assert [
            r.event.run_id for r in await events.get_observations(["a"], limit=1) if r.event
        ] == ["r2"]
        older = await events.get_observations(["a"], before=seen[0].storage_id)
        assert [r.event.run_id for r in older if r.event] == ["r1"]
        assert len(await events.get_materializations(["a"])) == 1
        assert await events.get_observations(["nope"]) == []

    async def test_runless_asset_events_and_their_tags_round_trip(self, storages: Storages) -> None:
        from dagloom.definitions.outputs import AssetMaterialization, AssetObservation
        from dagloom.execution.reporting import runless_event

        _, events, _ = storages
        version = "dagster/data_version"
        await events.store_events(
            [
                runless_event(AssetMaterialization("ext", metadata={"n": 1}, tags={version: "7"})),
                runless_event(AssetObservation("ext", tags={version: "8"})),
            ]
        )
        [made] = await events.get_materializations(["ext"])
        [seen] = await events.get_observations(["ext"])
        assert made.event is not None and seen.event is not None
        assert made.event.run_id == seen.event.run_id == ""
        assert made.event.asset_materialization is not None
        assert made.event.asset_materialization.tags == {version: "7"}
        assert seen.event.asset_materialization is not None
        assert seen.event.asset_materialization.tags == {version: "8"}

    async def test_latest_asset_events_are_read_for_many_keys_at_once(
        self, storages: Storages
    ) -> None:
        _, events, _ = storages
        observed = materialization("r2", ["a"], ts=3.0)
        observed.event_type = EventType.ASSET_OBSERVATION
        await events.store_events([materialization("r1", ["a"], ts=1.0)])
        await events.store_events([materialization("r2", ["a"], ts=2.0), observed])
        await events.store_events([materialization("r3", ["b", "c"], ts=4.0)])
        kinds = [EventType.ASSET_MATERIALIZATION, EventType.ASSET_OBSERVATION]
        found = await events.get_latest_asset_events([["a"], ["b", "c"], ["none"]], kinds)
        runs = {key: r.event.run_id for key, r in found.items() if r.event}
        assert runs == {
            (("a",), EventType.ASSET_MATERIALIZATION): "r2",
            (("a",), EventType.ASSET_OBSERVATION): "r2",
            (("b", "c"), EventType.ASSET_MATERIALIZATION): "r3",
        }
        latest = await events.get_latest_materialization(["a"])
        assert latest is not None
        assert found[(("a",), EventType.ASSET_MATERIALIZATION)].storage_id == latest.storage_id

    async def test_latest_partition_events_are_read_per_partition(self, storages: Storages) -> None:
        _, events, _ = storages
        observed = materialization("r3", ["daily"], partition="2024-01-02")
        observed.event_type = EventType.ASSET_OBSERVATION
        await events.store_events(
            [materialization("r1", ["daily"], partition=f"2024-01-0{d}") for d in (1, 2)]
        )
        await events.store_events([materialization("r2", ["daily"], partition="2024-01-02")])
        await events.store_events([observed, materialization("r3", ["daily"], partition="")])
        await events.store_events([materialization("r3", ["other"], partition="2024-01-01")])
        kinds = [EventType.ASSET_MATERIALIZATION, EventType.ASSET_OBSERVATION]
        found = await events.get_latest_partition_events(["daily"], kinds)
        runs = {key: r.event.run_id for key, r in found.items() if r.event}
        assert runs == {
            ("2024-01-01", EventType.ASSET_MATERIALIZATION): "r1",
            ("2024-01-02", EventType.ASSET_MATERIALIZATION): "r2",
            ("2024-01-02", EventType.ASSET_OBSERVATION): "r3",
        }
        some = await events.get_latest_partition_events(
            ["daily"], [EventType.ASSET_MATERIALIZATION], ["2024-01-02", "2024-01-09"]
        )
        assert {key: r.event.run_id for key, r in some.items() if r.event} == {
            ("2024-01-02", EventType.ASSET_MATERIALIZATION): "r2"
        }

    async def test_materialized_partitions_are_indexed(self, storages: Storages) -> None:
        _, events, _ = storages
        await events.store_events(
            [materialization("r1", ["daily"], partition=f"2024-01-0{d}") for d in (1, 2, 3)]
        )
        await events.store_events([materialization("r2", ["daily"], partition="2024-01-02")])
        await events.store_events([materialization("r2", ["plain"], partition="")])
        found = await events.get_materialized_partitions(["daily"])
        assert sorted(found) == ["2024-01-01", "2024-01-02", "2024-01-03"]
        latest = await events.get_latest_materialization(["daily"])
        assert latest is not None and found["2024-01-02"].storage_id == latest.storage_id
        assert found["2024-01-02"].run_id == "r2" and found["2024-01-01"].run_id == "r1"
        assert await events.get_materialized_partitions(["plain"]) == {}
        await events.delete_events("r1")
        assert sorted(await events.get_materialized_partitions(["daily"])) == ["2024-01-02"]

    async def test_materialized_partitions_follow_writes_and_deletes_between_reads(
        self, storages: Storages
    ) -> None:
        _, events, _ = storages

        async def read() -> dict[str, str]:
            found = await events.get_materialized_partitions(["daily"])
            return {key: m.run_id for key, m in found.items()}

        assert await read() == {}
        await events.store_events(
            [materialization("r1", ["daily"], partition=k) for k in ("a", "z")]
        )
        assert await read() == {"a": "r1", "z": "r1"}
        await events.store_events(
            [materialization("r2", ["daily"], partition=k) for k in ("a", "b")]
        )
        assert await read() == {"a": "r2", "b": "r2", "z": "r1"}
        # Two rows deleted and two added between two reads: as many rows as before.
        await events.delete_events("r1")
        await events.store_events(
            [materialization("r3", ["daily"], partition=k) for k in ("c", "d")]
        )
        assert await read() == {"a": "r2", "b": "r2", "c": "r3", "d": "r3"}
        await events.delete_events("r2")
        assert await read() == {"c": "r3", "d": "r3"}
        mutated = await events.get_materialized_partitions(["daily"])
        mutated.clear()
        assert await read() == {"c": "r3", "d": "r3"}

    async def test_materialized_partition_keys_come_from_the_index(
        self, storages: Storages
    ) -> None:
        _, events, _ = storages
        await events.store_events(
            [materialization("r1", ["daily"], partition=f"2024-01-0{d}") for d in (1, 2, 2)]
        )
        await events.store_events([materialization("r1", ["other"], partition="2024-01-05")])
        assert await events.get_materialized_partition_keys(["daily"]) == {
            "2024-01-01",
            "2024-01-02",
        }
        assert await events.get_materialized_partition_keys(["nope"]) == set()

    async def test_runs_of_partitions_are_indexed_by_asset(self, storages: Storages) -> None:
        runs, _, _ = storages

        def selecting(*paths: list[str]) -> list[AssetKeyMessage]:
            return [AssetKeyMessage(path=p) for p in paths]

        await runs.add_run(
            make_run(
                "one",
                status=RunStatus.FAILURE,
                create_time=1.0,
                tags={"dagster/partition": "2024-01-01"},
                asset_selection=selecting(["a"], ["b", "c"]),
            )
        )
        await runs.add_run(
            make_run(
                "range",
                status=RunStatus.STARTED,
                create_time=2.0,
                tags={
                    "dagster/asset_partition_range_start": "2024-01-02",
                    "dagster/asset_partition_range_end": "2024-01-09",
                },
                asset_selection=selecting(["a"]),
            )
        )
        await runs.add_run(make_run("plain", asset_selection=selecting(["a"])))
        await runs.add_run(make_run("job", tags={"dagster/partition": "2024-01-01"}))
        found = await runs.get_partition_runs(["a"], [RunStatus.FAILURE, RunStatus.STARTED])
        assert found == [
            PartitionRunRecord("one", RunStatus.FAILURE, 1.0, "2024-01-01", "2024-01-01"),
            PartitionRunRecord("range", RunStatus.STARTED, 2.0, "2024-01-02", "2024-01-09"),
        ]
        assert [r.run_id for r in await runs.get_partition_runs(["a"], [RunStatus.FAILURE])] == [
            "one"
        ]
        assert [
            r.run_id for r in await runs.get_partition_runs(["b", "c"], [RunStatus.FAILURE])
        ] == ["one"]
        assert await runs.get_partition_runs(["a"], []) == []
        await runs.delete_run("one")
        assert await runs.get_partition_runs(["b", "c"], [RunStatus.FAILURE]) == []

    async def test_asset_check_evaluations_are_indexed_by_asset(self, storages: Storages) -> None:
        from dagloom.messages import AssetCheckEvaluationData

        _, events, _ = storages

        def check(run_id: str, name: str, passed: bool) -> Event:
            return ev(
                run_id,
                EventType.ASSET_CHECK_EVALUATION,
                "s",
                asset_check_evaluation=AssetCheckEvaluationData(
                    asset_key=AssetKeyMessage(path=["orders"]),
                    check_name=name,
                    passed=passed,
                    severity="ERROR",
                ),
            )

        await events.store_events([check("r1", "not_empty", True), check("r1", "fresh", False)])
        await events.store_events([materialization("r2", ["orders"]), check("r2", "fresh", True)])
        found = await events.get_asset_check_evaluations(["orders"])
        seen = [
            (r.event.run_id, r.event.asset_check_evaluation.check_name)
            for r in found
            if r.event and r.event.asset_check_evaluation
        ]
        assert seen == [("r2", "fresh"), ("r1", "fresh"), ("r1", "not_empty")]
        assert len(await events.get_asset_check_evaluations(["orders"], limit=1)) == 1
        assert await events.get_asset_check_evaluations(["other"]) == []
        history = await events.get_materializations(["orders"])
        assert [r.event.run_id for r in history if r.event] == ["r2"]

    async def test_backfills_are_stored_listed_and_updated(self, storages: Storages) -> None:
        from dagloom.errors import StorageError
        from dagloom.messages import Backfill, BackfillStatus

        runs, _, _ = storages
        first = Backfill(
            backfill_id="b1",
            status=BackfillStatus.REQUESTED,
            job_name="__ASSET_JOB",
            partition_keys=["2024-01-01", "2024-01-02"],
            partitions_per_run=1,
            create_time=1.0,
        )
        await runs.add_backfill(first)
        await runs.add_backfill(Backfill(backfill_id="b2", status=BackfillStatus.COMPLETED))
        with pytest.raises(StorageError, match="b1"):
            await runs.add_backfill(first)
        assert [b.backfill_id for b in await runs.get_backfills()] == ["b2", "b1"]
        requested = await runs.get_backfills([BackfillStatus.REQUESTED])
        assert [b.backfill_id for b in requested] == ["b1"]
        first.num_submitted = 2
        first.status = BackfillStatus.COMPLETED
        await runs.update_backfill(first)
        stored = await runs.get_backfill("b1")
        assert stored is not None and stored.num_submitted == 2
        assert stored.partition_keys == ["2024-01-01", "2024-01-02"]
        assert await runs.get_backfills([BackfillStatus.REQUESTED]) == []
        assert await runs.get_backfill("nope") is None
        with pytest.raises(StorageError, match="nope"):
            await runs.update_backfill(Backfill(backfill_id="nope"))

    async def test_dynamic_partitions_keep_the_order_added(self, storages: Storages) -> None:
        _, events, _ = storages
        await events.add_dynamic_partitions("fruits", ["pear", "apple"])
        await events.add_dynamic_partitions("fruits", ["apple", "fig"])
        await events.add_dynamic_partitions("veg", ["kale"])
        assert await events.get_dynamic_partitions("fruits") == ["pear", "apple", "fig"]
        await events.delete_dynamic_partition("fruits", "apple")
        await events.delete_dynamic_partition("fruits", "nope")
        assert await events.get_dynamic_partitions("fruits") == ["pear", "fig"]
        assert await events.get_dynamic_partitions("none") == []

    async def test_a_watcher_sees_stored_events_at_once_and_stops_at_the_end(
        self, storages: Storages
    ) -> None:
        _, events, _ = storages
        await events.store_events([ev("r", EventType.RUN_START)])
        seen: list[EventType] = []
        first_seen = anyio.Event()

        async def watch() -> None:
            async for record in events.watch_run_events("r"):
                assert record.event is not None
                seen.append(record.event.event_type)
                first_seen.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                await first_seen.wait()
                await events.store_events([ev("r", EventType.STEP_START, "s")])
                await events.store_events([ev("other", EventType.RUN_SUCCESS)])
                await events.store_events([ev("r", EventType.RUN_SUCCESS)])
        assert seen == [EventType.RUN_START, EventType.STEP_START, EventType.RUN_SUCCESS]

    async def test_a_watcher_starts_after_its_cursor(self, storages: Storages) -> None:
        _, events, _ = storages
        await events.store_events(
            [
                ev("r", EventType.RUN_START),
                ev("r", EventType.STEP_START, "s"),
                ev("r", EventType.RUN_SUCCESS),
            ]
        )
        first = (await events.get_events("r"))[0]
        with anyio.fail_after(10):
            kinds = [
                r.event.event_type
                async for r in events.watch_run_events("r", after=first.storage_id)
                if r.event
            ]
        assert kinds == [EventType.STEP_START, EventType.RUN_SUCCESS]

    async def test_a_batch_watcher_gets_each_read_whole_and_stops_at_the_end(
        self, storages: Storages
    ) -> None:
        _, events, _ = storages
        await events.store_events(
            [
                ev("r", EventType.RUN_START),
                ev("r", EventType.STEP_START, "s"),
                ev("r", EventType.STEP_SUCCESS, "s"),
            ]
        )
        batches: list[list[EventType]] = []
        first_seen = anyio.Event()

        async def watch() -> None:
            async for batch in events.watch_run_event_batches("r"):
                assert batch, "a batch is never empty"
                batches.append([r.event.event_type for r in batch if r.event])
                first_seen.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                await first_seen.wait()
                # The end event and one stored after it in the same write: the batch
                # ends with the end event.
                await events.store_events(
                    [ev("r", EventType.RUN_SUCCESS), ev("r", EventType.ENGINE_EVENT)]
                )
        assert batches == [
            [EventType.RUN_START, EventType.STEP_START, EventType.STEP_SUCCESS],
            [EventType.RUN_SUCCESS],
        ]
        first = (await events.get_events("r"))[0]
        with anyio.fail_after(10):
            after = [
                [r.storage_id for r in batch]
                async for batch in events.watch_run_event_batches("r", after=first.storage_id)
            ]
        assert [len(b) for b in after] == [3]
        assert after[0][0] > first.storage_id

    async def test_concurrent_writers_keep_each_callers_order(self, storages: Storages) -> None:
        _, events, _ = storages

        async def write(run_id: str) -> None:
            for i in range(20):
                await events.store_events([ev(run_id, EventType.STEP_START, f"{i}")])

        async with anyio.create_task_group() as tg:
            for n in range(5):
                tg.start_soon(write, f"r{n}")
        for n in range(5):
            keys = [r.event.step_key for r in await events.get_events(f"r{n}") if r.event]
            assert keys == [str(i) for i in range(20)]

    # -- schedules -----------------------------------------------------------------------

    async def test_instigator_state_and_sensor_cursor(self, storages: Storages) -> None:
        _, _, schedules = storages
        sensor = InstigatorState(
            origin_id="loc:s",
            name="s",
            instigator_type=InstigatorType.SENSOR,
            status=InstigatorStatus.RUNNING,
            update_time=1.0,
        )
        schedule = InstigatorState(
            origin_id="loc:a",
            name="a",
            instigator_type=InstigatorType.SCHEDULE,
            status=InstigatorStatus.STOPPED,
        )
        await schedules.set_instigator_state(sensor)
        await schedules.set_instigator_state(schedule)
        assert await schedules.get_instigator_state("loc:s") == sensor
        assert [s.origin_id for s in await schedules.get_instigator_states()] == ["loc:a", "loc:s"]
        assert await schedules.get_instigator_states(InstigatorType.SENSOR) == [sensor]
        await schedules.set_sensor_cursor("loc:s", "42")
        stored = await schedules.get_instigator_state("loc:s")
        assert stored is not None and stored.cursor == "42"
        schedule.status = InstigatorStatus.RUNNING
        await schedules.set_instigator_state(schedule)
        assert await schedules.get_instigator_state("loc:a") == schedule
        await schedules.delete_instigator_state("loc:a")
        assert await schedules.get_instigator_state("loc:a") is None
        with pytest.raises(StorageError):
            await schedules.set_sensor_cursor("nope", "1")

    async def test_ticks_record_status_and_the_runs_they_made(self, storages: Storages) -> None:
        _, _, schedules = storages
        ticks = []
        for i in range(4):
            ticks.append(
                await schedules.create_tick(
                    Tick(origin_id="loc:s", status=TickStatus.STARTED, timestamp=float(i))
                )
            )
        assert len({t.tick_id for t in ticks}) == 4 and all(t.tick_id > 0 for t in ticks)
        done = ticks[1]
        done.status = TickStatus.SUCCESS
        done.run_ids = ["r1", "r2"]
        done.end_time = 1.5
        await schedules.update_tick(done)
        skipped = ticks[2]
        skipped.status = TickStatus.SKIPPED
        skipped.skip_reason = "nothing new"
        await schedules.update_tick(skipped)
        newest = await schedules.get_ticks("loc:s")
        assert [t.timestamp for t in newest] == [3.0, 2.0, 1.0, 0.0]
        assert newest[2] == done
        assert await schedules.get_ticks("loc:s", statuses=[TickStatus.SUCCESS]) == [done]
        assert [t.timestamp for t in await schedules.get_ticks("loc:s", limit=2)] == [3.0, 2.0]
        assert [t.timestamp for t in await schedules.get_ticks("loc:s", before=3.0, after=0.0)] == [
            2.0,
            1.0,
        ]
        assert await schedules.purge_ticks("loc:s", before=2.0) == 2
        assert [t.timestamp for t in await schedules.get_ticks("loc:s")] == [3.0, 2.0]
        with pytest.raises(StorageError):
            await schedules.update_tick(Tick(tick_id=10_000, origin_id="x"))

    async def test_api_tokens_store_hashes_list_and_revoke_once(self, storages: Storages) -> None:
        _, _, schedules = storages
        assert isinstance(schedules, TokenStorage)
        stored, text = new_token("ci", Role.LAUNCHER, now=10.0, expires_at=99.5)
        other, _ = new_token("ops", Role.ADMIN, now=20.0)
        await schedules.add_api_token(stored)
        await schedules.add_api_token(other)
        assert await schedules.get_api_token(stored.token_id) == stored
        assert await schedules.get_api_token("000000000000") is None
        assert [t.name for t in await schedules.get_api_tokens()] == ["ci", "ops"]
        secret = text.split("_", 2)[2]  # the secret itself may hold "_"
        assert secret not in repr(await schedules.get_api_tokens())
        with pytest.raises(StorageError):
            await schedules.add_api_token(stored)
        revoked = await schedules.revoke_api_token(stored.token_id, 30.0)
        assert revoked is not None and revoked.revoked_at == 30.0
        again = await schedules.revoke_api_token(stored.token_id, 40.0)
        assert again is not None and again.revoked_at == 30.0
        assert await schedules.revoke_api_token("000000000000", 40.0) is None
        kept = await schedules.get_api_token(other.token_id)
        assert kept is not None and kept.revoked_at is None

    async def test_the_audit_log_keeps_entries_newest_first(self, storages: Storages) -> None:
        _, _, schedules = storages
        assert isinstance(schedules, AuditStorage)
        assert list(await schedules.get_audit_entries()) == []
        for i, action in enumerate(["delete_run", "stop_instigator", "reload_location"]):
            entry = AuditEntry(float(i), "ops", action, f"target-{i}", "graphql")
            await schedules.add_audit_entry(entry)
        entries = list(await schedules.get_audit_entries(limit=2))
        assert [(e.action, e.target, e.timestamp) for e in entries] == [
            ("reload_location", "target-2", 2.0),
            ("stop_instigator", "target-1", 1.0),
        ]
        assert entries[0].entry_id > entries[1].entry_id > 0
        assert {(e.user, e.via) for e in entries} == {("ops", "graphql")}

    async def test_automation_state_and_evaluations_are_kept(self, storages: Storages) -> None:
        _, _, schedules = storages
        assert isinstance(schedules, AutomationStorage)
        assert await schedules.get_automation_state() == {}
        first = AutomationEvaluationRecord("a/b", 1.0, 1, '{"x": 1}', ("r1", "r2"))
        await schedules.store_automation_tick({"": "{}", "a/b": "s1"}, [first])
        await schedules.store_automation_tick(
            {"a/b": "s2"}, [AutomationEvaluationRecord("a/b", 2.0, 0, "{}")]
        )
        await schedules.store_automation_tick({}, [AutomationEvaluationRecord("c", 3.0, 0, "{}")])
        assert await schedules.get_automation_state() == {"": "{}", "a/b": "s2"}
        found = await schedules.get_automation_evaluations("a/b")
        assert [(r.timestamp, r.num_requested, r.run_ids) for r in found] == [
            (2.0, 0, ()),
            (1.0, 1, ("r1", "r2")),
        ]
        assert found[0].record_id > found[1].record_id > 0 and found[1].body == '{"x": 1}'
        older = await schedules.get_automation_evaluations("a/b", before=found[0].record_id)
        assert [r.timestamp for r in older] == [1.0]
        assert len(await schedules.get_automation_evaluations("a/b", limit=1)) == 1
        assert await schedules.purge_automation_evaluations(2.5) == 2
        assert await schedules.get_automation_evaluations("a/b") == []
        assert len(await schedules.get_automation_evaluations("c")) == 1

    async def test_automation_state_writes_are_fenced(self, storages: Storages) -> None:
        _, _, schedules = storages
        held = await schedules.acquire_lease("automation", "d1", duration=10, now=100)
        assert held is not None
        await schedules.store_automation_tick({"a": "1"}, [], fence=held.fence)
        await schedules.acquire_lease("automation", "d2", duration=10, now=120)
        with pytest.raises(LeaseLostError):
            await schedules.store_automation_tick({"a": "2"}, [], fence=held.fence)
        assert await schedules.get_automation_state() == {"a": "1"}

    async def test_latest_materialization_ids_for_every_asset_in_one_read(
        self, storages: Storages
    ) -> None:
        _, events, _ = storages
        await events.store_events(
            [materialization("r1", ["daily"], partition=f"2024-01-0{d}") for d in (1, 2)]
        )
        await events.store_events([materialization("r1", ["x", "plain"], partition="")])
        found = await events.get_latest_materialization_ids()
        first_plain = found[("x", "plain")][None]
        await events.store_events([materialization("r2", ["daily"], partition="2024-01-02")])
        again = await events.get_latest_materialization_ids()
        assert set(again) == {("daily",), ("x", "plain")}
        assert set(again[("daily",)]) == {"2024-01-01", "2024-01-02"}
        assert again[("daily",)]["2024-01-02"] > found[("daily",)]["2024-01-02"]
        newer = await events.get_latest_materialization_ids(after=first_plain)
        assert newer == {("daily",): {"2024-01-02": again[("daily",)]["2024-01-02"]}}

    async def test_a_lease_has_one_owner_until_it_expires(self, storages: Storages) -> None:
        _, _, schedules = storages
        held = await schedules.acquire_lease("scheduler", "d1", duration=10, now=100)
        assert held is not None and (held.owner, held.expires_at) == ("d1", 110)
        assert await schedules.acquire_lease("scheduler", "d2", duration=10, now=105) is None
        renewed = await schedules.acquire_lease("scheduler", "d1", duration=10, now=105)
        assert renewed is not None and renewed.expires_at == 115
        taken = await schedules.acquire_lease("scheduler", "d2", duration=10, now=115)
        assert taken is not None and taken.owner == "d2"
        assert await schedules.release_lease("scheduler", "d1") is False
        assert await schedules.release_lease("scheduler", "d2") is True
        assert await schedules.get_lease("scheduler") is None

    async def test_a_leases_token_grows_with_each_new_owner_and_never_goes_back(
        self, storages: Storages
    ) -> None:
        _, _, schedules = storages
        first = await schedules.acquire_lease("loop", "d1", duration=10, now=0)
        assert first is not None
        renewed = await schedules.acquire_lease("loop", "d1", duration=10, now=5)
        assert renewed is not None and renewed.token == first.token
        taken = await schedules.acquire_lease("loop", "d2", duration=10, now=20)
        assert taken is not None and taken.token == first.token + 1
        assert await schedules.release_lease("loop", "d2") is True
        again = await schedules.acquire_lease("loop", "d1", duration=10, now=21)
        assert again is not None and again.token == taken.token + 1
        held = await schedules.get_lease("loop")
        assert held is not None and held.fence == again.fence

    async def test_writes_under_a_stale_fence_are_refused_and_store_nothing(
        self, storages: Storages
    ) -> None:
        _, _, schedules = storages
        old = await schedules.acquire_lease("scheduler", "d1", duration=10, now=0)
        assert old is not None
        tick = await schedules.create_tick(
            Tick(origin_id="loc:s", status=TickStatus.STARTED, timestamp=1.0), fence=old.fence
        )
        await schedules.check_fence(old.fence)
        new = await schedules.acquire_lease("scheduler", "d2", duration=10, now=11)
        assert new is not None
        with pytest.raises(LeaseLostError) as lost:
            await schedules.create_tick(
                Tick(origin_id="loc:s", status=TickStatus.STARTED, timestamp=2.0), fence=old.fence
            )
        assert lost.value.current == new.token
        ended = Tick.parse(bytes(tick))
        ended.tick_id = tick.tick_id
        ended.status = TickStatus.SUCCESS
        with pytest.raises(LeaseLostError):
            await schedules.update_tick(ended, fence=old.fence)
        with pytest.raises(LeaseLostError):
            await schedules.check_fence(old.fence)
        assert [t.status for t in await schedules.get_ticks("loc:s")] == [TickStatus.STARTED]
        await schedules.update_tick(ended, fence=new.fence)
        assert [t.status for t in await schedules.get_ticks("loc:s")] == [TickStatus.SUCCESS]
        with pytest.raises(LeaseLostError):
            await schedules.check_fence(Fence("never-taken", 1))

    async def test_purged_leases_go_and_never_hand_out_an_old_token_again(
        self, storages: Storages
    ) -> None:
        _, _, schedules = storages
        claims = []
        for i in range(5):
            lease = await schedules.acquire_lease(f"run_claim/r{i}", "d1", duration=10, now=i)
            assert lease is not None
            claims.append(lease)
        assert await schedules.release_lease("run_claim/r0", "d1")
        live = await schedules.acquire_lease("scheduler", "d1", duration=1000, now=0)
        assert live is not None
        # r0 released, r1..r3 expired before 14, r4 (the greatest token but one) expires
        # at 14, the scheduler lease (the greatest token) is live.
        assert await schedules.purge_leases(before=14) == 4
        assert await schedules.get_lease("scheduler") == live
        assert await schedules.get_lease("run_claim/r4") is not None
        assert await schedules.purge_leases(before=14) == 0
        again = await schedules.acquire_lease("run_claim/r1", "d2", duration=10, now=20)
        assert again is not None and again.token > max(c.token for c in claims)
        with pytest.raises(LeaseLostError):
            await schedules.check_fence(claims[1].fence)
        await schedules.check_fence(again.fence)
        # The lease with the greatest token stays even once expired: it is the floor.
        assert await schedules.purge_leases(before=10_000) == 2
        assert await schedules.get_lease("run_claim/r1") == again

    async def test_transition_runs_moves_many_runs_under_one_fence_check(
        self, storages: Storages
    ) -> None:
        runs, events, schedules = storages
        batch = getattr(events, "transition_runs", None)
        if batch is None or not events.updates_run_status_in(runs):
            pytest.skip("runs and events in separate stores")
        for run_id in ("q1", "q2", "q3"):
            await runs.add_run(make_run(run_id, status=RunStatus.QUEUED))
        await runs.add_run(make_run("gone", status=RunStatus.CANCELED))
        lease = await schedules.acquire_lease("run_queue/admission", "d1", duration=10, now=0)
        assert lease is not None and events.fences_with(schedules)  # type: ignore[attr-defined]

        def starting(run_id: str) -> Event:
            return Event(run_id=run_id, event_type=EventType.RUN_STARTING, timestamp=1.0)

        outcomes = await batch(
            [starting("q1"), starting("gone"), starting("nowhere"), starting("q2")],
            fence=lease.fence,
        )
        assert outcomes == [
            RunTransition(applied=True, status=RunStatus.STARTING),
            RunTransition(applied=False, status=RunStatus.CANCELED),
            None,
            RunTransition(applied=True, status=RunStatus.STARTING),
        ]
        stored = {r.run_id: r.status for r in await runs.get_runs(RunsFilter())}
        assert stored == {
            "q1": RunStatus.STARTING,
            "q2": RunStatus.STARTING,
            "q3": RunStatus.QUEUED,
            "gone": RunStatus.CANCELED,
        }
        assert [r.event.event_type for r in await events.get_events("q1") if r.event] == [
            EventType.RUN_STARTING
        ]
        assert await events.get_events("gone") == []
        assert await events.get_events("nowhere") == []  # no orphan events
        taken = await schedules.acquire_lease("run_queue/admission", "d2", duration=10, now=20)
        assert taken is not None
        with pytest.raises(LeaseLostError):
            await batch([starting("q3")], fence=lease.fence)
        assert (await runs.get_run("q3")).status == RunStatus.QUEUED  # type: ignore[union-attr]
        assert await events.get_events("q3") == []

    async def test_daemon_heartbeats_keep_the_latest_per_type(self, storages: Storages) -> None:
        _, _, schedules = storages
        await schedules.add_daemon_heartbeat(
            DaemonHeartbeat(daemon_type="SCHEDULER", daemon_id="a", timestamp=1.0)
        )
        latest = DaemonHeartbeat(
            daemon_type="SCHEDULER",
            daemon_id="a",
            timestamp=2.0,
            errors=[ErrorInfo(cls_name="E", message="m", stack="")],
        )
        await schedules.add_daemon_heartbeat(latest)
        await schedules.add_daemon_heartbeat(
            DaemonHeartbeat(daemon_type="SENSOR", daemon_id="b", timestamp=1.0)
        )
        beats = await schedules.get_daemon_heartbeats()
        assert beats["SCHEDULER"] == latest and set(beats) == {"SCHEDULER", "SENSOR"}

    # -- aggregates for metrics ---------------------------------------------------------------

    async def test_run_stats_count_runs_by_job_and_status_and_bucket_durations(
        self, storages: Storages
    ) -> None:
        runs, _, _ = storages
        assert await runs.get_run_stats((1.0, 5.0)) == RunStats(counts={}, durations={})
        for run in [
            make_run("a1", "a", status=RunStatus.SUCCESS, start_time=100.0, end_time=100.5),
            make_run("a2", "a", status=RunStatus.FAILURE, start_time=100.0, end_time=105.0),
            make_run("a3", "a", status=RunStatus.SUCCESS, start_time=100.0, end_time=160.0),
            make_run("a4", "a", status=RunStatus.QUEUED),
            make_run("a5", "a", status=RunStatus.STARTED, start_time=100.0),
            make_run("b1", "b", status=RunStatus.QUEUED),
            make_run("b2", "b", status=RunStatus.CANCELED, end_time=50.0),  # never started
            make_run("b3", "b", status=RunStatus.SUCCESS, start_time=9.0, end_time=8.0),  # skew
        ]:
            await runs.add_run(run)
        stats = await runs.get_run_stats((1.0, 5.0, 10.0))
        assert stats.counts == {
            ("a", RunStatus.SUCCESS): 2,
            ("a", RunStatus.FAILURE): 1,
            ("a", RunStatus.QUEUED): 1,
            ("a", RunStatus.STARTED): 1,
            ("b", RunStatus.QUEUED): 1,
            ("b", RunStatus.CANCELED): 1,
            ("b", RunStatus.SUCCESS): 1,
        }
        # A duration on a bound counts at that bound (Prometheus' `le`).
        assert stats.durations == {
            "a": DurationHistogram(
                bounds=(1.0, 5.0, 10.0), cumulative=(1, 2, 2), count=3, total=65.5
            )
        }
        assert stats == fold_run_stats(await runs.get_runs(), (1.0, 5.0, 10.0))
        default = await runs.get_run_stats()
        assert default.durations["a"].bounds == RUN_DURATION_BUCKETS

    async def test_run_stats_agree_with_folding_every_run(self, storages: Storages) -> None:
        runs, _, _ = storages
        rng = random.Random(11)
        for i in range(300):
            start = rng.choice([0.0, 1000.0 + rng.random() * 10])
            end = rng.choice([0.0, start + rng.choice([-1.0, 0.0, 1.0, 5.0, rng.random() * 50])])
            status = rng.choice(list(RunStatus))
            await runs.add_run(
                make_run(f"r{i}", f"job{i % 4}", status=status, start_time=start, end_time=end)
            )
        bounds = (1.0, 5.0, 10.0, 30.0)
        got = await runs.get_run_stats(bounds)
        want = fold_run_stats(await runs.get_runs(), bounds)
        assert got.counts == want.counts
        assert got.durations.keys() == want.durations.keys()
        for job, h in want.durations.items():
            assert (got.durations[job].cumulative, got.durations[job].count) == (
                h.cumulative,
                h.count,
            )
            assert got.durations[job].total == pytest.approx(h.total)

    async def test_run_stats_follow_lifecycle_events(self, storages: Storages) -> None:
        runs, _, _ = storages
        await runs.add_run(make_run("r", "j"))
        for kind, ts in [
            (EventType.RUN_STARTING, 10.0),
            (EventType.RUN_START, 10.0),
            (EventType.RUN_SUCCESS, 13.0),
        ]:
            await transition(storages, ev("r", kind, ts=ts))
        stats = await runs.get_run_stats((2.0, 4.0))
        assert stats.counts == {("j", RunStatus.SUCCESS): 1}
        assert stats.durations["j"] == DurationHistogram(
            bounds=(2.0, 4.0), cumulative=(0, 1), count=1, total=3.0
        )

    async def test_events_stored_counts_every_stored_event_and_never_drops(
        self, storages: Storages
    ) -> None:
        runs, events, _ = storages
        assert await events.get_events_stored() == 0
        await runs.add_run(make_run("r"))
        await events.store_events([ev("r", EventType.STEP_START, "s") for _ in range(3)])
        await transition(storages, ev("r", EventType.RUN_START))
        refused = await transition(storages, ev("r", EventType.RUN_START))  # not stored
        assert refused is not None and not refused.applied
        assert await events.get_events_stored() == 4
        await events.delete_events("r")
        assert await events.get_events_stored() == 4

    async def test_run_stats_refuse_buckets_that_do_not_increase(self, storages: Storages) -> None:
        runs, _, _ = storages
        with pytest.raises(ValueError, match="strictly increase"):
            await runs.get_run_stats((5.0, 1.0))
