"""Storage benchmark: events written and read back per second, SQLite and Postgres, each
beside its raw-driver floor (the same chunk rows, encoded beforehand, inserted with no dagloom
code in between); then the executor-core workloads chain-500 and fan-500 run on the default
SQLite instance (`dagloom-sqlite`, from the core suite) beside their asyncio floor.

    python -m benchmarks storage [--sizes 10000,100000] [--repeats 3] [--no-executor]
                                 [--json PATH]

Targets: at least 100k events/s written to SQLite and 50k/s to Postgres, and the executor
within 8x of the floor per step while it records every event in SQLite (the core suite's
target).

Postgres runs against `DAGLOOM_BENCH_PG_URL` (default: `DAGLOOM_TEST_PG_URL`, else
postgresql://postgres@127.0.0.1:5432/test) in a scratch schema, and is left out with a note
when no server answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio

from benchmarks import core
from benchmarks._common import (
    FLOOR,
    Result,
    measure_in_workers,
    peak_rss_mb,
    print_table,
    summarize,
)
from dagloom.instance import DagloomInstance
from dagloom.messages import Event, EventType, StepOutputData
from dagloom.messages.rows import row_of, rows_by_run
from dagloom.storage._codec import encode_chunks

BATCH = 500

WRITE_TARGETS = {"dagloom-sqlite": 100_000, "dagloom-postgres": 50_000}
"""Events per second each backend must write, at least."""

EXECUTOR_WORKLOADS = ("chain-500", "fan-500")
EXECUTOR_TARGETS = tuple(t for t in core.TARGETS if t.system == core.SQLITE)


def make_events(run_id: str, n: int) -> list[Event]:
    """A run's worth of step events: start, output, success, in turn."""
    kinds = (EventType.STEP_START, EventType.STEP_OUTPUT, EventType.STEP_SUCCESS)
    out = []
    for i in range(n):
        kind = kinds[i % 3]
        out.append(
            Event(
                run_id=run_id,
                event_type=kind,
                timestamp=1_700_000_000.0 + i,
                job_name="bench",
                step_key=f"op_{i // 3}",
                step_output=StepOutputData(output_name="result")
                if kind == EventType.STEP_OUTPUT
                else None,
            )
        )
    return out


def pg_url() -> str:
    return os.environ.get(
        "DAGLOOM_BENCH_PG_URL",
        os.environ.get("DAGLOOM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )


async def _instance_write_read(config: dict[str, Any], home: Path, n: int) -> tuple[float, float]:
    events = make_events(f"run-{uuid.uuid4().hex}", n)
    run_id = events[0].run_id
    rows = [row_of(e) for e in events]  # as the executor emits them
    async with DagloomInstance.from_config(config, home=home) as instance:
        start = time.perf_counter()
        sink = instance.event_sink(run_id, batch_size=BATCH)
        for row in rows:
            sink.emit(row)
        await sink.flush()
        wrote = time.perf_counter() - start
        start = time.perf_counter()
        count = 0
        cursor: int | None = None
        while page := await instance.get_events(run_id, after=cursor, limit=10_000):
            count += len(page)
            cursor = page[-1].storage_id
        read = time.perf_counter() - start
        assert count == n, (count, n)
    return wrote, read


CHUNK_COLUMNS = ("run_id", "first_storage_id", "last_storage_id", "body")


def _chunk_rows(n: int) -> list[list[tuple[str, int, int, bytes]]]:
    """The event_chunks rows of `n` events, one list per BATCH-event transaction."""
    events = make_events("raw", n)
    batches = []
    first = 1
    for i in range(0, n, BATCH):
        rows = []
        for chunk in encode_chunks(rows_by_run(events[i : i + BATCH])):
            rows.append((chunk.run_id, first, first + chunk.count - 1, chunk.body))
            first += chunk.count
        batches.append(rows)
    return batches


def _sqlite_raw(path: Path, n: int) -> float:
    batches = _chunk_rows(n)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS event_chunks (id INTEGER PRIMARY KEY, run_id TEXT, "
        "first_storage_id INTEGER, last_storage_id INTEGER, body BLOB)"
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS event_chunks_by_run ON event_chunks (run_id, last_storage_id)"
    )
    sql = f"INSERT INTO event_chunks ({', '.join(CHUNK_COLUMNS)}) VALUES (?, ?, ?, ?)"
    start = time.perf_counter()
    for rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    took = time.perf_counter() - start
    conn.close()
    return took


async def _pg_raw(url: str, schema: str, n: int) -> float:
    import asyncpg  # type: ignore[import-untyped]

    batches = _chunk_rows(n)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".raw_chunks (id BIGINT GENERATED ALWAYS AS '
            "IDENTITY PRIMARY KEY, run_id TEXT, first_storage_id BIGINT, last_storage_id BIGINT, "
            "body BYTEA)"
        )
        sql = (
            f'INSERT INTO "{schema}".raw_chunks ({", ".join(CHUNK_COLUMNS)}) '
            "VALUES ($1, $2, $3, $4)"
        )
        start = time.perf_counter()
        for rows in batches:
            async with conn.transaction():
                await conn.executemany(sql, rows)
        return time.perf_counter() - start
    finally:
        await conn.close()


async def _pg_reachable(url: str) -> str | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return str(exc)
    await conn.close()
    return None


async def _with_schema(url: str, body: Callable[[str], Awaitable[Any]]) -> Any:
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        return await body(schema)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def _pg_once(url: str, schema: str, n: int) -> tuple[float, float, float]:
    config = {"storage": {"postgres": {"postgres_url": url, "schema": schema}}}
    with tempfile.TemporaryDirectory(prefix="dagloom-bench-") as tmp:
        wrote, read = await _instance_write_read(config, Path(tmp), n)
    return wrote, read, await _pg_raw(url, schema, n)


def _row(workload: str, n: int, system: str, times: list[float]) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "workload": workload,
        "n_steps": n,
        "system": system,
        "median_s": round(median, 6),
        "us_per_step": round(median / n * 1e6, 3),
        "events_per_s": round(n / median),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


async def run(sizes: Sequence[int], repeats: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    url = pg_url()
    pg_problem = await _pg_reachable(url)
    if pg_problem:
        print(f"postgres left out: {url} unreachable ({pg_problem})", file=sys.stderr)
    for n in sizes:
        writes: list[float] = []
        reads: list[float] = []
        raw: list[float] = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix="dagloom-bench-") as tmp:
                w, r = await _instance_write_read({}, Path(tmp), n)
                writes.append(w)
                reads.append(r)
                raw.append(_sqlite_raw(Path(tmp) / "raw.db", n))
        results += [
            _row("write_events", n, "dagloom-sqlite", writes),
            _row("write_events", n, "sqlite3-raw", raw),
            _row("read_events", n, "dagloom-sqlite", reads),
        ]
        if pg_problem:
            continue
        writes, reads, raw = [], [], []
        for _ in range(repeats):
            w, r, f = await _with_schema(url, lambda schema, n=n: _pg_once(url, schema, n))
            writes.append(w)
            reads.append(r)
            raw.append(f)
        results += [
            _row("write_events", n, "dagloom-postgres", writes),
            _row("write_events", n, "asyncpg-raw", raw),
            _row("read_events", n, "dagloom-postgres", reads),
        ]
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks storage", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000", help="event counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument(
        "--no-executor", action="store_true", help="leave out the executor-core workloads"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    ns = parser.parse_args(argv)
    sizes = [int(s) for s in ns.sizes.split(",") if s]
    results = anyio.run(run, sizes, ns.repeats)
    floors = {(r["workload"], r["n_steps"], r["system"]): r["median_s"] for r in results}
    print(
        f"{'workload':<14}{'events':>9}  {'system':<18}{'median s':>10}{'us/event':>10}"
        f"{'events/s':>11}{'vs floor':>10}"
    )
    for r in results:
        floor_name = {"dagloom-sqlite": "sqlite3-raw", "dagloom-postgres": "asyncpg-raw"}
        floor = floors.get((r["workload"], r["n_steps"], floor_name.get(r["system"], "")))
        ratio = f"{r['median_s'] / floor:.2f}x" if floor else ""
        print(
            f"{r['workload']:<14}{r['n_steps']:>9}  {r['system']:<18}{r['median_s']:>10.4f}"
            f"{r['us_per_step']:>10.2f}{r['events_per_s']:>11}{ratio:>10}"
        )
    passed = failed = 0
    print()
    for r in results:
        want = WRITE_TARGETS.get(r["system"])
        if r["workload"] == "write_events" and want is not None:
            ok = r["events_per_s"] >= want
            passed, failed = passed + ok, failed + (not ok)
            print(
                f"{r['system']} writes {r['n_steps']} events at {r['events_per_s']}/s: "
                f"target >={want // 1000}k/s {'PASS' if ok else 'FAIL'}"
            )
    if not ns.no_executor:
        executor = _executor_results(ns.repeats)
        print()
        print_table(executor, EXECUTOR_TARGETS)
        more_passed, more_failed = summarize(executor, EXECUTOR_TARGETS)
        passed, failed = passed + more_passed, failed + more_failed
        results += [asdict(r) for r in executor]
    print(f"\ntargets: {passed} passed, {failed} failed")
    if ns.json is not None:
        ns.json.write_text(json.dumps(results, indent=2))
    return 0


def _executor_results(repeats: int) -> list[Result]:
    """The core suite's chain-500 and fan-500, floor and dagloom-sqlite, in fresh workers."""
    runs, rounds = max(5, repeats), core.ROUNDS[0]
    return [
        result
        for workload in EXECUTOR_WORKLOADS
        for result in measure_in_workers(core.SUITE, workload, (FLOOR, core.SQLITE), runs, rounds)
    ]


if __name__ == "__main__":
    raise SystemExit(main())
