"""The asset graph's status marks, decided from materializations, staleness and runs."""

from __future__ import annotations

from dagloom.messages import AssetKeyMessage, Run, RunStatus
from dagloom.webserver._asset_status import (
    AssetRuns,
    AssetStatus,
    asset_status,
    run_targets,
    runs_by_asset,
)

JOBS = {("loc", "both"): [("a",), ("b",)]}


def run(
    run_id: str,
    status: RunStatus,
    created: float,
    *,
    job: str = "__ASSET_JOB",
    assets: tuple[str, ...] = (),
    started: float = 0.0,
) -> Run:
    return Run(
        run_id=run_id,
        job_name=job,
        code_location="loc",
        status=status,
        create_time=created,
        start_time=started,
        asset_selection=[AssetKeyMessage(path=[a]) for a in assets],
    )


def test_a_run_targets_its_selection_else_its_jobs_assets() -> None:
    assert run_targets(run("r", RunStatus.SUCCESS, 1, assets=("b",)), JOBS) == [("b",)]
    assert run_targets(run("r", RunStatus.SUCCESS, 1, job="both"), JOBS) == [("a",), ("b",)]
    assert run_targets(run("r", RunStatus.SUCCESS, 1, job="other"), JOBS) == ()


def test_runs_by_asset_keeps_the_newest_and_the_unfinished() -> None:
    runs = [
        run("late", RunStatus.FAILURE, 3, assets=("a",)),
        run("early", RunStatus.SUCCESS, 1, job="both"),
        run("queued", RunStatus.QUEUED, 2, assets=("b",)),
        run("going", RunStatus.STARTED, 2.5, job="both"),
        run("late", RunStatus.FAILURE, 3, assets=("a",)),
    ]
    found = runs_by_asset(runs, JOBS, [("a",), ("b",), ("c",)])
    assert found[("a",)].latest is not None and found[("a",)].latest.run_id == "late"
    assert found[("a",)].in_progress == ("going",) and found[("a",)].unstarted == ()
    assert found[("b",)].latest is not None and found[("b",)].latest.run_id == "going"
    assert found[("b",)].unstarted == ("queued",) and found[("b",)].in_progress == ("going",)
    assert found[("c",)] == AssetRuns()


def test_status_marks_in_order_of_urgency() -> None:
    failed = AssetRuns(latest=run("f", RunStatus.FAILURE, 10, started=11))
    done = AssetRuns(latest=run("s", RunStatus.SUCCESS, 10, started=11))
    assert asset_status(None, False, AssetRuns(unstarted=("q",))) is AssetStatus.IN_PROGRESS
    assert asset_status(20, True, AssetRuns(in_progress=("r",))) is AssetStatus.IN_PROGRESS
    assert asset_status(None, False, failed) is AssetStatus.FAILED
    assert asset_status(5, True, failed) is AssetStatus.FAILED
    assert asset_status(12, False, failed) is AssetStatus.MATERIALIZED
    assert asset_status(None, False, done) is AssetStatus.MISSING
    assert asset_status(None, False, AssetRuns()) is AssetStatus.MISSING
    assert asset_status(12, True, done) is AssetStatus.STALE
    assert asset_status(12, False, done) is AssetStatus.MATERIALIZED


def test_a_run_that_failed_before_starting_counts_from_its_creation() -> None:
    never_started = AssetRuns(latest=run("f", RunStatus.FAILURE, 10))
    assert asset_status(9, False, never_started) is AssetStatus.FAILED
    assert asset_status(10.5, False, never_started) is AssetStatus.MATERIALIZED
