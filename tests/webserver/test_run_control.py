"""Terminating a running run and re-executing a failed one from failure, through GraphQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import anyio

from dagloom.messages import EventType
from tests.webserver.conftest import Web, open_node

SUITE = Path(__file__).resolve().parents[1] / "integration" / "defs.py"
LAUNCH = (
    "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {"
    " __typename ... on LaunchRunSuccess { run { runId } } } }"
)


async def _launch(web: Web, job: str) -> str:
    selector = {"repositoryLocationName": "suite", "repositoryName": "__repository__"}
    data = await web.data(LAUNCH, {"p": {"selector": {**selector, "jobName": job}}})
    run_id: str = data["launchRun"]["run"]["runId"]
    return run_id


async def test_terminate_a_running_run_then_reexecute_a_failed_one_from_failure() -> None:
    async with open_node("suite", SUITE) as node, aiohttp.ClientSession() as session:
        assert node.webserver_address is not None
        web = Web(f"http://{node.webserver_address}", node, session)

        endless = await _launch(web, "endless_job")
        with anyio.fail_after(60):
            async for record in node.instance.watch_run_events(endless, stop_at_end=False):
                assert record.event is not None
                if record.event.event_type == EventType.STEP_START:
                    break
        data: dict[str, Any] = await web.data(
            "mutation($id: String!) { terminateRun(runId: $id) { __typename"
            " ... on TerminateRunSuccess { run { runId canTerminate } } } }",
            {"id": endless},
        )
        assert data["terminateRun"]["__typename"] == "TerminateRunSuccess"
        assert await web.wait_for_end(endless) == "CANCELED"

        failed = await _launch(web, "failing_job")
        assert await web.wait_for_end(failed) == "FAILURE"
        data = await web.data(
            "mutation($r: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $r) {"
            " __typename ... on LaunchRunSuccess {"
            " run { runId parentRunId stepKeysToExecute } } } }",
            {"r": {"parentRunId": failed, "strategy": "FROM_FAILURE"}},
        )
        child = data["launchRunReexecution"]["run"]
        assert child["parentRunId"] == failed
        assert child["stepKeysToExecute"], child
        assert await web.wait_for_end(child["runId"]) == "FAILURE"


async def test_jobs_carry_their_run_config_schema() -> None:
    async with open_node("suite", SUITE) as node, aiohttp.ClientSession() as session:
        assert node.webserver_address is not None
        web = Web(f"http://{node.webserver_address}", node, session)
        data = await web.data(
            "query($s: PipelineSelector!) { pipelineOrError(params: $s) { ... on Pipeline {"
            " runConfigJsonSchema solids { name definition { configSchema } } } } }",
            {
                "s": {
                    "repositoryLocationName": "suite",
                    "repositoryName": "__repository__",
                    "pipelineName": "configured_job",
                }
            },
        )
        job = data["pipelineOrError"]
        (solid,) = job["solids"]
        assert solid["definition"]["configSchema"]["required"] == ["limit"]
        schema = job["runConfigJsonSchema"]
        assert schema["required"] == ["ops"]
        assert schema["properties"]["ops"]["required"] == [solid["name"]]
