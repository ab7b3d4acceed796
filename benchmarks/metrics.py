"""Metrics benchmark: one `/metrics` scrape over many stored runs, beside the storage
queries a runs page makes; and what counting step durations adds to the executor core.

    python -m benchmarks metrics [--runs 100000] [--repeats 7] [--steps 500] [--no-postgres]

1. Scrape: `render_metrics` (every family, storage aggregates included) over `--runs` runs
   of 50 jobs in mixed statuses, on SQLite and (when a server answers) Postgres. Beside it,
   in the same run and the same database: a runs page (`get_runs(limit=50)`), a count of
   every run (`get_runs_count()`), and the naive way to the same figures (read every run
   and fold it in Python, `fold_run_stats`), measured once. Reported: median and p95 in
   milliseconds, and the ratio of each to the runs page.
2. Step counting: the `chain` job of `--steps` ops run in process, per step, beside what
   the step runner's counting of a step duration costs (its statements timed alone, minus
   an empty call); the ratio is what counting adds to a step.

Postgres runs against `DAGLOOM_BENCH_PG_URL` (default: `DAGLOOM_TEST_PG_URL`, else
postgresql://postgres@127.0.0.1:5432/test) in a scratch schema.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import timeit
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks import core
from dagloom._counters import PENDING_LIMIT, STEP_DURATION_BUCKETS, Histogram
from dagloom.instance import DagloomInstance
from dagloom.messages import Run, RunStatus
from dagloom.metrics import MetricsSources, render_metrics
from dagloom.storage import _sql
from dagloom.storage.base import RUN_DURATION_BUCKETS, fold_run_stats

JOBS = 50
STATUSES = (
    RunStatus.SUCCESS,
    RunStatus.SUCCESS,
    RunStatus.SUCCESS,
    RunStatus.FAILURE,
    RunStatus.CANCELED,
    RunStatus.QUEUED,
    RunStatus.STARTED,
)
PG_URL = os.environ.get(
    "DAGLOOM_BENCH_PG_URL",
    os.environ.get("DAGLOOM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
)


def make_rows(n: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """`n` runs as run-table rows: 50 jobs, mostly finished, durations up to ten minutes."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        status = rng.choice(STATUSES)
        start = 1_700_000_000.0 + i if status != RunStatus.QUEUED else 0.0
        ended = status in (RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED)
        run = Run(
            run_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            job_name=f"job_{i % JOBS}",
            status=status,
            create_time=start or 1_700_000_000.0 + i,
            start_time=start,
            end_time=start + rng.expovariate(1 / 60) if ended and start else 0.0,
            tags={"team": f"t{i % 7}"},
        )
        rows.append(_sql.run_row(run))
    return rows


async def timed(call: Callable[[], Awaitable[object]], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        await call()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def scrape_suite(
    name: str, instance: DagloomInstance, rows: list[tuple[Any, ...]], repeats: int
) -> None:
    runs = instance.run_storage
    database = getattr(runs, "database", None)
    if database is None:
        raise SystemExit(f"{name}: not a SQL run storage")
    for start in range(0, len(rows), 5000):
        await database.write([(_sql.INSERT_RUN, rows[start : start + 5000])])
    sources = MetricsSources(actors=list, process_collectors=False)

    async def scrape() -> None:
        await render_metrics(instance, sources=sources)

    async def page() -> None:
        await runs.get_runs(limit=50)

    async def count() -> None:
        await runs.get_runs_count()

    async def stats() -> None:
        await runs.get_run_stats()

    async def naive() -> None:
        fold_run_stats(await runs.get_runs(), RUN_DURATION_BUCKETS)

    await scrape()  # warm the caches of both kinds alike
    await page()
    measured = {
        "runs page (get_runs limit=50)": await timed(page, repeats),
        "count all runs (get_runs_count)": await timed(count, repeats),
        "storage aggregate alone (get_run_stats)": await timed(stats, repeats),
        "scrape (render_metrics)": await timed(scrape, repeats),
        "naive: read every run, fold in Python": await timed(naive, 1),
    }
    base = statistics.median(measured["runs page (get_runs limit=50)"])
    print(f"\n{name}: {len(rows):,} runs of {JOBS} jobs, {repeats} repeats")
    print(f"  {'what':40} {'median ms':>10} {'p95 ms':>9} {'x runs page':>12}")
    for what, samples in measured.items():
        median = statistics.median(samples)
        print(f"  {what:40} {median:10.1f} {p95(samples):9.1f} {median / base:12.1f}")


def step_counting(steps: int, repeats: int) -> None:
    """Per step: the chain job's time, and what counting a step duration costs (the hot
    path's two statements, timed alone), both measured here."""
    job = core.chain_job(steps)
    histogram = Histogram(STEP_DURATION_BUCKETS)  # what the step runner does, on its own
    pending = histogram.pending

    def count_one() -> None:
        pending.append(0.0123)
        if len(pending) >= PENDING_LIMIT:
            histogram.fold()

    def nothing() -> None:
        pass

    job.execute_in_process()
    per_step = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        assert job.execute_in_process().success
        per_step.append((time.perf_counter() - t0) / steps)
    n = 200_000
    counted = min(timeit.repeat(count_one, number=n, repeat=repeats)) / n
    bare = min(timeit.repeat(nothing, number=n, repeat=repeats)) / n
    cost = max(counted - bare, 0.0)
    step = statistics.median(per_step)
    print(f"\nstep counting: chain of {steps} ops in process, {repeats} repeats")
    print(f"  chain job, per step (median):            {step * 1e6:9.2f} us")
    print(f"  counting one step duration (best):       {cost * 1e9:9.0f} ns")
    print(f"  ratio (step + counting) / step:          {(step + cost) / step:9.4f}")


async def _postgres(rows: list[tuple[Any, ...]], repeats: int) -> None:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_URL, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        print(f"\npostgres: left out, no server at {PG_URL} ({exc})")
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with tempfile.TemporaryDirectory() as home:
            config = {"storage": {"postgres": {"postgres_url": PG_URL, "schema": schema}}}
            async with DagloomInstance.from_config(config, home=home) as instance:
                await scrape_suite("postgres", instance, rows, repeats)
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def _scrapes(ns: argparse.Namespace) -> None:
    rows = make_rows(ns.runs)
    with tempfile.TemporaryDirectory() as home:
        async with DagloomInstance.open(Path(home)) as instance:
            await scrape_suite("sqlite", instance, rows, ns.repeats)
    if not ns.no_postgres:
        await _postgres(rows, ns.repeats)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks metrics")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--no-postgres", action="store_true")
    ns = parser.parse_args(argv)
    anyio.run(_scrapes, ns)
    step_counting(ns.steps, ns.repeats)
    return 0
