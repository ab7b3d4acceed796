"""Schema 12's data step, shared by SQLite and Postgres: the `run_partitions` index filled
in for the runs stored before it, from each run's tags and asset selection (JSON columns of
`runs`), so the partition status of an upgraded instance keeps its failed and running
partitions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from dagloom.storage._codec import asset_key_text
from dagloom.storage.base import (
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
    run_partition_range,
)

if TYPE_CHECKING:
    from dagloom.storage._sql_storage import SqlConnection

PAGE = 5000
"""Runs read per query."""


async def index_run_partitions(tx: SqlConnection) -> None:
    """Insert the `run_partitions` rows of every stored run of partitions, in pages."""
    last = 0
    while True:
        rows = await tx.fetch(
            "SELECT id, run_id, tags, asset_selection FROM runs WHERE id > ? AND run_id IN "
            "(SELECT run_id FROM run_tags WHERE key IN (?, ?)) ORDER BY id LIMIT ?",
            (last, PARTITION_TAG, PARTITION_RANGE_START_TAG, PAGE),
        )
        if not rows:
            return
        inserts: list[tuple[str, str, str, str]] = []
        for row_id, run_id, tags, selection in rows:
            last = row_id
            found = run_partition_range(orjson.loads(tags))
            if found is None:
                continue
            paths = dict.fromkeys(asset_key_text(path) for path in orjson.loads(selection))
            inserts.extend((run_id, key, found[0], found[1]) for key in paths)
        if inserts:
            await tx.executemany(
                "INSERT INTO run_partitions (run_id, asset_key, range_start, range_end) "
                "VALUES (?, ?, ?, ?)",
                inserts,
            )
