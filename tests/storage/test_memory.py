"""The storage contract on the in-memory backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from dagloom.storage.base import RunTransition
from dagloom.storage.memory import (
    MemoryDatabase,
    MemoryEventLogStorage,
    MemoryRunStorage,
    MemoryScheduleStorage,
)
from tests.storage._racer import plan, write
from tests.storage.contract import Race, StorageContract, Storages


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    async def storages(self) -> AsyncIterator[Storages]:
        db = MemoryDatabase()
        yield MemoryRunStorage(db), MemoryEventLogStorage(db), MemoryScheduleStorage(db)

    @pytest.fixture
    def race(self, storages: Storages) -> Race:
        """Concurrent tasks, each with storages of its own over the one shared database."""
        database = storages[0].database  # type: ignore[attr-defined]

        async def race(run_id: str, writers: int) -> list[list[RunTransition]]:
            outcomes: list[list[RunTransition]] = [[] for _ in range(writers)]
            arrived = 0
            go = anyio.Event()

            async def ready() -> None:
                nonlocal arrived
                arrived += 1
                if arrived == writers:
                    go.set()
                await go.wait()

            async def one(n: int) -> None:
                mine = (
                    MemoryRunStorage(database),
                    MemoryEventLogStorage(database),
                    MemoryScheduleStorage(database),
                )
                outcomes[n] = await write(mine, run_id, plan(n), ready)

            async with anyio.create_task_group() as tg:
                for n in range(writers):
                    tg.start_soon(one, n)
            return outcomes

        return race
