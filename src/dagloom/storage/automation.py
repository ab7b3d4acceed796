"""What the automation loop stores: each asset's evaluation state and its evaluation records.

Both live beside the schedule storage's ticks (the same database, migration 11). The state is
one row per asset (its condition's memory: `since`, `newly_*`) plus one row under the key ""
for the tick itself; records are appended when an asset's evaluation changed or requested runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from dagloom.storage.base import Fence


@dataclass(frozen=True, slots=True)
class AutomationEvaluationRecord:
    """Why an asset was or was not requested on one tick: `body` is the evaluation as JSON
    (`AssetEvaluation.to_dict`), `run_ids` the runs launched for it. `record_id` is 0 until
    stored, then increases with every record."""

    asset_key: str
    timestamp: float
    num_requested: int
    body: str
    run_ids: tuple[str, ...] = ()
    record_id: int = 0


@runtime_checkable
class AutomationStorage(Protocol):
    """The automation loop's state and records (on the schedule storage)."""

    async def get_automation_state(self) -> dict[str, str]:
        """Every stored state entry: asset key text ("" for the tick's own) -> JSON."""
        ...

    async def store_automation_tick(
        self,
        state: Mapping[str, str],
        records: Sequence[AutomationEvaluationRecord],
        *,
        fence: Fence | None = None,
    ) -> None:
        """Write the given state entries (replacing those stored under the same keys) and
        append `records`, in one transaction; `LeaseLostError` (nothing written) when
        `fence` is no longer current."""
        ...

    async def get_automation_evaluations(
        self, asset_key: str, *, limit: int = 20, before: int | None = None
    ) -> list[AutomationEvaluationRecord]:
        """An asset's evaluation records, newest first, older than record id `before`."""
        ...

    async def purge_automation_evaluations(self, before: float) -> int:
        """Delete the records older than `before` (epoch seconds); return how many."""
        ...


__all__ = ["AutomationEvaluationRecord", "AutomationStorage"]
