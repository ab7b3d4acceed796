"""How a run executed in this process starts and ends in storage: the claim of a stored run,
and which end an interruption gets (only cancellation ends a run CANCELED)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import structlog

from dagloom import job, op
from dagloom.errors import RunClaimRefusedError
from dagloom.execution.executor import ExecutorContext
from dagloom.execution.run import cancels_run, execute_job_in_process
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, Run, RunStatus

CALLS: list[str] = []
ENTERED = anyio.Event()


@op
def count() -> int:
    CALLS.append("count")
    return 1


@job
def counting() -> None:
    count()


@op
async def wait_forever() -> None:
    ENTERED.set()
    await anyio.sleep_forever()


@job
def waiting() -> None:
    wait_forever()


async def lifecycle(instance: DagloomInstance, run_id: str) -> list[EventType]:
    kinds = {
        EventType.RUN_START,
        EventType.RUN_SUCCESS,
        EventType.RUN_FAILURE,
        EventType.RUN_CANCELED,
    }
    events = await instance.get_events(run_id)
    return [r.event.event_type for r in events if r.event and r.event.event_type in kinds]


@pytest.mark.parametrize("status", [RunStatus.STARTED, RunStatus.CANCELED, RunStatus.SUCCESS])
async def test_a_stored_run_another_has_claimed_is_not_executed(status: RunStatus) -> None:
    CALLS.clear()
    async with DagloomInstance.ephemeral() as instance:
        await instance.create_run(Run(run_id="r", job_name="counting", status=status))
        with (
            structlog.testing.capture_logs() as logs,
            pytest.raises(RunClaimRefusedError) as caught,
        ):
            await execute_job_in_process(
                counting, instance=instance, run_id="r", run_is_stored=True
            )
        assert (caught.value.run_id, caught.value.status) == ("r", status)
        assert f"{status.name} -> STARTED" in str(caught.value)
        assert CALLS == []
        assert await instance.get_events("r") == []
        stored = await instance.get_run("r")
        assert stored is not None and stored.status == status
    refused = [e for e in logs if e["event"] == "run_transition_refused"]
    assert refused == [
        {
            "event": "run_transition_refused",
            "log_level": "warning",
            "run_id": "r",
            "from": status.name,
            "to": "STARTED",
        }
    ]


async def test_a_claimed_run_executes_once_and_stores_one_start() -> None:
    CALLS.clear()
    async with DagloomInstance.ephemeral() as instance:
        await instance.create_run(Run(run_id="r", job_name="counting", status=RunStatus.STARTING))
        seen: list[EventType] = []

        class Watch:
            def emit(self, row: Any) -> None:
                seen.append(row[0])

            async def flush(self) -> None:
                return None

        result = await execute_job_in_process(
            counting, instance=instance, run_id="r", run_is_stored=True, sink=Watch()
        )
        assert result.success and CALLS == ["count"]
        assert await lifecycle(instance, "r") == [EventType.RUN_START, EventType.RUN_SUCCESS]
        assert result.all_events[0].event_type == EventType.RUN_START
        assert seen[0] == EventType.RUN_START and seen.count(EventType.RUN_START) == 1
        with pytest.raises(RunClaimRefusedError):
            await execute_job_in_process(
                counting, instance=instance, run_id="r", run_is_stored=True
            )
        assert CALLS == ["count"]


async def test_an_error_in_dagloom_ends_the_run_failure_with_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the executor broke")

    monkeypatch.setattr(ExecutorContext, "execute_plan", broken)
    async with DagloomInstance.ephemeral() as instance:
        with pytest.raises(RuntimeError, match="the executor broke"):
            await execute_job_in_process(counting, instance=instance, run_id="r")
        stored = await instance.get_run("r")
        assert stored is not None and stored.status == RunStatus.FAILURE
        assert await lifecycle(instance, "r") == [EventType.RUN_START, EventType.RUN_FAILURE]
        (failure,) = await instance.get_events("r", event_types=[EventType.RUN_FAILURE])
        assert failure.event is not None and failure.event.run_failure is not None
        error = failure.event.run_failure.error
        assert error is not None
        assert (error.cls_name, error.message) == ("RuntimeError", "the executor broke")
        assert "the executor broke" in error.stack and "broken" in error.stack
        assert stored.failure == error


async def test_ctrl_c_ends_the_run_canceled(monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(ExecutorContext, "execute_plan", interrupted)
    async with DagloomInstance.ephemeral() as instance:
        with pytest.raises(KeyboardInterrupt):
            await execute_job_in_process(counting, instance=instance, run_id="r")
        stored = await instance.get_run("r")
        assert stored is not None and stored.status == RunStatus.CANCELED
        assert await lifecycle(instance, "r") == [EventType.RUN_START, EventType.RUN_CANCELED]


async def test_cancelling_the_caller_ends_the_run_canceled() -> None:
    global ENTERED
    ENTERED = anyio.Event()
    async with DagloomInstance.ephemeral() as instance:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: execute_job_in_process(waiting, instance=instance, run_id="r")
                )
                await ENTERED.wait()
                tg.cancel_scope.cancel()
        stored = await instance.get_run("r")
        assert stored is not None and stored.status == RunStatus.CANCELED
        assert await lifecycle(instance, "r") == [EventType.RUN_START, EventType.RUN_CANCELED]


async def test_only_cancellations_count_as_cancellation() -> None:
    cancelled = anyio.get_cancelled_exc_class()()
    assert cancels_run(cancelled)
    assert cancels_run(KeyboardInterrupt())
    assert cancels_run(BaseExceptionGroup("g", [cancelled, KeyboardInterrupt()]))
    assert not cancels_run(BaseExceptionGroup("g", [cancelled, RuntimeError("x")]))
    assert not cancels_run(RuntimeError("x"))
    assert not cancels_run(SystemExit(3))
