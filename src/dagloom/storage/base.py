"""The three storage interfaces (runs, events, schedules), the records they exchange, and the
rules every backend shares: how events move a run's status, and how step stats are folded.

A backend is a family of three classes over one database (`memory.py`, `sqlite.py`,
`postgres.py`). The contract tests in `tests/storage/contract.py` say what every backend owes.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate, compress, pairwise
from operator import itemgetter
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from dagloom._logging import get_logger
from dagloom.messages import (
    Backfill,
    BackfillStatus,
    DaemonHeartbeat,
    EngineEventData,
    ErrorInfo,
    Event,
    EventRecord,
    EventType,
    InstigatorState,
    InstigatorType,
    Run,
    RunFailureData,
    RunStatus,
    Tick,
    TickStatus,
)
from dagloom.messages.rows import (
    PAYLOAD,
    TIMESTAMP,
    EventRow,
    row_of,
)

_log = get_logger("dagloom.storage")

# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunsFilter:
    """Which runs a query returns; every field set must match (tags: every pair must match).

    `created_after` / `created_before` are timestamps; a `datetime` (as Dagster's
    RunsFilter takes) is made one (a naive one is read as UTC)."""

    run_ids: Sequence[str] = ()
    job_name: str | None = None
    statuses: Sequence[RunStatus] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    created_after: float | None = None
    created_before: float | None = None

    def __post_init__(self) -> None:
        for name in ("created_after", "created_before"):
            value: Any = getattr(self, name)
            if isinstance(value, datetime):
                if value.tzinfo is None:
                    value = value.replace(tzinfo=UTC)
                object.__setattr__(self, name, value.timestamp())


PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def run_partition_range(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """The (first, last) partition keys a run's tags name (a single key is a one-key range),
    or None for a run of no partitions."""
    key = tags.get(PARTITION_TAG)
    if key is not None:
        return key, key
    start = tags.get(PARTITION_RANGE_START_TAG)
    end = tags.get(PARTITION_RANGE_END_TAG)
    return (start, end) if start is not None and end is not None else None


@dataclass(frozen=True, slots=True)
class PartitionRunRecord:
    """A run that targeted a range of an asset's partitions, as the partition index has it."""

    run_id: str
    status: RunStatus
    create_time: float
    range_start: str
    range_end: str


@dataclass(frozen=True, slots=True)
class PartitionMaterialization:
    """The latest materialization of one partition of an asset: where and by which run."""

    storage_id: int
    run_id: str


class StepStatus(enum.StrEnum):
    """Where a step stands according to its events."""

    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class StepStats:
    """What a run's events say about one step: status, times, attempts, materializations."""

    run_id: str
    step_key: str
    status: StepStatus
    start_time: float | None
    end_time: float | None
    attempts: int
    materializations: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Fence:
    """The fencing token of lease `name` a write is made under: storage refuses the write
    (`LeaseLostError`) unless `token` is still the lease's token, so a holder that was
    paused past its lease cannot act after another owner took the lease."""

    name: str
    token: int


@dataclass(frozen=True, slots=True)
class Lease:
    """A named lease held by `owner` until `expires_at` (seconds since the epoch).

    Daemon control loops hold one each so two daemons never run the same loop at once.
    `token` is the lease's fencing token: it grows by one each time the lease passes to
    another owner (never when its owner renews it, nor on release), and never goes back,
    so writes made under `fence` are refused once anyone else has held the lease.
    """

    name: str
    owner: str
    expires_at: float
    token: int = 0

    @property
    def fence(self) -> Fence:
        return Fence(self.name, self.token)


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    """The schema version a database is at and the version this code writes."""

    location: str
    current: int
    latest: int

    @property
    def up_to_date(self) -> bool:
        return self.current == self.latest


RUN_DURATION_BUCKETS: tuple[float, ...] = (
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
)  # fmt: skip
"""Default upper bounds (seconds) of the run duration histogram's buckets; +Inf follows."""


@dataclass(frozen=True, slots=True)
class DurationHistogram:
    """Durations counted into buckets: `cumulative[i]` is how many were at most `bounds[i]`
    (Prometheus' `le`); `count` is all of them and `total` their sum in seconds."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    total: float


@dataclass(frozen=True, slots=True)
class RunStats:
    """Aggregates over every stored run, for metrics.

    `counts` maps (job name, status) to how many runs of that job are in that status (pairs
    with none are absent); `durations` maps a job name to the durations (start to end) of
    its runs that started and ended, ended no earlier than they started.
    """

    counts: Mapping[tuple[str, RunStatus], int]
    durations: Mapping[str, DurationHistogram]


def check_duration_buckets(bounds: Sequence[float]) -> tuple[float, ...]:
    """`bounds` as floats; `ValueError` unless they strictly increase."""
    out = tuple(float(b) for b in bounds)
    if any(b >= c for b, c in pairwise(out)):
        raise ValueError(f"duration buckets must strictly increase, got {list(out)}")
    return out


def bucketed(
    bounds: tuple[float, ...], buckets: Iterable[tuple[int, int, float]]
) -> DurationHistogram:
    """The histogram of (bucket index, count, total duration) triples, bucket i holding
    durations in (bounds[i-1], bounds[i]] and bucket len(bounds) those above every bound."""
    counts = [0] * (len(bounds) + 1)
    total = 0.0
    for bucket, n, seconds in buckets:
        counts[bucket] += n
        total += seconds
    cumulative = list(accumulate(counts))
    return DurationHistogram(
        bounds=bounds, cumulative=tuple(cumulative[:-1]), count=cumulative[-1], total=total
    )


def fold_run_stats(runs: Iterable[Run], bounds: Sequence[float]) -> RunStats:
    """`RunStats` of `runs`, the reference every backend's aggregate query agrees with."""
    bounds = check_duration_buckets(bounds)
    counts: dict[tuple[str, RunStatus], int] = {}
    durations: dict[str, list[float]] = {}
    for run in runs:
        key = (run.job_name, run.status)
        counts[key] = counts.get(key, 0) + 1
        if run.start_time > 0 and run.end_time > 0 and run.end_time >= run.start_time:
            durations.setdefault(run.job_name, []).append(run.end_time - run.start_time)
    return RunStats(
        counts=counts,
        durations={job: _histogram(bounds, found) for job, found in durations.items()},
    )


def _histogram(bounds: tuple[float, ...], durations: Sequence[float]) -> DurationHistogram:
    return DurationHistogram(
        bounds=bounds,
        cumulative=tuple(sum(1 for d in durations if d <= b) for b in bounds),
        count=len(durations),
        total=float(sum(durations)),
    )


# -- how events move runs --------------------------------------------------------------------

RUN_STATUS_BY_EVENT: Mapping[EventType, RunStatus] = {
    EventType.RUN_ENQUEUED: RunStatus.QUEUED,
    EventType.RUN_STARTING: RunStatus.STARTING,
    EventType.RUN_START: RunStatus.STARTED,
    EventType.RUN_SUCCESS: RunStatus.SUCCESS,
    EventType.RUN_FAILURE: RunStatus.FAILURE,
    EventType.RUN_CANCELING: RunStatus.CANCELING,
    EventType.RUN_CANCELED: RunStatus.CANCELED,
}
"""Storing one of these events sets the run's status, as Dagster does, when
`RUN_TRANSITIONS` allows it."""

RUN_END_EVENTS = frozenset({EventType.RUN_SUCCESS, EventType.RUN_FAILURE, EventType.RUN_CANCELED})
"""The events that end a run: `watch_run_events` stops after one of them."""

FINISHED_STATUSES = frozenset({RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED})

_BEFORE_START = frozenset(
    {
        RunStatus.STARTING,
        RunStatus.STARTED,
        RunStatus.FAILURE,
        RunStatus.CANCELING,
        RunStatus.CANCELED,
    }
)
"""Where a run that has not started may go: on towards execution, or failed or canceled."""

RUN_TRANSITIONS: Mapping[RunStatus, frozenset[RunStatus]] = MappingProxyType(
    {
        # A run stored without a status moves as a NOT_STARTED one does.
        RunStatus.UNSPECIFIED: _BEFORE_START | {RunStatus.QUEUED},
        # STARTED directly: `execute_in_process` with an instance claims the run it created.
        RunStatus.NOT_STARTED: _BEFORE_START | {RunStatus.QUEUED},
        RunStatus.QUEUED: _BEFORE_START - {RunStatus.STARTED},
        # Dagster's status for a run another system executes and reports: not dagloom's to move.
        RunStatus.MANAGED: frozenset(),
        RunStatus.STARTING: _BEFORE_START - {RunStatus.STARTING},
        RunStatus.STARTED: frozenset(
            {RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELING, RunStatus.CANCELED}
        ),
        # A run asked to cancel may still end by itself first, or lose its worker.
        RunStatus.CANCELING: FINISHED_STATUSES,
        RunStatus.SUCCESS: frozenset(),
        RunStatus.FAILURE: frozenset(),
        RunStatus.CANCELED: frozenset(),
    }
)
"""The statuses a run may move to from each status; every other move is refused by storage.

NOT_STARTED/QUEUED -> STARTING -> STARTED -> SUCCESS | FAILURE | CANCELING -> CANCELED, plus:
NOT_STARTED -> QUEUED (enqueueing) and -> STARTED (a run executed where it was created); a
run that never started may fail to launch or be canceled (-> FAILURE | CANCELING | CANCELED);
a started run canceled in its own process (Ctrl-C) goes straight to CANCELED; a CANCELING run
ends however it really ended. Terminal statuses are final, and no status moves to itself (a
second RUN_START is a second execution, which is what this table exists to refuse).

One move is outside the table: a resume claim (`is_resume_claim`), a RUN_STARTING whose
engine-event metadata carries `RESUME_ATTEMPT_KEY`, moves a STARTED run, and only a STARTED
one, back to STARTING, so that a new worker may claim it (RUN_START) after its worker was
lost. It is a compare-and-set like every move: of two daemons resuming one run, one does."""

RESUME_ATTEMPT_KEY = "dagloom/resume_attempt"
"""Metadata key of a resume claim's engine-event data: which resume attempt it is (1, 2, ...)."""


def is_resume_claim(event_type: EventType, payload: object) -> bool:
    """Whether a lifecycle event (its type and payload) is a resume claim: a RUN_STARTING
    whose `EngineEventData` metadata has `RESUME_ATTEMPT_KEY`."""
    return (
        event_type == EventType.RUN_STARTING
        and isinstance(payload, EngineEventData)
        and RESUME_ATTEMPT_KEY in payload.metadata
    )


def allowed_transition(old: RunStatus, new: RunStatus) -> bool:
    """Whether storage lets a run at status `old` move to `new` (see `RUN_TRANSITIONS`)."""
    return new in RUN_TRANSITIONS.get(old, frozenset())


RUN_TRANSITION_SOURCES: Mapping[RunStatus, tuple[RunStatus, ...]] = MappingProxyType(
    {
        new: tuple(old for old in RunStatus if allowed_transition(old, new))
        for new in RUN_STATUS_BY_EVENT.values()
    }
)
"""For each status an event sets, the statuses a run may move to it from: the SQL
compare-and-set's `status IN (...)`."""


@dataclass(frozen=True, slots=True)
class RunTransition:
    """What storing one run-lifecycle event did: `applied` when the run moved (and the event
    was stored with it); otherwise `status` is the stored status that won, and neither the
    event nor a status change was written."""

    applied: bool
    status: RunStatus


_event_type_of = itemgetter(0)
_moves_a_run = RUN_STATUS_BY_EVENT.__contains__


@dataclass(frozen=True, slots=True)
class RunStatusChange:
    """What a run-lifecycle event does to its run: the new status, the times it sets, and
    for a RUN_FAILURE the error the run failed with."""

    run_id: str
    status: RunStatus
    start_time: float | None
    end_time: float | None
    failure: ErrorInfo | None = None
    only_from: frozenset[RunStatus] | None = None
    """When set, the move applies only from these statuses (and where `RUN_TRANSITIONS`
    allows it): a RUN_FAILURE's `only_from_statuses`."""
    resume: bool = False
    """A resume claim: STARTED -> STARTING, and from no other status (`is_resume_claim`)."""

    @property
    def sources(self) -> tuple[RunStatus, ...]:
        """The stored statuses this change may move a run from."""
        if self.resume:
            return (RunStatus.STARTED,)
        allowed = RUN_TRANSITION_SOURCES[self.status]
        if self.only_from is None:
            return allowed
        return tuple(s for s in allowed if s in self.only_from)


def status_change(run_id: str, row: EventRow) -> RunStatusChange:
    """The change the lifecycle event in `row` asks of run `run_id`.

    RUN_START sets the start time and the end events set the end time, both from the event's
    timestamp; RUN_FAILURE sets the run's `failure` from its RunFailureData's error.
    """
    event_type = row[0]
    payload = row[PAYLOAD]
    failure = only_from = None
    if isinstance(payload, RunFailureData):
        failure = payload.error
        if payload.only_from_statuses:
            only_from = frozenset(RunStatus(s) for s in payload.only_from_statuses)
    return RunStatusChange(
        run_id=run_id,
        status=RUN_STATUS_BY_EVENT[event_type],
        start_time=row[TIMESTAMP] if event_type == EventType.RUN_START else None,
        end_time=row[TIMESTAMP] if event_type in RUN_END_EVENTS else None,
        failure=failure,
        only_from=only_from,
        resume=is_resume_claim(event_type, payload),
    )


def event_status_change(event: Event) -> RunStatusChange:
    """`status_change` of a lifecycle `Event`."""
    return status_change(event.run_id, row_of(event))


RunMove = tuple[int, int, RunStatusChange]
"""A lifecycle row of (run_id, rows) batches: the batch's index, the row's index in it, and
the change it asks for."""


def batch_moves(batches: Sequence[tuple[str, Sequence[EventRow]]]) -> list[RunMove]:
    """The lifecycle rows of these batches (`RUN_STATUS_BY_EVENT`), in order, each with where
    it is and its change.

    Picked in C: a storage calls this on every batch, and few events move a run.
    """
    moves: list[RunMove] = []
    for b, (run_id, rows) in enumerate(batches):
        for i in compress(range(len(rows)), map(_moves_a_run, map(_event_type_of, rows))):
            moves.append((b, i, status_change(run_id, rows[i])))
    return moves


def refuse_transition(change: RunStatusChange, stored: RunStatus) -> RunTransition:
    """The refusal of `change` to a run whose stored status `stored` won; logged as
    `run_transition_refused` with the run id and both statuses."""
    # `from` and `to` are the log's keys; both are Python keywords, hence the mapping.
    _log.warning(
        "run_transition_refused",
        run_id=change.run_id,
        **{"from": stored.name, "to": change.status.name},
    )
    return RunTransition(applied=False, status=stored)


def without_refused(
    batches: Sequence[tuple[str, Sequence[EventRow]]],
    moves: Sequence[RunMove],
    outcomes: Sequence[RunTransition | None],
    *,
    only_stored_runs: bool = False,
) -> list[tuple[str, Sequence[EventRow]]] | None:
    """The batches without the rows whose transition was refused (with `only_stored_runs`,
    also those of a run that is not stored, outcome None); None when none was."""
    refused: dict[int, set[int]] = {}
    for (b, i, _), outcome in zip(moves, outcomes, strict=True):
        if (outcome is None and only_stored_runs) or (outcome is not None and not outcome.applied):
            refused.setdefault(b, set()).add(i)
    if not refused:
        return None
    return [
        (run_id, [r for i, r in enumerate(rows) if i not in refused[b]] if b in refused else rows)
        for b, (run_id, rows) in enumerate(batches)
    ]


STEP_STATS_EVENTS = frozenset(
    {
        EventType.STEP_START,
        EventType.STEP_SUCCESS,
        EventType.STEP_FAILURE,
        EventType.STEP_SKIPPED,
        EventType.STEP_UP_FOR_RETRY,
        EventType.STEP_RESTARTED,
        EventType.ASSET_MATERIALIZATION,
    }
)
"""The event types `fold_step_stats` reads; backends fetch only these."""


def fold_step_stats(run_id: str, events: Iterable[Event]) -> list[StepStats]:
    """Fold a run's step events, in storage order, into one `StepStats` per step.

    A step is in progress from its first STEP_START; each STEP_START or STEP_RESTARTED is an
    attempt; STEP_SUCCESS/FAILURE/SKIPPED set the status and end time. Steps come back in the
    order they first appear.
    """
    order: list[str] = []
    status: dict[str, StepStatus] = {}
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    attempts: dict[str, int] = {}
    materialized: dict[str, list[tuple[str, ...]]] = {}
    terminal = {
        EventType.STEP_SUCCESS: StepStatus.SUCCESS,
        EventType.STEP_FAILURE: StepStatus.FAILURE,
        EventType.STEP_SKIPPED: StepStatus.SKIPPED,
    }
    for event in events:
        key = event.step_key
        if not key or event.event_type not in STEP_STATS_EVENTS:
            continue
        if key not in status:
            order.append(key)
            status[key] = StepStatus.IN_PROGRESS
            attempts[key] = 0
        kind = event.event_type
        if kind in (EventType.STEP_START, EventType.STEP_RESTARTED):
            start.setdefault(key, event.timestamp)
            attempts[key] += 1
            status[key] = StepStatus.IN_PROGRESS
        elif kind in terminal:
            status[key] = terminal[kind]
            end[key] = event.timestamp
        elif kind == EventType.ASSET_MATERIALIZATION:
            data = event.asset_materialization
            if data is not None and data.asset_key is not None:
                materialized.setdefault(key, []).append(tuple(data.asset_key.path))
    return [
        StepStats(
            run_id=run_id,
            step_key=key,
            status=status[key],
            start_time=start.get(key),
            end_time=end.get(key),
            attempts=attempts[key],
            materializations=tuple(materialized.get(key, ())),
        )
        for key in order
    ]


def run_matches(run: Run, filters: RunsFilter | None) -> bool:
    """Whether `run` passes `filters` (the reference semantics for SQL backends)."""
    if filters is None:
        return True
    if filters.run_ids and run.run_id not in filters.run_ids:
        return False
    if filters.job_name is not None and run.job_name != filters.job_name:
        return False
    if filters.statuses and run.status not in filters.statuses:
        return False
    if any(run.tags.get(k) != v for k, v in filters.tags.items()):
        return False
    if filters.created_after is not None and run.create_time <= filters.created_after:
        return False
    return filters.created_before is None or run.create_time < filters.created_before


# -- the interfaces --------------------------------------------------------------------------


@runtime_checkable
class StorageLifecycle(Protocol):
    """Opening and closing: what the instance does to every component it owns.

    `open` connects (and, for a database, checks its schema); it raises `StorageError` with
    one clear message when the database is unreachable, corrupt or foreign, and
    `SchemaVersionError` when its schema is not the one this code writes. Storages that share
    a database share its connection, counted: opening twice needs closing twice. `close` is
    idempotent.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def describe(self) -> str:
        """One line naming the backend and where it keeps its data."""
        ...


@runtime_checkable
class MigratableStorage(Protocol):
    """A storage with a versioned schema: `dagloom instance migrate` upgrades it."""

    async def schema_info(self) -> SchemaInfo:
        """The stored schema version (0 for an empty database) and the latest one known."""
        ...

    async def migrate(self) -> SchemaInfo:
        """Upgrade the schema to the latest version; safe to call on an up-to-date database,
        and whether or not the storage is open."""
        ...


@runtime_checkable
class RunStorage(StorageLifecycle, Protocol):
    """Runs, their tags and job snapshots."""

    async def add_run(self, run: Run) -> Run:
        """Store a new run as given; `StorageError` if its run_id is already stored."""
        ...

    async def get_run(self, run_id: str) -> Run | None:
        """The run with this id, or None."""
        ...

    async def get_runs(
        self,
        filters: RunsFilter | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> list[Run]:
        """Runs matching `filters`, newest first. `cursor` is the run_id of the last run of the
        previous page: only older runs follow it."""
        ...

    async def get_runs_count(self, filters: RunsFilter | None = None) -> int: ...

    async def get_partition_runs(
        self, asset_key: Sequence[str], statuses: Sequence[RunStatus]
    ) -> list[PartitionRunRecord]:
        """The runs in `statuses` that targeted partitions of the asset (its key in their
        asset selection, a partition or range tag at creation), oldest first; answered from
        an index kept when runs are added, no run is decoded."""
        ...

    async def get_run_stats(
        self, duration_buckets: Sequence[float] = RUN_DURATION_BUCKETS
    ) -> RunStats:
        """Runs by job and status, and finished runs' durations by job in `duration_buckets`
        (`RunStats`), by aggregate queries: cheap over many runs. `ValueError` if the
        buckets do not strictly increase."""

    async def add_backfill(self, backfill: Backfill) -> None:
        """Store a new backfill; `StorageError` if its id is taken."""
        ...

    async def get_backfill(self, backfill_id: str) -> Backfill | None: ...

    async def get_backfills(
        self, statuses: Sequence[BackfillStatus] = (), *, limit: int | None = None
    ) -> list[Backfill]:
        """Backfills (of these statuses, if given), newest first."""
        ...

    async def update_backfill(self, backfill: Backfill) -> None:
        """Replace a stored backfill (status, cursor, error); `StorageError` if unknown."""
        ...

    async def handle_run_events(self, events: Sequence[Event]) -> list[RunTransition | None]:
        """Move stored runs as these events ask, in order, each a compare-and-set on the
        run's status (`RUN_TRANSITIONS`); one result per event, None for one that moves no
        stored run (not a lifecycle event, or no such run).

        Used when runs and events live in different databases: the caller then stores only
        the events whose transition was not refused. A refusal is logged
        (`run_transition_refused`); applying the same event twice refuses the second.
        """
        ...

    async def add_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags of a stored run; `RunNotFoundError` if there is none."""
        ...

    async def delete_run(self, run_id: str) -> None:
        """Delete a run and its tags (and its events, when they share the database);
        `RunNotFoundError` if there is no such run."""
        ...

    async def add_job_snapshot(self, job_name: str, snapshot: bytes) -> str:
        """Store a job snapshot and return its id (the SHA-256 of its bytes); idempotent."""
        ...

    async def get_job_snapshot(self, snapshot_id: str) -> bytes | None: ...


@runtime_checkable
class EventLogStorage(StorageLifecycle, Protocol):
    """Every event of every run, in the order stored; and the asset materialization index."""

    async def store_events(self, events: Sequence[Event]) -> list[RunTransition]:
        """Store events in one transaction; durable when this returns.

        Concurrent callers may be committed together in one transaction, in call order. When
        `updates_run_status_in(run_storage)` is true, each lifecycle event (see
        `RUN_STATUS_BY_EVENT`) of a run stored there is a compare-and-set on the run's status
        in the same transaction, in order: the event and the status change are written
        together when `RUN_TRANSITIONS` allows the move from the stored status, and neither
        is otherwise (the refusal is logged as `run_transition_refused`). Returns those
        transitions, in order (events of runs not stored here have none). If the call is
        cancelled after the batch is handed to the writer, the batch is still written.
        """
        ...

    async def store_rows(self, run_id: str, rows: Sequence[EventRow]) -> list[RunTransition]:
        """`store_events` for events of one run given as rows (`dagloom.messages.rows`), the
        form the executor emits them in."""
        ...

    def updates_run_status_in(self, run_storage: RunStorage) -> bool:
        """Whether `store_events` updates the status of runs held by `run_storage` itself."""
        ...

    async def get_events(
        self,
        run_id: str,
        *,
        after: int | None = None,
        limit: int | None = None,
        event_types: Sequence[EventType] = (),
    ) -> list[EventRecord]:
        """A run's events in storage order, after the `after` cursor (a storage_id)."""
        ...

    def watch_run_events(
        self, run_id: str, *, after: int | None = None, stop_at_end: bool = True
    ) -> AsyncIterator[EventRecord]:
        """Yield a run's events after `after` as they are stored, without end.

        Woken at once by writes in this process (and by NOTIFY on Postgres); writes from
        other processes are found by polling. With `stop_at_end`, the iterator finishes after
        yielding a run's end event (RUN_SUCCESS, RUN_FAILURE, RUN_CANCELED). A failed read is
        retried from the last event yielded, with backoff, for a bounded time before its
        `StorageError` is raised.
        """
        ...

    def watch_run_event_batches(
        self, run_id: str, *, after: int | None = None, stop_at_end: bool = True
    ) -> AsyncIterator[list[EventRecord]]:
        """The events of `watch_run_events`, as one non-empty list per read of storage."""
        ...

    def wake_run_watchers(self, run_id: str) -> None:
        """Have this process's watchers of `run_id` read storage now, as after a write here:
        for a process told that another one stored the run's events (without it they find
        them at their next poll). Never blocks."""
        ...

    async def get_step_stats(self, run_id: str) -> list[StepStats]: ...

    async def get_asset_keys(self) -> list[tuple[str, ...]]:
        """Every asset key with a materialization or observation, sorted."""
        ...

    async def get_materializations(
        self,
        asset_key: Sequence[str],
        *,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[EventRecord]:
        """An asset's materializations, newest first, older than the `before` storage_id."""
        ...

    async def get_observations(
        self,
        asset_key: Sequence[str],
        *,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[EventRecord]:
        """An asset's observations, newest first, older than the `before` storage_id."""
        ...

    async def get_latest_materialization(self, asset_key: Sequence[str]) -> EventRecord | None: ...

    async def get_latest_materializations(
        self, asset_keys: Sequence[Sequence[str]]
    ) -> dict[tuple[str, ...], EventRecord]:
        """Each of `asset_keys` that was ever materialized -> its latest materialization;
        keys never materialized are absent. `get_latest_asset_events` of materializations
        alone: SQL backends read a few hundred keys per query rather than one key per query,
        as the asset graph asks for thousands at once."""
        ...

    async def get_latest_asset_events(
        self, asset_keys: Sequence[Sequence[str]], event_types: Sequence[EventType]
    ) -> dict[tuple[tuple[str, ...], EventType], EventRecord]:
        """The latest event of each of `event_types` (ASSET_MATERIALIZATION,
        ASSET_OBSERVATION) of each of `asset_keys`, by (key path, event type); absent when
        there is none. What staleness reads for a whole asset graph at once."""
        ...

    async def get_latest_partition_events(
        self,
        asset_key: Sequence[str],
        event_types: Sequence[EventType],
        partitions: Sequence[str] | None = None,
    ) -> dict[tuple[str, EventType], EventRecord]:
        """The latest event of each of `event_types` (ASSET_MATERIALIZATION,
        ASSET_OBSERVATION) of each partition of an asset (of `partitions`, when given), by
        (partition, event type); absent when there is none. What per-partition staleness
        reads of an asset."""
        ...

    async def get_asset_check_evaluations(
        self, asset_key: Sequence[str], *, limit: int | None = None
    ) -> list[EventRecord]:
        """The ASSET_CHECK_EVALUATION events of checks of an asset, newest first."""
        ...

    async def get_materialized_partitions(
        self, asset_key: Sequence[str]
    ) -> dict[str, PartitionMaterialization]:
        """Each partition of an asset that has a materialization -> its latest one (storage
        id and run); answered from an index alone, no event is decoded."""
        ...

    async def get_materialized_partition_keys(self, asset_key: Sequence[str]) -> set[str]:
        """The partitions of an asset that have a materialization; from the index alone."""

    async def get_latest_materialization_ids(
        self, after: int = 0
    ) -> dict[tuple[str, ...], dict[str | None, int]]:
        """Each asset key -> each partition (None: unpartitioned) -> its latest
        materialization's storage id, among those stored after `after`; one read for all."""
        ...

    async def add_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> None:
        """Add keys to the dynamic partitions `partitions_def_name`, after those it has;
        keys it has already are left where they are (idempotent)."""
        ...

    async def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        """Remove one key; removing a key that is not there is not an error."""
        ...

    async def get_dynamic_partitions(self, partitions_def_name: str) -> list[str]:
        """The keys of the dynamic partitions `partitions_def_name`, in the order added."""
        ...

    async def delete_events(self, run_id: str) -> None:
        """Delete every event of a run; deleting none is not an error."""
        ...

    async def get_events_stored(self) -> int:
        """How many events were ever stored here (the last storage id given out): a counter,
        so deleting events does not lower it. One cheap read, for metrics."""
        ...


class DerivedEventReads:
    """The `EventLogStorage` reads every backend derives alike from its `get_events`,
    `get_materializations` and `watch_run_event_batches`; an event-log storage inherits them."""

    __slots__ = ()

    async def watch_run_events(
        self: EventLogStorage, run_id: str, *, after: int | None = None, stop_at_end: bool = True
    ) -> AsyncIterator[EventRecord]:
        batches = self.watch_run_event_batches(run_id, after=after, stop_at_end=stop_at_end)
        async for batch in batches:
            for record in batch:
                yield record

    async def get_step_stats(self: EventLogStorage, run_id: str) -> list[StepStats]:
        records = await self.get_events(run_id, event_types=tuple(STEP_STATS_EVENTS))
        return fold_step_stats(run_id, (r.event for r in records if r.event is not None))

    async def get_latest_materialization(
        self: EventLogStorage, asset_key: Sequence[str]
    ) -> EventRecord | None:
        found = await self.get_materializations(asset_key, limit=1)
        return found[0] if found else None

    async def get_latest_materializations(
        self: EventLogStorage, asset_keys: Sequence[Sequence[str]]
    ) -> dict[tuple[str, ...], EventRecord]:
        kind = EventType.ASSET_MATERIALIZATION
        found = await self.get_latest_asset_events(asset_keys, [kind])
        return {key: record for (key, _), record in found.items()}

    async def get_latest_asset_events(
        self: EventLogStorage,
        asset_keys: Sequence[Sequence[str]],
        event_types: Sequence[EventType],
    ) -> dict[tuple[tuple[str, ...], EventType], EventRecord]:
        # One read per key and type: the built-in backends override this with batched reads.
        out: dict[tuple[tuple[str, ...], EventType], EventRecord] = {}
        for key in asset_keys:
            for event_type in event_types:
                read = (
                    self.get_materializations
                    if event_type == EventType.ASSET_MATERIALIZATION
                    else self.get_observations
                )
                found = await read(key, limit=1)
                if found:
                    out[(tuple(key), event_type)] = found[0]
        return out

    async def get_latest_partition_events(
        self: EventLogStorage,
        asset_key: Sequence[str],
        event_types: Sequence[EventType],
        partitions: Sequence[str] | None = None,
    ) -> dict[tuple[str, EventType], EventRecord]:
        # Every event of the asset, newest first: the built-in backends read the latest alone.
        wanted = None if partitions is None else set(partitions)
        out: dict[tuple[str, EventType], EventRecord] = {}
        for event_type in event_types:
            read = (
                self.get_materializations
                if event_type == EventType.ASSET_MATERIALIZATION
                else self.get_observations
            )
            for record in await read(asset_key):
                data = record.event.asset_materialization if record.event else None
                partition = data.partition if data is not None else ""
                if partition and (wanted is None or partition in wanted):
                    out.setdefault((partition, event_type), record)
        return out


@runtime_checkable
class ScheduleStorage(StorageLifecycle, Protocol):
    """Schedule and sensor state, their ticks and cursors, control-loop leases and daemon
    heartbeats."""

    async def set_instigator_state(self, state: InstigatorState) -> None:
        """Insert or replace the state for `state.origin_id`."""
        ...

    async def get_instigator_state(self, origin_id: str) -> InstigatorState | None: ...

    async def get_instigator_states(
        self, instigator_type: InstigatorType | None = None
    ) -> list[InstigatorState]:
        """Every stored state (of one type, if given), ordered by origin_id."""
        ...

    async def delete_instigator_state(self, origin_id: str) -> None: ...

    async def set_sensor_cursor(
        self, origin_id: str, cursor: str, *, fence: Fence | None = None
    ) -> None:
        """Set a stored sensor's cursor; `StorageError` if there is no state for it,
        `LeaseLostError` (nothing written) if `fence` is stale."""
        ...

    async def create_tick(self, tick: Tick, *, fence: Fence | None = None) -> Tick:
        """Store a new tick and return it with its storage-assigned `tick_id`.

        With `fence`, in the same transaction as the lease's token check: `LeaseLostError`
        and nothing stored when the lease has passed to another owner since.
        """
        ...

    async def update_tick(self, tick: Tick, *, fence: Fence | None = None) -> None:
        """Replace a stored tick (matched by tick_id); `StorageError` if it is not stored,
        `LeaseLostError` (nothing written) if `fence` is stale."""
        ...

    async def get_ticks(
        self,
        origin_id: str,
        *,
        limit: int | None = None,
        statuses: Sequence[TickStatus] = (),
        before: float | None = None,
        after: float | None = None,
    ) -> list[Tick]:
        """An instigator's ticks, newest first, with timestamps strictly inside the bounds."""
        ...

    async def purge_ticks(self, origin_id: str, before: float) -> int:
        """Delete ticks older than `before`; return how many went."""
        ...

    async def acquire_lease(
        self, name: str, owner: str, *, duration: float, now: float
    ) -> Lease | None:
        """Take or renew lease `name` for `owner` until `now + duration`.

        Succeeds when the lease is free, expired at `now`, or already held by `owner`; returns
        None when another owner holds it. Atomic across processes. The lease's token grows
        by one when it passes to another owner (`Lease`).
        """
        ...

    async def release_lease(self, name: str, owner: str) -> bool:
        """Release the lease if `owner` holds it; return whether it did. Its token is kept,
        so the next owner's is greater."""
        ...

    async def purge_leases(self, before: float) -> int:
        """Delete the leases released, or expired before `before`; return how many went.

        Safe for the fencing tokens: a lease taken anew, purged or never taken, gets a
        token greater than any this storage has handed out for any lease (the lease with
        the greatest token is kept for that), so a fence from before the purge stays stale.
        """
        ...

    async def get_lease(self, name: str) -> Lease | None:
        """The lease `name` as last taken, expired or not; None if never taken or released."""
        ...

    async def check_fence(self, fence: Fence) -> None:
        """`LeaseLostError` unless `fence.token` is still lease `fence.name`'s token."""
        ...

    async def add_daemon_heartbeat(self, heartbeat: DaemonHeartbeat) -> None:
        """Record the latest heartbeat of `heartbeat.daemon_type` (one kept per type)."""
        ...

    async def get_daemon_heartbeats(self) -> dict[str, DaemonHeartbeat]:
        """The latest heartbeat of each daemon type."""
        ...
