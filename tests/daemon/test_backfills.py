"""Backfills: the pure cut of partitions into runs with derived ids and the progress count,
and the backfill loop submitting them a bounded number per round, once each even when a
round is cut short by a coordinator going away, and not after a cancel."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagloom.daemon._backfills import (
    BACKFILL_ID_TAG,
    backfill_progress,
    backfill_run_id,
    next_runs,
    run_chunks,
    total_runs,
)
from dagloom.daemon.backfill_loop import BackfillLoop
from dagloom.errors import ActorUnavailableError
from dagloom.instance import DagloomInstance
from dagloom.messages import Backfill, BackfillStatus, Run, RunStatus

from ._fakes import FailingRef, storing_coordinator

DAYS = [f"2024-01-{d:02d}" for d in range(1, 31)]


def backfill(backfill_id: str = "b1", per_run: int = 1, keys: list[str] = DAYS) -> Backfill:
    return Backfill(
        backfill_id=backfill_id,
        status=BackfillStatus.REQUESTED,
        job_name="nothing",
        partition_keys=keys,
        partitions_per_run=per_run,
        create_time=1.0,
    )


@given(st.integers(0, 60), st.integers(0, 12))
def test_chunks_cover_every_partition_once_in_order(n: int, per_run: int) -> None:
    keys = [f"k{i}" for i in range(n)]
    chunks = run_chunks(keys, per_run)
    assert [k for chunk in chunks for k in chunk] == keys
    if keys and per_run == 0:
        assert len(chunks) == 1


def test_next_runs_start_at_the_cursor_with_stable_ids_and_partition_tags() -> None:
    b = backfill(per_run=1)
    b.num_submitted = 28
    runs = next_runs(b, 10)
    assert [r.index for r in runs] == [28, 29]
    assert runs[0].run_id == backfill_run_id("b1", 28) == next_runs(b, 1)[0].run_id
    assert runs[0].tags["dagster/partition"] == "2024-01-29"
    assert runs[0].tags[BACKFILL_ID_TAG] == "b1"
    single = next_runs(backfill(per_run=0), 10)
    assert len(single) == 1
    assert single[0].tags["dagster/asset_partition_range_start"] == "2024-01-01"
    assert single[0].tags["dagster/asset_partition_range_end"] == "2024-01-30"


def test_progress_counts_partitions_by_their_runs() -> None:
    b = backfill(per_run=10)
    b.num_submitted = 2
    runs = [
        Run(run_id=backfill_run_id("b1", 0), status=RunStatus.SUCCESS),
        Run(run_id=backfill_run_id("b1", 1), status=RunStatus.FAILURE),
    ]
    progress = backfill_progress(b, runs)
    assert (progress.requested, progress.materialized, progress.failed) == (30, 10, 10)
    assert (progress.not_submitted, progress.in_progress, progress.done) == (10, 0, False)


async def submitted_runs(instance: DagloomInstance) -> list[Run]:
    return await instance.get_runs()


async def test_the_loop_submits_a_bounded_number_per_round_until_complete() -> None:
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        await instance.run_storage.add_backfill(backfill())
        loop = BackfillLoop(instance, coord, owner="d1", max_runs_per_tick=12, record_every=5)
        for now in (1.0, 2.0, 3.0):
            await loop.tick(now)
        runs = await submitted_runs(instance)
        assert sorted(r.tags["dagster/partition"] for r in runs) == DAYS
        assert {r.tags[BACKFILL_ID_TAG] for r in runs} == {"b1"}
        stored = await instance.run_storage.get_backfill("b1")
        assert stored is not None
        assert (stored.status, stored.num_submitted) == (BackfillStatus.COMPLETED, 30)
        await loop.tick(4.0)
        assert len(await submitted_runs(instance)) == 30


@pytest.mark.parametrize("killed_at", [1, 7, 13, 30])
async def test_a_round_cut_short_is_redone_without_submitting_a_partition_twice(
    killed_at: int,
) -> None:
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        await instance.run_storage.add_backfill(backfill())
        dying: Any = FailingRef(coord, after=frozenset({killed_at}))
        first = BackfillLoop(instance, dying, owner="d1", record_every=5, lease_seconds=1.0)
        with pytest.raises(ActorUnavailableError):
            await first.tick(1.0)
        # Another daemon takes over once the first one's lease has run out.
        second = BackfillLoop(instance, coord, owner="d2", record_every=5, lease_seconds=1.0)
        await second.tick(10.0)
        runs = await submitted_runs(instance)
        keys = [r.tags["dagster/partition"] for r in runs]
        assert sorted(keys) == DAYS  # each exactly once
        stored = await instance.run_storage.get_backfill("b1")
        assert stored is not None and stored.status == BackfillStatus.COMPLETED


async def test_a_canceled_backfill_gets_no_more_runs() -> None:
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        await instance.run_storage.add_backfill(backfill())
        loop = BackfillLoop(instance, coord, owner="d1", max_runs_per_tick=10)
        await loop.tick(1.0)
        stored = await instance.run_storage.get_backfill("b1")
        assert stored is not None
        stored.status = BackfillStatus.CANCELED
        await instance.run_storage.update_backfill(stored)
        await loop.tick(2.0)
        assert len(await submitted_runs(instance)) == 10
        assert total_runs(stored) == 30


async def test_only_the_lease_holder_submits() -> None:
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        await instance.run_storage.add_backfill(backfill())
        one = BackfillLoop(instance, coord, owner="d1", max_runs_per_tick=10)
        two = BackfillLoop(instance, coord, owner="d2", max_runs_per_tick=10)
        await one.tick(1.0)
        await two.tick(1.5)  # the lease is d1's: nothing
        assert len(await submitted_runs(instance)) == 10
