"""Run status, run failure and asset sensors written as Dagster's docs write them: their
definitions, and direct invocation with contexts built from in-process runs."""

from __future__ import annotations

import pytest

import dagloom as dg

SENT: list[str] = []


@dg.op
def succeeds() -> int:
    return 1


@dg.op
def fails() -> None:
    raise ValueError("bad data")


@dg.job
def my_job_succeeds() -> None:
    succeeds()


@dg.job
def my_job_fails() -> None:
    fails()


@dg.job
def status_reporting_job() -> None:
    succeeds()


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS)
def my_email_sensor(context: dg.RunStatusSensorContext) -> None:
    SENT.append(f'Job "{context.dagster_run.job_name}" succeeded.')


@dg.run_failure_sensor
def my_email_failure_sensor(context: dg.RunFailureSensorContext) -> None:
    SENT.append(
        f"Job {context.dagster_run.job_name} failed! Error: {context.failure_event.message}"
    )


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, request_job=status_reporting_job)
def report_status_sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    if context.dagster_run.job_name != status_reporting_job.name:
        return dg.RunRequest(run_key=None, tags={"reported": context.dagster_run.job_name})
    return dg.SkipReason("Don't report status of status_reporting_job")


@dg.asset_sensor(asset_key=dg.AssetKey("my_table"), job=status_reporting_job)
def my_asset_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):  # type: ignore[no-untyped-def]
    assert asset_event.dagster_event and asset_event.dagster_event.asset_key
    yield dg.RunRequest(
        run_key=context.cursor,
        tags={"asset": asset_event.dagster_event.asset_key.to_user_string()},
    )


def test_a_run_status_sensor_is_invoked_with_a_built_context() -> None:
    SENT.clear()
    instance = dg.DagsterInstance.ephemeral()
    result = my_job_succeeds.execute_in_process(instance=instance)
    context = dg.build_run_status_sensor_context(
        sensor_name="my_email_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_success_event(),
    )
    my_email_sensor(context)
    assert SENT == ['Job "my_job_succeeds" succeeded.']


def test_a_run_failure_sensor_is_invoked_with_a_failure_context() -> None:
    SENT.clear()
    instance = dg.DagsterInstance.ephemeral()
    result = my_job_fails.execute_in_process(instance=instance, raise_on_error=False)
    context = dg.build_run_status_sensor_context(
        sensor_name="my_email_failure_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
    ).for_run_failure()
    my_email_failure_sensor(context)
    assert len(SENT) == 1 and SENT[0].startswith("Job my_job_fails failed! Error: ")


def test_the_sensors_carry_dagsters_definition_fields() -> None:
    assert report_status_sensor.run_status == dg.DagsterRunStatus.SUCCESS
    assert report_status_sensor.job_name == "status_reporting_job"
    assert my_email_failure_sensor.run_status == dg.DagsterRunStatus.FAILURE
    assert my_email_failure_sensor.name == "my_email_failure_sensor"
    assert my_asset_sensor.asset_key == dg.AssetKey("my_table")
    assert my_asset_sensor.job_name == "status_reporting_job"
    assert my_email_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert isinstance(my_email_sensor, dg.SensorDefinition)
    defs = dg.Definitions(
        jobs=[my_job_succeeds, status_reporting_job],
        sensors=[my_email_sensor, report_status_sensor, my_asset_sensor, my_email_failure_sensor],
    )
    assert defs.get_sensor_def("report_status_sensor") is report_status_sensor


def test_a_run_status_sensor_needs_an_ending_status() -> None:
    with pytest.raises(dg.DagloomError, match="run_status must be one of"):
        dg.run_status_sensor(run_status=dg.DagsterRunStatus.STARTED)(lambda context: None)
