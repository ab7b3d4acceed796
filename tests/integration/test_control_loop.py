"""No user code on the control loop: in the `dagloom dev` stack (every actor on one event
loop, runs launched in-process), a run blocked in its op leaves the API, the coordinator, the
launcher and the code location answering; a run blocked in async code is canceled through
the API; a stopped stack leaves no run thread behind.

Every wait is on an event: the op says it is blocked (STARTED) and stays blocked until the
test opens its gate (GATES), so what the stack answers meanwhile was answered during the
block.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from pathlib import Path

import anyio
import pytest

from dagloom.api import AsyncClient
from dagloom.code.loader import load_definitions
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, RunStatus
from dagloom.topology.config import LocationConfig, dev_topology
from dagloom.topology.wiring import run_node
from tests.actors._runs import GATES, STARTED, fresh_gates

DEFS = Path(__file__).with_name("blocking_defs.py")
LOCATION = "blocking"


def run_threads() -> list[str]:
    """The names of the run threads alive now."""
    return [t.name for t in threading.enumerate() if t.name.startswith("dagloom run ")]


@asynccontextmanager
async def dev_stack(instance: DagloomInstance) -> AsyncIterator[AsyncClient]:
    """The `dagloom dev` node on `instance`, its API on a free port, and a client of it."""
    topology = dev_topology(
        {LOCATION: LocationConfig(python_file=str(DEFS))}, host="127.0.0.1", api_port=0
    )
    async with anyio.create_task_group() as tg:
        node = await tg.start(functools.partial(run_node, topology, "dev", instance=instance))
        assert node.api_address is not None
        async with AsyncClient.connect(node.api_address) as client:
            yield client
        tg.cancel_scope.cancel()


@pytest.fixture(params=["memory", "sqlite"])
def open_instance(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], object]:
    """Opens the instance `dagloom dev` would use (SQLite in its home), or a memory one."""
    if request.param == "memory":
        return DagloomInstance.ephemeral
    return functools.partial(DagloomInstance.open, tmp_path)


async def started_executing(client: AsyncClient, run_id: str) -> None:
    """Block until the run's first step has started, as its event stream shows."""
    async with aclosing(client.stream_events(run_id)) as records:
        async for record in records:
            if record.event is not None and record.event.event_type == EventType.STEP_START:
                return


async def test_the_stack_answers_while_a_sync_op_blocks_its_run(
    open_instance: Callable[[], DagloomInstance],
) -> None:
    fresh_gates()
    gate = uuid.uuid4().hex
    with anyio.fail_after(60):
        async with open_instance() as instance, dev_stack(instance) as client:
            blocked = await client.launch_run(
                "sync_blocking_job", location_name=LOCATION, tags={"gate": gate}
            )
            try:
                await STARTED[gate].wait()
                # The op now blocks its thread. The API streams the run's events and reads
                # the run...
                await started_executing(client, blocked.run_id)
                seen = await client.get_run(blocked.run_id)
                assert seen.status == RunStatus.STARTED
                # ...and a whole run goes through code location, coordinator, launcher and
                # worker, and has its events stored, while the op still blocks.
                quick = await client.launch_run("quick_job", location_name=LOCATION)
                done = await client.wait_for_run(quick.run_id)
                assert done.status == RunStatus.SUCCESS
                still = await client.get_run(blocked.run_id)
                assert still.status == RunStatus.STARTED and not GATES[gate].is_set()
            finally:
                GATES[gate].set()  # a sync op cannot be canceled: let it go before teardown
            ended = await client.wait_for_run(blocked.run_id)
            stored = [
                (r.event.event_type.name, r.event.step_key)
                for r in await instance.get_events(quick.run_id)
                if r.event is not None
            ]
    assert ended.status == RunStatus.SUCCESS
    job = load_definitions(python_file=DEFS).get_job_def("quick_job")
    executed = [
        (e.event_type_value, e.step_key or "")
        for e in (await job.execute_in_process_async()).all_events
    ]
    assert stored[stored.index(("RUN_START", "")) :] == executed
    assert run_threads() == []


async def test_a_run_blocked_in_async_code_is_canceled_through_the_api(
    open_instance: Callable[[], DagloomInstance],
) -> None:
    fresh_gates()
    gate = uuid.uuid4().hex
    with anyio.fail_after(60):
        async with open_instance() as instance, dev_stack(instance) as client:
            run = await client.launch_run(
                "async_blocking_job", location_name=LOCATION, tags={"gate": gate}
            )
            await STARTED[gate].wait()
            reply = await client.cancel_run(run.run_id)
            assert reply.accepted
            ended = await client.wait_for_run(run.run_id)
            types = [r.event.event_type for r in await instance.get_events(run.run_id) if r.event]
    assert ended.status == RunStatus.CANCELED
    assert types[-1] == EventType.RUN_CANCELED
    assert run_threads() == []


async def test_stopping_the_stack_cancels_a_blocked_run_and_leaves_no_thread(
    open_instance: Callable[[], DagloomInstance],
) -> None:
    fresh_gates()
    gate = uuid.uuid4().hex
    with anyio.fail_after(60):
        async with open_instance() as instance:
            async with dev_stack(instance) as client:
                run = await client.launch_run(
                    "async_blocking_job", location_name=LOCATION, tags={"gate": gate}
                )
                await STARTED[gate].wait()
            assert run_threads() == []
            stored = await instance.get_run(run.run_id)
    assert stored is not None and stored.status == RunStatus.CANCELED
