"""A run worker whose storage fails lives on: the run ends FAILURE where storage allows,
the error is kept when it does not, and the next run executes once storage is back.

Fault: the instance's event-log writes and run-tag writes raise `StorageUnavailableError`
while a flag is set (the storage's own retries are behind that error already).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from dagloom.actors.job_source import DefinitionsJobSource
from dagloom.errors import StorageUnavailableError
from dagloom.instance import DagloomInstance
from dagloom.messages import Run, RunStatus
from dagloom.messages.rpc import ExecuteRunReply, ExecuteRunRequest
from dagloom.storage.memory import MemoryEventLogStorage

from ._runs import seed_definitions
from .test_run_worker import serving


def _break_writes(instance: DagloomInstance, monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Make event and tag writes fail while the returned flag's `down` is true."""
    state = {"down": True}
    # The instance's event log is a slotted memory storage: its class takes the wrappers.
    for name in ("store_rows", "store_events", "transition_runs"):
        original = getattr(MemoryEventLogStorage, name)

        async def failing(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if state["down"]:
                raise StorageUnavailableError("connection lost", operation="writing events")
            return await _original(*args, **kwargs)

        monkeypatch.setattr(MemoryEventLogStorage, name, failing)
    add_run_tags = instance.add_run_tags

    async def failing_tags(*args: Any, **kwargs: Any) -> Any:
        if state["down"]:
            raise StorageUnavailableError("connection lost", operation="writing")
        return await add_run_tags(*args, **kwargs)

    monkeypatch.setattr(instance, "add_run_tags", failing_tags)
    return state


async def test_a_worker_outlives_storage_that_fails_under_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = DefinitionsJobSource({"numbers": seed_definitions(tmp_path)})
    with anyio.fail_after(60):
        async with (
            DagloomInstance.ephemeral() as instance,
            serving(instance, jobs) as (ref, worker, ends),
        ):
            state = _break_writes(instance, monkeypatch)
            first = await instance.create_run(Run(job_name="process_numbers"))
            reply = await ref.ask(ExecuteRunRequest(run_id=first.run_id))
            assert isinstance(reply, ExecuteRunReply) and reply.accepted
            await worker.wait_idle()
            await ends.told.wait()
            assert ends.ended == [(first.run_id, RunStatus.FAILURE)]
            # Storage could not take the run's end either: the worker keeps the error.
            assert [e.operation for e in worker.unrecorded] == ["writing events"]

            state["down"] = False
            second = await instance.create_run(Run(job_name="process_numbers"))
            ends.told = anyio.Event()
            reply = await ref.ask(ExecuteRunRequest(run_id=second.run_id))
            assert isinstance(reply, ExecuteRunReply) and reply.accepted
            await worker.wait_idle()
            await ends.told.wait()
            stored = await instance.get_run(second.run_id)
            assert stored is not None and stored.status == RunStatus.SUCCESS
