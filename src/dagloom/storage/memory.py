"""In-memory storage: the three interfaces over plain dicts, for tests and ephemeral instances.

Nothing survives the process. Every call completes without blocking on I/O, so writes are
atomic with respect to other tasks; events update run status in the same step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from dagloom._counters import PROCESS
from dagloom.auth import StoredToken
from dagloom.auth.audit import AuditEntry
from dagloom.errors import LeaseLostError, RunNotFoundError, StorageError
from dagloom.messages import (
    Backfill,
    BackfillStatus,
    DaemonHeartbeat,
    Event,
    EventRecord,
    EventType,
    InstigatorState,
    InstigatorType,
    Run,
    RunStatus,
    Tick,
    TickStatus,
)
from dagloom.messages.rows import EventRow, rows_by_run
from dagloom.storage._codec import asset_key_of, decode_record, dumps_row
from dagloom.storage._watch import RunEventNotifier, watch_event_batches
from dagloom.storage.automation import AutomationEvaluationRecord
from dagloom.storage.base import (
    RUN_DURATION_BUCKETS,
    RUN_STATUS_BY_EVENT,
    DerivedEventReads,
    Fence,
    Lease,
    PartitionMaterialization,
    PartitionRunRecord,
    RunsFilter,
    RunStats,
    RunStatusChange,
    RunStorage,
    RunTransition,
    batch_moves,
    event_status_change,
    fold_run_stats,
    refuse_transition,
    run_matches,
    run_partition_range,
    without_refused,
)


@dataclass(slots=True)
class MemoryDatabase:
    """The state the three memory storages share. Events are kept as encoded rows (run_id,
    event_type, asset_key, body), so a stored event is a copy: changing the emitted message
    afterwards does not change the record."""

    runs: dict[str, Run] = field(default_factory=dict)
    snapshots: dict[str, bytes] = field(default_factory=dict)
    events: dict[int, tuple[str, int, str | None, bytes]] = field(default_factory=dict)
    events_by_run: dict[str, list[int]] = field(default_factory=dict)
    # storage_id -> partition, for the asset events that name one
    event_partitions: dict[int, str] = field(default_factory=dict)
    # backfill id -> encoded Backfill, in the order added
    backfills: dict[str, bytes] = field(default_factory=dict)
    # partitions_def_name -> keys, in the order added (a dict keeps that order)
    dynamic_partitions: dict[str, dict[str, None]] = field(default_factory=dict)
    event_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    events_stored: int = 0
    instigators: dict[str, InstigatorState] = field(default_factory=dict)
    ticks: dict[int, Tick] = field(default_factory=dict)
    tick_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    leases: dict[str, Lease] = field(default_factory=dict)
    heartbeats: dict[str, DaemonHeartbeat] = field(default_factory=dict)
    api_tokens: dict[str, StoredToken] = field(default_factory=dict)
    audit_log: list[AuditEntry] = field(default_factory=list)
    automation_state: dict[str, str] = field(default_factory=dict)
    automation_evaluations: list[AutomationEvaluationRecord] = field(default_factory=list)
    notifier: RunEventNotifier = field(default_factory=RunEventNotifier)

    def record(self, storage_id: int) -> EventRecord:
        run_id, _type, _key, body = self.events[storage_id]
        return decode_record(storage_id, run_id, body)

    def drop_events(self, run_id: str) -> None:
        """Forget every event of a run."""
        for storage_id in self.events_by_run.pop(run_id, ()):
            del self.events[storage_id]
            self.event_partitions.pop(storage_id, None)

    def transition(self, change: RunStatusChange) -> RunTransition | None:
        """Apply `change` to its run if `RUN_TRANSITIONS` allows it; None for no such run.
        Atomic with respect to other tasks: it never awaits."""
        run = self.runs.get(change.run_id)
        if run is None:
            return None
        if run.status not in change.sources:
            return refuse_transition(change, run.status)
        run.status = change.status
        if change.start_time is not None:
            run.start_time = change.start_time
        if change.end_time is not None:
            run.end_time = change.end_time
        if change.failure is not None:
            run.failure = change.failure
        return RunTransition(applied=True, status=change.status)


class _MemoryLifecycle:
    __slots__ = ("database",)

    def __init__(self, database: MemoryDatabase | None = None) -> None:
        self.database = database if database is not None else MemoryDatabase()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def describe(self) -> str:
        return "memory (not persisted)"


def _copy_run(run: Run) -> Run:
    # Runs are mutable messages; storage hands out copies so callers cannot edit stored state.
    return Run(
        run_id=run.run_id,
        job_name=run.job_name,
        status=run.status,
        code_location=run.code_location,
        run_config_json=run.run_config_json,
        tags=dict(run.tags),
        asset_selection=list(run.asset_selection),
        asset_check_selection=list(run.asset_check_selection),
        parent_run_id=run.parent_run_id,
        root_run_id=run.root_run_id,
        create_time=run.create_time,
        start_time=run.start_time,
        end_time=run.end_time,
        job_snapshot_id=run.job_snapshot_id,
        step_keys_to_execute=list(run.step_keys_to_execute),
        failure=run.failure,
    )


class MemoryRunStorage(_MemoryLifecycle):
    """`RunStorage` in memory; runs are listed newest first by insertion order."""

    __slots__ = ()

    async def add_run(self, run: Run) -> Run:
        if run.run_id in self.database.runs:
            raise StorageError(f"a run with id {run.run_id!r} is already stored")
        self.database.runs[run.run_id] = _copy_run(run)
        return _copy_run(run)

    async def get_run(self, run_id: str) -> Run | None:
        run = self.database.runs.get(run_id)
        return None if run is None else _copy_run(run)

    async def get_partition_runs(
        self, asset_key: Sequence[str], statuses: Sequence[RunStatus]
    ) -> list[PartitionRunRecord]:
        path = list(asset_key)
        wanted = set(statuses)
        out: list[PartitionRunRecord] = []
        for run in self.database.runs.values():
            if run.status not in wanted or not any(k.path == path for k in run.asset_selection):
                continue
            found = run_partition_range(run.tags)
            if found is not None:
                out.append(PartitionRunRecord(run.run_id, run.status, run.create_time, *found))
        return out

    def _matching(self, filters: RunsFilter | None) -> list[Run]:
        return [r for r in reversed(self.database.runs.values()) if run_matches(r, filters)]

    async def get_runs(
        self,
        filters: RunsFilter | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> list[Run]:
        runs = self._matching(filters)
        if cursor is not None:
            ids = list(reversed(self.database.runs))
            if cursor not in self.database.runs:
                raise RunNotFoundError(cursor)
            older = set(ids[ids.index(cursor) + 1 :])
            runs = [r for r in runs if r.run_id in older]
        if limit is not None:
            runs = runs[:limit]
        return [_copy_run(r) for r in runs]

    async def get_runs_count(self, filters: RunsFilter | None = None) -> int:
        return len(self._matching(filters))

    async def get_run_stats(
        self, duration_buckets: Sequence[float] = RUN_DURATION_BUCKETS
    ) -> RunStats:
        return fold_run_stats(self.database.runs.values(), duration_buckets)

    async def add_backfill(self, backfill: Backfill) -> None:
        stored = self.database.backfills
        if backfill.backfill_id in stored:
            raise StorageError(f"a backfill with id {backfill.backfill_id!r} is already stored")
        stored[backfill.backfill_id] = bytes(backfill)

    async def get_backfill(self, backfill_id: str) -> Backfill | None:
        body = self.database.backfills.get(backfill_id)
        return None if body is None else Backfill.parse(body)

    async def get_backfills(
        self, statuses: Sequence[BackfillStatus] = (), *, limit: int | None = None
    ) -> list[Backfill]:
        found = [Backfill.parse(b) for b in reversed(self.database.backfills.values())]
        if statuses:
            found = [b for b in found if b.status in statuses]
        return found[:limit] if limit is not None else found

    async def update_backfill(self, backfill: Backfill) -> None:
        stored = self.database.backfills
        if backfill.backfill_id not in stored:
            raise StorageError(f"no backfill with id {backfill.backfill_id!r}")
        stored[backfill.backfill_id] = bytes(backfill)

    async def handle_run_events(self, events: Sequence[Event]) -> list[RunTransition | None]:
        return [
            self.database.transition(event_status_change(e))
            if e.event_type in RUN_STATUS_BY_EVENT
            else None
            for e in events
        ]

    async def add_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        run = self.database.runs.get(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        run.tags.update(tags)

    async def delete_run(self, run_id: str) -> None:
        if self.database.runs.pop(run_id, None) is None:
            raise RunNotFoundError(run_id)
        self.database.drop_events(run_id)

    async def add_job_snapshot(self, job_name: str, snapshot: bytes) -> str:
        snapshot_id = hashlib.sha256(snapshot).hexdigest()
        self.database.snapshots[snapshot_id] = bytes(snapshot)
        return snapshot_id

    async def get_job_snapshot(self, snapshot_id: str) -> bytes | None:
        return self.database.snapshots.get(snapshot_id)


class MemoryEventLogStorage(_MemoryLifecycle, DerivedEventReads):
    """`EventLogStorage` in memory; watchers are woken by every `store_events`."""

    __slots__ = ()

    async def store_events(self, events: Sequence[Event]) -> list[RunTransition]:
        return [t for run_id, rows in rows_by_run(events) for t in self._store(run_id, rows)]

    async def store_rows(self, run_id: str, rows: Sequence[EventRow]) -> list[RunTransition]:
        return self._store(run_id, rows)

    async def transition_runs(
        self, events: Sequence[Event], *, fence: Fence | None = None
    ) -> list[RunTransition | None]:
        """As `SqlEventLogStorage.transition_runs`: at once, under the fence's check."""
        if fence is not None:
            held = self.database.leases.get(fence.name)
            current = held.token if held is not None else None
            if current != fence.token:
                raise LeaseLostError(fence.name, fence.token, current)
        outcomes: list[RunTransition | None] = []
        for run_id, rows in rows_by_run(events):
            if run_id not in self.database.runs:
                outcomes.append(None)
                continue
            outcomes += self._store(run_id, rows)
        return outcomes

    def fences_with(self, schedule_storage: object) -> bool:
        """Whether `schedule_storage` keeps its leases in this storage's database."""
        return getattr(schedule_storage, "database", None) is self.database

    def _store(self, run_id: str, rows: Sequence[EventRow]) -> list[RunTransition]:
        if not rows:
            return []
        db = self.database
        moves = batch_moves([(run_id, rows)])
        outcomes = [db.transition(change) for _, _, change in moves]
        kept = without_refused([(run_id, rows)], moves, outcomes)
        if kept is not None:
            rows = kept[0][1]
        ids = db.events_by_run.setdefault(run_id, [])
        for row in rows:
            storage_id = next(db.event_ids)
            asset = asset_key_of(row)
            key = None if asset is None else asset[0]
            db.events[storage_id] = (run_id, int(row[0]), key, dumps_row(row))
            if asset is not None and asset[1] is not None:
                db.event_partitions[storage_id] = asset[1]
            ids.append(storage_id)
        db.events_stored += len(rows)
        PROCESS.events_written += len(rows)
        db.notifier.notify(run_id)
        return [t for t in outcomes if t is not None]

    def updates_run_status_in(self, run_storage: RunStorage) -> bool:
        return isinstance(run_storage, MemoryRunStorage) and run_storage.database is self.database

    async def get_events(
        self,
        run_id: str,
        *,
        after: int | None = None,
        limit: int | None = None,
        event_types: Sequence[EventType] = (),
    ) -> list[EventRecord]:
        db = self.database
        wanted = {int(t) for t in event_types}
        out: list[EventRecord] = []
        for storage_id in db.events_by_run.get(run_id, ()):
            if after is not None and storage_id <= after:
                continue
            if wanted and db.events[storage_id][1] not in wanted:
                continue
            out.append(db.record(storage_id))
            if limit is not None and len(out) >= limit:
                break
        return out

    def watch_run_event_batches(
        self, run_id: str, *, after: int | None = None, stop_at_end: bool = True
    ) -> AsyncIterator[list[EventRecord]]:
        return watch_event_batches(
            self,
            self.database.notifier,
            run_id,
            after=after,
            stop_at_end=stop_at_end,
            poll_interval=None,
        )

    def wake_run_watchers(self, run_id: str) -> None:
        self.database.notifier.notify(run_id)

    def _asset_rows(
        self, key: str, event_type: EventType = EventType.ASSET_MATERIALIZATION
    ) -> list[int]:
        wanted = int(event_type)
        return [
            sid for sid, row in self.database.events.items() if row[2] == key and row[1] == wanted
        ]

    async def get_events_stored(self) -> int:
        return self.database.events_stored

    async def get_asset_check_evaluations(
        self, asset_key: Sequence[str], *, limit: int | None = None
    ) -> list[EventRecord]:
        return self._asset_records(asset_key, EventType.ASSET_CHECK_EVALUATION, limit, None)

    async def get_asset_keys(self) -> list[tuple[str, ...]]:
        keys = {row[2] for row in self.database.events.values() if row[2] is not None}
        return sorted(tuple(k.split("/")) for k in keys)

    async def get_materializations(
        self,
        asset_key: Sequence[str],
        *,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[EventRecord]:
        return self._asset_records(asset_key, EventType.ASSET_MATERIALIZATION, limit, before)

    async def get_latest_asset_events(
        self, asset_keys: Sequence[Sequence[str]], event_types: Sequence[EventType]
    ) -> dict[tuple[tuple[str, ...], EventType], EventRecord]:
        # One pass over the log for every key and type.
        wanted = {"/".join(k): tuple(k) for k in asset_keys}
        kinds = {int(t) for t in event_types}
        latest: dict[tuple[str, int], int] = {}
        for sid, row in self.database.events.items():
            if row[1] in kinds and row[2] in wanted and sid > latest.get((row[2], row[1]), -1):
                latest[(row[2], row[1])] = sid
        return {
            (wanted[key], EventType(kind)): self.database.record(sid)
            for (key, kind), sid in latest.items()
        }

    async def get_latest_partition_events(
        self,
        asset_key: Sequence[str],
        event_types: Sequence[EventType],
        partitions: Sequence[str] | None = None,
    ) -> dict[tuple[str, EventType], EventRecord]:
        db = self.database
        key = "/".join(asset_key)
        kinds = {int(t) for t in event_types}
        wanted = None if partitions is None else set(partitions)
        latest: dict[tuple[str, int], int] = {}
        for sid, row in db.events.items():
            if row[2] != key or row[1] not in kinds:
                continue
            partition = db.event_partitions.get(sid)
            if partition is None or (wanted is not None and partition not in wanted):
                continue
            if sid > latest.get((partition, row[1]), -1):
                latest[(partition, row[1])] = sid
        return {
            (partition, EventType(kind)): db.record(sid)
            for (partition, kind), sid in latest.items()
        }

    async def get_observations(
        self,
        asset_key: Sequence[str],
        *,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[EventRecord]:
        return self._asset_records(asset_key, EventType.ASSET_OBSERVATION, limit, before)

    def _asset_records(
        self,
        asset_key: Sequence[str],
        event_type: EventType,
        limit: int | None,
        before: int | None,
    ) -> list[EventRecord]:
        ids = sorted(self._asset_rows("/".join(asset_key), event_type), reverse=True)
        if before is not None:
            ids = [i for i in ids if i < before]
        if limit is not None:
            ids = ids[:limit]
        return [self.database.record(i) for i in ids]

    async def get_materialized_partitions(
        self, asset_key: Sequence[str]
    ) -> dict[str, PartitionMaterialization]:
        db = self.database
        latest: dict[str, PartitionMaterialization] = {}
        for storage_id in sorted(self._asset_rows("/".join(asset_key))):
            partition = db.event_partitions.get(storage_id)
            if partition is not None:
                latest[partition] = PartitionMaterialization(storage_id, db.events[storage_id][0])
        return latest

    async def get_materialized_partition_keys(self, asset_key: Sequence[str]) -> set[str]:
        return set(await self.get_materialized_partitions(asset_key))

    async def get_latest_materialization_ids(
        self, after: int = 0
    ) -> dict[tuple[str, ...], dict[str | None, int]]:
        db = self.database
        wanted = int(EventType.ASSET_MATERIALIZATION)
        out: dict[tuple[str, ...], dict[str | None, int]] = {}
        for storage_id in sorted(db.events):
            _run_id, event_type, key, _body = db.events[storage_id]
            if storage_id > after and event_type == wanted and key is not None:
                partition = db.event_partitions.get(storage_id)
                out.setdefault(tuple(key.split("/")), {})[partition] = storage_id
        return out

    async def add_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> None:
        keys = self.database.dynamic_partitions.setdefault(partitions_def_name, {})
        keys.update(dict.fromkeys(partition_keys))

    async def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        self.database.dynamic_partitions.get(partitions_def_name, {}).pop(partition_key, None)

    async def get_dynamic_partitions(self, partitions_def_name: str) -> list[str]:
        return list(self.database.dynamic_partitions.get(partitions_def_name, {}))

    async def delete_events(self, run_id: str) -> None:
        self.database.drop_events(run_id)


def _copy_tick(tick: Tick) -> Tick:
    return Tick.parse(bytes(tick))


class MemoryScheduleStorage(_MemoryLifecycle):
    """`ScheduleStorage` in memory."""

    __slots__ = ()

    async def set_instigator_state(self, state: InstigatorState) -> None:
        self.database.instigators[state.origin_id] = InstigatorState.parse(bytes(state))

    async def get_instigator_state(self, origin_id: str) -> InstigatorState | None:
        state = self.database.instigators.get(origin_id)
        return None if state is None else InstigatorState.parse(bytes(state))

    async def get_instigator_states(
        self, instigator_type: InstigatorType | None = None
    ) -> list[InstigatorState]:
        states = sorted(self.database.instigators.values(), key=lambda s: s.origin_id)
        return [
            InstigatorState.parse(bytes(s))
            for s in states
            if instigator_type is None or s.instigator_type == instigator_type
        ]

    async def delete_instigator_state(self, origin_id: str) -> None:
        self.database.instigators.pop(origin_id, None)

    async def set_sensor_cursor(
        self, origin_id: str, cursor: str, *, fence: Fence | None = None
    ) -> None:
        self._fenced(fence)
        state = self.database.instigators.get(origin_id)
        if state is None:
            raise StorageError(f"no instigator state for {origin_id!r}")
        state.cursor = cursor

    def _fenced(self, fence: Fence | None) -> None:
        if fence is None:
            return
        held = self.database.leases.get(fence.name)
        current = held.token if held is not None else None
        if current != fence.token:
            raise LeaseLostError(fence.name, fence.token, current)

    async def create_tick(self, tick: Tick, *, fence: Fence | None = None) -> Tick:
        self._fenced(fence)
        stored = _copy_tick(tick)
        stored.tick_id = next(self.database.tick_ids)
        self.database.ticks[stored.tick_id] = stored
        return _copy_tick(stored)

    async def update_tick(self, tick: Tick, *, fence: Fence | None = None) -> None:
        self._fenced(fence)
        if tick.tick_id not in self.database.ticks:
            raise StorageError(f"no tick with id {tick.tick_id}")
        self.database.ticks[tick.tick_id] = _copy_tick(tick)

    async def get_ticks(
        self,
        origin_id: str,
        *,
        limit: int | None = None,
        statuses: Sequence[TickStatus] = (),
        before: float | None = None,
        after: float | None = None,
    ) -> list[Tick]:
        ticks = [
            t
            for t in self.database.ticks.values()
            if t.origin_id == origin_id
            and (not statuses or t.status in statuses)
            and (before is None or t.timestamp < before)
            and (after is None or t.timestamp > after)
        ]
        ticks.sort(key=lambda t: (t.timestamp, t.tick_id), reverse=True)
        if limit is not None:
            ticks = ticks[:limit]
        return [_copy_tick(t) for t in ticks]

    async def purge_ticks(self, origin_id: str, before: float) -> int:
        doomed = [
            i
            for i, t in self.database.ticks.items()
            if t.origin_id == origin_id and t.timestamp < before
        ]
        for i in doomed:
            del self.database.ticks[i]
        return len(doomed)

    async def acquire_lease(
        self, name: str, owner: str, *, duration: float, now: float
    ) -> Lease | None:
        held = self.database.leases.get(name)
        if held is not None and held.owner != owner and held.expires_at > now:
            return None
        if held is None:
            token = max((lease.token for lease in self.database.leases.values()), default=0) + 1
        else:
            token = held.token + (held.owner != owner)
        lease = Lease(name=name, owner=owner, expires_at=now + duration, token=token)
        self.database.leases[name] = lease
        return lease

    async def release_lease(self, name: str, owner: str) -> bool:
        held = self.database.leases.get(name)
        if held is None or not owner or held.owner != owner:
            return False
        self.database.leases[name] = Lease(name=name, owner="", expires_at=-1.0, token=held.token)
        return True

    async def purge_leases(self, before: float) -> int:
        leases = self.database.leases
        floor = max((lease.token for lease in leases.values()), default=0)
        doomed = [
            n for n, lease in leases.items() if lease.expires_at < before and lease.token < floor
        ]
        for name in doomed:
            del leases[name]
        return len(doomed)

    async def get_lease(self, name: str) -> Lease | None:
        held = self.database.leases.get(name)
        return held if held is not None and held.owner else None

    async def check_fence(self, fence: Fence) -> None:
        self._fenced(fence)

    async def add_daemon_heartbeat(self, heartbeat: DaemonHeartbeat) -> None:
        self.database.heartbeats[heartbeat.daemon_type] = DaemonHeartbeat.parse(bytes(heartbeat))

    async def get_daemon_heartbeats(self) -> dict[str, DaemonHeartbeat]:
        return {k: DaemonHeartbeat.parse(bytes(v)) for k, v in self.database.heartbeats.items()}

    # -- API tokens (`dagloom.auth.TokenStorage`) -----------------------------------------

    async def add_api_token(self, token: StoredToken) -> None:
        if token.token_id in self.database.api_tokens:
            raise StorageError(f"an API token with id {token.token_id!r} exists already")
        self.database.api_tokens[token.token_id] = token

    async def get_api_token(self, token_id: str) -> StoredToken | None:
        return self.database.api_tokens.get(token_id)

    async def get_api_tokens(self) -> list[StoredToken]:
        return sorted(self.database.api_tokens.values(), key=lambda t: (t.created_at, t.token_id))

    async def revoke_api_token(self, token_id: str, now: float) -> StoredToken | None:
        token = self.database.api_tokens.get(token_id)
        if token is not None and token.revoked_at is None:
            token = self.database.api_tokens[token_id] = token.revoked(now)
        return token

    # -- the audit log (`dagloom.auth.audit.AuditStorage`) ------------------------------------

    async def add_audit_entry(self, entry: AuditEntry) -> None:
        log = self.database.audit_log
        log.append(dataclasses.replace(entry, entry_id=len(log) + 1))

    async def get_audit_entries(self, *, limit: int = 100) -> list[AuditEntry]:
        return list(reversed(self.database.audit_log[-limit:])) if limit > 0 else []

    # -- automation (`dagloom.storage.automation.AutomationStorage`) --------------------------

    async def get_automation_state(self) -> dict[str, str]:
        return dict(self.database.automation_state)

    async def store_automation_tick(
        self,
        state: Mapping[str, str],
        records: Sequence[AutomationEvaluationRecord],
        *,
        fence: Fence | None = None,
    ) -> None:
        self._fenced(fence)
        self.database.automation_state.update(state)
        stored = self.database.automation_evaluations
        for record in records:
            last = stored[-1].record_id if stored else 0
            stored.append(dataclasses.replace(record, record_id=last + 1))

    async def get_automation_evaluations(
        self, asset_key: str, *, limit: int = 20, before: int | None = None
    ) -> list[AutomationEvaluationRecord]:
        found = [
            r
            for r in reversed(self.database.automation_evaluations)
            if r.asset_key == asset_key and (before is None or r.record_id < before)
        ]
        return found[:limit]

    async def purge_automation_evaluations(self, before: float) -> int:
        kept = [r for r in self.database.automation_evaluations if r.timestamp >= before]
        purged = len(self.database.automation_evaluations) - len(kept)
        self.database.automation_evaluations = kept
        return purged
