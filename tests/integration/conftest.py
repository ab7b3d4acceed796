"""The stack fixture: the same suite on memory, on three processes over SQLite, and on
three processes over Postgres."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from tests.integration._stacks import (
    Stack,
    memory_stack,
    postgres_instance,
    process_stack,
    sqlite_instance,
)
from tests.storage.pg import PG_URL, fresh_schema

StackFactory = Callable[[], AbstractAsyncContextManager[Stack]]


@contextlib.asynccontextmanager
async def _postgres_stack(tmp: Path) -> AsyncIterator[Stack]:
    async with contextlib.AsyncExitStack() as stack:
        schema = await stack.enter_async_context(contextlib.asynccontextmanager(fresh_schema)())
        yield await stack.enter_async_context(
            process_stack(tmp, postgres_instance(tmp, PG_URL, schema))
        )


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("grpc-sqlite", marks=pytest.mark.slow),
        pytest.param("grpc-postgres", marks=[pytest.mark.slow, pytest.mark.postgres]),
    ]
)
def open_stack(request: pytest.FixtureRequest, tmp_path: Path) -> StackFactory:
    """Opens the stack of this parameter: `async with open_stack() as stack`."""
    kind = request.param
    if kind == "memory":
        return memory_stack
    if kind == "grpc-sqlite":
        return lambda: process_stack(tmp_path, sqlite_instance(tmp_path))
    return lambda: _postgres_stack(tmp_path)
