"""What the SQL backends share: statements (written with `?` placeholders), row converters
and the run filter, so SQLite and Postgres differ only in how they talk to their driver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from dagloom.messages import AssetCheckKeyMessage, AssetKeyMessage, ErrorInfo, Run, RunStatus
from dagloom.storage._codec import asset_key_text
from dagloom.storage.base import (
    RUN_TRANSITION_SOURCES,
    RunsFilter,
    RunStatusChange,
    run_partition_range,
)

RUN_COLUMNS = (
    "run_id",
    "job_name",
    "status",
    "code_location",
    "run_config_json",
    "tags",
    "asset_selection",
    "parent_run_id",
    "root_run_id",
    "create_time",
    "start_time",
    "end_time",
    "job_snapshot_id",
    "step_keys_to_execute",
    "failure",
    "asset_check_selection",
)
RUN_SELECT = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
INSERT_RUN = (
    f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' for _ in RUN_COLUMNS)})"
)
ALLOCATE_STORAGE_IDS = (
    "UPDATE event_storage_ids SET last_storage_id = last_storage_id + ? RETURNING last_storage_id"
)
"""Take the next `?` storage ids; returns the last one taken. The row stays locked (Postgres)
or the file does (SQLite) until commit, so ids commit in the order they are taken."""
INSERT_CHUNK = (
    "INSERT INTO event_chunks (run_id, first_storage_id, last_storage_id, body) VALUES (?, ?, ?, ?)"
)
INSERT_ASSET_EVENT = (
    "INSERT INTO asset_events (storage_id, run_id, event_type, asset_key, partition, body) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def _transition_run(status: RunStatus, allowed: Sequence[RunStatus] | None = None) -> str:
    sources = ", ".join(str(int(s)) for s in (allowed or RUN_TRANSITION_SOURCES[status]))
    return (
        "UPDATE runs SET status = ?, start_time = COALESCE(?, start_time), "
        "end_time = COALESCE(?, end_time), failure = COALESCE(?, failure) "
        f"WHERE run_id = ? AND status IN ({sources})"
    )


TRANSITION_RUN: Mapping[RunStatus, str] = {s: _transition_run(s) for s in RUN_TRANSITION_SOURCES}
"""For each status an event sets, the compare-and-set moving one run there (`status_row`
parameters): it changes the row only when the stored status may move there, in one
statement, so two writers racing on one run cannot both move it."""


def transition_run(change: RunStatusChange) -> str | None:
    """The compare-and-set statement for `change` (`TRANSITION_RUN`, narrowed to its
    `only_from`, or from STARTED alone for a resume claim); None when no stored status may
    move as it asks."""
    if change.only_from is None and not change.resume:
        return TRANSITION_RUN[change.status]
    sources = change.sources
    return _transition_run(change.status, sources) if sources else None


RUN_STATUS = "SELECT status FROM runs WHERE run_id = ?"
INSERT_TAG = "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)"
INSERT_RUN_PARTITIONS = (
    "INSERT INTO run_partitions (run_id, asset_key, range_start, range_end) VALUES (?, ?, ?, ?)"
)
UPSERT_TAG = (
    "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
)
ACQUIRE_LEASE = (
    "INSERT INTO leases (name, owner, expires_at, token) "
    "VALUES (?, ?, ?, (SELECT COALESCE(MAX(token), 0) + 1 FROM leases)) "
    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, "
    "token = CASE WHEN leases.owner = excluded.owner THEN leases.token "
    "ELSE leases.token + 1 END "
    "WHERE leases.owner = excluded.owner OR leases.expires_at <= ? "
    "RETURNING name, owner, expires_at, token"
)
"""Take or renew a lease: the token grows when the lease passes to another owner. A new
lease row starts above every token in the table, so a lease purged (`PURGE_LEASES`) and
taken again never hands out a token an old holder may still carry."""
PURGE_LEASES = (
    "DELETE FROM leases WHERE expires_at < ? "
    "AND token < (SELECT COALESCE(MAX(token), 0) FROM leases)"
)
"""Delete the leases released or expired before a time, keeping the row with the greatest
token, the floor of every new lease's token."""
RELEASE_LEASE = (
    "UPDATE leases SET owner = '', expires_at = -1.0 WHERE name = ? AND owner = ? AND owner <> ''"
)
"""Release a lease, keeping its row (and token) so the next owner's token is greater."""


def run_row(run: Run) -> tuple[Any, ...]:
    """The `runs` row for a run, in `RUN_COLUMNS` order."""
    return (
        run.run_id,
        run.job_name,
        int(run.status),
        run.code_location,
        run.run_config_json,
        orjson.dumps(run.tags).decode(),
        orjson.dumps([list(k.path) for k in run.asset_selection]).decode(),
        run.parent_run_id,
        run.root_run_id,
        run.create_time,
        run.start_time,
        run.end_time,
        run.job_snapshot_id,
        orjson.dumps(list(run.step_keys_to_execute)).decode(),
        None if run.failure is None else bytes(run.failure),
        orjson.dumps(
            [
                [list(c.asset_key.path) if c.asset_key is not None else [], c.name]
                for c in run.asset_check_selection
            ]
        ).decode(),
    )


def run_partition_rows(run: Run) -> list[tuple[str, str, str, str]]:
    """The `run_partitions` rows of a run: one per selected asset when its tags name a
    partition or a range of them (none otherwise)."""
    found = run_partition_range(run.tags)
    if found is None:
        return []
    keys = dict.fromkeys(asset_key_text(list(k.path)) for k in run.asset_selection)
    return [(run.run_id, key, found[0], found[1]) for key in keys]


def row_run(row: Sequence[Any]) -> Run:
    """The run a `RUN_SELECT` row holds."""
    return Run(
        run_id=row[0],
        job_name=row[1],
        status=RunStatus(row[2]),
        code_location=row[3],
        run_config_json=row[4],
        tags=orjson.loads(row[5]),
        asset_selection=[AssetKeyMessage(path=p) for p in orjson.loads(row[6])],
        parent_run_id=row[7],
        root_run_id=row[8],
        create_time=row[9],
        start_time=row[10],
        end_time=row[11],
        job_snapshot_id=row[12],
        step_keys_to_execute=orjson.loads(row[13]),
        failure=None if row[14] is None else ErrorInfo.parse(bytes(row[14])),
        asset_check_selection=[
            AssetCheckKeyMessage(asset_key=AssetKeyMessage(path=path), name=name)
            for path, name in orjson.loads(row[15])
        ],
    )


def status_row(change: RunStatusChange) -> tuple[Any, ...]:
    """Parameters of `TRANSITION_RUN[change.status]` for one change."""
    failure = None if change.failure is None else bytes(change.failure)
    return (int(change.status), change.start_time, change.end_time, failure, change.run_id)


Conditions = Sequence[tuple[str, Sequence[Any]]]
"""WHERE conditions, each with its parameters; one without parameters is left out."""


def _in(column: str, values: Sequence[Any]) -> str:
    return f"{column} IN ({', '.join('?' for _ in values)})"


def _given(value: Any) -> list[Any]:
    """`value` as the parameters of a condition that applies only when it is not None."""
    return [] if value is None else [value]


def _where(conditions: Conditions) -> tuple[str, list[Any]]:
    """A WHERE clause (or "") joining by AND the conditions that have parameters, and those."""
    kept = [(clause, params) for clause, params in conditions if params]
    if not kept:
        return "", []
    return " WHERE " + " AND ".join(c for c, _ in kept), [v for _, p in kept for v in p]


def _select(
    head: str, conditions: Conditions, order_by: str, limit: int | None
) -> tuple[str, list[Any]]:
    """`head` with its WHERE clause, ORDER BY and LIMIT, and the parameters, in order."""
    where, params = _where(conditions)
    sql = f"{head}{where} ORDER BY {order_by}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def _run_conditions(filters: RunsFilter | None) -> list[tuple[str, Sequence[Any]]]:
    if filters is None:
        return []
    return [
        (_in("run_id", filters.run_ids), list(filters.run_ids)),
        ("job_name = ?", _given(filters.job_name)),
        (_in("status", filters.statuses), [int(s) for s in filters.statuses]),
        *(
            ("run_id IN (SELECT run_id FROM run_tags WHERE key = ? AND value = ?)", [key, value])
            for key, value in filters.tags.items()
        ),
        ("create_time > ?", _given(filters.created_after)),
        ("create_time < ?", _given(filters.created_before)),
    ]


def run_stats_query(buckets: int) -> str:
    """`RunStorage.get_run_stats` in one statement, so one snapshot on every backend.

    Rows (0, job, status, runs, 0.0) count runs by job and status. Rows (1, job, bucket,
    runs, seconds) count, per job, the runs that started and ended (no earlier than they
    started) taking at most the bucket's bound and more than the one before (the parameters,
    increasing; bucket `buckets` is above them all), with their total duration.
    """
    duration = "(end_time - start_time)"
    bucket = " ".join(f"WHEN {duration} <= ? THEN {i}" for i in range(buckets))
    return (
        "SELECT 0, job_name, status, COUNT(*), 0.0 FROM runs GROUP BY job_name, status "
        f"UNION ALL SELECT 1, job_name, CASE {bucket} ELSE {buckets} END, COUNT(*), "
        f"SUM({duration}) FROM runs "
        "WHERE start_time > 0 AND end_time > 0 AND end_time >= start_time GROUP BY 2, 3"
    )


def runs_where(filters: RunsFilter | None) -> tuple[str, list[Any]]:
    """A WHERE clause (or "") selecting the runs that pass `filters`, and its parameters."""
    return _where(_run_conditions(filters))


def runs_query(
    filters: RunsFilter | None, limit: int | None, cursor_id: int | None
) -> tuple[str, list[Any]]:
    """The SELECT for `RunStorage.get_runs`: newest first, older than the cursor row."""
    conditions = [*_run_conditions(filters), ("id < ?", _given(cursor_id))]
    return _select(RUN_SELECT, conditions, "id DESC", limit)


def chunks_query(run_id: str, after: int | None, limit: int | None) -> tuple[str, list[Any]]:
    """The SELECT of a run's chunks holding events after the `after` storage id, in order."""
    conditions: Conditions = [("run_id = ?", [run_id]), ("last_storage_id > ?", _given(after))]
    return _select(
        "SELECT first_storage_id, last_storage_id, body FROM event_chunks",
        conditions,
        "last_storage_id",
        limit,
    )


def materializations_query(
    asset_key: str, event_type: int, limit: int | None, before: int | None
) -> tuple[str, list[Any]]:
    """The SELECT for `EventLogStorage.get_materializations`: newest first."""
    conditions: Conditions = [
        ("asset_key = ?", [asset_key]),
        ("event_type = ?", [event_type]),
        ("storage_id < ?", _given(before)),
    ]
    return _select(
        "SELECT storage_id, run_id, body FROM asset_events", conditions, "storage_id DESC", limit
    )


LATEST_BATCH = 500
"""Asset keys per `latest_asset_events_query`: well under SQLite's 32,766 parameters and
Postgres' 32,767, and a 5,000-asset graph in ten queries."""


def latest_asset_events_query(
    asset_keys: Sequence[str], event_types: Sequence[int]
) -> tuple[str, list[Any]]:
    """The SELECT for `EventLogStorage.get_latest_asset_events` (and so
    `get_latest_materializations`) over at most `LATEST_BATCH` keys: each (key, type)'s
    newest row, found through the asset_events_by_key index."""
    keys = ", ".join("?" for _ in asset_keys)
    types = ", ".join("?" for _ in event_types)
    sql = (
        "SELECT a.storage_id, a.run_id, a.body, a.asset_key, a.event_type FROM asset_events a "
        "JOIN (SELECT asset_key, event_type, MAX(storage_id) AS latest FROM asset_events "
        f"WHERE asset_key IN ({keys}) AND event_type IN ({types}) "
        "GROUP BY asset_key, event_type) m ON a.storage_id = m.latest"
    )
    return sql, [*asset_keys, *event_types]


def latest_partition_events_query(
    asset_key: str, event_types: Sequence[int], partitions: Sequence[str] | None
) -> tuple[str, list[Any]]:
    """The SELECT for `EventLogStorage.get_latest_partition_events` (of at most
    `LATEST_BATCH` partitions, or all): each (partition, type)'s newest row of one asset,
    found through the asset_events_by_partition index."""
    types = ", ".join("?" for _ in event_types)
    where = f"asset_key = ? AND event_type IN ({types}) AND partition IS NOT NULL"
    params: list[Any] = [asset_key, *event_types]
    if partitions is not None:
        where += f" AND partition IN ({', '.join('?' for _ in partitions)})"
        params.extend(partitions)
    sql = (
        "SELECT a.storage_id, a.run_id, a.body, a.partition, a.event_type FROM asset_events a "
        "JOIN (SELECT partition, event_type, MAX(storage_id) AS latest FROM asset_events "
        f"WHERE {where} GROUP BY partition, event_type) m ON a.storage_id = m.latest"
    )
    return sql, params


def ticks_query(
    origin_id: str,
    limit: int | None,
    statuses: Sequence[int],
    before: float | None,
    after: float | None,
) -> tuple[str, list[Any]]:
    """The SELECT for `ScheduleStorage.get_ticks`: newest first."""
    conditions: Conditions = [
        ("origin_id = ?", [origin_id]),
        (_in("status", statuses), statuses),
        ("timestamp < ?", _given(before)),
        ("timestamp > ?", _given(after)),
    ]
    return _select("SELECT id, body FROM ticks", conditions, "timestamp DESC, id DESC", limit)
