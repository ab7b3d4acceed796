"""One suite, three stacks: launching the seed job and the asset job, a failing step,
cancellation and a run config error, through the public API."""

from __future__ import annotations

import anyio
import pytest

from dagloom.errors import ConfigError, DefinitionError
from dagloom.messages import EventRecord, EventType, RunStatus
from tests.integration.conftest import StackFactory

RUN_TIMEOUT = 20.0


def _types(records: list[EventRecord]) -> list[EventType]:
    return [r.event.event_type for r in records if r.event is not None]


async def test_the_seed_job_runs_to_success(open_stack: StackFactory) -> None:
    async with open_stack() as stack:
        run = await stack.client.launch_run("process_numbers", location_name="numbers")
        events: list[EventRecord] = []
        with anyio.fail_after(RUN_TIMEOUT):
            done = await stack.client.wait_for_run(run.run_id, on_event=events.append)
        assert done.status == RunStatus.SUCCESS
        types = _types(events)
        assert types[-1] == EventType.RUN_SUCCESS
        assert types.count(EventType.STEP_SUCCESS) == 6


async def test_the_asset_job_materializes_every_asset(open_stack: StackFactory) -> None:
    async with open_stack() as stack:
        run = await stack.client.launch_run("process_numbers_asset", location_name="numbers")
        events: list[EventRecord] = []
        with anyio.fail_after(RUN_TIMEOUT):
            done = await stack.client.wait_for_run(run.run_id, on_event=events.append)
        assert done.status == RunStatus.SUCCESS
        assert _types(events).count(EventType.ASSET_MATERIALIZATION) == 6


async def test_a_failing_step_fails_the_run(open_stack: StackFactory) -> None:
    async with open_stack() as stack:
        run = await stack.client.launch_run("failing_job", location_name="suite")
        events: list[EventRecord] = []
        with anyio.fail_after(RUN_TIMEOUT):
            done = await stack.client.wait_for_run(run.run_id, on_event=events.append)
        assert done.status == RunStatus.FAILURE
        failures = [
            r.event for r in events if r.event and r.event.event_type == EventType.STEP_FAILURE
        ]
        assert [f.step_key for f in failures] == ["explode"]
        assert _types(events)[-1] == EventType.RUN_FAILURE


async def test_a_running_run_is_canceled(open_stack: StackFactory) -> None:
    async with open_stack() as stack:
        client = stack.client
        run = await client.launch_run("endless_job", location_name="suite")
        with anyio.fail_after(RUN_TIMEOUT):
            async for record in client.stream_events(run.run_id):
                if record.event and record.event.event_type == EventType.STEP_START:
                    break
            reply = await client.cancel_run(run.run_id)
            assert reply.accepted, reply.message
            done = await client.wait_for_run(run.run_id)
        assert done.status == RunStatus.CANCELED


async def test_a_run_config_error_names_the_key_path_and_stores_nothing(
    open_stack: StackFactory,
) -> None:
    async with open_stack() as stack:
        with pytest.raises(ConfigError) as info:
            await stack.client.launch_run(
                "configured_job",
                location_name="suite",
                run_config={"ops": {"count_to": {"config": {"limit": "many"}}}},
            )
        assert "ops.count_to.config.limit" in info.value.key_paths
        run = await stack.client.launch_run(
            "configured_job",
            location_name="suite",
            run_config={"ops": {"count_to": {"config": {"limit": 3}}}},
        )
        with anyio.fail_after(RUN_TIMEOUT):
            done = await stack.client.wait_for_run(run.run_id)
        assert done.status == RunStatus.SUCCESS


async def test_an_unknown_job_is_refused(open_stack: StackFactory) -> None:
    async with open_stack() as stack:
        with pytest.raises(DefinitionError, match="no_such_job"):
            await stack.client.launch_run("no_such_job", location_name="suite")
        jobs = {(j.location_name, j.job_name) for j in await stack.client.list_jobs()}
        assert {("numbers", "process_numbers"), ("suite", "failing_job")} <= jobs
