"""Samples of Dagster's schedules and sensors guides (and their testing sections), run as the
docs write them with only the import changed."""

from __future__ import annotations

import datetime
from typing import Any

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


def test_a_module_with_only_the_docs_globals_loads_its_partitioned_asset_schedule() -> None:
    """The docs' "schedule with partition" file defines no Definitions: a code location
    loading it gathers the asset, the asset job and the schedule from its globals."""
    import types

    from dagloom.code.loader import definitions_from_module

    module = types.ModuleType("schedule_with_partition")
    module.daily_asset = daily_asset  # type: ignore[attr-defined]
    module.partitioned_asset_job = partitioned_asset_job  # type: ignore[attr-defined]
    module.asset_partitioned_schedule = asset_partitioned_schedule  # type: ignore[attr-defined]
    defs = definitions_from_module(module, location="schedule_with_partition.py")
    assert defs.get_schedule_def("partitioned_job_schedule").cron_schedule == "0 0 * * *"


# -- sensors: testing an asset sensor on an instance's materializations -----------------------


@dg.job
def my_job() -> None:
    pass


@dg.asset_sensor(asset_key=dg.AssetKey("my_table"), job=my_job)
def my_asset_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):  # type: ignore[no-untyped-def]
    assert asset_event.dagster_event is not None
    assert asset_event.dagster_event.asset_key is not None
    yield dg.RunRequest(
        run_key=context.cursor,
        run_config={
            "ops": {
                "read_materialization": {
                    "config": {"asset_key": asset_event.dagster_event.asset_key.path}
                }
            }
        },
    )


def test_my_asset_sensor() -> None:
    """The docs' asset sensor test: invoked with a context holding an instance, the sensor
    skips until the asset is materialized, then requests a run for the materialization."""

    @dg.asset
    def my_table() -> int:
        return 1

    instance = dg.DagsterInstance.ephemeral()
    ctx = dg.build_sensor_context(instance)

    result = list(my_asset_sensor(ctx))
    assert len(result) == 1
    assert isinstance(result[0], dg.SkipReason)
    assert result[0].skip_message == (
        "No new materialization events found for asset key AssetKey(['my_table'])"
    )

    dg.materialize([my_table], instance=instance)

    result = list(my_asset_sensor(ctx))
    assert len(result) == 1
    assert isinstance(result[0], dg.RunRequest)
    assert result[0].run_key == ctx.cursor
    config = result[0].run_config["ops"]["read_materialization"]["config"]
    assert list(config["asset_key"]) == ["my_table"]

    # The cursor moved past that materialization: the next evaluation skips again.
    [again] = list(my_asset_sensor(ctx))
    assert isinstance(again, dg.SkipReason)


def test_an_asset_sensor_tick_evaluated_on_an_instance() -> None:
    """`evaluate_tick` with such a context reads the newest materialization after the
    cursor, as the docs' custom evaluation sample expects of `asset_event`."""

    @dg.asset
    def daily_sales_data(context: dg.AssetExecutionContext):  # type: ignore[no-untyped-def]
        context.log.info("Asset to watch, perhaps some function sets metadata here")
        yield dg.MaterializeResult(metadata={"specific_property": "value"})

    @dg.asset
    def weekly_report(context: dg.AssetExecutionContext) -> None:
        context.log.info("Running weekly report")

    weekly_job = dg.define_asset_job("my_job", [weekly_report])

    @dg.asset_sensor(asset_key=dg.AssetKey("daily_sales_data"), job=weekly_job)
    def daily_sales_data_sensor(context: dg.SensorEvaluationContext, asset_event):  # type: ignore[no-untyped-def]
        materialization: dg.AssetMaterialization = (
            asset_event.dagster_event.event_specific_data.materialization
        )
        if "specific_property" in materialization.metadata:
            context.log.info("Triggering job based on custom evaluation logic")
            yield dg.RunRequest(run_key=context.cursor)
        else:
            yield dg.SkipReason("Asset materialization does not have the required property")

    with dg.instance_for_test() as instance:
        dg.materialize([daily_sales_data], instance=instance)
        dg.materialize([daily_sales_data], instance=instance)
        context = dg.build_sensor_context(instance=instance)
        tick = daily_sales_data_sensor.evaluate_tick(context)
        [request] = tick.run_requests
        assert request.job_name == "my_job"
        assert tick.cursor is not None and request.run_key == tick.cursor
        later = daily_sales_data_sensor.evaluate_tick(
            dg.build_sensor_context(instance, tick.cursor)
        )
        assert later.run_requests == [] and later.skip_message is not None


def test_an_asset_sensor_invoked_with_a_context_without_instance_says_what_it_needs() -> None:
    with pytest.raises(dg.DefinitionError, match=r"my_asset_sensor.*build_sensor_context"):
        my_asset_sensor(dg.build_sensor_context())


# -- testing sensors and schedules that use resources -----------------------------------------


class UsersAPI(dg.ConfigurableResource):
    url: str

    def fetch_users(self) -> list[str]:
        raise AssertionError("the test passes a fake")


@dg.job
def process_user() -> None: ...


@dg.sensor(job=process_user)
def process_new_users_sensor(context: dg.SensorEvaluationContext, users_api: UsersAPI):  # type: ignore[no-untyped-def]
    last_user = int(context.cursor) if context.cursor else 0
    users = users_api.fetch_users()

    num_users = len(users)
    for user_id in users[last_user:]:
        yield dg.RunRequest(run_key=user_id, tags={"user_id": user_id})

    context.update_cursor(str(num_users))


def test_process_new_users_sensor() -> None:
    """The docs' test of a sensor using a resource, with the context built in `with`."""

    class FakeUsersAPI:
        def fetch_users(self) -> list[str]:
            return ["1", "2", "3"]

    with dg.build_sensor_context() as context:
        run_requests = list(process_new_users_sensor(context, users_api=FakeUsersAPI()))
        assert len(run_requests) == 3
    assert context.cursor == "3"


class DateFormatter(dg.ConfigurableResource):
    format: str

    def strftime(self, dt: datetime.datetime) -> str:
        return dt.strftime(self.format)


@dg.job
def process_data() -> None: ...


@dg.schedule(job=process_data, cron_schedule="* * * * *")
def process_data_schedule(context: dg.ScheduleEvaluationContext, date_formatter: DateFormatter):  # type: ignore[no-untyped-def]
    formatted_date = date_formatter.strftime(context.scheduled_execution_time)
    return dg.RunRequest(run_key=None, tags={"date": formatted_date})


def test_process_data_schedule() -> None:
    with dg.build_schedule_context(
        scheduled_execution_time=datetime.datetime(2020, 1, 1)
    ) as context:
        run_request = process_data_schedule(
            context, date_formatter=DateFormatter(format="%Y-%m-%d")
        )
        assert run_request.tags == {"date": "2020-01-01"}


# -- run status sensors: monitoring every code location ---------------------------------------


def send_slack_alert() -> None: ...


@dg.run_status_sensor(
    monitor_all_repositories=True,
    run_status=dg.DagsterRunStatus.SUCCESS,
)
def instance_sensor() -> None:
    # when any job in the Dagster instance succeeds, this sensor will trigger
    send_slack_alert()


def test_monitor_all_repositories_is_the_older_name_of_monitor_all_code_locations() -> None:
    assert instance_sensor.monitor_all_code_locations

    @dg.run_failure_sensor(monitor_all_repositories=True)
    def everywhere_failures() -> None: ...

    assert everywhere_failures.monitor_all_code_locations

    with pytest.raises(dg.DefinitionError, match="monitor_all_repositories"):
        dg.run_status_sensor(monitor_all_code_locations=True, monitor_all_repositories=True)


# -- run failure sensors: the failed steps of a run -------------------------------------------


@dg.op
def fails() -> None:
    raise Exception("failure!")


@dg.job
def my_job_fails() -> None:
    fails()


FAILED_STEPS: list[str] = []


@dg.run_failure_sensor
def my_step_failure_sensor(context: dg.RunFailureSensorContext) -> None:
    for event in context.get_step_failure_events():
        FAILED_STEPS.append(f"{event.step_key}: {event.event_specific_data.error.message}")


def test_a_built_failure_context_reads_the_runs_step_failures_from_its_instance() -> None:
    FAILED_STEPS.clear()
    instance = dg.DagsterInstance.ephemeral()
    result = my_job_fails.execute_in_process(instance=instance, raise_on_error=False)
    run_failure_sensor_context = dg.build_run_status_sensor_context(
        sensor_name="my_step_failure_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_job_failure_event(),
    ).for_run_failure()
    my_step_failure_sensor(run_failure_sensor_context)
    assert len(FAILED_STEPS) == 1
    assert FAILED_STEPS[0].startswith("fails: ") and "failure!" in FAILED_STEPS[0]


# -- run_request_for_partition ----------------------------------------------------------------

weekly_partitions_def = dg.WeeklyPartitionsDefinition(start_date="2022-08-01")


@dg.asset(partitions_def=weekly_partitions_def)
def downstream_weekly_asset() -> int:
    return 1


weekly_asset_job = dg.define_asset_job(
    "weekly_asset_job",
    dg.AssetSelection.assets("downstream_weekly_asset"),
    partitions_def=weekly_partitions_def,
)


@dg.sensor(job=weekly_asset_job)
def weekly_sensor():  # type: ignore[no-untyped-def]
    return [weekly_asset_job.run_request_for_partition("2022-08-07")]


def test_an_asset_job_makes_the_run_request_for_one_of_its_partitions() -> None:
    [request] = weekly_sensor.evaluate_tick(dg.build_sensor_context()).run_requests
    assert request.partition_key == "2022-08-07"
    assert request.tags["dagster/partition"] == "2022-08-07"
    assert request.job_name == "weekly_asset_job"
    with pytest.raises(dg.DagsterUnknownPartitionError, match="weekly_asset_job"):
        weekly_asset_job.run_request_for_partition("2022-08-08")


def test_a_partitioned_job_fills_in_its_partitions_run_config() -> None:
    @dg.op(config_schema={"date": str})
    def process_data_for_date(context: dg.OpExecutionContext) -> str:
        return str(context.op_config["date"])

    @dg.daily_partitioned_config(start_date="2020-01-01")
    def my_partitioned_config(start: datetime.datetime, _end: datetime.datetime):  # type: ignore[no-untyped-def]
        return {"ops": {"process_data_for_date": {"config": {"date": start.strftime("%Y-%m-%d")}}}}

    @dg.job(config=my_partitioned_config)
    def do_stuff_partitioned() -> None:
        process_data_for_date()

    @dg.schedule(job=do_stuff_partitioned, cron_schedule="0 0 * * *")
    def my_schedule(context: dg.ScheduleEvaluationContext):  # type: ignore[no-untyped-def]
        return do_stuff_partitioned.run_request_for_partition(
            partition_key="2020-01-02", run_key="2020-01-02", tags={"team": "a"}
        )

    [request] = my_schedule.evaluate_tick(dg.build_schedule_context()).run_requests
    assert request.run_key == "2020-01-02"
    assert request.partition_key == "2020-01-02"
    assert request.tags["team"] == "a"
    assert request.run_config == {
        "ops": {"process_data_for_date": {"config": {"date": "2020-01-02"}}}
    }


def test_an_asset_job_without_partitions_def_says_how_to_request_a_partition() -> None:
    job = dg.define_asset_job("plain_asset_job", [downstream_weekly_asset])
    with pytest.raises(dg.DagsterInvalidInvocationError, match=r"plain_asset_job.*partitions_def"):
        job.run_request_for_partition("2022-08-07")


# -- multi-asset sensors ----------------------------------------------------------------------


@dg.multi_asset_sensor(
    monitored_assets=[dg.AssetKey("asset_a"), dg.AssetKey("asset_b")],
    job=my_job,
)
def asset_a_and_b_sensor(context):  # type: ignore[no-untyped-def]
    asset_events = context.latest_materialization_records_by_key()
    if all(asset_events.values()):
        context.advance_all_cursors()
        return dg.RunRequest(run_key=context.cursor, run_config={})
    return None


@dg.multi_asset_sensor(asset_keys=[dg.AssetKey("asset_c")], job=my_job)
def every_fifth_asset_c_sensor(context):  # type: ignore[no-untyped-def]
    # this sensor will return a run request every fifth materialization of asset_c
    asset_events = context.materialization_records_for_key(
        asset_key=dg.AssetKey("asset_c"), limit=5
    )
    if len(asset_events) == 5:
        context.advance_cursor({dg.AssetKey("asset_c"): asset_events[-1]})
        return dg.RunRequest(run_key=f"{context.cursor}")
    else:
        # we don't update the cursor here since we want to keep fetching the same events
        # until we fetch 5 events
        return dg.SkipReason(f"asset_c only materialized {len(asset_events)} times.")


@dg.asset
def asset_a() -> int:
    return 1


@dg.asset
def asset_b() -> int:
    return 2


@dg.asset
def asset_c() -> int:
    return 3


def test_a_multi_asset_sensor_requests_a_run_once_both_assets_materialized() -> None:
    defs = dg.Definitions(
        assets=[asset_a, asset_b, asset_c], jobs=[my_job], sensors=[asset_a_and_b_sensor]
    )
    with dg.instance_for_test() as instance:
        dg.materialize([asset_a, asset_b], instance=instance)
        ctx = dg.build_multi_asset_sensor_context(
            monitored_assets=[dg.AssetKey("asset_a"), dg.AssetKey("asset_b")],
            instance=instance,
            repository_def=defs,
        )
        request = asset_a_and_b_sensor(ctx)
        assert isinstance(request, dg.RunRequest)
        assert request.run_key == ctx.cursor

        # Both cursors moved: nothing new until both assets materialize again.
        dg.materialize([asset_a], instance=instance)
        tick = asset_a_and_b_sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=ctx.cursor)
        )
        assert tick.run_requests == [] and tick.cursor == ctx.cursor
        dg.materialize([asset_b], instance=instance)
        tick = asset_a_and_b_sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=ctx.cursor)
        )
        [again] = tick.run_requests
        assert again.job_name == "my_job" and tick.cursor == again.run_key != ctx.cursor


def test_a_multi_asset_sensor_counts_materializations_after_its_cursor() -> None:
    with dg.instance_for_test() as instance:
        for _ in range(6):
            dg.materialize([asset_c], instance=instance)
        ctx = dg.build_multi_asset_sensor_context(
            monitored_assets=[dg.AssetKey("asset_c")], instance=instance
        )
        assert isinstance(every_fifth_asset_c_sensor(ctx), dg.RunRequest)
        skipped = every_fifth_asset_c_sensor(ctx)
        assert isinstance(skipped, dg.SkipReason)
        assert skipped.skip_message == "asset_c only materialized 1 times."


def test_a_multi_asset_sensor_the_daemon_evaluates_says_it_needs_an_instance() -> None:
    with pytest.raises(dg.DefinitionError, match=r"asset_a_and_b_sensor.*instance"):
        asset_a_and_b_sensor.evaluate_tick(dg.build_sensor_context())


def test_a_multi_asset_context_can_start_from_the_latest_materializations() -> None:
    defs = dg.Definitions(assets=[asset_a, asset_b, asset_c])
    with dg.instance_for_test() as instance:
        dg.materialize([asset_a, asset_b], instance=instance)
        ctx = dg.build_multi_asset_sensor_context(
            monitored_assets=dg.AssetSelection.assets(asset_a, asset_b),
            instance=instance,
            definitions=defs,
            cursor_from_latest_materializations=True,
        )
        assert ctx.asset_keys == [dg.AssetKey("asset_a"), dg.AssetKey("asset_b")]
        assert ctx.latest_materialization_records_by_key() == {
            dg.AssetKey("asset_a"): None,
            dg.AssetKey("asset_b"): None,
        }
        with pytest.raises(dg.DefinitionError, match="does not monitor asset 'asset_c'"):
            ctx.materialization_records_for_key(dg.AssetKey("asset_c"))


daily_partitions_def = dg.DailyPartitionsDefinition(start_date="2022-08-01")


@dg.asset(partitions_def=daily_partitions_def)
def upstream_daily_1() -> int:
    return 1


@dg.asset(partitions_def=daily_partitions_def)
def upstream_daily_2() -> int:
    return 1


@dg.asset(partitions_def=daily_partitions_def)
def downstream_daily_asset() -> int:
    return 1


downstream_daily_job = dg.define_asset_job(
    "downstream_daily_job",
    dg.AssetSelection.keys("downstream_daily_asset"),
    partitions_def=daily_partitions_def,
)


@dg.multi_asset_sensor(monitored_assets=[dg.AssetKey("upstream_daily_1")], job=weekly_asset_job)
def trigger_weekly_asset_from_daily_asset(context):  # type: ignore[no-untyped-def]
    run_requests_by_partition = {}
    materializations_by_partition = context.latest_materialization_records_by_partition(
        dg.AssetKey("upstream_daily_1")
    )

    # Get all corresponding weekly partitions for any materialized daily partitions
    for partition, materialization in materializations_by_partition.items():
        weekly_partitions = context.get_downstream_partition_keys(
            partition,
            from_asset_key=dg.AssetKey("upstream_daily_1"),
            to_asset_key=dg.AssetKey("downstream_weekly_asset"),
        )

        if weekly_partitions:  # Check that a downstream weekly partition exists
            # Upstream daily partition can only map to at most one downstream weekly partition
            daily_partitions_in_week = context.get_downstream_partition_keys(
                weekly_partitions[0],
                from_asset_key=dg.AssetKey("downstream_weekly_asset"),
                to_asset_key=dg.AssetKey("upstream_daily_1"),
            )
            if context.all_partitions_materialized(
                dg.AssetKey("upstream_daily_1"), daily_partitions_in_week
            ):
                run_requests_by_partition[weekly_partitions[0]] = (
                    weekly_asset_job.run_request_for_partition(weekly_partitions[0])
                )
                # Advance the cursor so we only check event log records past the cursor
                context.advance_cursor({dg.AssetKey("upstream_daily_1"): materialization})
    return list(run_requests_by_partition.values())


@dg.multi_asset_sensor(
    monitored_assets=[dg.AssetKey("upstream_daily_1"), dg.AssetKey("upstream_daily_2")],
    job=downstream_daily_job,
)
def trigger_daily_asset_if_both_upstream_partitions_materialized(context):  # type: ignore[no-untyped-def]
    run_requests = []
    for (
        partition,
        materializations_by_asset,
    ) in context.latest_materialization_records_by_partition_and_asset().items():
        if set(materializations_by_asset.keys()) == set(context.asset_keys):
            run_requests.append(downstream_daily_job.run_request_for_partition(partition))
            for asset_key, materialization in materializations_by_asset.items():
                context.advance_cursor({asset_key: materialization})
    return run_requests


@dg.multi_asset_sensor(
    monitored_assets=[dg.AssetKey("upstream_daily_1"), dg.AssetKey("upstream_daily_2")],
    job=downstream_daily_job,
)
def trigger_daily_asset_when_any_upstream_partitions_have_new_materializations(context):  # type: ignore[no-untyped-def]
    run_requests = []
    for (
        partition,
        materializations_by_asset,
    ) in context.latest_materialization_records_by_partition_and_asset().items():
        if all(
            [
                context.all_partitions_materialized(asset_key, [partition])
                for asset_key in context.asset_keys
            ]
        ):
            run_requests.append(downstream_daily_job.run_request_for_partition(partition))
            for asset_key, materialization in materializations_by_asset.items():
                if asset_key in context.asset_keys:
                    context.advance_cursor({asset_key: materialization})
    return run_requests


partitioned_defs = dg.Definitions(
    assets=[upstream_daily_1, upstream_daily_2, downstream_daily_asset, downstream_weekly_asset],
    jobs=[downstream_daily_job, weekly_asset_job],
    sensors=[
        trigger_weekly_asset_from_daily_asset,
        trigger_daily_asset_if_both_upstream_partitions_materialized,
        trigger_daily_asset_when_any_upstream_partitions_have_new_materializations,
    ],
)


def _upstream_context(instance: Any, *keys: str) -> dg.MultiAssetSensorEvaluationContext:
    return dg.build_multi_asset_sensor_context(
        monitored_assets=[dg.AssetKey(key) for key in keys],
        instance=instance,
        repository_def=partitioned_defs,
    )


def test_multi_asset_sensor_AND() -> None:
    with dg.instance_for_test() as instance:
        dg.materialize(
            [upstream_daily_1, upstream_daily_2], instance=instance, partition_key="2022-08-01"
        )
        and_ctx = _upstream_context(instance, "upstream_daily_1", "upstream_daily_2")
        run_requests = list(trigger_daily_asset_if_both_upstream_partitions_materialized(and_ctx))
        assert len(run_requests) == 1
        assert run_requests[0].tags["dagster/partition"] == "2022-08-01"

        dg.materialize([upstream_daily_1], instance=instance, partition_key="2022-08-02")
        assert list(trigger_daily_asset_if_both_upstream_partitions_materialized(and_ctx)) == []

        dg.materialize([upstream_daily_2], instance=instance, partition_key="2022-08-02")
        run_requests = list(trigger_daily_asset_if_both_upstream_partitions_materialized(and_ctx))
        assert len(run_requests) == 1
        assert run_requests[0].tags["dagster/partition"] == "2022-08-02"


def test_multi_asset_sensor_OR() -> None:
    with dg.instance_for_test() as instance:
        dg.materialize(
            [upstream_daily_1, upstream_daily_2], instance=instance, partition_key="2022-08-01"
        )
        or_ctx = _upstream_context(instance, "upstream_daily_1", "upstream_daily_2")
        sensor = trigger_daily_asset_when_any_upstream_partitions_have_new_materializations
        run_requests = list(sensor(or_ctx))
        assert len(run_requests) == 1
        assert run_requests[0].tags["dagster/partition"] == "2022-08-01"

        dg.materialize([upstream_daily_1], instance=instance, partition_key="2022-08-01")
        run_requests = list(sensor(or_ctx))
        assert len(run_requests) == 1
        assert run_requests[0].tags["dagster/partition"] == "2022-08-01"


def test_multi_asset_sensor_weekly_from_daily() -> None:
    """A partition stepped over by a later advance stays unconsumed: 2022-08-21 is seen
    again after the cursor moved past it to a newer materialization of 2022-08-20."""
    with dg.instance_for_test() as instance:
        for date in [f"2022-08-{day}" for day in range(14, 21)]:
            dg.materialize([upstream_daily_1], instance=instance, partition_key=date)
        ctx = _upstream_context(instance, "upstream_daily_1")
        run_requests = list(trigger_weekly_asset_from_daily_asset(ctx))
        assert len(run_requests) == 1
        assert run_requests[0].tags["dagster/partition"] == "2022-08-14"

        dg.materialize([upstream_daily_1], instance=instance, partition_key="2022-08-21")
        assert list(trigger_weekly_asset_from_daily_asset(ctx)) == []

        dg.materialize([upstream_daily_1], instance=instance, partition_key="2022-08-20")
        run_requests = list(trigger_weekly_asset_from_daily_asset(ctx))
        assert len(run_requests) == 1
        assert run_requests[0].tags["dagster/partition"] == "2022-08-14"
        pending = ctx.latest_materialization_records_by_partition(dg.AssetKey("upstream_daily_1"))
        assert list(pending) == ["2022-08-21"]


# -- schedules: the tick's time in the schedule's timezone ------------------------------------


@dg.op(config_schema={"scheduled_date": str})
def configurable_op(context: dg.OpExecutionContext) -> None:
    context.log.info(context.op_config["scheduled_date"])


@dg.job
def configurable_job() -> None:
    configurable_op()


@dg.schedule(job=configurable_job, cron_schedule="0 22 * * *", execution_timezone="US/Pacific")
def configurable_job_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    scheduled_date = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return dg.RunRequest(
        run_key=None,
        run_config={"ops": {"configurable_op": {"config": {"scheduled_date": scheduled_date}}}},
        tags={"date": scheduled_date},
    )


def test_a_scheduled_tick_is_seen_in_the_schedules_execution_timezone() -> None:
    """10 pm in California is 6 am the next day in UTC: the run is for the Californian
    date, as Dagster's scheduler passes the tick's time in the execution timezone."""
    from zoneinfo import ZoneInfo

    from dagloom.actors.code_location import evaluate_schedule
    from dagloom.messages.rpc import EvaluateScheduleRequest

    defs = dg.Definitions(jobs=[configurable_job], schedules=[configurable_job_schedule])
    tick = datetime.datetime(2024, 1, 1, 22, tzinfo=ZoneInfo("US/Pacific"))
    result = evaluate_schedule(
        defs,
        EvaluateScheduleRequest(
            schedule_name="configurable_job_schedule", scheduled_execution_time=tick.timestamp()
        ),
        now=0,
    )
    [request] = result.run_requests
    assert request.tags["date"] == "2024-01-01"


# -- alerting: make_email_on_run_failure_sensor -----------------------------------------------


class _RecordingSMTP:
    """Stands in for smtplib's SMTP_SSL / SMTP: records what would be sent."""

    sent: list[tuple[str, list[str], str]] = []
    logins: list[tuple[str, str]] = []

    def __init__(self, host: str, port: int, **_: Any) -> None:
        self.host, self.port = host, port

    def __enter__(self) -> _RecordingSMTP:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def starttls(self, **_: Any) -> None: ...

    def login(self, user: str, password: str) -> None:
        self.logins.append((user, password))

    def sendmail(self, from_addr: str, to_addrs: list[str], msg: str) -> None:
        self.sent.append((from_addr, to_addrs, msg))


def test_email_on_run_failure_sends_one_email_per_failed_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import smtplib

    monkeypatch.setattr(smtplib, "SMTP_SSL", _RecordingSMTP)
    _RecordingSMTP.sent, _RecordingSMTP.logins = [], []
    email_on_run_failure = dg.make_email_on_run_failure_sensor(
        email_from="no-reply@example.com",
        email_password="secret",
        email_to=["xxx@example.com", "xyz@example.com"],
        webserver_base_url="http://localhost:3000",
    )
    assert email_on_run_failure.name == "email_on_run_failure"
    defs = dg.Definitions(jobs=[my_job_fails], sensors=[email_on_run_failure])
    assert defs.get_sensor_def("email_on_run_failure") is email_on_run_failure

    instance = dg.DagsterInstance.ephemeral()
    result = my_job_fails.execute_in_process(instance=instance, raise_on_error=False)
    context = dg.build_run_status_sensor_context(
        sensor_name="email_on_run_failure",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_job_failure_event(),
    ).for_run_failure()
    email_on_run_failure(context)

    [(sender, recipients, message)] = _RecordingSMTP.sent
    assert sender == "no-reply@example.com"
    assert recipients == ["xxx@example.com", "xyz@example.com"]
    assert "Subject: Dagster Run Failed: my_job_fails" in message
    assert f"/runs/{result.run_id}" in message
    assert _RecordingSMTP.logins == [("no-reply@example.com", "secret")]


def test_email_on_run_failure_refuses_an_unknown_smtp_type() -> None:
    with pytest.raises(dg.DefinitionError, match="smtp_type"):
        dg.make_email_on_run_failure_sensor(
            email_from="a@example.com",
            email_password="",
            email_to=["b@example.com"],
            smtp_type="PLAIN",
        )


# -- sensors reading the instance in tests ----------------------------------------------------

images_partitions_def = dg.DynamicPartitionsDefinition(name="images")


@dg.asset(partitions_def=images_partitions_def)
def images(context: dg.AssetExecutionContext) -> None: ...


images_job = dg.define_asset_job(
    "images_job", dg.AssetSelection.assets(images), partitions_def=images_partitions_def
)


@dg.sensor(job=images_job)
def image_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    new_images = [
        img_filename
        for img_filename in ["a.png", "b.png"]
        if not context.instance.has_dynamic_partition(images_partitions_def.name, img_filename)
    ]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=img_filename) for img_filename in new_images],
        dynamic_partitions_requests=[images_partitions_def.build_add_request(new_images)],
    )


@dg.sensor(job=my_job)
def latest_table_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    event = context.instance.get_latest_materialization_event(dg.AssetKey("my_table"))
    if event is None:
        return dg.SkipReason("my_table was never materialized")
    return dg.RunRequest(run_key=event.run_id)


def test_a_sensor_reads_the_instance_its_test_context_was_built_with() -> None:
    @dg.asset
    def my_table() -> int:
        return 1

    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance)
    assert isinstance(latest_table_sensor(context), dg.SkipReason)
    result = dg.materialize([my_table], instance=instance)
    request = latest_table_sensor(context)
    assert isinstance(request, dg.RunRequest) and request.run_key == result.run_id

    instance.add_dynamic_partitions("images", ["a.png"])
    tick = image_sensor.evaluate_tick(context)
    assert [r.partition_key for r in tick.run_requests] == ["b.png"]
    [add] = tick.dynamic_partitions_requests
    assert add.partition_keys == ["b.png"]


# -- an asset sensor whose function takes no parameters ---------------------------------------


@dg.asset
def daily_sales_data(context: dg.AssetExecutionContext) -> None:
    context.log.info("Asset to watch")


@dg.asset
def weekly_report(context: dg.AssetExecutionContext) -> None:
    context.log.info("Asset to trigger")


# Job that materializes the `weekly_report` asset
report_job = dg.define_asset_job("report_job", [weekly_report])


# Trigger `report_job` when the `daily_sales_data` asset is materialized
@dg.asset_sensor(asset_key=dg.AssetKey("daily_sales_data"), job_name="report_job")
def daily_sales_data_sensor() -> dg.RunRequest:
    return dg.RunRequest()


def test_an_asset_sensor_function_may_take_no_parameters() -> None:
    from dagloom.actors.code_location import evaluate_sensor
    from dagloom.messages import (
        AssetKeyMessage,
        AssetMaterializationData,
        Event,
        EventRecord,
        EventType,
    )
    from dagloom.messages.rpc import EvaluateSensorRequest

    defs = dg.Definitions(
        assets=[daily_sales_data, weekly_report],
        jobs=[report_job],
        sensors=[daily_sales_data_sensor],
    )
    with dg.instance_for_test() as instance:
        dg.materialize([daily_sales_data], instance=instance)
        tick = daily_sales_data_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        [request] = tick.run_requests
        assert request.job_name == "report_job"

    materialized = EventRecord(
        storage_id=7,
        event=Event(
            run_id="m",
            event_type=EventType.ASSET_MATERIALIZATION,
            asset_materialization=AssetMaterializationData(
                asset_key=AssetKeyMessage(path=["daily_sales_data"])
            ),
        ),
    )
    result = evaluate_sensor(
        defs, EvaluateSensorRequest(sensor_name="daily_sales_data_sensor", events=[materialized])
    )
    assert result.error is None
    assert [r.job_name for r in result.run_requests] == ["report_job"]
    assert result.cursor == "7"


# -- schedules and sensors whose targets bring their assets -----------------------------------


@dg.asset
def customer_data() -> None: ...


@dg.asset
def sales_report() -> None: ...


daily_schedule = dg.ScheduleDefinition(
    name="daily_refresh",
    cron_schedule="0 0 * * *",  # Runs at midnight daily
    target=[customer_data, sales_report],
)


def test_the_basic_schedule_brings_the_assets_it_targets() -> None:
    """The schedules guide's first sample: the assets are only in the schedule's target."""
    defs = dg.Definitions(schedules=[daily_schedule])
    schedule = defs.get_schedule_def("daily_refresh")
    job = defs.get_job_def(schedule.job_name)
    assert job.execute_in_process().success
    assert {a.key for a in defs.assets} == {
        dg.AssetKey("customer_data"),
        dg.AssetKey("sales_report"),
    }
    # Listing them as well changes nothing.
    both = dg.Definitions(assets=[customer_data], schedules=[daily_schedule])
    assert sorted(a.key.to_user_string() for a in both.assets) == ["customer_data", "sales_report"]


class AssetConfig(dg.Config):
    scheduled_date: str


@dg.asset
def configurable_asset(context: dg.AssetExecutionContext, config: AssetConfig) -> None:
    context.log.info(config.scheduled_date)


@dg.schedule(target=configurable_asset, cron_schedule="0 0 * * *")
def configurable_asset_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    scheduled_date = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return dg.RunRequest(
        run_key=None,
        run_config={"ops": {"configurable_asset": {"config": {"scheduled_date": scheduled_date}}}},
        tags={"date": scheduled_date},
    )


@dg.sensor(target=[customer_data])
def customer_data_sensor() -> dg.RunRequest:
    return dg.RunRequest()


def test_a_schedule_and_a_sensor_targeting_one_asset_bring_it() -> None:
    defs = dg.Definitions(schedules=[configurable_asset_schedule], sensors=[customer_data_sensor])
    assert {a.key for a in defs.assets} == {
        dg.AssetKey("configurable_asset"),
        dg.AssetKey("customer_data"),
    }
    schedule = defs.get_schedule_def("configurable_asset_schedule")
    context = dg.build_schedule_context(scheduled_execution_time=datetime.datetime(2024, 5, 1))
    [request] = schedule.evaluate_tick(context).run_requests
    result = defs.get_job_def(schedule.job_name).execute_in_process(run_config=request.run_config)
    assert result.success


# -- resources built for sensor and schedule ticks --------------------------------------------

CONNECTIONS: list[str] = []


@dg.resource
def the_db_connection(_: dg.InitResourceContext):  # type: ignore[no-untyped-def]
    CONNECTIONS.append("open")
    yield "connection"
    CONNECTIONS.append("closed")


@dg.resource(config_schema={"url": str})
def run_only_api(init_context: dg.InitResourceContext) -> str:
    return str(init_context.resource_config["url"])


@dg.job
def the_job() -> None: ...


@dg.sensor(job=the_job, required_resource_keys={"db_connection"})
def uses_db_connection(context: dg.SensorEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(tags={"conn": context.resources.db_connection})


@dg.schedule(job=the_job, cron_schedule="0 0 * * *", required_resource_keys={"db_connection"})
def uses_db_connection_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(tags={"conn": context.resources.db_connection})


def test_a_resource_function_is_built_for_a_test_context_and_torn_down_after() -> None:
    CONNECTIONS.clear()
    with dg.build_sensor_context(resources={"db_connection": the_db_connection}) as context:
        [request] = uses_db_connection.evaluate_tick(context).run_requests
        assert request.tags["conn"] == "connection"
        assert CONNECTIONS == ["open"]
    assert CONNECTIONS == ["open", "closed"]

    with dg.build_schedule_context(resources={"db_connection": the_db_connection}) as context:
        assert uses_db_connection_schedule(context).tags == {"conn": "connection"}
    with pytest.raises(dg.DefinitionError, match=r"uses_db_connection_schedule.*db_connection"):
        uses_db_connection_schedule.evaluate_tick(dg.build_schedule_context())


def test_a_tick_builds_only_the_resources_it_uses() -> None:
    """`run_only_api` needs config that only runs give: the ticks neither build nor fail
    on it, and the connection they use is closed when each tick ends."""
    from dagloom.actors.code_location import evaluate_schedule, evaluate_sensor
    from dagloom.messages.rpc import EvaluateScheduleRequest, EvaluateSensorRequest

    CONNECTIONS.clear()
    defs = dg.Definitions(
        jobs=[the_job],
        sensors=[uses_db_connection],
        schedules=[uses_db_connection_schedule],
        resources={"db_connection": the_db_connection, "api": run_only_api},
    )
    sensor_tick = evaluate_sensor(defs, EvaluateSensorRequest(sensor_name="uses_db_connection"))
    assert sensor_tick.error is None
    assert sensor_tick.run_requests[0].tags["conn"] == "connection"
    schedule_tick = evaluate_schedule(
        defs, EvaluateScheduleRequest(schedule_name="uses_db_connection_schedule"), now=1e9
    )
    assert schedule_tick.error is None
    assert schedule_tick.run_requests[0].tags["conn"] == "connection"
    assert CONNECTIONS == ["open", "closed", "open", "closed"]


def test_a_schedule_context_carries_its_definitions() -> None:
    from dagloom.actors.code_location import evaluate_schedule
    from dagloom.messages.rpc import EvaluateScheduleRequest

    @dg.schedule(job=the_job, cron_schedule="0 0 * * *")
    def names_jobs(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(tags={"jobs": ",".join(context.repository_def.job_names)})

    defs = dg.Definitions(jobs=[the_job], schedules=[names_jobs])
    context = dg.build_schedule_context(repository_def=defs)
    assert names_jobs(context).tags == {"jobs": "the_job"}
    tick = evaluate_schedule(defs, EvaluateScheduleRequest(schedule_name="names_jobs"), now=1e9)
    assert tick.error is None and tick.run_requests[0].tags["jobs"] == "the_job"


def test_a_run_status_context_names_the_runs_partition() -> None:
    partitions = dg.StaticPartitionsDefinition(["a", "b"])

    @dg.asset(partitions_def=partitions)
    def lettered() -> None: ...

    seen: list[str | None] = []

    @dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS)
    def partition_sensor(context: dg.RunStatusSensorContext) -> None:
        seen.append(context.partition_key)

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([lettered], instance=instance, partition_key="b")
    with dg.build_run_status_sensor_context(
        sensor_name="partition_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_job_success_event(),
    ) as context:
        partition_sensor(context)
    assert seen == ["b"]
