"""Subscriptions over both websocket protocols: a run's events in batches, and run status
changes across the instance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest

from tests.webserver.conftest import Web

RUN_LOGS = (
    "subscription($id: ID!, $c: String) { pipelineRunLogs(runId: $id, cursor: $c) { __typename"
    " ... on PipelineRunLogsSubscriptionSuccess { cursor run { status }"
    " messages { __typename ... on MessageEvent { eventType storageId } } }"
    " ... on PipelineRunLogsSubscriptionFailure { missingRunId message } } }"
)


async def _subscribe(
    web: Web, protocol: str, query: str, variables: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    """Each `data` payload of one subscription, until the server completes it."""
    start, data = ("subscribe", "next") if protocol == "graphql-transport-ws" else ("start", "data")
    async with web.session.ws_connect(f"{web.url}/graphql", protocols=[protocol]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        while (await ws.receive_json())["type"] != "connection_ack":
            pass
        payload = {"query": query, "variables": variables}
        await ws.send_json({"id": "1", "type": start, "payload": payload})
        async for message in ws:
            assert message.type == aiohttp.WSMsgType.TEXT, message
            body = message.json()
            if body["type"] == data:
                assert "errors" not in body["payload"], body
                yield body["payload"]["data"]
            elif body["type"] == "complete":
                return
            elif body["type"] in ("error", "connection_error"):
                raise AssertionError(body)


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_run_logs_stream_every_event_in_batches_until_the_run_ends(
    web: Web, protocol: str
) -> None:
    run_id = await web.launch("process_numbers")
    seen: list[dict[str, Any]] = []
    batches = 0
    with anyio.fail_after(60):
        async for data in _subscribe(web, protocol, RUN_LOGS, {"id": run_id}):
            payload = data["pipelineRunLogs"]
            assert payload["__typename"] == "PipelineRunLogsSubscriptionSuccess"
            seen += payload["messages"]
            batches += 1
            assert payload["cursor"] == seen[-1]["storageId"]
    stored = await web.node.instance.get_events(run_id)
    assert [int(m["storageId"]) for m in seen] == [r.storage_id for r in stored]
    assert seen[-1]["eventType"] == "RUN_SUCCESS"
    assert batches <= len(stored)


async def test_run_logs_resume_from_a_cursor(web: Web) -> None:
    run_id = await web.launch("process_numbers")
    await web.wait_for_end(run_id)
    stored = await web.node.instance.get_events(run_id)
    middle = stored[len(stored) // 2].storage_id
    seen: list[dict[str, Any]] = []
    with anyio.fail_after(60):
        variables = {"id": run_id, "c": str(middle)}
        async for data in _subscribe(web, "graphql-transport-ws", RUN_LOGS, variables):
            seen += data["pipelineRunLogs"]["messages"]
    assert [int(m["storageId"]) for m in seen] == [
        r.storage_id for r in stored if r.storage_id > middle
    ]


async def test_run_logs_of_an_unknown_run_say_so(web: Web) -> None:
    with anyio.fail_after(30):
        payloads = [d async for d in _subscribe(web, "graphql-ws", RUN_LOGS, {"id": "nope"})]
    assert payloads == [
        {
            "pipelineRunLogs": {
                "__typename": "PipelineRunLogsSubscriptionFailure",
                "missingRunId": "nope",
                "message": "Could not load run with id nope",
            }
        }
    ]


async def test_json_batches_carry_the_same_events(web: Web) -> None:
    run_id = await web.launch("process_numbers")
    query = (
        "subscription($id: ID!) { pipelineRunLogs(runId: $id) {"
        " ... on PipelineRunLogsSubscriptionSuccess { messagesJson } } }"
    )
    seen: list[dict[str, Any]] = []
    with anyio.fail_after(60):
        async for data in _subscribe(web, "graphql-transport-ws", query, {"id": run_id}):
            seen += data["pipelineRunLogs"]["messagesJson"]
    stored = await web.node.instance.get_events(run_id)
    assert [m["storageId"] for m in seen] == [r.storage_id for r in stored]
    assert seen[-1]["eventType"] == "RUN_SUCCESS"


async def test_run_status_changes_report_a_run_reaching_success(web: Web) -> None:
    query = "subscription { runStatusChanges { changes { runId status } } }"
    run_id = ""
    with anyio.fail_after(60):
        async for data in _subscribe(web, "graphql-transport-ws", query, {}):
            changes = data["runStatusChanges"]["changes"]
            if not run_id:
                run_id = await web.launch("process_numbers")
            if {"runId": run_id, "status": "SUCCESS"} in changes:
                break
