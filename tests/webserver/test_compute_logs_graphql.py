"""Captured compute logs over GraphQL: `capturedLogs` from a cursor, `capturedLogsMetadata`,
and the `capturedLogs` subscription, against a dev node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from dagloom.errors import DagloomError
from dagloom.webserver.schema.compute_logs import LogCursor, parse_log_key, restart_for
from tests.webserver.conftest import Web
from tests.webserver.extras_node import serve_extras

EXTRAS = Path(__file__).with_name("extras_defs.py")
LOGS = (
    "query($k: [String!]!, $c: String, $l: Int) { capturedLogs(logKey: $k, cursor: $c,"
    " limit: $l) { logKey stdout stderr cursor } }"
)


@pytest.fixture
async def extras(tmp_path: Path) -> AsyncIterator[Web]:
    async with serve_extras(tmp_path) as web:
        yield web


async def _run_talking(web: Web, job: str = "talking") -> str:
    selector = {
        "repositoryLocationName": "extras",
        "repositoryName": "__repository__",
        "jobName": job,
    }
    data = await web.data(
        "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {"
        " __typename ... on LaunchRunSuccess { run { runId } } } }",
        {"p": {"selector": selector}},
    )
    run_id: str = data["launchRun"]["run"]["runId"]
    assert await web.wait_for_end(run_id) == "SUCCESS"
    return run_id


def test_cursors_round_trip_and_bad_ones_are_named() -> None:
    assert LogCursor.parse(None) == LogCursor()
    assert LogCursor.parse(LogCursor(2, 10, 3).encode()) == LogCursor(2, 10, 3)
    assert LogCursor.parse(LogCursor(None, 4, 0).encode()) == LogCursor(None, 4, 0)
    for bad in ("x", "1:2", "1:-2:0", "a:1:1"):
        with pytest.raises(DagloomError, match="cursor"):
            LogCursor.parse(bad)
    assert parse_log_key(["r", "compute_logs", "s"]) == ("r", "s")
    assert parse_log_key(["r", "s"]) == ("r", "s")
    with pytest.raises(DagloomError, match="log key"):
        parse_log_key(["r", "x", "s"])


def test_a_newer_attempt_restarts_the_cursor_at_its_start() -> None:
    assert restart_for(LogCursor(0, 9, 9), 1) == LogCursor(1, 0, 0)
    assert restart_for(LogCursor(1, 9, 9), 1) is None
    assert restart_for(LogCursor(None, 0, 0), 0) is None
    assert restart_for(LogCursor(0, 9, 9), None) is None


async def test_captured_logs_read_from_a_cursor(extras: Web) -> None:
    run_id = await _run_talking(extras)
    key = [run_id, "compute_logs", "talk"]
    head = (await extras.data(LOGS, {"k": key, "l": 6}))["capturedLogs"]
    assert head["logKey"] == key
    assert head["stdout"] == "first " and head["stderr"] == "oops\n"
    rest = (await extras.data(LOGS, {"k": key, "c": head["cursor"]}))["capturedLogs"]
    assert rest["stdout"] == "line\nsecond line\n" and rest["stderr"] is None
    end = (await extras.data(LOGS, {"k": key, "c": rest["cursor"]}))["capturedLogs"]
    assert (end["stdout"], end["stderr"], end["cursor"]) == (None, None, rest["cursor"])


async def test_metadata_urls_download_each_stream(extras: Web) -> None:
    run_id = await _run_talking(extras)
    meta = await extras.data(
        "query($k: [String!]!) { capturedLogsMetadata(logKey: $k) { stdoutDownloadUrl"
        " stdoutLocation stderrDownloadUrl stderrLocation } }",
        {"k": [run_id, "compute_logs", "talk"]},
    )
    found = meta["capturedLogsMetadata"]
    assert found["stdoutDownloadUrl"] == f"/logs/{run_id}/compute_logs/talk/out"
    assert found["stderrDownloadUrl"] == f"/logs/{run_id}/compute_logs/talk/err"
    assert found["stdoutLocation"].endswith(f"{run_id}/talk.0.out")
    async with extras.session.get(extras.url + found["stdoutDownloadUrl"]) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "talk.0.out" in response.headers["Content-Disposition"]
        assert await response.text() == "first line\nsecond line\n"
    async with extras.session.get(extras.url + found["stderrDownloadUrl"]) as response:
        assert await response.text() == "oops\n"
    async with extras.session.get(extras.url + found["stdoutDownloadUrl"] + "?attempt=0") as r:
        assert await r.text() == "first line\nsecond line\n"
    none = await extras.data(
        "query($k: [String!]!) { capturedLogsMetadata(logKey: $k) { stdoutDownloadUrl } }",
        {"k": [run_id, "compute_logs", "silent-step"]},
    )
    assert none["capturedLogsMetadata"] == {"stdoutDownloadUrl": None}


async def test_log_downloads_refuse_what_names_no_log(extras: Web) -> None:
    run_id = await _run_talking(extras)
    cases = {
        f"/logs/{run_id}/compute_logs/talk/both": 404,
        f"/logs/{run_id}/compute_logs/talk/out?attempt=7": 404,
        f"/logs/{run_id}/compute_logs/talk/out?attempt=-1": 400,
        f"/logs/{run_id}/compute_logs/nobody/out": 404,
        "/logs/no-such-run/compute_logs/talk/out": 404,
        f"/logs/{run_id}/compute_logs/..%2Fx/out": 400,
    }
    for path, status in cases.items():
        async with extras.session.get(extras.url + path) as response:
            assert response.status == status, (path, await response.text())


async def test_bad_log_keys_and_unknown_runs_are_errors(extras: Web) -> None:
    bad = await extras.post(LOGS, {"k": ["only-one"]})
    assert "log key" in bad["errors"][0]["message"]
    missing = await extras.post(LOGS, {"k": ["no-such-run", "compute_logs", "talk"]})
    assert "no-such-run" in missing["errors"][0]["message"]


async def _subscribe(web: Web, query: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
    payloads: list[dict[str, Any]] = []
    async with web.session.ws_connect(
        f"{web.url}/graphql", protocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        while (await ws.receive_json())["type"] != "connection_ack":
            pass
        payload = {"query": query, "variables": variables}
        await ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        async for message in ws:
            body = message.json()
            if body["type"] == "next":
                assert "errors" not in body["payload"], body
                payloads.append(body["payload"]["data"])
            elif body["type"] == "complete":
                return payloads
            else:
                raise AssertionError(body)
    return payloads


async def test_the_subscription_streams_the_output_and_completes(extras: Web) -> None:
    run_id = await _run_talking(extras)
    query = (
        "subscription($k: [String!]!, $c: String) { capturedLogs(logKey: $k, cursor: $c) {"
        " stdout stderr cursor } }"
    )
    with anyio.fail_after(60):
        chunks = await _subscribe(extras, query, {"k": [run_id, "compute_logs", "talk"]})
    stdout = "".join(c["capturedLogs"]["stdout"] or "" for c in chunks)
    stderr = "".join(c["capturedLogs"]["stderr"] or "" for c in chunks)
    assert (stdout, stderr) == ("first line\nsecond line\n", "oops\n")
    after = chunks[-1]["capturedLogs"]["cursor"]
    with anyio.fail_after(60):
        rest = await _subscribe(extras, query, {"k": [run_id, "talk"], "c": after})
    assert rest == []


async def test_the_subscription_follows_a_retry_into_the_next_attempt(extras: Web) -> None:
    run_id = await _run_talking(extras, "retrying")
    query = (
        "subscription($k: [String!]!, $c: String) { capturedLogs(logKey: $k, cursor: $c) {"
        " stdout cursor } }"
    )
    key = [run_id, "compute_logs", "flaky"]
    with anyio.fail_after(60):
        chunks = await _subscribe(extras, query, {"k": key, "c": "0:0:0"})
    outputs = [c["capturedLogs"]["stdout"] for c in chunks if c["capturedLogs"]["stdout"]]
    assert outputs == ["attempt 0\n", "attempt 1\n"]
    assert chunks[-1]["capturedLogs"]["cursor"] == "1:10:0"
    latest = (await extras.data(LOGS, {"k": key}))["capturedLogs"]
    assert latest["stdout"] == "attempt 1\n"
