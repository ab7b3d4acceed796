"""A run whose storage fails ends clearly and never hangs: it succeeds once storage comes
back within the retry budget, and otherwise raises `StorageError` with the run ended
FAILURE when storage takes that one event.

Faults: Postgres backends of the run's storage are terminated with `pg_terminate_backend`
from a separate connection (found by the `application_name` the storage sets) at seeded
random points; SQLite is locked by a second connection holding `BEGIN EXCLUSIVE` past the
busy timeout, or made read-only with `PRAGMA query_only` on the storage's writer connection
(tests run as root, whom file permissions do not stop).
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import asyncpg
import pytest

from dagloom import job, op
from dagloom.errors import StorageError, StorageUnavailableError
from dagloom.execution.run import execute_job_in_process
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, RunStatus
from dagloom.storage.sink import StorageEventSink
from dagloom.storage.sqlite import SqliteDatabase
from tests.storage.pg import PG_URL, fresh_schema

LINES = 4000
"""LOG_MESSAGE events per op; the job's three ops write ~12k events in ~25 batches."""


_progress: dict[str, Any] = {"lines": 0, "points": [], "reached": None}
"""Lines logged by the ops so far, and the counts at which to wake the fault injector."""


async def _chatty(context: Any) -> None:
    for i in range(LINES):
        context.log.debug(f"line {i}")
        _progress["lines"] += 1
        points = _progress["points"]
        if points and _progress["lines"] >= points[0]:
            points.pop(0)
            _progress["reached"].set()
        if i % 100 == 0:
            await anyio.lowlevel.checkpoint()  # let the sink's writes and the injector run


@op
async def chatty_a(context: Any) -> None:
    await _chatty(context)


@op
async def chatty_b(context: Any) -> None:
    await _chatty(context)


@op
async def chatty_c(context: Any) -> None:
    await _chatty(context)


@job
def chatty_job() -> None:
    chatty_a()
    chatty_b()
    chatty_c()


async def _run_to_its_end(
    instance: DagloomInstance, run_id: str | None = None
) -> tuple[str, StorageError | None]:
    """Execute the job; its run id and the `StorageError` it raised, if it did."""
    run_id = run_id or str(uuid.uuid4())
    try:
        result = await execute_job_in_process(
            chatty_job, instance=instance, run_id=run_id, raise_on_error=False
        )
    except StorageError as exc:
        return run_id, exc
    assert result.success
    return run_id, None


async def _check_the_record(
    instance: DagloomInstance, run_id: str, error: StorageError | None
) -> None:
    """A run that succeeded is stored whole, each event once; one that raised is FAILURE
    with the storage error (storage is reachable again by now)."""
    stored = await instance.get_run(run_id)
    assert stored is not None
    events = await instance.get_events(run_id)
    if error is None:
        assert stored.status == RunStatus.SUCCESS
        logs = [e.event.message for e in events if e.event.event_type == EventType.LOG_MESSAGE]
        assert sorted(logs) == sorted(f"line {i}" for i in range(LINES) for _ in range(3))
        ids = [e.storage_id for e in events]
        assert ids == sorted(set(ids))
    else:
        assert stored.status == RunStatus.FAILURE
        failure = events[-1].event
        assert failure.event_type == EventType.RUN_FAILURE
        assert failure.run_failure.error.cls_name in {"StorageError", "StorageUnavailableError"}


# -- Postgres: backends terminated ---------------------------------------------------------


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    async for name in fresh_schema():
        yield name


async def _terminate_backends(application_name: str) -> int:
    conn = await asyncpg.connect(PG_URL, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = $1 AND pid <> pg_backend_pid()",
            application_name,
        )
    finally:
        await conn.close()
    return len(rows)


@pytest.mark.postgres
@pytest.mark.parametrize("seed", range(6))
async def test_a_run_whose_postgres_backends_are_terminated_ends_and_never_hangs(
    pg_schema: str, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    app = f"dagloom-test-{pg_schema}"
    config = {
        "storage": {
            "postgres": {
                "postgres_url": PG_URL,
                "schema": pg_schema,
                "application_name": app,
                "retry_timeout_seconds": 20,
            }
        }
    }
    instance = DagloomInstance.from_config(config, home=tmp_path)
    # Terminate at 1-5 random points of the run, counted in lines the ops have logged.
    points = sorted(rng.sample(range(3 * LINES), rng.randint(1, 5)))
    _progress.update(lines=0, points=list(points), reached=anyio.Event())
    terminated = 0
    with anyio.fail_after(180):
        async with instance:
            outcome: list[tuple[str, StorageError | None]] = []
            async with anyio.create_task_group() as tg:

                async def kill_at_random_points() -> None:
                    nonlocal terminated
                    for _ in points:
                        await _progress["reached"].wait()
                        _progress["reached"] = anyio.Event()
                        terminated += await _terminate_backends(app)

                tg.start_soon(kill_at_random_points)
                outcome.append(await _run_to_its_end(instance))
                tg.cancel_scope.cancel()
            (run_id, error) = outcome[0]
            await _check_the_record(instance, run_id, error)
    assert terminated > 0


@pytest.mark.postgres
async def test_postgres_storage_sets_its_application_name(pg_schema: str, tmp_path: Path) -> None:
    app = f"dagloom-test-{pg_schema}"
    instance = DagloomInstance.from_config(
        {
            "storage": {
                "postgres": {"postgres_url": PG_URL, "schema": pg_schema, "application_name": app}
            }
        },
        home=tmp_path,
    )
    async with instance:
        await instance.get_runs()
        assert await _terminate_backends(app) >= 1
        # The pool replaces the terminated connection: storage works on.
        with anyio.fail_after(60):
            assert await instance.get_runs() == []


# -- SQLite: locked past the busy timeout, or read-only ------------------------------------


def _sqlite_instance(home: Path, retry_timeout: float) -> DagloomInstance:
    return DagloomInstance.from_config(
        {
            "storage": {
                "sqlite": {"busy_timeout_seconds": 0.05, "retry_timeout_seconds": retry_timeout}
            }
        },
        home=home,
    )


def _on_sink_failure(monkeypatch: pytest.MonkeyPatch) -> anyio.Event:
    """An event set when a sink fails for good."""
    failed = anyio.Event()
    fail = StorageEventSink._fail

    def failing(self: StorageEventSink, error: StorageError) -> None:
        fail(self, error)
        failed.set()

    monkeypatch.setattr(StorageEventSink, "_fail", failing)
    return failed


@pytest.mark.parametrize("seed", range(3))
async def test_a_run_on_sqlite_locked_for_a_while_succeeds_after_retries(
    tmp_path: Path, seed: int
) -> None:
    """Fault: a second connection holds `BEGIN EXCLUSIVE` for a seeded random time, well
    within the retry budget, at a seeded random point of the run."""
    rng = random.Random(seed)
    instance = _sqlite_instance(tmp_path, retry_timeout=30.0)
    locked = anyio.Event()
    with anyio.fail_after(120):
        async with instance:
            outcome: list[tuple[str, StorageError | None]] = []
            async with anyio.create_task_group() as tg:

                async def lock_for_a_while() -> None:
                    await anyio.sleep(rng.uniform(0.0, 0.3))
                    holder = sqlite3.connect(tmp_path / "dagloom.db", isolation_level=None)
                    try:
                        holder.execute("BEGIN EXCLUSIVE")
                        locked.set()
                        await anyio.sleep(rng.uniform(0.2, 1.0))
                        holder.execute("ROLLBACK")
                    finally:
                        holder.close()

                tg.start_soon(lock_for_a_while)
                outcome.append(await _run_to_its_end(instance))
            run_id, error = outcome[0]
            assert locked.is_set()
            assert error is None
            await _check_the_record(instance, run_id, error)


async def test_a_run_on_sqlite_locked_past_its_retries_ends_failure_with_the_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault: a second connection holds `BEGIN EXCLUSIVE` from the ops' first line until the
    run's sink has given up; then storage is free again for the run's end."""
    instance = _sqlite_instance(tmp_path, retry_timeout=0.3)
    sink_failed = _on_sink_failure(monkeypatch)
    _progress.update(lines=0, points=[1], reached=anyio.Event())
    with anyio.fail_after(120):
        async with instance:
            outcome: list[tuple[str, StorageError | None]] = []
            async with anyio.create_task_group() as tg:

                async def lock_until_the_sink_fails() -> None:
                    await _progress["reached"].wait()
                    holder = sqlite3.connect(tmp_path / "dagloom.db", isolation_level=None)
                    try:
                        holder.execute("BEGIN EXCLUSIVE")
                        await sink_failed.wait()
                        holder.execute("ROLLBACK")
                    finally:
                        holder.close()

                tg.start_soon(lock_until_the_sink_fails)
                outcome.append(await _run_to_its_end(instance))
            run_id, error = outcome[0]
            assert isinstance(error, StorageUnavailableError)
            assert "locked" in str(error)
            await _check_the_record(instance, run_id, error)


@pytest.mark.parametrize("seed", range(3))
async def test_a_run_on_sqlite_made_read_only_raises_storage_error_and_never_hangs(
    tmp_path: Path, seed: int
) -> None:
    """Fault: `PRAGMA query_only` on the storage's writer connection at a seeded random
    point of the run; storage cannot take even the run's end, so the error is what remains."""
    instance = _sqlite_instance(tmp_path, retry_timeout=0.3)
    point = random.Random(seed).randrange(1, 3 * LINES)
    _progress.update(lines=0, points=[point], reached=anyio.Event())
    with anyio.fail_after(120):
        async with instance:
            database = instance._events.database  # type: ignore[attr-defined]
            assert isinstance(database, SqliteDatabase)
            outcome: list[tuple[str, StorageError | None]] = []
            async with anyio.create_task_group() as tg:

                async def make_read_only() -> None:
                    await _progress["reached"].wait()
                    await database._in_writer(lambda c: c.execute("PRAGMA query_only = ON"))

                tg.start_soon(make_read_only)
                outcome.append(await _run_to_its_end(instance))
            run_id, error = outcome[0]
            assert isinstance(error, StorageError)
            assert not isinstance(error, StorageUnavailableError)
            assert "readonly" in str(error)
            assert isinstance(error.__cause__, sqlite3.OperationalError)
            await database._in_writer(lambda c: c.execute("PRAGMA query_only = OFF"))
            stored = await instance.get_run(run_id)
            # Its end could not be stored (nor, at an early point, its start).
            assert stored is not None
            assert stored.status in {RunStatus.NOT_STARTED, RunStatus.STARTED}
