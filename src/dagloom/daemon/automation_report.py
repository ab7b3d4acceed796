"""Reading back the automation loop's evaluation records: for the CLI, GraphQL and the UI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dagloom.definitions.asset_checks import AssetCheckKey
from dagloom.definitions.asset_key import AssetKey
from dagloom.errors import StorageError
from dagloom.storage.automation import AutomationEvaluationRecord, AutomationStorage


@dataclass(frozen=True, slots=True)
class EvaluationView:
    """One stored evaluation, decoded: when, how many partitions it requested, the runs it
    launched, the error (if any) and the tree (`EvaluationNode.to_dict` form, or None)."""

    record_id: int
    asset_key: str
    timestamp: float
    num_requested: int
    run_ids: tuple[str, ...]
    error: str | None
    root: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluation_id": self.record_id,
            "asset_key": self.asset_key,
            "timestamp": self.timestamp,
            "num_requested": self.num_requested,
            "run_ids": list(self.run_ids),
            "error": self.error,
            "root": self.root,
        }


def decode(record: AutomationEvaluationRecord) -> EvaluationView:
    """The view of one stored record."""
    body = json.loads(record.body)
    return EvaluationView(
        record_id=record.record_id,
        asset_key=record.asset_key,
        timestamp=record.timestamp,
        num_requested=record.num_requested,
        run_ids=record.run_ids,
        error=body.get("error"),
        root=body.get("root"),
    )


async def asset_evaluations(
    storage: object,
    asset_key: AssetKey | AssetCheckKey,
    *,
    limit: int = 20,
    before: int | None = None,
) -> list[EvaluationView]:
    """The asset's (or asset check's) stored evaluations, newest first; `StorageError` when
    `storage` keeps none (a schedule storage without automation support)."""
    if not isinstance(storage, AutomationStorage):
        raise StorageError("this instance's schedule storage keeps no automation evaluations")
    records = await storage.get_automation_evaluations(
        asset_key.to_user_string(), limit=limit, before=before
    )
    return [decode(r) for r in records]


def tree_lines(node: dict[str, Any], depth: int = 0) -> Iterator[str]:
    """The tree as indented lines: a mark (true / false), the label, and how many of the
    partitions it was evaluated over it is true for."""
    mark = "✓" if node.get("num_true") else "✗"
    size = node.get("candidate_size", 0)
    listed = node.get("true_partitions") or []
    counts = f"{node.get('num_true', 0)}/{size}"
    partitions = f" [{', '.join(listed)}]" if listed else ""
    yield f"{'  ' * depth}{mark} {node.get('label', '?')} ({counts}){partitions}"
    for child in node.get("children", ()):
        yield from tree_lines(child, depth + 1)


__all__ = ["EvaluationView", "asset_evaluations", "decode", "tree_lines"]
