"""StoredRunRows: a run's event rows read back from a SQLite file when first used.

A run recorded in SQLite need not also keep its rows in memory for its result (~70 to 110
bytes a row in a `RowLog`, 5 to 6 rows a step): the result reads them back from the file
instead, the first time it is asked for events, on whatever thread asks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

from dagloom.errors import StorageError
from dagloom.messages.rows import EventRow
from dagloom.storage._codec import decode_rows

_SELECT = "SELECT body FROM event_chunks WHERE run_id = ? ORDER BY last_storage_id"


def read_run_rows(path: Path, run_id: str, *, busy_timeout: float = 120.0) -> list[EventRow]:
    """Every stored event row of run `run_id` in the SQLite file at `path`, in storage order.

    Blocks (reads the file on the calling thread, on a connection of its own: any thread,
    with or without an event loop). Raises `StorageError` when the file is gone or cannot be
    read; never creates it.
    """
    try:
        # `mode=rw`: a file that is gone is an error, not a new empty database.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=busy_timeout)
        try:
            conn.execute("PRAGMA query_only = 1")
            bodies = conn.execute(_SELECT, (run_id,)).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(
            f"reading the events of run {run_id} failed: {exc}",
            location=str(path),
            operation="reading events",
        ) from exc
    return [row for (body,) in bodies for row in decode_rows(body)]


class StoredRunRows(Sequence[EventRow]):
    """The event rows of run `run_id` as stored in the SQLite file at `path`, in storage
    order: read at the first use (`read_run_rows`, which blocks and may raise
    `StorageError`), then kept. Rows read back are equal to those emitted (see `RowLog`);
    events stored after that first read are not seen."""

    __slots__ = ("_busy_timeout", "_path", "_rows", "run_id")

    def __init__(self, path: Path, run_id: str, *, busy_timeout: float = 120.0) -> None:
        self._path = path
        self.run_id = run_id
        self._busy_timeout = busy_timeout
        self._rows: list[EventRow] | None = None

    def _loaded(self) -> list[EventRow]:
        rows = self._rows
        if rows is None:
            rows = self._rows = read_run_rows(
                self._path, self.run_id, busy_timeout=self._busy_timeout
            )
        return rows

    def __len__(self) -> int:
        return len(self._loaded())

    def __iter__(self) -> Iterator[EventRow]:
        return iter(self._loaded())

    @overload
    def __getitem__(self, index: int) -> EventRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[EventRow]: ...

    def __getitem__(self, index: int | slice) -> EventRow | list[EventRow]:
        return self._loaded()[index]

    def __repr__(self) -> str:
        state = "not read yet" if self._rows is None else f"{len(self._rows)} rows"
        return f"StoredRunRows({str(self._path)!r}, {self.run_id!r}: {state})"


__all__ = ["StoredRunRows", "read_run_rows"]
