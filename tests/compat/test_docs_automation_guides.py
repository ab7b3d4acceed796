"""Samples of Dagster's schedules and sensors guides (and their testing sections), run as the
docs write them with only the import changed."""

from __future__ import annotations

import datetime

import pytest

import dagloom as dg

# -- schedules: build_schedule_from_partitioned_job on an asset job ---------------------------

daily_partition = dg.DailyPartitionsDefinition(start_date="2024-05-20")


@dg.asset(partitions_def=daily_partition)
def daily_asset() -> None: ...


partitioned_asset_job = dg.define_asset_job("partitioned_job", selection=[daily_asset])

asset_partitioned_schedule = dg.build_schedule_from_partitioned_job(
    partitioned_asset_job,
)


def test_a_schedule_of_an_asset_job_takes_the_partitions_of_its_assets() -> None:
    """The docs' "schedule with partition" sample: the asset job names no partitions_def,
    so its schedule follows the daily partitions of the asset it selects."""
    defs = dg.Definitions(
        assets=[daily_asset], jobs=[partitioned_asset_job], schedules=[asset_partitioned_schedule]
    )
    schedule = defs.get_schedule_def("partitioned_job_schedule")
    assert schedule.cron_schedule == "0 0 * * *"
    assert schedule.job_name == "partitioned_job"
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime.datetime(2024, 5, 22, tzinfo=datetime.UTC)
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2024-05-21"
    assert request.job_name == "partitioned_job"


def test_a_partitioned_asset_schedule_needs_no_job_in_definitions_jobs() -> None:
    """As in the docs' hourly sample, the schedule alone brings its asset job in."""

    @dg.asset(partitions_def=dg.HourlyPartitionsDefinition(start_date="2020-01-01-00:00"))
    def hourly_asset() -> None: ...

    job = dg.define_asset_job("hourly_job", selection=[hourly_asset])
    schedule = dg.build_schedule_from_partitioned_job(job, minute_of_hour=15)
    defs = dg.Definitions(assets=[hourly_asset], schedules=[schedule])
    resolved = defs.get_schedule_def("hourly_job_schedule")
    assert resolved.cron_schedule == "15 * * * *"
    assert defs.has_job("hourly_job")
    merged = dg.Definitions.merge(defs, dg.Definitions())
    assert merged.get_schedule_def("hourly_job_schedule").cron_schedule == "15 * * * *"


def test_a_schedule_of_an_asset_job_whose_assets_are_not_partitioned_names_itself() -> None:
    @dg.asset
    def plain() -> None: ...

    schedule = dg.build_schedule_from_partitioned_job(dg.define_asset_job("plain_job", [plain]))
    with pytest.raises(dg.DagsterInvalidDefinitionError, match=r"plain_job_schedule.*plain_job"):
        dg.Definitions(assets=[plain], schedules=[schedule])
