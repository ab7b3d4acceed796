"""`assetsLatestInfo`: latest materializations, targeting runs and status marks."""

from __future__ import annotations

from tests.webserver.conftest import Web

QUERY = """query($keys: [AssetKeyInput!]!) { assetsLatestInfo(assetKeys: $keys) {
  id assetKey { path } status unstartedRunIds inProgressRunIds
  latestRun { runId status } latestMaterialization { runId timestamp } } }"""


async def test_assets_latest_info_marks_missing_materialized_and_stale(web: Web) -> None:
    data = await web.data(QUERY, {"keys": []})
    before = {tuple(i["assetKey"]["path"]): i for i in data["assetsLatestInfo"]}
    assert len(before) == 6
    assert {i["status"] for i in before.values()} == {"MISSING"}
    assert all(i["latestMaterialization"] is None for i in before.values())

    everything = await web.launch("process_numbers_asset")
    assert await web.wait_for_end(everything) == "SUCCESS"
    parent = await web.launch(
        "__ASSET_JOB", selector={"assetSelection": [{"path": ["generated_numbers"]}]}
    )
    assert await web.wait_for_end(parent) == "SUCCESS"

    keys = [{"path": ["generated_numbers"]}, {"path": ["filtered_even_numbers"]}]
    data = await web.data(QUERY, {"keys": keys})
    info = {tuple(i["assetKey"]["path"]): i for i in data["assetsLatestInfo"]}
    assert list(info) == [("generated_numbers",), ("filtered_even_numbers",)]
    generated = info[("generated_numbers",)]
    assert generated["status"] == "MATERIALIZED"
    assert generated["latestMaterialization"]["runId"] == parent
    assert generated["latestRun"] == {"runId": parent, "status": "SUCCESS"}
    even = info[("filtered_even_numbers",)]
    assert even["status"] == "STALE" and even["latestRun"]["runId"] == everything
    assert even["unstartedRunIds"] == [] and even["inProgressRunIds"] == []


async def test_an_asset_outside_the_workspace_is_missing(web: Web) -> None:
    data = await web.data(QUERY, {"keys": [{"path": ["nope"]}]})
    assert data["assetsLatestInfo"] == [
        {
            "id": "nope",
            "assetKey": {"path": ["nope"]},
            "status": "MISSING",
            "unstartedRunIds": [],
            "inProgressRunIds": [],
            "latestRun": None,
            "latestMaterialization": None,
        }
    ]
