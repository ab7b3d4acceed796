"""Automation evaluations over GraphQL, with Dagster's names:
`assetConditionEvaluationRecordsOrError`, each record's `evaluationNodes` (the condition tree,
flattened, children by unique id)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import strawberry

from dagloom.daemon.automation_report import EvaluationView, asset_evaluations
from dagloom.definitions.asset_key import AssetKey as DefinitionsAssetKey
from dagloom.definitions.automation_condition import condition_from_dict
from dagloom.errors import DagloomError
from dagloom.messages.rpc import AssetSnapshot
from dagloom.webserver._operations import guarded
from dagloom.webserver.schema._unions import named_union
from dagloom.webserver.schema.errors import PythonError
from dagloom.webserver.schema.runs import AssetKey, AssetKeyInput

MAX_RECORDS = 1000


@strawberry.type
class AutomationConditionEvaluationNode:
    uniqueId: str
    userLabel: str | None
    expandedLabel: list[str]
    numTrue: int
    numCandidates: int | None
    isPartitioned: bool
    childUniqueIds: list[str]
    truePartitionKeys: list[str]


@strawberry.type
class AssetConditionEvaluationRecord:
    view: strawberry.Private[EvaluationView]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.record_id))

    @strawberry.field
    def evaluationId(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.record_id))

    @strawberry.field
    def runIds(self) -> list[str]:
        return list(self.view.run_ids)

    @strawberry.field
    def timestamp(self) -> float:
        return self.view.timestamp

    @strawberry.field
    def assetKey(self) -> AssetKey:
        return AssetKey(path=list(DefinitionsAssetKey.from_user_string(self.view.asset_key).path))

    @strawberry.field
    def numRequested(self) -> int:
        return self.view.num_requested

    @strawberry.field(description="Why the asset could not be evaluated or launched, if so.")
    def error(self) -> str | None:
        return self.view.error

    @strawberry.field
    def rootUniqueId(self) -> str:
        return str(self.view.root["node_id"]) if self.view.root else ""

    @strawberry.field
    def isPartitioned(self) -> bool:
        return bool(self.view.root and self.view.root.get("true_partitions"))

    @strawberry.field
    def evaluationNodes(self) -> list[AutomationConditionEvaluationNode]:
        return list(_nodes(self.view.root)) if self.view.root else []


def _nodes(node: dict[str, Any]) -> Iterator[AutomationConditionEvaluationNode]:
    children = node.get("children", [])
    listed = list(node.get("true_partitions") or [])
    yield AutomationConditionEvaluationNode(
        uniqueId=str(node["node_id"]),
        userLabel=node.get("label"),
        expandedLabel=[str(node.get("label", ""))],
        numTrue=int(node.get("num_true", 0)),
        numCandidates=node.get("candidate_size"),
        isPartitioned=bool(listed),
        childUniqueIds=[str(c["node_id"]) for c in children],
        truePartitionKeys=listed,
    )
    for child in children:
        yield from _nodes(child)


@strawberry.type
class AutomationCondition:
    label: str | None
    expandedLabel: list[str]


@strawberry.type
class AssetNodeAutomation:
    """The automation field of `AssetNode` (which inherits it)."""

    snapshot: strawberry.Private[AssetSnapshot]

    @strawberry.field
    def automationCondition(self) -> AutomationCondition | None:
        text = self.snapshot.automation_condition_json
        if not text:
            return None
        condition = condition_from_dict(json.loads(text))
        return AutomationCondition(label=condition.label, expandedLabel=[str(condition)])


@strawberry.type
class AssetConditionEvaluationRecords:
    records: list[AssetConditionEvaluationRecord]


AssetConditionEvaluationRecordsOrError = named_union(
    "AssetConditionEvaluationRecordsOrError", (AssetConditionEvaluationRecords, PythonError)
)


@strawberry.type
class AutomationQuery:
    @strawberry.field(extensions=guarded("view_assets"))
    async def assetConditionEvaluationRecordsOrError(
        self,
        info: strawberry.Info,
        assetKey: AssetKeyInput,
        limit: int,
        cursor: str | None = None,
    ) -> AssetConditionEvaluationRecordsOrError:  # type: ignore[valid-type]
        """The asset's recorded automation evaluations, newest first; `cursor` (a record's
        id) pages to older ones."""
        try:
            before = int(cursor) if cursor else None
            key = DefinitionsAssetKey(assetKey.path)
            views = await asset_evaluations(
                info.context.instance.schedule_storage,
                key,
                limit=min(max(limit, 1), MAX_RECORDS),
                before=before,
            )
        except (ValueError, DagloomError) as exc:
            return PythonError.from_exception(exc)
        return AssetConditionEvaluationRecords(
            records=[AssetConditionEvaluationRecord(view=v) for v in views]
        )


__all__ = ["AssetConditionEvaluationRecord", "AssetNodeAutomation", "AutomationQuery"]
