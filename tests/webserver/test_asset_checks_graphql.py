"""Asset check results over GraphQL: `assetCheckExecutions` after the checked asset's
partitions are materialized, newest first, paged by cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.webserver.conftest import Web
from tests.webserver.extras_node import serve_extras

EXECUTIONS = (
    'query($c: String) { assetCheckExecutions(assetKey: {path: ["lettered"]},'
    ' checkName: "is_a_letter", limit: 1, cursor: $c) { id runId status stepKey'
    " evaluation { checkName assetKey { path } success severity partition"
    " metadataEntries { label value } } } }"
)


@pytest.fixture
async def extras(tmp_path: Path) -> AsyncIterator[Web]:
    async with serve_extras(tmp_path) as web:
        yield web


async def _materialize(web: Web, partition: str) -> str:
    selector = {
        "repositoryLocationName": "extras",
        "repositoryName": "__repository__",
        "jobName": "__ASSET_JOB",
        "assetSelection": [{"path": ["lettered"]}],
    }
    data = await web.data(
        "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {"
        " __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }",
        {
            "p": {
                "selector": selector,
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
            }
        },
    )
    assert data["launchRun"]["__typename"] == "LaunchRunSuccess", data
    run_id: str = data["launchRun"]["run"]["runId"]
    assert await web.wait_for_end(run_id) == "SUCCESS"
    return run_id


async def test_check_executions_are_listed_newest_first_and_paged(extras: Web) -> None:
    first = await _materialize(extras, "a")
    second = await _materialize(extras, "b")
    page = (await extras.data(EXECUTIONS))["assetCheckExecutions"]
    assert [e["runId"] for e in page] == [second]
    (newest,) = page
    assert newest["status"] == "SUCCEEDED"
    evaluation = newest["evaluation"]
    assert evaluation["checkName"] == "is_a_letter" and evaluation["success"]
    assert evaluation["assetKey"] == {"path": ["lettered"]}
    assert evaluation["severity"] == "ERROR"
    assert evaluation["metadataEntries"] == [{"label": "letter", "value": "b"}]
    older = (await extras.data(EXECUTIONS, {"c": newest["id"]}))["assetCheckExecutions"]
    assert [e["runId"] for e in older] == [first]
    last = (await extras.data(EXECUTIONS, {"c": older[0]["id"]}))["assetCheckExecutions"]
    assert last == []
