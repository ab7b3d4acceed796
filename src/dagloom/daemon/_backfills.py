"""Backfill decisions: which runs a backfill asks for, under which ids, and how far it got.

Pure, sync code beside `backfill_loop.py`. A backfill's partitions are cut into runs of
`partitions_per_run` keys (0: one run for all), in order; run `i` has an id derived from the
backfill id and `i`, used as the submission's request id too, so submitting it again (a round
redone after a crash, a second daemon) returns the run stored the first time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dagloom.definitions.partitions import PartitionKeyRange
from dagloom.execution.partitions import partition_tags
from dagloom.messages import Backfill, Run, RunStatus

BACKFILL_ID_TAG = "dagster/backfill"

_NAMESPACE = uuid.UUID("5c0e2a52-6a4b-4d55-9d0e-7d2b1b0f3a11")

_IN_PROGRESS = frozenset(
    {
        RunStatus.QUEUED,
        RunStatus.NOT_STARTED,
        RunStatus.STARTING,
        RunStatus.STARTED,
        RunStatus.CANCELING,
    }
)


def run_chunks(partition_keys: Sequence[str], partitions_per_run: int) -> list[list[str]]:
    """The backfill's partitions cut into runs, in order (0 per run: one run of all)."""
    keys = list(partition_keys)
    if not keys:
        return []
    size = len(keys) if partitions_per_run <= 0 else partitions_per_run
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def backfill_run_id(backfill_id: str, index: int) -> str:
    """The id of the backfill's `index`th run: the same every time it is derived."""
    return str(uuid.uuid5(_NAMESPACE, f"{backfill_id}/{index}"))


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """One run a backfill asks for: its index, derived id, and tags."""

    index: int
    run_id: str
    tags: dict[str, str]


def next_runs(backfill: Backfill, limit: int) -> list[PlannedRun]:
    """The next (at most `limit`) runs of `backfill` not yet submitted, from its cursor
    `num_submitted`."""
    chunks = run_chunks(backfill.partition_keys, backfill.partitions_per_run)
    start = max(backfill.num_submitted, 0)
    out: list[PlannedRun] = []
    for index in range(start, min(len(chunks), start + max(limit, 0))):
        keys = chunks[index]
        tags = {
            **backfill.tags,
            **partition_tags(partition_key_range=PartitionKeyRange(keys[0], keys[-1])),
            BACKFILL_ID_TAG: backfill.backfill_id,
        }
        out.append(PlannedRun(index, backfill_run_id(backfill.backfill_id, index), tags))
    return out


def total_runs(backfill: Backfill) -> int:
    return len(run_chunks(backfill.partition_keys, backfill.partitions_per_run))


@dataclass(frozen=True, slots=True)
class BackfillProgress:
    """How a backfill stands, counted in partitions: asked for, not yet submitted, in
    progress (queued or running), materialized (their run succeeded), failed (failed or
    canceled)."""

    requested: int
    not_submitted: int
    in_progress: int
    materialized: int
    failed: int

    @property
    def done(self) -> bool:
        return self.not_submitted == 0 and self.in_progress == 0


def backfill_progress(backfill: Backfill, runs: Iterable[Run]) -> BackfillProgress:
    """Count the backfill's partitions by the status of the run that covers them (a run not
    found in `runs` counts as in progress once submitted)."""
    chunks = run_chunks(backfill.partition_keys, backfill.partitions_per_run)
    by_id = {r.run_id: r for r in runs}
    in_progress = materialized = failed = not_submitted = 0
    for index, keys in enumerate(chunks):
        if index >= backfill.num_submitted:
            not_submitted += len(keys)
            continue
        run = by_id.get(backfill_run_id(backfill.backfill_id, index))
        if run is None or run.status in _IN_PROGRESS:
            in_progress += len(keys)
        elif run.status == RunStatus.SUCCESS:
            materialized += len(keys)
        else:
            failed += len(keys)
    return BackfillProgress(
        requested=len(backfill.partition_keys),
        not_submitted=not_submitted,
        in_progress=in_progress,
        materialized=materialized,
        failed=failed,
    )


__all__ = [
    "BACKFILL_ID_TAG",
    "BackfillProgress",
    "PlannedRun",
    "backfill_progress",
    "backfill_run_id",
    "next_runs",
    "run_chunks",
    "total_runs",
]
