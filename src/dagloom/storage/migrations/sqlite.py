"""The SQLite schema, as migrations."""

from __future__ import annotations

from dagloom.storage.migrations import Migration
from dagloom.storage.migrations._event_chunks import events_to_chunks
from dagloom.storage.migrations._run_partitions import index_run_partitions

SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="runs, run tags, job snapshots and the event log",
        statements=(
            """CREATE TABLE dagloom_schema (
                version INTEGER NOT NULL,
                migrated_at REAL NOT NULL
            )""",
            """CREATE TABLE runs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                run_id TEXT NOT NULL UNIQUE,
                job_name TEXT NOT NULL,
                status INTEGER NOT NULL,
                code_location TEXT NOT NULL,
                run_config_json TEXT NOT NULL,
                tags TEXT NOT NULL,
                asset_selection TEXT NOT NULL,
                parent_run_id TEXT NOT NULL,
                root_run_id TEXT NOT NULL,
                create_time REAL NOT NULL,
                start_time REAL NOT NULL,
                end_time REAL NOT NULL,
                job_snapshot_id TEXT NOT NULL,
                step_keys_to_execute TEXT NOT NULL
            )""",
            "CREATE INDEX runs_by_job ON runs (job_name, id)",
            "CREATE INDEX runs_by_status ON runs (status, id)",
            "CREATE INDEX runs_by_create_time ON runs (create_time)",
            """CREATE TABLE run_tags (
                run_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (run_id, key)
            )""",
            "CREATE INDEX run_tags_by_pair ON run_tags (key, value)",
            """CREATE TABLE job_snapshots (
                snapshot_id TEXT PRIMARY KEY,
                job_name TEXT NOT NULL,
                body BLOB NOT NULL
            )""",
            """CREATE TABLE events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                run_id TEXT NOT NULL,
                event_type INTEGER NOT NULL,
                step_key TEXT NOT NULL,
                timestamp REAL NOT NULL,
                asset_key TEXT,
                partition TEXT,
                body BLOB
            )""",
            "CREATE INDEX events_by_run ON events (run_id, id)",
            """CREATE INDEX events_by_asset ON events (asset_key, event_type, id)
                WHERE asset_key IS NOT NULL""",
        ),
    ),
    Migration(
        version=2,
        description="schedule storage: instigator state, ticks, leases, daemon heartbeats",
        statements=(
            """CREATE TABLE instigators (
                origin_id TEXT PRIMARY KEY,
                instigator_type INTEGER NOT NULL,
                body BLOB NOT NULL
            )""",
            """CREATE TABLE ticks (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                origin_id TEXT NOT NULL,
                status INTEGER NOT NULL,
                timestamp REAL NOT NULL,
                body BLOB NOT NULL
            )""",
            "CREATE INDEX ticks_by_origin ON ticks (origin_id, timestamp)",
            """CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                expires_at REAL NOT NULL
            )""",
            """CREATE TABLE daemon_heartbeats (
                daemon_type TEXT PRIMARY KEY,
                body BLOB NOT NULL
            )""",
        ),
    ),
    Migration(
        version=3,
        description="events stored in chunks, one row per batch of a run's events",
        statements=(
            """CREATE TABLE event_chunks (
                id INTEGER PRIMARY KEY,
                run_id TEXT NOT NULL,
                first_storage_id INTEGER NOT NULL,
                last_storage_id INTEGER NOT NULL,
                body BLOB NOT NULL
            )""",
            "CREATE INDEX event_chunks_by_run ON event_chunks (run_id, last_storage_id)",
            """CREATE TABLE asset_events (
                storage_id INTEGER PRIMARY KEY,
                run_id TEXT NOT NULL,
                event_type INTEGER NOT NULL,
                asset_key TEXT NOT NULL,
                partition TEXT,
                body BLOB NOT NULL
            )""",
            "CREATE INDEX asset_events_by_key ON asset_events (asset_key, event_type, storage_id)",
            "CREATE INDEX asset_events_by_run ON asset_events (run_id)",
            "CREATE TABLE event_storage_ids (last_storage_id INTEGER NOT NULL)",
            "INSERT INTO event_storage_ids (last_storage_id) VALUES (0)",
        ),
        convert=events_to_chunks(
            "SELECT MAX(v) FROM (SELECT MAX(id) AS v FROM events "
            "UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'events')"
        ),
        cleanup=("DROP TABLE events",),
    ),
    Migration(
        version=4,
        description="the error a failed run failed with, on the run",
        statements=("ALTER TABLE runs ADD COLUMN failure BLOB",),
    ),
    Migration(
        version=5,
        description="an index covering the runs-by-job-and-status and run-duration aggregates",
        statements=(
            "CREATE INDEX runs_for_stats ON runs (job_name, status, start_time, end_time)",
        ),
    ),
    Migration(
        version=6,
        description="a fencing token on each lease",
        statements=("ALTER TABLE leases ADD COLUMN token INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        version=7,
        description="API tokens: name, role, hashed secret, expiry and revocation",
        statements=(
            """CREATE TABLE api_tokens (
                token_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                role INTEGER NOT NULL,
                secret_hash TEXT NOT NULL,
                created_at REAL NOT NULL,
                expires_at REAL,
                revoked_at REAL
            )""",
        ),
    ),
    Migration(
        version=8,
        description="partitions: an index of materialized partitions, dynamic partitions, "
        "backfills",
        statements=(
            "CREATE INDEX asset_events_by_partition "
            "ON asset_events (asset_key, event_type, partition, storage_id, run_id)",
            """CREATE TABLE dynamic_partitions (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                partitions_def_name TEXT NOT NULL,
                partition TEXT NOT NULL,
                UNIQUE (partitions_def_name, partition)
            )""",
            """CREATE TABLE backfills (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                backfill_id TEXT NOT NULL UNIQUE,
                status INTEGER NOT NULL,
                create_time REAL NOT NULL,
                body BLOB NOT NULL
            )""",
        ),
    ),
    Migration(
        version=9,
        description="the audit log: who asked to cancel, delete, toggle or reload what",
        statements=(
            """CREATE TABLE audit_log (
                entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
                timestamp REAL NOT NULL,
                user_name TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                via TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        version=10,
        description="an index of the partitions each run targets, by asset",
        statements=(
            """CREATE TABLE run_partitions (
                run_id TEXT NOT NULL,
                asset_key TEXT NOT NULL,
                range_start TEXT NOT NULL,
                range_end TEXT NOT NULL
            )""",
            "CREATE INDEX run_partitions_by_asset ON run_partitions (asset_key, run_id)",
            "CREATE INDEX run_partitions_by_run ON run_partitions (run_id)",
        ),
        convert=index_run_partitions,
    ),
    Migration(
        version=11,
        description="automation: each asset's evaluation state and its evaluation records",
        statements=(
            """CREATE TABLE automation_state (
                asset_key TEXT PRIMARY KEY,
                body TEXT NOT NULL
            )""",
            """CREATE TABLE automation_evaluations (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                asset_key TEXT NOT NULL,
                timestamp REAL NOT NULL,
                num_requested INTEGER NOT NULL,
                run_ids TEXT NOT NULL,
                body TEXT NOT NULL
            )""",
            "CREATE INDEX automation_evaluations_by_asset "
            "ON automation_evaluations (asset_key, id)",
            "CREATE INDEX automation_evaluations_by_time ON automation_evaluations (timestamp)",
        ),
    ),
    Migration(
        version=12,
        description="the asset checks a run executes (its asset check selection)",
        statements=(
            "ALTER TABLE runs ADD COLUMN asset_check_selection TEXT NOT NULL DEFAULT '[]'",
        ),
    ),
)
