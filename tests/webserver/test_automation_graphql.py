"""`assetConditionEvaluationRecordsOrError`: an asset's automation evaluations over GraphQL,
newest first, with the condition tree as `evaluationNodes`, paged by cursor."""

from __future__ import annotations

import json
from pathlib import Path

from dagloom.storage.automation import AutomationEvaluationRecord, AutomationStorage
from tests.webserver.conftest import Web

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "automation.py"
RECORDS = (
    "query($c: String) { assetConditionEvaluationRecordsOrError("
    'assetKey: {path: ["shop", "orders"]}, limit: 1, cursor: $c) {'
    " __typename ... on AssetConditionEvaluationRecords { records { id evaluationId runIds"
    " timestamp numRequested error rootUniqueId assetKey { path }"
    " evaluationNodes { uniqueId userLabel numTrue numCandidates childUniqueIds } } }"
    " ... on PythonError { message } } }"
)

TREE = {
    "node_id": "0",
    "label": "eager",
    "candidate_size": 1,
    "num_true": 1,
    "true_partitions": [],
    "children": [
        {"node_id": "0.0", "label": "in_progress", "candidate_size": 1, "num_true": 0},
    ],
}


async def test_evaluations_are_listed_newest_first_with_their_tree(web: Web) -> None:
    storage = web.node.instance.schedule_storage
    assert isinstance(storage, AutomationStorage)
    body = json.dumps({"root": TREE, "error": None})
    await storage.store_automation_tick(
        {},
        [
            AutomationEvaluationRecord("shop/orders", 1.0, 1, body, ("r1",)),
            AutomationEvaluationRecord("shop/orders", 2.0, 0, json.dumps({"error": "boom"})),
        ],
    )
    found = (await web.data(RECORDS))["assetConditionEvaluationRecordsOrError"]
    [newest] = found["records"]
    assert newest["timestamp"] == 2.0 and newest["error"] == "boom"
    assert newest["evaluationNodes"] == [] and newest["assetKey"] == {"path": ["shop", "orders"]}
    older = (await web.data(RECORDS, {"c": newest["id"]}))["assetConditionEvaluationRecordsOrError"]
    [record] = older["records"]
    assert record["runIds"] == ["r1"] and record["numRequested"] == 1
    assert record["rootUniqueId"] == "0"
    assert [(n["uniqueId"], n["userLabel"], n["numTrue"]) for n in record["evaluationNodes"]] == [
        ("0", "eager", 1),
        ("0.0", "in_progress", 0),
    ]
    assert record["evaluationNodes"][0]["childUniqueIds"] == ["0.0"]
    bad = (await web.data(RECORDS, {"c": "x"}))["assetConditionEvaluationRecordsOrError"]
    assert bad["__typename"] == "PythonError" and "'x'" in bad["message"]


async def test_asset_nodes_carry_their_automation_condition() -> None:
    import aiohttp

    from tests.webserver.conftest import open_node

    async with open_node("shop", EXAMPLE) as node, aiohttp.ClientSession() as session:
        web = Web(f"http://{node.webserver_address}", node, session)
        data = await web.data(
            "{ assetNodes { assetKey { path } automationCondition { label expandedLabel } } }"
        )
    conditions = {
        tuple(n["assetKey"]["path"]): n["automationCondition"] for n in data["assetNodes"]
    }
    assert conditions[("raw_orders",)] is None
    assert conditions[("orders",)] == {"label": "eager", "expandedLabel": ["eager"]}
    assert conditions[("daily_report",)]["label"] == "on_cron(0 0 * * *, UTC)"
