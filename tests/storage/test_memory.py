"""The storage contract on the in-memory backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dagloom.storage.memory import (
    MemoryDatabase,
    MemoryEventLogStorage,
    MemoryRunStorage,
    MemoryScheduleStorage,
)
from tests.storage.contract import StorageContract, Storages


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    async def storages(self) -> AsyncIterator[Storages]:
        db = MemoryDatabase()
        yield MemoryRunStorage(db), MemoryEventLogStorage(db), MemoryScheduleStorage(db)
