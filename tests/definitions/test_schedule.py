"""Schedules: definition, decorator, evaluation, and DST-safe tick computation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dagloom.definitions.run_request import RunRequest, SkipReason
from dagloom.definitions.schedule import (
    SCHEDULE_NAME_TAG,
    SCHEDULED_EXECUTION_TIME_TAG,
    DefaultScheduleStatus,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    ScheduleExecutionData,
    build_schedule_context,
    schedule,
)
from dagloom.errors import DefinitionError, UserCodeError

CHICAGO = ZoneInfo("America/Chicago")


@dataclass(frozen=True)
class FakeJob:
    """Stands in for a JobDefinition or an unresolved asset job: all a schedule needs is
    `.name`."""

    name: str


process_numbers = FakeJob("process_numbers")
process_numbers_asset = FakeJob("process_numbers_asset")


def _context(when: datetime | None = None) -> ScheduleEvaluationContext:
    return build_schedule_context(scheduled_execution_time=when or datetime(2024, 5, 1, tzinfo=UTC))


# -- the seed's schedules ---------------------------------------------------------------------


def test_seed_schedules_fire_every_minute_for_their_job() -> None:
    process_numbers_every_minute = ScheduleDefinition(
        job=process_numbers,
        cron_schedule="* * * * *",
    )
    process_numbers_asset_every_minute = ScheduleDefinition(
        job=process_numbers_asset,
        cron_schedule="* * * * *",
    )
    assert process_numbers_every_minute.name == "process_numbers_schedule"
    assert process_numbers_asset_every_minute.name == "process_numbers_asset_schedule"
    assert process_numbers_every_minute.job is process_numbers
    assert process_numbers_every_minute.job_name == "process_numbers"
    assert process_numbers_every_minute.default_status is DefaultScheduleStatus.STOPPED
    assert process_numbers_every_minute.execution_timezone is None

    start = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
    assert process_numbers_every_minute.tick_times_between(start, start + timedelta(minutes=3)) == [
        datetime(2024, 5, 1, 12, 1, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 2, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 3, tzinfo=UTC),
    ]

    when = datetime(2024, 5, 1, 12, 1, tzinfo=UTC)
    data = process_numbers_every_minute.evaluate_tick(_context(when))
    assert data == ScheduleExecutionData(
        run_requests=[
            RunRequest(
                run_key=None,
                job_name="process_numbers",
                tags={
                    SCHEDULE_NAME_TAG: "process_numbers_schedule",
                    SCHEDULED_EXECUTION_TIME_TAG: "2024-05-01T12:01:00+00:00",
                },
            )
        ],
        skip_message=None,
    )


# -- ScheduleDefinition -----------------------------------------------------------------------


def test_plain_schedule_requests_its_run_config_and_tags() -> None:
    sched = ScheduleDefinition(
        name="nightly",
        job_name="etl",
        cron_schedule="0 0 * * *",
        run_config={"ops": {"load": {"config": {"full": True}}}},
        tags={"team": "data"},
        description="nightly load",
        default_status=DefaultScheduleStatus.RUNNING,
    )
    assert sched.description == "nightly load"
    assert sched.default_status is DefaultScheduleStatus.RUNNING
    (request,) = sched.evaluate_tick(_context()).run_requests
    assert request.run_key is None
    assert request.job_name == "etl"
    assert request.run_config == {"ops": {"load": {"config": {"full": True}}}}
    assert request.tags["team"] == "data"
    assert request.tags[SCHEDULE_NAME_TAG] == "nightly"


def test_job_name_only_schedule_names_itself_after_the_job() -> None:
    assert ScheduleDefinition(job_name="etl", cron_schedule="@daily").name == "etl_schedule"


def test_job_property_raises_when_only_a_name_was_given() -> None:
    with pytest.raises(DefinitionError):
        _ = ScheduleDefinition(job_name="etl", cron_schedule="@daily").job


def test_target_can_be_a_job() -> None:
    sched = ScheduleDefinition(target=process_numbers, cron_schedule="@hourly")
    assert sched.job is process_numbers
    assert sched.name == "process_numbers_schedule"


def test_target_that_is_an_asset_selection_needs_a_name() -> None:
    with pytest.raises(DefinitionError, match="name"):
        ScheduleDefinition(target=["asset_a"], cron_schedule="@hourly")
    sched = ScheduleDefinition("assets_hourly", target=["asset_a"], cron_schedule="@hourly")
    assert sched.target == ["asset_a"]
    assert sched.job_name == "__anonymous_asset_job_assets_hourly"


def test_schedule_needs_exactly_one_target() -> None:
    with pytest.raises(DefinitionError, match="one of"):
        ScheduleDefinition(name="x", cron_schedule="@daily")
    with pytest.raises(DefinitionError, match="only one"):
        ScheduleDefinition(job=process_numbers, job_name="other", cron_schedule="@daily")


def test_schedule_target_errors_name_the_options_and_the_nameless_job() -> None:
    with pytest.raises(DefinitionError) as info:
        ScheduleDefinition(
            name="x", job=process_numbers, target=["asset_a"], cron_schedule="@daily"
        )
    assert str(info.value) == (
        "schedule 'x': give only one of job, job_name or target, got ['job', 'target']"
    )
    nameless = object()
    with pytest.raises(DefinitionError) as info:
        ScheduleDefinition(name="x", job=nameless, cron_schedule="@daily")  # type: ignore[arg-type]
    assert str(info.value) == f"schedule 'x': job {nameless!r} has no name"


def test_run_config_fn_tags_fn_and_should_execute_are_called_with_the_context() -> None:
    seen: list[datetime] = []

    def run_config_fn(context: ScheduleEvaluationContext) -> dict[str, Any]:
        seen.append(context.scheduled_execution_time)
        return {"ops": {"a": {"config": {"date": context.scheduled_execution_time.isoformat()}}}}

    sched = ScheduleDefinition(
        job=process_numbers,
        cron_schedule="0 9 * * *",
        run_config_fn=run_config_fn,
        tags_fn=lambda context: {"kind": "daily"},
        should_execute=lambda context: context.scheduled_execution_time.weekday() < 5,
    )
    weekday = datetime(2024, 5, 1, 9, tzinfo=UTC)  # a Wednesday
    (request,) = sched.evaluate_tick(_context(weekday)).run_requests
    assert request.run_config["ops"]["a"]["config"]["date"] == weekday.isoformat()
    assert request.tags["kind"] == "daily"
    assert seen == [weekday]

    saturday = datetime(2024, 5, 4, 9, tzinfo=UTC)
    data = sched.evaluate_tick(_context(saturday))
    assert data.run_requests == []
    expected = "should_execute function for process_numbers_schedule returned false."
    assert data.skip_message == expected


def test_run_config_and_run_config_fn_together_are_rejected() -> None:
    with pytest.raises(DefinitionError, match="run_config"):
        ScheduleDefinition(
            job=process_numbers,
            cron_schedule="@daily",
            run_config={},
            run_config_fn=lambda context: {},
        )


@pytest.mark.parametrize(
    "cron",
    ["not a cron", "61 * * * *", "* * * *", "0 0 * * * *", "0 0 30 2 *", "0 0 31 4,6 *"],
)
def test_bad_cron_strings_raise_naming_the_schedule_and_the_string(cron: str) -> None:
    with pytest.raises(DefinitionError) as info:
        ScheduleDefinition(name="my_sched", job=process_numbers, cron_schedule=cron)
    assert "my_sched" in str(info.value)
    assert repr(cron) in str(info.value)
    assert info.value.name == "my_sched"


def test_bad_cron_in_a_list_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="nope"):
        ScheduleDefinition(job=process_numbers, cron_schedule=["0 * * * *", "nope"])
    with pytest.raises(DefinitionError):
        ScheduleDefinition(job=process_numbers, cron_schedule=[])


@pytest.mark.parametrize("cron", ["@hourly", "@daily", "@weekly", "@monthly", "0 0 31 * *"])
def test_aliases_and_sometimes_firing_crons_are_accepted(cron: str) -> None:
    ScheduleDefinition(job=process_numbers, cron_schedule=cron)


def test_bad_timezone_raises_naming_the_schedule() -> None:
    with pytest.raises(DefinitionError) as info:
        ScheduleDefinition(
            name="tz_sched",
            job=process_numbers,
            cron_schedule="@daily",
            execution_timezone="Mars/Olympus_Mons",
        )
    assert "tz_sched" in str(info.value)
    assert "Mars/Olympus_Mons" in str(info.value)


def test_invalid_schedule_name_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="name"):
        ScheduleDefinition(name="has spaces", job=process_numbers, cron_schedule="@daily")


# -- @schedule ---------------------------------------------------------------------------------


def test_decorated_schedule_returning_run_config_runs_with_decorator_tags() -> None:
    @schedule("0 6 * * *", job=process_numbers, tags={"src": "cron"})
    def morning(context: ScheduleEvaluationContext) -> dict[str, Any]:
        return {"ops": {"x": {"config": {"day": context.scheduled_execution_time.day}}}}

    assert morning.name == "morning"
    assert morning.cron_schedule == "0 6 * * *"
    (request,) = morning.evaluate_tick(_context(datetime(2024, 5, 7, 6, tzinfo=UTC))).run_requests
    assert request.run_config == {"ops": {"x": {"config": {"day": 7}}}}
    assert request.tags["src"] == "cron"
    assert request.job_name == "process_numbers"
    assert request.run_key is None


def test_decorated_schedule_may_take_no_context() -> None:
    @schedule(cron_schedule="@hourly", job_name="etl", name="every_hour")
    def hourly() -> RunRequest:
        return RunRequest(run_key="fixed")

    assert hourly.name == "every_hour"
    (request,) = hourly.evaluate_tick(_context()).run_requests
    assert request.run_key == "fixed"
    assert hourly() == RunRequest(run_key="fixed")


def test_decorated_schedule_can_skip() -> None:
    @schedule("@daily", job=process_numbers)
    def quiet(context: ScheduleEvaluationContext) -> SkipReason:
        return SkipReason("holiday")

    data = quiet.evaluate_tick(_context())
    assert data.run_requests == []
    assert data.skip_message == "holiday"


def test_decorated_schedule_returning_none_skips_with_a_message() -> None:
    @schedule("@daily", job=process_numbers)
    def nothing(context: ScheduleEvaluationContext) -> None:
        return None

    data = nothing.evaluate_tick(_context())
    assert data.run_requests == []
    assert data.skip_message


def test_decorated_schedule_may_yield_several_keyed_run_requests() -> None:
    @schedule("@daily", job=process_numbers)
    def fan_out(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        for region in ("eu", "us"):
            yield RunRequest(run_key=region, tags={"region": region})

    requests = fan_out.evaluate_tick(_context()).run_requests
    assert [r.run_key for r in requests] == ["eu", "us"]
    assert all(r.tags[SCHEDULE_NAME_TAG] == "fan_out" for r in requests)


def test_several_run_requests_without_run_keys_are_rejected() -> None:
    @schedule("@daily", job=process_numbers)
    def unkeyed(context: ScheduleEvaluationContext) -> list[RunRequest]:
        return [RunRequest(), RunRequest()]

    with pytest.raises(DefinitionError, match="run_key"):
        unkeyed.evaluate_tick(_context())


def test_run_request_for_another_job_is_rejected() -> None:
    @schedule("@daily", job=process_numbers)
    def wrong(context: ScheduleEvaluationContext) -> RunRequest:
        return RunRequest(job_name="other")

    with pytest.raises(DefinitionError, match="other"):
        wrong.evaluate_tick(_context())


def test_schedule_returning_a_wrong_type_raises_definition_error() -> None:
    @schedule("@daily", job=process_numbers)
    def weird(context: ScheduleEvaluationContext) -> int:
        return 42

    with pytest.raises(DefinitionError, match="int"):
        weird.evaluate_tick(_context())


def test_user_code_exception_becomes_user_code_error_from_the_original() -> None:
    @schedule("@daily", job=process_numbers)
    def broken(context: ScheduleEvaluationContext) -> dict[str, Any]:
        raise KeyError("missing")

    with pytest.raises(UserCodeError, match="broken") as info:
        broken.evaluate_tick(_context())
    assert isinstance(info.value.__cause__, KeyError)


def test_exception_raised_while_iterating_a_generator_is_wrapped_too() -> None:
    @schedule("@daily", job=process_numbers)
    def half(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        yield RunRequest(run_key="a")
        raise RuntimeError("boom")

    with pytest.raises(UserCodeError, match="half") as info:
        half.evaluate_tick(_context())
    assert isinstance(info.value.__cause__, RuntimeError)


def test_should_execute_exception_is_wrapped() -> None:
    def flaky(context: ScheduleEvaluationContext) -> bool:
        raise ValueError("no")

    sched = ScheduleDefinition(job=process_numbers, cron_schedule="@daily", should_execute=flaky)
    with pytest.raises(UserCodeError, match="process_numbers_schedule"):
        sched.evaluate_tick(_context())


def test_direct_invocation_returns_the_raw_result() -> None:
    @schedule("@daily", job=process_numbers)
    def configured(context: ScheduleEvaluationContext) -> dict[str, Any]:
        return {"ops": {"a": {"config": {"h": context.scheduled_execution_time.hour}}}}

    when = datetime(2024, 5, 1, 7, tzinfo=UTC)
    assert configured(_context(when)) == {"ops": {"a": {"config": {"h": 7}}}}
    assert configured(context=_context(when)) == {"ops": {"a": {"config": {"h": 7}}}}
    # No context given: one is built with "now" as the scheduled time.
    assert "ops" in configured()


def test_direct_invocation_of_a_plain_schedule_is_an_error() -> None:
    sched = ScheduleDefinition(job=process_numbers, cron_schedule="@daily")
    with pytest.raises(DefinitionError, match="@schedule"):
        sched()


def test_schedule_functions_receive_resources_by_parameter_name() -> None:
    class Warehouse:
        table = "events"

    @schedule("@daily", job=process_numbers)
    def with_resource(context: ScheduleEvaluationContext, warehouse: Warehouse) -> dict[str, Any]:
        return {"ops": {"load": {"config": {"table": warehouse.table}}}}

    context = build_schedule_context(resources={"warehouse": Warehouse()})
    assert context.resources.warehouse.table == "events"
    (request,) = with_resource.evaluate_tick(context).run_requests
    assert request.run_config == {"ops": {"load": {"config": {"table": "events"}}}}


def test_build_schedule_context_reads_naive_times_as_utc() -> None:
    context = build_schedule_context(scheduled_execution_time=datetime(2024, 1, 1, 5))
    assert context.scheduled_execution_time == datetime(2024, 1, 1, 5, tzinfo=UTC)
    assert context.instance is None
    assert context.log is not None


def test_build_schedule_context_defaults_to_now() -> None:
    before = datetime.now(UTC)
    context = build_schedule_context()
    assert before <= context.scheduled_execution_time <= datetime.now(UTC)


# -- tick times --------------------------------------------------------------------------------


def test_ticks_are_in_utc_by_default() -> None:
    sched = ScheduleDefinition(job=process_numbers, cron_schedule="0 9 * * *")
    tick = sched.next_tick_after(datetime(2024, 5, 1, 9, tzinfo=UTC))
    assert tick == datetime(2024, 5, 2, 9, tzinfo=UTC)
    assert tick.utcoffset() == timedelta(0)


def test_next_tick_is_strictly_after() -> None:
    sched = ScheduleDefinition(job=process_numbers, cron_schedule="*/15 * * * *")
    at_tick = datetime(2024, 5, 1, 9, 15, tzinfo=UTC)
    assert sched.next_tick_after(at_tick) == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert sched.next_tick_after(at_tick - timedelta(microseconds=1)) == at_tick


def test_ticks_follow_the_execution_timezone() -> None:
    sched = ScheduleDefinition(
        job=process_numbers, cron_schedule="0 9 * * *", execution_timezone="America/Chicago"
    )
    tick = sched.next_tick_after(datetime(2024, 7, 1, tzinfo=UTC))
    assert tick == datetime(2024, 7, 1, 9, tzinfo=CHICAGO)
    assert tick.tzinfo == CHICAGO
    assert tick.astimezone(UTC) == datetime(2024, 7, 1, 14, tzinfo=UTC)


def test_a_list_of_crons_fires_on_any_without_duplicates() -> None:
    sched = ScheduleDefinition(job=process_numbers, cron_schedule=["0 9 * * *", "0 9,17 * * *"])
    start = datetime(2024, 5, 1, tzinfo=UTC)
    assert sched.tick_times_between(start, start + timedelta(days=1)) == [
        datetime(2024, 5, 1, 9, tzinfo=UTC),
        datetime(2024, 5, 1, 17, tzinfo=UTC),
    ]


def test_tick_times_between_is_start_exclusive_end_inclusive() -> None:
    sched = ScheduleDefinition(job=process_numbers, cron_schedule="0 * * * *")
    start = datetime(2024, 5, 1, 1, tzinfo=UTC)
    end = datetime(2024, 5, 1, 3, tzinfo=UTC)
    assert sched.tick_times_between(start, end) == [
        datetime(2024, 5, 1, 2, tzinfo=UTC),
        end,
    ]
    assert sched.tick_times_between(end, start) == []


def test_tick_computation_rejects_naive_datetimes() -> None:
    sched = ScheduleDefinition(job=process_numbers, cron_schedule="@hourly")
    with pytest.raises(ValueError, match="timezone-aware"):
        sched.next_tick_after(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        sched.tick_times_between(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2))


def _chicago(cron: str) -> ScheduleDefinition:
    return ScheduleDefinition(
        job=process_numbers, cron_schedule=cron, execution_timezone="America/Chicago"
    )


def _utc_times(ticks: list[datetime]) -> list[str]:
    return [t.astimezone(UTC).strftime("%m-%d %H:%M") for t in ticks]


def test_daily_tick_inside_the_spring_forward_gap_runs_when_the_gap_ends() -> None:
    # 2024-03-10, Chicago: 02:00 CST jumps to 03:00 CDT, so 02:30 does not exist that day.
    ticks = _chicago("30 2 * * *").tick_times_between(
        datetime(2024, 3, 9, tzinfo=CHICAGO), datetime(2024, 3, 12, tzinfo=CHICAGO)
    )
    assert [t.strftime("%m-%d %H:%M %Z") for t in ticks] == [
        "03-09 02:30 CST",
        "03-10 03:00 CDT",
        "03-11 02:30 CDT",
    ]


def test_daily_tick_in_the_repeated_fall_back_hour_runs_once_at_the_second_occurrence() -> None:
    # 2024-11-03, Chicago: 01:00-02:00 happens twice (CDT, then CST).
    ticks = _chicago("30 1 * * *").tick_times_between(
        datetime(2024, 11, 2, tzinfo=CHICAGO), datetime(2024, 11, 5, tzinfo=CHICAGO)
    )
    assert [t.strftime("%m-%d %H:%M %Z") for t in ticks] == [
        "11-02 01:30 CDT",
        "11-03 01:30 CST",
        "11-04 01:30 CST",
    ]


def test_hourly_schedule_fires_once_an_hour_through_fall_back() -> None:
    ticks = _chicago("30 * * * *").tick_times_between(
        datetime(2024, 11, 3, tzinfo=CHICAGO), datetime(2024, 11, 3, 3, tzinfo=CHICAGO)
    )
    assert _utc_times(ticks) == ["11-03 05:30", "11-03 06:30", "11-03 07:30", "11-03 08:30"]
    assert [t.strftime("%H:%M %Z") for t in ticks] == [
        "00:30 CDT",
        "01:30 CDT",
        "01:30 CST",
        "02:30 CST",
    ]


def test_hourly_schedule_fires_once_an_hour_through_spring_forward() -> None:
    ticks = _chicago("30 * * * *").tick_times_between(
        datetime(2024, 3, 10, tzinfo=CHICAGO), datetime(2024, 3, 10, 4, tzinfo=CHICAGO)
    )
    # 02:30 does not exist; 01:30 CST to 03:30 CDT is one hour.
    assert _utc_times(ticks) == ["03-10 06:30", "03-10 07:30", "03-10 08:30"]
    assert [t.strftime("%H:%M %Z") for t in ticks] == ["00:30 CST", "01:30 CST", "03:30 CDT"]


def test_sub_hourly_schedule_stays_in_order_through_the_repeated_hour() -> None:
    ticks = _chicago("0,30 * * * *").tick_times_between(
        datetime(2024, 11, 3, 0, 45, tzinfo=CHICAGO), datetime(2024, 11, 3, 2, 15, tzinfo=CHICAGO)
    )
    assert _utc_times(ticks) == [
        "11-03 06:00",
        "11-03 06:30",
        "11-03 07:00",
        "11-03 07:30",
        "11-03 08:00",
    ]
    # Compare as UTC: datetimes sharing a tzinfo compare by wall time, ignoring `fold`.
    instants = [t.astimezone(UTC) for t in ticks]
    assert instants == sorted(instants)


def test_next_tick_from_inside_the_repeated_hour_finds_the_second_occurrence() -> None:
    # 06:45 UTC is 01:45 CDT, the first pass through the repeated hour; the next :30 tick is
    # 01:30 CST, whose wall time is *earlier* than 01:45.
    tick = _chicago("30 * * * *").next_tick_after(datetime(2024, 11, 3, 6, 45, tzinfo=UTC))
    assert tick.astimezone(UTC) == datetime(2024, 11, 3, 7, 30, tzinfo=UTC)


def test_two_gap_ticks_on_one_day_collapse_to_one_run() -> None:
    ticks = _chicago("0,30 2 * * *").tick_times_between(
        datetime(2024, 3, 10, tzinfo=CHICAGO), datetime(2024, 3, 11, tzinfo=CHICAGO)
    )
    assert [t.strftime("%H:%M %Z") for t in ticks] == ["03:00 CDT"]


def test_ticks_across_a_long_window_are_ordered_and_unique() -> None:
    sched = ScheduleDefinition(
        job=process_numbers, cron_schedule="15,45 */2 * * *", execution_timezone="Europe/Berlin"
    )
    ticks = sched.tick_times_between(
        datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    )
    instants = [t.astimezone(UTC) for t in ticks]
    assert instants == sorted(set(instants))
    # 12 hours a day, two ticks each, every day of a leap year. At spring-forward 02:15 and
    # 02:45 do not exist and both run once at 03:00; in the repeated autumn hour each runs
    # once (the hour field is not `*`), at its second occurrence.
    assert len(ticks) == 366 * 24 - 1


def test_decorator_should_execute_and_tags_fn_apply_at_evaluation_not_invocation() -> None:
    calls: list[str] = []

    def weekdays_only(context: ScheduleEvaluationContext) -> bool:
        calls.append("should_execute")
        return context.scheduled_execution_time.weekday() < 5

    @schedule(
        "0 9 * * *",
        job=process_numbers,
        should_execute=weekdays_only,
        tags_fn=lambda context: {"day": str(context.scheduled_execution_time.day)},
    )
    def workday(context: ScheduleEvaluationContext) -> dict[str, Any]:
        return {"ops": {}}

    (request,) = workday.evaluate_tick(_context(datetime(2024, 5, 1, 9, tzinfo=UTC))).run_requests
    assert request.tags["day"] == "1"
    skipped = workday.evaluate_tick(_context(datetime(2024, 5, 4, 9, tzinfo=UTC)))
    assert skipped.run_requests == []
    assert skipped.skip_message == "should_execute function for workday returned false."
    calls.clear()
    assert workday(_context(datetime(2024, 5, 4, 9, tzinfo=UTC))) == {"ops": {}}
    assert calls == []  # direct invocation calls only the decorated function


def test_cron_schedule_list_and_timezone_are_exposed_as_given() -> None:
    sched = ScheduleDefinition(
        job=process_numbers,
        cron_schedule=["0 9 * * 1-5", "0 12 * * 0,6"],
        execution_timezone="Europe/Berlin",
    )
    assert sched.cron_schedule == ["0 9 * * 1-5", "0 12 * * 0,6"]
    assert sched.execution_timezone == "Europe/Berlin"
    assert sched.timezone == ZoneInfo("Europe/Berlin")
