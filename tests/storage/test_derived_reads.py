"""The reads `DerivedEventReads` gives an event-log storage that does not write its own."""

from __future__ import annotations

from collections.abc import Sequence

from dagloom.messages import EventRecord
from dagloom.storage.base import DerivedEventReads


class _OneAssetReads(DerivedEventReads):
    """Knows one materialized asset, `a/b`, and answers only `get_materializations`."""

    async def get_materializations(
        self, asset_key: Sequence[str], *, limit: int | None = None, before: int | None = None
    ) -> list[EventRecord]:
        return [EventRecord(storage_id=7)] if list(asset_key) == ["a", "b"] else []


async def test_latest_materializations_default_to_one_read_per_key() -> None:
    reads = _OneAssetReads()
    # The derived reads are typed for a whole EventLogStorage; this fake is only part of one.
    found = await reads.get_latest_materializations([["a", "b"], ["c"]])  # type: ignore[attr-defined]
    assert {k: r.storage_id for k, r in found.items()} == {("a", "b"): 7}
