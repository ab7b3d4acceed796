"""Instances for the daemon loop tests: in memory, on SQLite and on Postgres, and runs put in
a given status through the same lifecycle events real runs go through."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dagloom.instance import DagloomInstance
from dagloom.messages import Event, EventType, LogLevel, Run, RunStatus
from tests.storage.pg import PG_URL, fresh_schema

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@contextlib.asynccontextmanager
async def open_instance(backend: str, tmp_path: Path) -> AsyncIterator[DagloomInstance]:
    """An entered instance on `backend` (a fresh schema on Postgres)."""
    async with contextlib.AsyncExitStack() as stack:
        if backend == "memory":
            instance = DagloomInstance.ephemeral()
        elif backend == "sqlite":
            instance = DagloomInstance.open(tmp_path / "home")
        else:
            schema = await stack.enter_async_context(contextlib.asynccontextmanager(fresh_schema)())
            instance = DagloomInstance.from_config(
                {"storage": {"postgres": {"postgres_url": PG_URL, "schema": schema}}},
                home=tmp_path / "home",
            )
        yield await stack.enter_async_context(instance)


_PATH = {
    RunStatus.QUEUED: (EventType.RUN_ENQUEUED,),
    RunStatus.STARTING: (EventType.RUN_STARTING,),
    RunStatus.STARTED: (EventType.RUN_STARTING, EventType.RUN_START),
    RunStatus.CANCELING: (EventType.RUN_STARTING, EventType.RUN_START, EventType.RUN_CANCELING),
}


async def run_at(
    instance: DagloomInstance,
    status: RunStatus,
    *,
    at: float,
    tags: dict[str, str] | None = None,
    job_name: str = "job",
) -> Run:
    """A run created at `at` and moved to `status` by its lifecycle events, each at `at`."""
    run = await instance.create_run(Run(job_name=job_name, create_time=at, tags=dict(tags or {})))
    for event_type in _PATH.get(status, ()):
        await move(instance, run.run_id, event_type, at)
    stored = await instance.get_run(run.run_id)
    assert stored is not None and stored.status == status
    return stored


async def move(instance: DagloomInstance, run_id: str, event_type: EventType, at: float) -> Any:
    event = Event(
        run_id=run_id, event_type=event_type, timestamp=at, message="", level=LogLevel.INFO
    )
    return await instance.transition_run(run_id, event)
