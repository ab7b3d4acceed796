"""Each asset's status on the asset graph, decided from its latest materialization, its
staleness (`dagloom.definitions.staleness`, the rule the asset page's `staleStatus` uses)
and the runs that target it: pure functions, no I/O."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dagloom.messages import Run, RunStatus
from dagloom.storage.base import FINISHED_STATUSES

AssetPath = tuple[str, ...]

UNSTARTED_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.NOT_STARTED})
"""Runs that target an asset but have not started: Dagster's `unstartedRunIds`."""


class AssetStatus(enum.Enum):
    """What the asset graph marks on an asset, most urgent first."""

    IN_PROGRESS = "IN_PROGRESS"
    """A run that targets it is queued or running."""
    FAILED = "FAILED"
    """The latest run that targeted it failed, and it has not been materialized since."""
    MISSING = "MISSING"
    """Never materialized."""
    STALE = "STALE"
    """Its code version or an upstream data version changed since it was last materialized
    (`compute_staleness`'s STALE)."""
    MATERIALIZED = "MATERIALIZED"
    """Materialized, and not stale."""


@dataclass(frozen=True, slots=True)
class AssetRuns:
    """The runs that target one asset, as far as the runs read show."""

    latest: Run | None = None
    """The newest run that targeted it, finished or not."""
    unstarted: tuple[str, ...] = ()
    in_progress: tuple[str, ...] = ()


def run_targets(
    run: Run, job_assets: Mapping[tuple[str, str], Sequence[AssetPath]]
) -> Sequence[AssetPath]:
    """The assets `run` materializes: its asset selection, else every asset of its job
    (`job_assets` maps (code location, job name) to the job's assets)."""
    if run.asset_selection:
        return [tuple(k.path) for k in run.asset_selection]
    return job_assets.get((run.code_location, run.job_name), ())


def runs_by_asset(
    runs: Iterable[Run],
    job_assets: Mapping[tuple[str, str], Sequence[AssetPath]],
    wanted: Iterable[AssetPath],
) -> dict[AssetPath, AssetRuns]:
    """For each asset of `wanted`, the runs among `runs` that target it. `runs` may come in any
    order and repeat a run; the newest is the one created last."""
    keys = set(wanted)
    latest: dict[AssetPath, Run] = {}
    unstarted: dict[AssetPath, list[str]] = {}
    in_progress: dict[AssetPath, list[str]] = {}
    seen: set[str] = set()
    for run in sorted(runs, key=lambda r: (r.create_time, r.run_id)):
        if run.run_id in seen:
            continue
        seen.add(run.run_id)
        for key in run_targets(run, job_assets):
            if key not in keys:
                continue
            latest[key] = run
            if run.status in UNSTARTED_STATUSES:
                unstarted.setdefault(key, []).append(run.run_id)
            elif run.status not in FINISHED_STATUSES:
                in_progress.setdefault(key, []).append(run.run_id)
    return {
        key: AssetRuns(
            latest=latest.get(key),
            unstarted=tuple(unstarted.get(key, ())),
            in_progress=tuple(in_progress.get(key, ())),
        )
        for key in keys
    }


def asset_status(
    materialized_at: float | None,
    stale: bool,
    runs: AssetRuns,
) -> AssetStatus:
    """The mark of one asset: in progress over failed over missing over stale.

    `materialized_at` is when it was last materialized (seconds since the epoch; None:
    never), `stale` whether `compute_staleness` finds it STALE. A failed run counts from when
    it started (or was created, when it failed before starting), so a materialization by a
    later run clears it.
    """
    if runs.unstarted or runs.in_progress:
        return AssetStatus.IN_PROGRESS
    last = runs.latest
    if last is not None and last.status == RunStatus.FAILURE:
        began = last.start_time or last.create_time
        if materialized_at is None or materialized_at < began:
            return AssetStatus.FAILED
    if materialized_at is None:
        return AssetStatus.MISSING
    if stale:
        return AssetStatus.STALE
    return AssetStatus.MATERIALIZED
