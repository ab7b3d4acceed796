"""The REST report endpoints and the GraphQL API (reportRunlessAssetEvents, staleStatus,
staleCauses) against a dev node serving examples/external_assets.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dagloom.definitions.outputs import DATA_VERSION_TAG
from tests.webserver.conftest import Web, open_node, serve_web

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "external_assets.py"
NODES = (
    "{ assetNodes { assetKey { path } staleStatus staleCauses { key { path } category reason"
    " dependency { path } } isMaterializable isObservable opVersion } }"
)


@pytest.fixture
async def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Web]:
    monkeypatch.setenv("EXTERNAL_ASSETS_DIR", str(tmp_path))
    async with serve_web(open_node("external", EXAMPLE)) as web:
        yield web


async def _nodes(web: Web) -> dict[str, dict[str, Any]]:
    data = await web.data(NODES)
    return {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}


async def test_rest_report_records_a_runless_materialization(web: Web) -> None:
    async with web.session.post(
        f"{web.url}/report_asset_materialization/raw_orders",
        json={"metadata": {"rows": 12}, "data_version": "5", "description": "loaded"},
    ) as response:
        assert response.status == 200, await response.text()
        assert await response.json() == {}

    [record] = await web.node.instance.get_materializations(["raw_orders"], limit=1)
    assert record.event.run_id == ""
    data = record.event.asset_materialization
    assert data.tags[DATA_VERSION_TAG] == "5"
    assert data.metadata["rows"].int == 12
    assert data.description == "loaded"
    nodes = await web.data(
        '{ assetNodes(assetKeys: [{path: ["raw_orders"]}]) {'
        " latestMaterialization { runId tags { key value } } } }"
    )
    version = await web.data('{ assetNodes(assetKeys: [{path: ["raw_orders"]}]) { dataVersion } }')
    assert version["assetNodes"][0]["dataVersion"] == "5"
    latest = nodes["assetNodes"][0]["latestMaterialization"]
    assert latest["runId"] == ""
    assert {"key": DATA_VERSION_TAG, "value": "5"} in latest["tags"]


async def test_rest_reports_take_query_parameters_and_refuse_bad_bodies(web: Web) -> None:
    url = f"{web.url}/report_asset_observation/raw_orders?data_version=9"
    async with web.session.post(url) as response:
        assert response.status == 200
    [record] = await web.node.instance.get_observations(["raw_orders"], limit=1)
    assert record.event.asset_materialization.tags[DATA_VERSION_TAG] == "9"

    async with web.session.post(
        f"{web.url}/report_asset_materialization/raw_orders", data=b"[1, 2]"
    ) as response:
        assert response.status == 400
        assert "JSON object" in (await response.json())["error"]
    async with web.session.post(
        f"{web.url}/report_asset_check/raw_orders", json={"passed": True}
    ) as response:
        assert response.status == 400
        assert "check_name is missing" in (await response.json())["error"]
    async with web.session.post(
        f"{web.url}/report_asset_check/raw_orders", json={"check_name": "rows", "passed": False}
    ) as response:
        assert response.status == 200
    [check] = await web.node.instance.get_asset_check_evaluations(["raw_orders"], limit=1)
    assert check.event.asset_check_evaluation.check_name == "rows"
    assert not check.event.asset_check_evaluation.passed


async def test_graphql_mutation_reports_per_partition_and_stale_status_follows(web: Web) -> None:
    before = await _nodes(web)
    assert before["orders_summary"]["staleStatus"] == "MISSING"
    assert before["raw_orders"]["staleStatus"] == "FRESH"
    assert before["raw_orders"]["isMaterializable"] is False
    assert before["exchange_rates"]["isObservable"] is True
    assert before["orders_summary"]["opVersion"] == "1"

    run_id = await web.launch("summarize", selector={"repositoryLocationName": "external"})
    assert await web.wait_for_end(run_id) == "SUCCESS"
    assert (await _nodes(web))["orders_summary"]["staleStatus"] == "FRESH"

    result = await web.data(
        "mutation($p: ReportRunlessAssetEventsParams!) { reportRunlessAssetEvents(eventParams:"
        " $p) { __typename ... on ReportRunlessAssetEventsSuccess { assetKey { path } } } }",
        {"p": {"eventType": "ASSET_MATERIALIZATION", "assetKey": {"path": ["raw_orders"]}}},
    )
    assert result["reportRunlessAssetEvents"] == {
        "__typename": "ReportRunlessAssetEventsSuccess",
        "assetKey": {"path": ["raw_orders"]},
    }

    after = await _nodes(web)
    assert after["orders_summary"]["staleStatus"] == "STALE"
    assert after["orders_summary"]["staleCauses"] == [
        {
            "key": {"path": ["orders_summary"]},
            "category": "DATA",
            "reason": "has been updated",
            "dependency": {"path": ["raw_orders"]},
        }
    ]
    assert after["priced_orders"]["staleStatus"] == "MISSING"


async def test_launching_a_run_of_an_external_asset_is_refused(web: Web) -> None:
    data = await web.data(
        "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename"
        " ... on Error { message } } }",
        {
            "p": {
                "selector": {
                    "repositoryLocationName": "external",
                    "repositoryName": "__repository__",
                    "jobName": "__ASSET_JOB",
                    "assetSelection": [{"path": ["raw_orders"]}, {"path": ["orders_summary"]}],
                }
            }
        },
    )

    refused = data["launchRun"]
    assert refused["__typename"] == "InvalidSubsetError"
    assert "external asset(s) ['raw_orders']" in refused["message"]
    assert await web.node.instance.get_runs() == []


LATEST = "{ assetsLatestInfo(assetKeys: []) { assetKey { path } status } }"


async def _marks(web: Web) -> dict[str, str]:
    data = await web.data(LATEST)
    return {"/".join(i["assetKey"]["path"]): i["status"] for i in data["assetsLatestInfo"]}


async def _report(web: Web, version: str) -> None:
    async with web.session.post(
        f"{web.url}/report_asset_materialization/raw_orders", json={"data_version": version}
    ) as response:
        assert response.status == 200, await response.text()


async def test_the_asset_graph_marks_stale_by_the_asset_pages_rule(web: Web) -> None:
    """The graph's STALE mark is `staleStatus`'s: an upstream reported again at the data
    version the asset read leaves it fresh (though reported after it); a new version makes
    it stale, on the graph and on the asset's page alike."""
    await _report(web, "5")
    run_id = await web.launch("summarize", selector={"repositoryLocationName": "external"})
    assert await web.wait_for_end(run_id) == "SUCCESS"
    await _report(web, "5")
    assert (await _nodes(web))["orders_summary"]["staleStatus"] == "FRESH"
    assert (await _marks(web))["orders_summary"] == "MATERIALIZED"

    await _report(web, "6")
    nodes = await _nodes(web)
    assert nodes["orders_summary"]["staleStatus"] == "STALE"
    assert [c["reason"] for c in nodes["orders_summary"]["staleCauses"]] == [
        "has a new data version"
    ]
    marks = await _marks(web)
    assert marks["orders_summary"] == "STALE"
    # priced_orders was never materialized: missing on both, however stale its inputs.
    assert nodes["priced_orders"]["staleStatus"] == "MISSING"
    assert marks["priced_orders"] == "MISSING"


PARTITIONED = Path(__file__).with_name("partitioned_defs.py")
BY_PARTITION = (
    'query($p: String) { assetNodes(assetKeys: [{path: ["letters_down"]}]) {'
    " staleStatus(partition: $p) staleCauses(partition: $p) { key { path } partitionKey"
    " category reason dependency { path } dependencyPartitionKey }"
    ' staleStatusByPartition staleCausesByPartition(partitions: ["b"]) { reason }'
    " dataVersion(partition: $p) } }"
)


async def test_staleness_per_partition_follows_the_upstream_partition_it_read(
    tmp_path: Path,
) -> None:
    async with serve_web(open_node("parts", PARTITIONED)) as web:

        async def run(keys: list[str], partition: str) -> None:
            run_id = await web.launch(
                "__ASSET_JOB",
                selector={
                    "repositoryLocationName": "parts",
                    "assetSelection": [{"path": [k]} for k in keys],
                },
                executionMetadata={"tags": [{"key": "dagster/partition", "value": partition}]},
            )
            assert await web.wait_for_end(run_id) == "SUCCESS"

        async def node(partition: str | None = None) -> dict[str, Any]:
            data = await web.data(BY_PARTITION, {"p": partition})
            found: dict[str, Any] = data["assetNodes"][0]
            return found

        assert (await node())["staleStatusByPartition"] == ["MISSING"] * 3
        await run(["letters_up", "letters_down"], "a")
        await run(["letters_up", "letters_down"], "b")
        fresh = await node("b")
        assert fresh["staleStatusByPartition"] == ["FRESH", "FRESH", "MISSING"]
        assert fresh["staleStatus"] == "FRESH" and fresh["dataVersion"]
        await run(["letters_up"], "b")
        stale = await node("b")
        assert stale["staleStatusByPartition"] == ["FRESH", "STALE", "MISSING"]
        assert stale["staleStatus"] == "STALE"
        assert stale["staleCauses"] == [
            {
                "key": {"path": ["letters_down"]},
                "partitionKey": "b",
                "category": "DATA",
                "reason": "has a new data version",
                "dependency": {"path": ["letters_up"]},
                "dependencyPartitionKey": "b",
            }
        ]
        assert stale["staleCausesByPartition"] == [[{"reason": "has a new data version"}]]
        assert (await node("a"))["staleStatus"] == "FRESH"
