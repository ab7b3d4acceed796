"""Many concurrent launches through the public API, on each launcher: every launch the API
acknowledged executes exactly once (one RUN_START, one terminal event), and nothing else is
stored. A launch the API does not answer (on a loaded machine) is retried with its request
id, as a client is told to."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from dagloom.api import AsyncClient
from dagloom.errors import ActorUnavailableError
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, RunStatus
from dagloom.storage.base import FINISHED_STATUSES, RUN_END_EVENTS, RunsFilter
from dagloom.topology import parse_topology
from dagloom.topology.wiring import run_node

from ._stacks import sqlite_instance

pytestmark = pytest.mark.slow

RETRIES = 5
"""Tries per launch before the test gives up on it."""

LOCATION = """
from dagloom import Definitions, job, op

@op
def one() -> int:
    return 1

@job
def tiny():
    one()

defs = Definitions(jobs=[tiny])
"""


@asynccontextmanager
async def storm_stack(tmp_path: Path, launcher: dict[str, Any]) -> AsyncIterator[AsyncClient]:
    """One node with every actor and the given launcher, on a SQLite file, reached through
    its API server on a free port."""
    location = tmp_path / "storm.py"
    location.write_text(textwrap.dedent(LOCATION))
    node: dict[str, Any] = {
        "api": {"port": 0},
        "coordinator": {},
        "launcher": launcher,
        "code_locations": ["storm"],
    }
    if launcher["kind"] == "worker_pool":
        node["worker_pool"] = {"workers": 2}
    topology = parse_topology(
        {
            "instance": sqlite_instance(tmp_path),
            "locations": {"storm": {"python_file": str(location)}},
            "nodes": {"all": node},
        }
    )
    async with anyio.create_task_group() as tg:
        running = await tg.start(run_node, topology, "all")
        async with AsyncClient.connect(running.api_address) as client:
            yield client
        tg.cancel_scope.cancel()


async def launch_all(client: AsyncClient, count: int) -> tuple[dict[str, str], int]:
    """Launch `count` runs at once, retrying each unanswered launch with its request id;
    return the acknowledged run id of each request id, and how many retries there were."""
    acknowledged: dict[str, str] = {}
    retries = 0

    async def launch(request_id: str) -> None:
        nonlocal retries
        for _ in range(RETRIES):
            try:
                run = await client.launch_run("tiny", request_id=request_id)
            except ActorUnavailableError:
                retries += 1
                continue
            acknowledged[request_id] = run.run_id
            return

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(launch, f"storm-{i}")
    return acknowledged, retries


async def wait_all_finished(instance: DagloomInstance, count: int) -> None:
    """Poll storage until `count` runs are finished; bound it with `anyio.fail_after`."""
    finished = RunsFilter(statuses=list(FINISHED_STATUSES))
    # A poll interval: runs end in other processes, with no event to wait on here.
    while await instance.get_runs_count(finished) < count:  # noqa: ASYNC110
        await anyio.sleep(0.2)


async def check_exactly_once(instance: DagloomInstance, acknowledged: dict[str, str]) -> None:
    stored = await instance.get_runs()
    assert sorted(r.run_id for r in stored) == sorted(acknowledged.values())
    assert Counter(r.status for r in stored) == {RunStatus.SUCCESS: len(acknowledged)}
    lifecycle = [EventType.RUN_START, *RUN_END_EVENTS]
    for run in stored:
        events = await instance.get_events(run.run_id, event_types=lifecycle)
        kinds = Counter(e.event.event_type for e in events if e.event is not None)
        assert kinds == {EventType.RUN_START: 1, EventType.RUN_SUCCESS: 1}, run.run_id


@pytest.mark.parametrize(
    ("launcher", "count"),
    [
        pytest.param({"kind": "in_process"}, 1000, id="in_process"),
        pytest.param({"kind": "worker_pool"}, 1000, id="worker_pool"),
        pytest.param({"kind": "warm_pool", "size": 2}, 1000, id="warm_pool"),
        # A process per run: ~2 s of CPU each to start Python and import dagloom and the
        # code, so a few on 2 cores (40 took 100 s on a loaded machine).
        pytest.param({"kind": "subprocess"}, 16, id="subprocess"),
    ],
)
async def test_every_acknowledged_launch_executes_exactly_once(
    tmp_path: Path, launcher: dict[str, Any], count: int
) -> None:
    with anyio.fail_after(300):
        async with storm_stack(tmp_path, launcher) as client:
            acknowledged, _retries = await launch_all(client, count)
            assert len(acknowledged) == count
            async with DagloomInstance.open(tmp_path / "home") as instance:
                await wait_all_finished(instance, count)
                await check_exactly_once(instance, acknowledged)
