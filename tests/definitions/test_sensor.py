"""Sensors: definition, decorator, evaluation, cursors and direct invocation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dagloom.definitions.run_request import RunRequest, SensorResult, SkipReason
from dagloom.definitions.sensor import (
    DEFAULT_SENSOR_INTERVAL_SECONDS,
    SENSOR_NAME_TAG,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorExecutionData,
    build_sensor_context,
    sensor,
)
from dagloom.errors import DefinitionError, UserCodeError


@dataclass(frozen=True)
class FakeJob:
    """Stands in for a JobDefinition: all a sensor needs is `.name`."""

    name: str


process_numbers = FakeJob("process_numbers")
other_job = FakeJob("other_job")


# -- the seed's sensor -------------------------------------------------------------------------


def _seed_sensor(check_path: str) -> SensorDefinition:
    # The seed's sensor, verbatim but for the path it checks.
    @sensor(
        job=process_numbers,
        minimum_interval_seconds=5,
    )
    def check_file_sensor():  # type: ignore[no-untyped-def]
        if os.path.exists(check_path):
            yield RunRequest(
                run_key="check_file_exists",
            )
        else:
            yield SkipReason("check file not exists")

    return check_file_sensor


def test_seed_sensor_skips_while_the_file_is_absent(tmp_path: Path) -> None:
    check_file_sensor = _seed_sensor(str(tmp_path / "check"))
    assert check_file_sensor.name == "check_file_sensor"
    assert check_file_sensor.minimum_interval_seconds == 5
    assert check_file_sensor.job_name == "process_numbers"
    assert check_file_sensor.job is process_numbers
    data = check_file_sensor.evaluate_tick(build_sensor_context())
    assert data == SensorExecutionData(
        run_requests=[], skip_message="check file not exists", cursor=None
    )


def test_seed_sensor_requests_a_keyed_run_once_the_file_exists(tmp_path: Path) -> None:
    check = tmp_path / "check"
    check.touch()
    data = _seed_sensor(str(check)).evaluate_tick(build_sensor_context())
    assert data.skip_message is None
    assert data.run_requests == [
        RunRequest(
            run_key="check_file_exists",
            job_name="process_numbers",
            tags={SENSOR_NAME_TAG: "check_file_sensor"},
        )
    ]


def test_seed_sensor_with_os_path_exists_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os.path, "exists", lambda path: path == "/check")
    data = _seed_sensor("/check").evaluate_tick(build_sensor_context())
    assert [r.run_key for r in data.run_requests] == ["check_file_exists"]


def test_seed_sensor_invoked_directly_yields_its_items(tmp_path: Path) -> None:
    items = list(_seed_sensor(str(tmp_path / "absent"))())
    assert items == [SkipReason("check file not exists")]


# -- SensorDefinition and @sensor --------------------------------------------------------------


def test_sensor_defaults() -> None:
    @sensor(job=process_numbers)
    def my_sensor(context: SensorEvaluationContext) -> None:
        return None

    assert my_sensor.minimum_interval_seconds == DEFAULT_SENSOR_INTERVAL_SECONDS == 30
    assert my_sensor.default_status is DefaultSensorStatus.STOPPED
    assert my_sensor.description is None
    assert isinstance(my_sensor, SensorDefinition)


def test_sensor_options_are_exposed_as_properties() -> None:
    @sensor(
        job_name="etl",
        name="renamed",
        minimum_interval_seconds=120,
        description="watches the bucket",
        default_status=DefaultSensorStatus.RUNNING,
    )
    def my_sensor() -> None:
        """Docstring."""

    assert my_sensor.name == "renamed"
    assert my_sensor.job_name == "etl"
    assert my_sensor.minimum_interval_seconds == 120
    assert my_sensor.description == "watches the bucket"
    assert my_sensor.default_status is DefaultSensorStatus.RUNNING
    assert my_sensor.__doc__ == "Docstring."
    with pytest.raises(DefinitionError):
        _ = my_sensor.job  # only a name was given


def test_bare_decorator_and_positional_targets() -> None:
    @sensor
    def bare() -> None:
        return None

    @sensor(process_numbers)
    def positional_job() -> None:
        return None

    @sensor("etl")
    def positional_name() -> None:
        return None

    assert bare.name == "bare" and bare.job_name is None
    assert positional_job.job is process_numbers
    assert positional_name.job_name == "etl"


def test_sensor_class_can_be_built_without_the_decorator() -> None:
    definition = SensorDefinition(
        "by_hand", evaluation_fn=lambda context: RunRequest("k"), job=process_numbers
    )
    (request,) = definition.evaluate_tick(build_sensor_context()).run_requests
    assert request.job_name == "process_numbers"


def test_sensor_rejects_several_kinds_of_target() -> None:
    with pytest.raises(DefinitionError, match="only one"):

        @sensor(job=process_numbers, job_name="etl")
        def both() -> None:
            return None


def test_sensor_target_errors_name_the_options_and_the_nameless_job() -> None:
    def fn() -> None:
        return None

    with pytest.raises(DefinitionError) as info:
        sensor(name="s", jobs=[process_numbers], asset_selection=["a"])(fn)
    assert str(info.value) == (
        "sensor 's': give only one of job, jobs, job_name, asset_selection or target, "
        "got ['jobs', 'asset_selection']"
    )
    assert info.value.name == "s"
    nameless = object()
    with pytest.raises(DefinitionError) as info:
        sensor(name="s", jobs=[process_numbers, nameless])(fn)  # type: ignore[list-item]
    assert str(info.value) == f"sensor 's': job {nameless!r} has no name"
    assert info.value.name == "s"


def test_sensor_rejects_a_negative_interval_and_bad_names() -> None:
    def fn() -> None:
        return None

    with pytest.raises(DefinitionError, match="minimum_interval_seconds"):
        sensor(job=process_numbers, minimum_interval_seconds=-1)(fn)
    with pytest.raises(DefinitionError, match="name"):
        sensor(job=process_numbers, name="no spaces please")(fn)


# -- evaluation: shapes of results -------------------------------------------------------------


def _evaluate(definition: SensorDefinition, **context: Any) -> SensorExecutionData:
    return definition.evaluate_tick(build_sensor_context(**context))


def test_returning_a_list_of_run_requests() -> None:
    @sensor(job=process_numbers)
    def many(context: SensorEvaluationContext) -> list[RunRequest]:
        return [RunRequest("a"), RunRequest("b", run_config={"ops": {}})]

    data = _evaluate(many)
    assert [r.run_key for r in data.run_requests] == ["a", "b"]
    assert data.run_requests[1].run_config == {"ops": {}}
    assert data.skip_message is None


def test_returning_a_single_run_request_or_skip_reason() -> None:
    @sensor(job=process_numbers)
    def one(context: SensorEvaluationContext) -> RunRequest:
        return RunRequest("only")

    @sensor(job=process_numbers)
    def skip(context: SensorEvaluationContext) -> SkipReason:
        return SkipReason("nothing new")

    assert [r.run_key for r in _evaluate(one).run_requests] == ["only"]
    assert _evaluate(skip).skip_message == "nothing new"


def test_returning_none_or_nothing_skips_with_a_message() -> None:
    @sensor(job=process_numbers)
    def nothing(context: SensorEvaluationContext) -> None:
        return None

    @sensor(job=process_numbers)
    def empty_generator(context: SensorEvaluationContext) -> Iterator[RunRequest]:
        yield from ()

    for definition in (nothing, empty_generator):
        data = _evaluate(definition)
        assert data.run_requests == []
        assert data.skip_message == "Sensor function returned an empty result"


def test_generator_that_yields_and_returns_counts_both() -> None:
    @sensor(job=process_numbers)
    def mixed(context: SensorEvaluationContext) -> Iterator[RunRequest]:
        yield RunRequest("yielded")
        return RunRequest("returned")  # type: ignore[misc]

    assert [r.run_key for r in _evaluate(mixed).run_requests] == ["yielded", "returned"]


def test_yielding_both_run_requests_and_a_skip_reason_is_an_error() -> None:
    @sensor(job=process_numbers)
    def confused(context: SensorEvaluationContext) -> Iterator[RunRequest | SkipReason]:
        yield RunRequest("a")
        yield SkipReason("but also no")

    with pytest.raises(DefinitionError, match="confused") as info:
        _evaluate(confused)
    assert info.value.name == "confused"


def test_several_skip_reasons_are_an_error() -> None:
    @sensor(job=process_numbers)
    def doubly(context: SensorEvaluationContext) -> list[SkipReason]:
        return [SkipReason("a"), SkipReason("b")]

    with pytest.raises(DefinitionError, match="single SkipReason"):
        _evaluate(doubly)


def test_returning_an_unexpected_type_is_an_error() -> None:
    @sensor(job=process_numbers)
    def weird(context: SensorEvaluationContext) -> str:
        return "run please"

    with pytest.raises(DefinitionError, match="str"):
        _evaluate(weird)


# -- SensorResult and cursors ------------------------------------------------------------------


def test_sensor_result_carries_requests_and_the_new_cursor() -> None:
    @sensor(job=process_numbers)
    def files(context: SensorEvaluationContext) -> SensorResult:
        seen = int(context.cursor or "0")
        return SensorResult(
            run_requests=[RunRequest(run_key=f"file-{n}") for n in range(seen + 1, seen + 3)],
            cursor=str(seen + 2),
        )

    data = _evaluate(files, cursor="4")
    assert [r.run_key for r in data.run_requests] == ["file-5", "file-6"]
    assert data.cursor == "6"
    assert data.skip_message is None


def test_sensor_result_with_a_skip_reason() -> None:
    @sensor(job=process_numbers)
    def idle(context: SensorEvaluationContext) -> SensorResult:
        return SensorResult(skip_reason="idle", cursor="same")

    data = _evaluate(idle)
    assert data.run_requests == []
    assert data.skip_message == "idle"
    assert data.cursor == "same"


def test_empty_sensor_result_keeps_the_cursor_and_skips() -> None:
    @sensor(job=process_numbers)
    def empty(context: SensorEvaluationContext) -> SensorResult:
        return SensorResult()

    data = _evaluate(empty, cursor="kept")
    assert data.cursor == "kept"
    assert data.skip_message == "Sensor function returned an empty result"


def test_update_cursor_sets_the_cursor_returned_by_the_tick() -> None:
    @sensor(job=process_numbers)
    def cursored(context: SensorEvaluationContext) -> Iterator[RunRequest]:
        start = int(context.cursor or "0")
        yield RunRequest(run_key=str(start + 1))
        context.update_cursor(str(start + 1))

    context = build_sensor_context(cursor="9")
    data = cursored.evaluate_tick(context)
    assert data.cursor == "10"
    assert context.cursor == "10"
    assert context.cursor_updated


def test_cursor_is_unchanged_when_the_sensor_does_not_touch_it() -> None:
    @sensor(job=process_numbers)
    def untouched(context: SensorEvaluationContext) -> SkipReason:
        return SkipReason()

    assert _evaluate(untouched, cursor="abc").cursor == "abc"
    assert _evaluate(untouched).cursor is None


def test_sensor_result_cursor_after_update_cursor_is_an_error() -> None:
    @sensor(job=process_numbers)
    def twice(context: SensorEvaluationContext) -> SensorResult:
        context.update_cursor("a")
        return SensorResult(cursor="b")

    with pytest.raises(DefinitionError, match="update_cursor"):
        _evaluate(twice)


def test_sensor_result_must_be_the_only_item() -> None:
    @sensor(job=process_numbers)
    def crowded(context: SensorEvaluationContext) -> list[Any]:
        return [SensorResult(), RunRequest("a")]

    with pytest.raises(DefinitionError, match="only object"):
        _evaluate(crowded)


def test_update_cursor_rejects_non_strings() -> None:
    context = build_sensor_context()
    with pytest.raises(DefinitionError, match="string"):
        context.update_cursor(5)  # type: ignore[arg-type]


# -- targets -----------------------------------------------------------------------------------


def test_sensor_with_several_jobs_needs_job_name_on_each_request() -> None:
    @sensor(jobs=[process_numbers, other_job])
    def picky(context: SensorEvaluationContext) -> list[RunRequest]:
        return [RunRequest("a", job_name="other_job")]

    assert picky.job_names == ["process_numbers", "other_job"]
    assert picky.jobs == [process_numbers, other_job]
    with pytest.raises(DefinitionError):
        _ = picky.job_name
    (request,) = _evaluate(picky).run_requests
    assert request.job_name == "other_job"

    @sensor(jobs=[process_numbers, other_job])
    def vague(context: SensorEvaluationContext) -> RunRequest:
        return RunRequest("a")

    with pytest.raises(DefinitionError, match="job_name"):
        _evaluate(vague)


def test_run_request_for_an_untargeted_job_is_an_error() -> None:
    @sensor(job=process_numbers)
    def stray(context: SensorEvaluationContext) -> RunRequest:
        return RunRequest("a", job_name="elsewhere")

    with pytest.raises(DefinitionError, match="elsewhere"):
        _evaluate(stray)


def test_sensor_without_a_target_may_skip_but_not_request_runs() -> None:
    @sensor
    def untargeted(context: SensorEvaluationContext) -> RunRequest:
        return RunRequest("a")

    with pytest.raises(DefinitionError, match="no target"):
        _evaluate(untargeted)


def test_asset_selection_sensor_leaves_job_name_to_the_code_location() -> None:
    selection = ["asset_a", "asset_b"]

    @sensor(asset_selection=selection)
    def assets(context: SensorEvaluationContext) -> RunRequest:
        return RunRequest("a", asset_selection=["asset_a"])

    assert assets.asset_selection is selection
    (request,) = _evaluate(assets).run_requests
    assert request.job_name is None
    assert request.asset_selection == ["asset_a"]


# -- user code, resources, invocation ----------------------------------------------------------


def test_user_exception_becomes_user_code_error_naming_the_sensor() -> None:
    @sensor(job=process_numbers)
    def explodes(context: SensorEvaluationContext) -> None:
        raise ConnectionError("bucket unreachable")

    with pytest.raises(UserCodeError, match="explodes") as info:
        _evaluate(explodes)
    assert isinstance(info.value.__cause__, ConnectionError)


def test_exception_raised_mid_generator_is_wrapped() -> None:
    @sensor(job=process_numbers)
    def partial(context: SensorEvaluationContext) -> Iterator[RunRequest]:
        yield RunRequest("a")
        raise ValueError("second file is corrupt")

    with pytest.raises(UserCodeError, match="partial") as info:
        _evaluate(partial)
    assert isinstance(info.value.__cause__, ValueError)


def test_direct_invocation_passes_the_context_and_raises_user_errors_unwrapped() -> None:
    @sensor(job=process_numbers)
    def echo(context: SensorEvaluationContext) -> RunRequest:
        return RunRequest(run_key=context.cursor)

    assert echo(build_sensor_context(cursor="c1")) == RunRequest("c1")
    assert echo(context=build_sensor_context(cursor="c2")) == RunRequest("c2")
    assert echo() == RunRequest(None)  # an empty context is built

    @sensor(job=process_numbers)
    def explodes(context: SensorEvaluationContext) -> None:
        raise KeyError("raw")

    with pytest.raises(KeyError):
        explodes(build_sensor_context())


def test_direct_invocation_of_a_zero_arg_sensor_ignores_a_given_context() -> None:
    @sensor(job=process_numbers)
    def no_args() -> SkipReason:
        return SkipReason("fine")

    assert no_args() == SkipReason("fine")
    assert no_args(build_sensor_context()) == SkipReason("fine")


def test_direct_invocation_rejects_extra_positional_arguments() -> None:
    @sensor(job=process_numbers)
    def one_arg(context: SensorEvaluationContext) -> None:
        return None

    with pytest.raises(DefinitionError, match="positional"):
        one_arg(build_sensor_context(), "extra")


def test_resources_reach_the_context_and_named_parameters() -> None:
    class Bucket:
        def list_objects(self) -> list[str]:
            return ["a.csv", "b.csv"]

    @sensor(job=process_numbers)
    def listing(context: SensorEvaluationContext, bucket: Bucket) -> list[RunRequest]:
        assert context.resources.bucket is bucket
        return [RunRequest(run_key=key) for key in bucket.list_objects()]

    context = build_sensor_context(resources={"bucket": Bucket()})
    assert [r.run_key for r in listing.evaluate_tick(context).run_requests] == ["a.csv", "b.csv"]

    with pytest.raises(DefinitionError, match="bucket"):
        listing.evaluate_tick(build_sensor_context())


def test_required_resource_keys_are_checked_before_the_function_runs() -> None:
    calls: list[int] = []

    @sensor(job=process_numbers, required_resource_keys={"db"})
    def needs_db(context: SensorEvaluationContext) -> None:
        calls.append(1)

    with pytest.raises(DefinitionError, match="db"):
        needs_db.evaluate_tick(build_sensor_context())
    assert calls == []
    needs_db.evaluate_tick(build_sensor_context(resources={"db": object()}))
    assert calls == [1]


def test_missing_resource_attribute_names_the_available_ones() -> None:
    context = build_sensor_context(resources={"db": 1})
    with pytest.raises(AttributeError, match="db"):
        _ = context.resources.warehouse


def test_context_exposes_previous_tick_details() -> None:
    context = build_sensor_context(
        cursor="7",
        sensor_name="s",
        last_tick_completion_time=1_700_000_000.0,
        last_run_key="rk",
    )
    assert context.cursor == "7"
    assert context.sensor_name == "s"
    assert context.last_tick_completion_time == 1_700_000_000.0
    assert context.last_completion_time == 1_700_000_000.0
    assert context.last_run_key == "rk"
    assert context.instance is None
    assert not context.cursor_updated
    context.log.info("logging from a sensor works")


def test_sensor_log_is_usable_during_evaluation(caplog: pytest.LogCaptureFixture) -> None:
    @sensor(job=process_numbers)
    def chatty(context: SensorEvaluationContext) -> SkipReason:
        context.log.warning("Logging from a sensor!")
        return SkipReason("Nothing to do")

    with caplog.at_level("WARNING"):
        data = chatty.evaluate_tick(build_sensor_context(sensor_name="chatty"))
    assert data.skip_message == "Nothing to do"
    assert "Logging from a sensor!" in caplog.text
