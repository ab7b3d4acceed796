"""The user-code boundary: what user code raises, `SystemExit` and `KeyboardInterrupt`
included, is a failure of the definition that raised it, never the end of the process; only
cancellation passes through."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from dagloom import (
    ConfigurableResource,
    DagloomError,
    Failure,
    RetryPolicy,
    SkipReason,
    UserCodeError,
    build_sensor_context,
    job,
    op,
    resource,
    sensor,
)
from dagloom.code import load_definitions
from dagloom.errors import CodeLocationLoadError, DefinitionError
from dagloom.execution.boundary import describe_user_error, is_cancellation, user_code
from dagloom.messages import EventType

# -- the context manager -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "text"),
    [
        (ValueError("bad row"), "ValueError: bad row"),
        (SystemExit(3), "called sys.exit(3)"),
        (SystemExit(), "called sys.exit()"),
        (KeyboardInterrupt(), "raised KeyboardInterrupt"),
    ],
)
def test_what_user_code_raises_becomes_a_user_code_error_naming_the_definition(
    raised: BaseException, text: str
) -> None:
    with pytest.raises(UserCodeError) as caught, user_code("sensor", "poll", "evaluation"):
        raise raised
    assert str(caught.value) == f"error in the evaluation of sensor 'poll': {text}"
    assert caught.value.__cause__ is raised


@pytest.mark.parametrize(
    "raised",
    [asyncio.CancelledError(), GeneratorExit(), DefinitionError("bad result"), Failure("no")],
)
def test_cancellation_and_dagloom_errors_pass_through_unchanged(raised: BaseException) -> None:
    with pytest.raises(type(raised)) as caught, user_code("schedule", "daily"):
        raise raised
    assert caught.value is raised


def test_nothing_raised_is_nothing_reported() -> None:
    with user_code("resource", "db", "setup"):
        value = 1
    assert value == 1


def test_cancellation_is_recognized_and_exits_are_described() -> None:
    assert is_cancellation(asyncio.CancelledError())
    assert not is_cancellation(SystemExit(1))
    assert not is_cancellation(KeyboardInterrupt())
    assert describe_user_error(SystemExit("bye")) == "called sys.exit('bye')"


async def test_anyio_cancellation_is_what_the_boundary_lets_through() -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await anyio.sleep(1)
        except BaseException as exc:
            assert is_cancellation(exc)
            raise
    assert scope.cancelled_caught


# -- ops -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(
    ("raised", "text"),
    [(SystemExit(3), "called sys.exit(3)"), (KeyboardInterrupt(), "raised KeyboardInterrupt")],
)
async def test_an_op_calling_sys_exit_or_interrupting_fails_its_step_not_the_process(
    kind: str, raised: BaseException, text: str
) -> None:
    if kind == "sync":

        @op
        def leave() -> int:
            raise raised

    else:

        @op
        async def leave() -> int:
            raise raised

    @op
    def after(value: int) -> int:
        return value

    @job
    def leaving():
        after(leave())

    result = await leaving.execute_in_process_async(raise_on_error=False)
    assert not result.success
    (failure,) = result.filter_events(EventType.STEP_FAILURE)
    assert failure.step_key == "leave"
    assert f'Execution of step "leave" failed: {text}' == failure.message
    assert failure.step_failure.error.cls_name == type(raised).__name__
    assert [e.step_key for e in result.filter_events(EventType.STEP_SKIPPED)] == ["after"]
    assert result.get_run_failure_event() is not None


def test_failure_and_retries_keep_their_meaning_through_the_boundary() -> None:
    attempts: list[int] = []

    @op(retry_policy=RetryPolicy(max_retries=1))
    def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise SystemExit(1)
        raise Failure("given up", metadata={"rows": 3})

    @job
    def flaking():
        flaky()

    result = flaking.execute_in_process(raise_on_error=False)
    assert len(attempts) == 2
    assert len(result.filter_events(EventType.STEP_UP_FOR_RETRY)) == 1
    (failure,) = result.filter_events(EventType.STEP_FAILURE)
    assert failure.step_failure.user_failure
    assert failure.message == 'Execution of step "flaky" failed: Failure: given up'


# -- resources -----------------------------------------------------------------------------


def test_a_resource_exiting_in_setup_or_teardown_is_a_user_code_error_naming_it() -> None:
    class Exits(ConfigurableResource):
        def teardown_after_execution(self, context: object) -> None:
            sys.exit(4)

    @resource
    def exits_at_setup() -> Iterator[int]:
        raise KeyboardInterrupt
        yield 1

    @op(required_resource_keys={"closing"})
    def use() -> None:
        pass

    @job(resource_defs={"closing": Exits()})
    def closing_job():
        use()

    @job(resource_defs={"closing": exits_at_setup})
    def setup_job():
        use()

    with pytest.raises(UserCodeError, match=r"teardown of resource 'closing': called sys\.exit"):
        closing_job.execute_in_process()
    with pytest.raises(UserCodeError, match="setup of resource 'closing': raised Keyboard"):
        setup_job.execute_in_process()
    failed = setup_job.execute_in_process(raise_on_error=False)
    assert failed.get_run_failure_event().run_failure.error.cls_name == "UserCodeError"


# -- instigators and imports ---------------------------------------------------------------


def test_a_sensor_calling_sys_exit_is_a_user_code_error_naming_the_sensor() -> None:
    @op
    def noop() -> None:
        pass

    @job
    def nothing():
        noop()

    @sensor(job=nothing)
    def leaving(context: object) -> SkipReason:
        sys.exit(2)

    with pytest.raises(UserCodeError, match=r"sensor 'leaving'.*called sys\.exit\(2\)") as caught:
        leaving.evaluate_tick(build_sensor_context())
    assert isinstance(caught.value.__cause__, SystemExit)
    assert isinstance(caught.value, DagloomError)


@pytest.mark.usefixtures("restore_import_state")
def test_a_definitions_file_calling_sys_exit_is_a_load_error_naming_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / f"exits_{uuid.uuid4().hex[:8]}.py"
    path.write_text(
        textwrap.dedent(
            """
            import sys
            import dagloom

            sys.exit(3)
            """
        )
    )
    with pytest.raises(CodeLocationLoadError) as caught:
        load_definitions(python_file=path)
    assert str(caught.value) == (
        f"could not load {path}: it called sys.exit(3) while being imported"
    )
    assert isinstance(caught.value.__cause__, SystemExit)
    assert "sys.exit(3)" in caught.value.traceback_text
