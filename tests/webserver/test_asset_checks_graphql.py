"""Asset partitions and checks over GraphQL: the partition and check fields of
`AssetNode`, and `assetCheckExecutions` (newest first, paged by cursor)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dagloom.messages import EventType
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


NODE = (
    "{ assetNodes { assetKey { path } isPartitioned partitionKeys"
    " partitionDefinition { type description name }"
    " assetPartitionStatuses { materializedPartitions failedPartitions"
    " unmaterializedPartitions materializingPartitions }"
    " assetChecksOrError { ... on AssetChecks { checks { name blocking assetKey { path } } } } } }"
)


async def test_asset_nodes_carry_partitions_their_statuses_and_checks(extras: Web) -> None:
    before = (await extras.data(NODE))["assetNodes"]
    (node,) = [n for n in before if n["assetKey"]["path"] == ["lettered"]]
    assert node["isPartitioned"] and node["partitionKeys"] == ["a", "b", "c"]
    assert node["partitionDefinition"]["type"] == "STATIC"
    assert "a, b, c" in node["partitionDefinition"]["description"]
    assert node["assetPartitionStatuses"]["unmaterializedPartitions"] == ["a", "b", "c"]
    assert node["assetChecksOrError"]["checks"] == [
        {"name": "is_a_letter", "blocking": False, "assetKey": {"path": ["lettered"]}}
    ]
    await _materialize(extras, "b")
    after = (await extras.data(NODE))["assetNodes"]
    (node,) = [n for n in after if n["assetKey"]["path"] == ["lettered"]]
    statuses = node["assetPartitionStatuses"]
    assert statuses["materializedPartitions"] == ["b"]
    assert statuses["unmaterializedPartitions"] == ["a", "c"]
    assert statuses["failedPartitions"] == statuses["materializingPartitions"] == []


def test_partition_snapshots_name_dynamic_partitions_and_list_the_others() -> None:
    import dagloom as dg
    from dagloom.code.snapshot import location_snapshot, partitions_snapshot

    assert partitions_snapshot(None) is None
    dynamic = partitions_snapshot(dg.DynamicPartitionsDefinition(name="regions"))
    assert dynamic is not None
    assert (dynamic.type, dynamic.dynamic_name, list(dynamic.keys)) == ("dynamic", "regions", [])
    static = partitions_snapshot(dg.StaticPartitionsDefinition(["x", "y"]))
    assert static is not None and (static.type, list(static.keys)) == ("static", ["x", "y"])

    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")
    also_daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    @dg.asset(partitions_def=daily)
    def first() -> None: ...

    @dg.asset(partitions_def=also_daily)
    def second() -> None: ...

    @dg.asset
    def plain() -> None: ...

    snapshot = location_snapshot(
        dg.Definitions(assets=[first, second, plain]), location_name="x", loaded_at=0
    )
    assert len(snapshot.partitions_defs) == 1  # the keys are sent once
    assert [a.partitions_index for a in snapshot.assets] == [1, 1, 0]


async def test_a_run_of_a_check_alone_executes_only_the_check(extras: Web) -> None:
    """`assetCheckSelection` without `assetSelection`: the run's one step is the check's.
    (Its input, the asset's stored value, is gone here: extras_defs.py keeps outputs in
    memory, per run; tests/daemon/test_automation_checks.py runs one that passes.)"""
    selector = {
        "repositoryLocationName": "extras",
        "repositoryName": "__repository__",
        "jobName": "__ASSET_JOB",
        "assetCheckSelection": [{"assetKey": {"path": ["lettered"]}, "name": "is_a_letter"}],
    }
    data = await extras.data(
        "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {"
        " __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }",
        {
            "p": {
                "selector": selector,
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "b"}]},
            }
        },
    )
    assert data["launchRun"]["__typename"] == "LaunchRunSuccess", data
    run_id = data["launchRun"]["run"]["runId"]
    await extras.wait_for_end(run_id)
    run = (
        await extras.data(
            "query($r: ID!) { runOrError(runId: $r) { ... on Run { assetSelection { path }"
            " assetCheckSelection { name assetKey { path } } } } }",
            {"r": run_id},
        )
    )["runOrError"]
    assert run["assetSelection"] is None
    assert run["assetCheckSelection"] == [
        {"name": "is_a_letter", "assetKey": {"path": ["lettered"]}}
    ]
    events = [r.event for r in await extras.node.instance.get_events(run_id) if r.event]
    started = {e.step_key for e in events if e.event_type == EventType.STEP_START}
    assert started == {"lettered_is_a_letter"}
    assert not any(e.event_type == EventType.ASSET_MATERIALIZATION for e in events)
