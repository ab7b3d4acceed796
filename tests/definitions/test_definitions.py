"""Definitions: looking up jobs and assets, binding resources, and the checks made when a
code location's definitions are built."""

from __future__ import annotations

import pytest

from dagloom import (
    AssetKey,
    ConfigurableResource,
    DefinitionError,
    Definitions,
    ScheduleDefinition,
    asset,
    define_asset_job,
    job,
    op,
    sensor,
)


class Greeter(ConfigurableResource):
    greeting: str = "hello"


@op
def one() -> int:
    return 1


@job
def one_job():
    one()


@asset
def a():
    return 1


@asset
def b(a):
    return a + 1


def test_get_job_def_returns_a_runnable_job() -> None:
    defs = Definitions(jobs=[one_job])
    found = defs.get_job_def("one_job")
    assert found.execute_in_process().output_for_node("one") == 1
    assert defs.has_job("one_job")
    assert defs.job_names == ["one_job"]


def test_get_job_def_of_an_unknown_job_is_a_definition_error_listing_jobs() -> None:
    defs = Definitions(jobs=[one_job])
    with pytest.raises(DefinitionError, match="one_job"):
        defs.get_job_def("missing")


def test_asset_job_is_resolved_against_the_definitions_assets() -> None:
    defs = Definitions(assets=[a, b], jobs=[define_asset_job("ab")])
    result = defs.get_job_def("ab").execute_in_process()
    assert result.asset_value("b") == 2


def test_implicit_asset_job_materializes_every_asset() -> None:
    defs = Definitions(assets=[a, b])
    result = defs.get_implicit_global_asset_job_def().execute_in_process()
    assert result.asset_value("b") == 2


def test_get_assets_def_by_key() -> None:
    defs = Definitions(assets=[a, b])
    assert defs.get_assets_def("b") is b
    assert defs.get_assets_def(AssetKey("a")) is a
    with pytest.raises(DefinitionError, match="nope"):
        defs.get_assets_def("nope")


def test_two_jobs_with_the_same_name_are_a_definition_error() -> None:
    @job(name="one_job")
    def other():
        one()

    with pytest.raises(DefinitionError, match="one_job"):
        Definitions(jobs=[one_job, other])


def test_asset_job_and_op_job_with_the_same_name_are_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="one_job"):
        Definitions(assets=[a], jobs=[one_job, define_asset_job("one_job")])


def test_same_job_listed_twice_is_fine() -> None:
    defs = Definitions(jobs=[one_job, one_job])
    assert defs.job_names == ["one_job"]


def test_two_assets_with_the_same_key_are_a_definition_error() -> None:
    @asset(name="a")
    def a_again():
        return 2

    with pytest.raises(DefinitionError, match="'a'"):
        Definitions(assets=[a, a_again])


def test_schedule_targeting_an_undefined_job_is_a_definition_error() -> None:
    schedule = ScheduleDefinition(name="nightly", job_name="not_a_job", cron_schedule="0 0 * * *")
    with pytest.raises(DefinitionError, match="not_a_job"):
        Definitions(jobs=[one_job], schedules=[schedule])


def test_schedule_with_a_job_object_adds_the_job() -> None:
    schedule = ScheduleDefinition(job=one_job, cron_schedule="0 0 * * *")
    defs = Definitions(schedules=[schedule])
    assert defs.get_job_def("one_job").execute_in_process().success
    assert defs.get_schedule_def("one_job_schedule") is schedule


def test_bad_cron_string_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="cron"):
        ScheduleDefinition(job=one_job, cron_schedule="every minute")
    with pytest.raises(DefinitionError):
        ScheduleDefinition(job=one_job, cron_schedule="61 * * * *")


def test_sensor_targeting_an_undefined_job_is_a_definition_error() -> None:
    @sensor(job_name="not_a_job")
    def watcher():
        return None

    with pytest.raises(DefinitionError, match="not_a_job"):
        Definitions(jobs=[one_job], sensors=[watcher])


def test_definitions_resources_are_bound_to_jobs() -> None:
    @op
    def greet(greeter: Greeter) -> str:
        return greeter.greeting

    @job
    def greeting():
        greet()

    defs = Definitions(jobs=[greeting], resources={"greeter": Greeter(greeting="hi")})
    assert defs.get_job_def("greeting").execute_in_process().output_for_node("greet") == "hi"


def test_definitions_resources_are_bound_to_asset_jobs() -> None:
    @asset
    def greeted(greeter: Greeter) -> str:
        return greeter.greeting

    defs = Definitions(
        assets=[greeted],
        jobs=[define_asset_job("greet_job")],
        resources={"greeter": Greeter(greeting="hey")},
    )
    assert defs.get_job_def("greet_job").execute_in_process().asset_value("greeted") == "hey"


def test_job_missing_a_resource_is_a_definition_error_naming_it() -> None:
    @op
    def greet(greeter: Greeter) -> str:
        return greeter.greeting

    @job
    def greeting():
        greet()

    with pytest.raises(DefinitionError, match="greeter"):
        Definitions(jobs=[greeting])


def test_non_definitions_in_assets_or_jobs_are_rejected() -> None:
    with pytest.raises(DefinitionError):
        Definitions(assets=[one])  # type: ignore[list-item]
    with pytest.raises(DefinitionError):
        Definitions(jobs=[one])  # type: ignore[list-item]


def test_merge_combines_definitions_and_rejects_duplicates() -> None:
    merged = Definitions.merge(Definitions(jobs=[one_job]), Definitions(assets=[a, b]))
    assert merged.has_job("one_job")
    assert merged.get_assets_def("b") is b

    @asset(name="a")
    def a_again():
        return 2

    with pytest.raises(DefinitionError, match="'a'"):
        Definitions.merge(Definitions(assets=[a]), Definitions(assets=[a_again]))
