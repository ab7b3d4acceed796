"""The run retry loop on real storage with a real coordinator and worker: a failed run is
retried once, from failure, reusing the outputs its succeeded steps stored."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import pytest

from dagloom import Definitions, FilesystemIOManager, job, op
from dagloom.actors.run_coordinator import (
    submit_run,
)
from dagloom.daemon import (
    AUTO_RETRY_RUN_ID_TAG,
    RETRY_NUMBER_TAG,
    WILL_RETRY_TAG,
    RetrySettings,
    derived_run_id,
)
from dagloom.daemon.retry_loop import ROOT_RUN_ID_TAG, RunRetryLoop
from dagloom.instance import DagloomInstance
from dagloom.messages import RunStatus
from dagloom.messages.rpc import SubmitRunRequest
from tests.actors._runs import definitions_stack, stored_output, wait_for_end

from ._stores import BACKENDS, open_instance

CALLS: list[str] = []
"""The ops that executed, in order, across runs."""


@op
def load() -> int:
    CALLS.append("load")
    return 20


@op
def flaky(value: int) -> int:
    CALLS.append("flaky")
    if CALLS.count("flaky") == 1:
        raise RuntimeError("the first try fails")
    return value + 1


@op
def report(value: int) -> int:
    CALLS.append("report")
    return value * 2


@job
def pipeline() -> None:
    report(flaky(load()))


def stack(instance: DagloomInstance, io_dir: Path) -> AbstractAsyncContextManager[Any]:
    """A default coordinator over an in-process launcher running `pipeline`; yields a ref
    to the coordinator."""
    defs = Definitions(
        jobs=[pipeline], resources={"io_manager": FilesystemIOManager(base_dir=str(io_dir))}
    )
    return definitions_stack(instance, defs)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_failed_run_is_retried_once_from_failure_reusing_its_outputs(
    backend: str, tmp_path: Path
) -> None:
    CALLS.clear()
    io_dir = tmp_path / "io"
    settings = RetrySettings(enabled=True, max_retries=0)  # the run's tag allows one
    with anyio.fail_after(60):
        async with open_instance(backend, tmp_path) as instance, stack(instance, io_dir) as coord:
            failed = await submit_run(
                coord, SubmitRunRequest(job_name="pipeline", tags={"dagster/max_retries": "1"})
            )
            assert (await wait_for_end(instance, failed.run_id)).status == RunStatus.FAILURE
            assert CALLS == ["load", "flaky"]

            loop = RunRetryLoop(instance, coord, settings)
            await loop.tick(0.0)
            retry_id = derived_run_id("retry", failed.run_id)
            retry = await wait_for_end(instance, retry_id)
            assert retry.status == RunStatus.SUCCESS
            # `load` succeeded in the failed run: not executed again, its output reused.
            assert CALLS == ["load", "flaky", "flaky", "report"]
            assert stored_output(io_dir, retry_id, "report") == 42
            assert stored_output(io_dir, failed.run_id, "load") == 20
            assert not (io_dir / retry_id / "load").exists()
            assert sorted(retry.step_keys_to_execute) == ["flaky", "report"]
            assert (retry.parent_run_id, retry.root_run_id) == (failed.run_id, failed.run_id)
            assert retry.tags[RETRY_NUMBER_TAG] == "1"
            assert retry.tags[ROOT_RUN_ID_TAG] == failed.run_id
            decided = await instance.get_run(failed.run_id)
            assert decided is not None
            assert decided.tags[WILL_RETRY_TAG] == "true"
            assert decided.tags[AUTO_RETRY_RUN_ID_TAG] == retry_id

            # Ticking again, in this daemon or another, retries nothing more.
            await loop.tick(1.0)
            await RunRetryLoop(instance, coord, settings).tick(2.0)
            assert await instance.get_runs_count() == 2

            # A daemon that died after submitting the retry, before recording the decision:
            # the next tick finds the retry by its lineage and records it, submitting nothing.
            await instance.add_run_tags(
                failed.run_id, {WILL_RETRY_TAG: "", AUTO_RETRY_RUN_ID_TAG: ""}
            )
            await RunRetryLoop(instance, coord, settings).tick(3.0)
            assert await instance.get_runs_count() == 2
            again = await instance.get_run(failed.run_id)
            assert again is not None and again.tags[AUTO_RETRY_RUN_ID_TAG] == retry_id
            assert CALLS == ["load", "flaky", "flaky", "report"]


async def test_runs_without_retries_enabled_or_allowed_are_not_retried(tmp_path: Path) -> None:
    CALLS.clear()
    with anyio.fail_after(60):
        async with (
            open_instance("sqlite", tmp_path) as instance,
            stack(instance, tmp_path / "io") as coord,
        ):
            failed = await submit_run(coord, SubmitRunRequest(job_name="pipeline"))
            assert (await wait_for_end(instance, failed.run_id)).status == RunStatus.FAILURE
            await RunRetryLoop(instance, coord, RetrySettings(enabled=False)).tick(0.0)
            stored = await instance.get_run(failed.run_id)
            assert stored is not None and WILL_RETRY_TAG not in stored.tags
            await RunRetryLoop(instance, coord, RetrySettings(enabled=True)).tick(1.0)
            stored = await instance.get_run(failed.run_id)
            assert stored is not None and stored.tags[WILL_RETRY_TAG] == "false"
            assert await instance.get_runs_count() == 1


async def test_the_api_re_executes_a_run_from_failure(tmp_path: Path) -> None:
    """`AsyncClient.reexecute_run` submits the re-execution through the coordinator; a run
    that did not fail cannot be re-executed from failure, and an unknown run is not found."""
    from dagloom.api.client import AsyncClient
    from dagloom.api.server import DagloomApiService
    from dagloom.errors import DagloomError, RunNotFoundError

    CALLS.clear()
    with anyio.fail_after(60):
        async with (
            open_instance("sqlite", tmp_path) as instance,
            stack(instance, tmp_path / "io") as coord,
        ):
            client = AsyncClient.in_process(DagloomApiService(instance, coord, {}))
            failed = await submit_run(coord, SubmitRunRequest(job_name="pipeline"))
            assert (await client.wait_for_run(failed.run_id)).status == RunStatus.FAILURE
            child = await client.reexecute_run(failed.run_id, from_failure=True)
            done = await client.wait_for_run(child.run_id)
            assert done.status == RunStatus.SUCCESS
            assert done.parent_run_id == failed.run_id
            assert CALLS == ["load", "flaky", "flaky", "report"]
            with pytest.raises(DagloomError, match="only a failed run"):
                await client.reexecute_run(child.run_id, from_failure=True)
            with pytest.raises(RunNotFoundError):
                await client.reexecute_run("no-such-run")
            everything = await client.reexecute_run(child.run_id)
            assert (await client.wait_for_run(everything.run_id)).status == RunStatus.SUCCESS
            assert CALLS[-3:] == ["load", "flaky", "report"]


async def test_a_run_that_failed_with_no_step_failed_is_re_executed_whole(
    tmp_path: Path,
) -> None:
    """A run whose events show only succeeded steps (its worker died before the next step's
    events were stored) lists no steps, so its retry executes every step."""
    from dagloom.daemon.retry_loop import failed_run_view, reexecution_steps
    from dagloom.messages import Event, EventType

    from ._stores import move, run_at

    async with open_instance("memory", tmp_path) as instance:
        run = await run_at(instance, RunStatus.STARTED, at=1.0, job_name="pipeline")
        await instance.store_events(
            [
                Event(run_id=run.run_id, event_type=t, step_key="load", timestamp=2.0)
                for t in (EventType.STEP_START, EventType.STEP_SUCCESS)
            ]
        )
        await move(instance, run.run_id, EventType.RUN_FAILURE, 3.0)
        failed = await instance.get_run(run.run_id)
        assert failed is not None
        view = await failed_run_view(instance, failed)
        assert view.step_keys == () and view.step_statuses["load"].value == "success"
        assert await reexecution_steps(instance, failed, from_failure=True) == []
