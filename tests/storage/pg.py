"""Reaching the test Postgres server: `DAGLOOM_TEST_PG_URL`, skipped when unreachable
(failed instead when `CI=true`), and a fresh schema per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

PG_URL = os.environ.get("DAGLOOM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _connect() -> asyncpg.Connection:
    try:
        conn: asyncpg.Connection = await asyncpg.connect(PG_URL, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = f"no PostgreSQL reachable at DAGLOOM_TEST_PG_URL={PG_URL} ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return conn


async def fresh_schema() -> AsyncIterator[str]:
    """Yield the name of a new empty schema, dropped afterwards."""
    conn = await _connect()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
