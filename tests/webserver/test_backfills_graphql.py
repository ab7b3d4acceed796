"""Partition backfills over GraphQL: launch one for assets, follow it until the daemon has
run it, list, read and cancel backfills, and the typed errors for what cannot be made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from dagloom.messages import AssetKeyMessage, Backfill, BackfillStatus, PartitionsSnapshot
from dagloom.messages.rpc import AssetSnapshot, BackfillPolicySnapshot, LocationSnapshot
from dagloom.webserver.schema.backfills import (
    Target,
    job_of_partition_set,
    partition_names,
    target_partitions,
    target_partitions_per_run,
)
from dagloom.webserver.schema.partition_sets import config_yaml
from tests.webserver.conftest import Web
from tests.webserver.extras_node import serve_extras

LAUNCH = (
    "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {"
    " __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"
)
BACKFILL = (
    "query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename"
    " ... on PartitionBackfill { id status partitionNames numPartitions numCancelable"
    " isAssetBackfill assetSelection { path } jobName partitionSetName tags { key value }"
    " runs { status tags { key value } } partitionStatusCounts { runStatus count } }"
    " ... on BackfillNotFoundError { backfillId message } } }"
)
REPO = {"repositoryLocationName": "extras", "repositoryName": "__repository__"}


@pytest.fixture
async def extras(tmp_path: Path) -> AsyncIterator[Web]:
    async with serve_extras(tmp_path) as web:
        yield web


def test_partition_set_names_and_partition_choices() -> None:
    assert job_of_partition_set("talking_partition_set") == "talking"
    assert job_of_partition_set("talking") == "talking"
    known = ["a", "b", "c"]
    assert partition_names(["b", "a", "b"], None, known) == ["b", "a"]
    assert partition_names(None, True, known) == known
    assert partition_names(["anything"], None, None) == ["anything"]
    with pytest.raises(ValueError, match="no partitions"):
        partition_names([], None, known)
    with pytest.raises(ValueError, match="no partition 'z'"):
        partition_names(["a", "z"], None, known)
    with pytest.raises(ValueError, match="allPartitions"):
        partition_names(None, True, None)
    with pytest.raises(ValueError, match="not both"):
        partition_names(["a"], True, known)


def _asset(name: str, max_per_run: int | None) -> AssetSnapshot:
    policy = (
        None if max_per_run is None else BackfillPolicySnapshot(max_partitions_per_run=max_per_run)
    )
    return AssetSnapshot(
        key=AssetKeyMessage(path=[name]), partitions_index=1, backfill_policy=policy
    )


def test_runs_per_backfill_follow_the_selected_assets_policies() -> None:
    snapshot = LocationSnapshot(
        location_name="here",
        assets=[
            _asset("single", 0),
            _asset("single_too", 0),
            _asset("five", 5),
            _asset("none", None),
        ],
        partitions_defs=[PartitionsSnapshot(type="static", keys=["a", "b"])],
        job_partitions_index={"per_letter": 1},
    )

    def per_run(*names: str) -> int:
        return target_partitions_per_run(
            snapshot, Target("__ASSET_JOB", tuple((n,) for n in names))
        )

    assert per_run("single", "single_too") == 0
    assert per_run("single", "five") == 5
    assert per_run("none") == 1 and per_run("single", "none") == 1
    assert target_partitions_per_run(snapshot, Target("per_letter", ())) == 1
    job_partitions = target_partitions(snapshot, Target("per_letter", ()))
    assert job_partitions is not None and list(job_partitions.keys) == ["a", "b"]
    assert target_partitions(snapshot, Target("unpartitioned", ())) is None


def test_a_partitions_run_config_reads_as_yaml() -> None:
    assert config_yaml("") == "" and config_yaml("{}") == ""
    assert (
        config_yaml('{"ops": {"o": {"config": {"n": 1}}}}')
        == "ops:\n  o:\n    config:\n      n: 1\n"
    )


async def _launch(web: Web, params: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = (await web.data(LAUNCH, {"p": params}))["launchPartitionBackfill"]
    return result


async def _until_done(web: Web, backfill_id: str) -> dict[str, Any]:
    """The backfill as GraphQL reads it once every partition's run has succeeded."""
    with anyio.fail_after(60):
        while True:
            data = await web.data(BACKFILL, {"id": backfill_id})
            backfill: dict[str, Any] = data["partitionBackfillOrError"]
            counts = {c["runStatus"]: c["count"] for c in backfill["partitionStatusCounts"]}
            if counts["SUCCESS"] + counts["FAILURE"] == backfill["numPartitions"]:
                return backfill
            await anyio.sleep(0.1)


async def test_an_asset_backfill_is_launched_run_by_the_daemon_and_listed(extras: Web) -> None:
    launched = await _launch(
        extras,
        {
            "assetSelection": [{"path": ["lettered"]}],
            "allPartitions": True,
            "tags": [{"key": "team", "value": "x"}],
        },
    )
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    backfill = await _until_done(extras, backfill_id)
    assert backfill["partitionNames"] == ["a", "b", "c"] and backfill["isAssetBackfill"]
    assert backfill["assetSelection"] == [{"path": ["lettered"]}]
    assert backfill["partitionSetName"] is None
    assert {"key": "team", "value": "x"} in backfill["tags"]
    counts = {c["runStatus"]: c["count"] for c in backfill["partitionStatusCounts"]}
    assert counts == {"NOT_STARTED": 0, "STARTED": 0, "SUCCESS": 3, "FAILURE": 0}
    partitions = sorted(
        t["value"] for r in backfill["runs"] for t in r["tags"] if t["key"] == "dagster/partition"
    )
    assert partitions == ["a", "b", "c"]
    listed = await extras.data(
        "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id } } } }"
    )
    assert [b["id"] for b in listed["partitionBackfillsOrError"]["results"]] == [backfill_id]


async def test_a_single_run_asset_backfills_its_partitions_in_one_run(extras: Web) -> None:
    launched = await _launch(
        extras, {"assetSelection": [{"path": ["lettered_batch"]}], "allPartitions": True}
    )
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = await _until_done(extras, launched["backfillId"])
    assert len(backfill["runs"]) == 1
    tags = {t["key"]: t["value"] for t in backfill["runs"][0]["tags"]}
    assert tags["dagster/asset_partition_range_start"] == "a"
    assert tags["dagster/asset_partition_range_end"] == "c"
    counts = {c["runStatus"]: c["count"] for c in backfill["partitionStatusCounts"]}
    assert counts["SUCCESS"] == 3
    stored = await extras.node.instance.get_materialized_partitions(["lettered_batch"])
    assert sorted(stored) == ["a", "b", "c"]


async def test_a_partitioned_config_job_backfills_each_partition_with_its_config(
    extras: Web,
) -> None:
    launched = await _launch(
        extras,
        {
            "selector": {
                "partitionSetName": "per_letter_partition_set",
                "repositorySelector": REPO,
            },
            "allPartitions": True,
        },
    )
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = await _until_done(extras, launched["backfillId"])
    assert backfill["partitionNames"] == ["a", "b", "c"] and not backfill["isAssetBackfill"]
    runs = await extras.node.instance.get_runs()
    configs = sorted(r.run_config_json for r in runs if r.job_name == "per_letter")
    assert configs == [
        f'{{"ops":{{"say_letter":{{"config":{{"letter":"{letter}"}}}}}}}}' for letter in "abc"
    ]


async def test_a_requested_backfill_is_canceled(tmp_path: Path) -> None:
    # Stored directly with no daemon, so nothing advances it before it is canceled.
    async with serve_extras(tmp_path, daemon=False) as extras:
        await _cancel_a_requested_backfill(extras)


async def _cancel_a_requested_backfill(extras: Web) -> None:
    stored = Backfill(
        backfill_id="waiting",
        status=BackfillStatus.REQUESTED,
        location_name="extras",
        job_name="__ASSET_JOB",
        partition_keys=["a", "b", "c"],
        partitions_per_run=1,
        num_submitted=0,
        run_config_json="{}",
    )
    await extras.node.instance.run_storage.add_backfill(stored)
    canceled = await extras.data(
        'mutation { cancelPartitionBackfill(backfillId: "waiting") { __typename'
        " ... on CancelBackfillSuccess { backfillId } } }"
    )
    assert canceled["cancelPartitionBackfill"]["backfillId"] == "waiting"
    after = await extras.node.instance.run_storage.get_backfill("waiting")
    assert after is not None and after.status == BackfillStatus.CANCELED
    listed = await extras.data(
        "{ partitionBackfillsOrError(status: CANCELED) {"
        " ... on PartitionBackfills { results { id status numCancelable } } } }"
    )
    results = listed["partitionBackfillsOrError"]["results"]
    assert results == [{"id": "waiting", "status": "CANCELED", "numCancelable": 0}]


async def test_what_cannot_be_backfilled_is_a_typed_error(extras: Web) -> None:
    unknown_job = await _launch(
        extras,
        {
            "selector": {"partitionSetName": "nope_partition_set", "repositorySelector": REPO},
            "partitionNames": ["a"],
        },
    )
    assert unknown_job["__typename"] == "PartitionSetNotFoundError"
    assert "nope" in unknown_job["message"]
    unknown_asset = await _launch(
        extras, {"assetSelection": [{"path": ["missing"]}], "partitionNames": ["a"]}
    )
    assert unknown_asset["__typename"] == "InvalidBackfillError"
    assert "missing" in unknown_asset["message"]
    unknown_partition = await _launch(
        extras, {"assetSelection": [{"path": ["lettered"]}], "partitionNames": ["a", "q"]}
    )
    assert unknown_partition["__typename"] == "InvalidBackfillError"
    assert "'q'" in unknown_partition["message"]
    nothing_failed = await _launch(
        extras,
        {"assetSelection": [{"path": ["lettered"]}], "allPartitions": True, "fromFailure": True},
    )
    assert nothing_failed["__typename"] == "InvalidBackfillError"
    assert "none of them failed" in nothing_failed["message"]
    no_location = await _launch(
        extras,
        {
            "selector": {
                "partitionSetName": "talking_partition_set",
                "repositorySelector": {**REPO, "repositoryLocationName": "elsewhere"},
            },
            "partitionNames": ["a"],
        },
    )
    assert no_location["__typename"] == "RepositoryNotFoundError"
    missing = await extras.data(BACKFILL, {"id": "none"})
    assert missing["partitionBackfillOrError"]["__typename"] == "BackfillNotFoundError"
    cancel = await extras.data(
        'mutation { cancelPartitionBackfill(backfillId: "none") { __typename } }'
    )
    assert cancel["cancelPartitionBackfill"]["__typename"] == "BackfillNotFoundError"


PARTITION_SET = (
    "query($n: String!, $k: String!) { partitionSetOrError(partitionSetName: $n) { __typename"
    " ... on PartitionSet { name pipelineName partitionsOrError { ... on Partitions {"
    " results { name } } } partition(partitionName: $k) { name runConfigOrError {"
    " ... on PartitionRunConfig { yaml } ... on PythonError { message } } tagsOrError {"
    " ... on PartitionTags { results { key value } } } } }"
    " ... on PartitionSetNotFoundError { message } } }"
)


async def test_a_partition_set_gives_each_partitions_run_config_and_tags(extras: Web) -> None:
    data = await extras.data(PARTITION_SET, {"n": "per_letter_partition_set", "k": "b"})
    found = data["partitionSetOrError"]
    assert found["__typename"] == "PartitionSet" and found["pipelineName"] == "per_letter"
    assert [p["name"] for p in found["partitionsOrError"]["results"]] == ["a", "b", "c"]
    partition = found["partition"]
    assert partition["runConfigOrError"]["yaml"] == (
        "ops:\n  say_letter:\n    config:\n      letter: b\n"
    )
    tags = {t["key"]: t["value"] for t in partition["tagsOrError"]["results"]}
    assert tags["dagster/partition"] == "b"
    assert tags["dagster/partition_set"] == "per_letter_partition_set"
    missing = await extras.data(PARTITION_SET, {"n": "per_letter_partition_set", "k": "z"})
    assert missing["partitionSetOrError"]["partition"] is None
    unpartitioned = await extras.data(PARTITION_SET, {"n": "talking_partition_set", "k": "a"})
    assert unpartitioned["partitionSetOrError"]["__typename"] == "PartitionSetNotFoundError"
    assert "'talking'" in unpartitioned["partitionSetOrError"]["message"]
