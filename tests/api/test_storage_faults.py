"""The API under storage faults: a follower resumes its stream, a call storage fails is
answered as UNAVAILABLE, and a node whose Postgres is cut off keeps serving and stops when
asked.

Faults: a fake API whose stream is cut with UNAVAILABLE; an instance whose reads raise
`StorageUnavailableError`; and a TCP proxy between the node and Postgres that drops every
connection and refuses new ones.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import SocketStream
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from dagloom.api import AsyncClient
from dagloom.api.server import DagloomApiService
from dagloom.errors import ActorUnavailableError, StorageUnavailableError
from dagloom.instance import DagloomInstance
from dagloom.messages import Event, EventRecord, EventType, Run, RunStatus
from dagloom.messages.rpc import (
    ApiCancelRunReply,
    ApiCancelRunRequest,
    ApiGetRunReply,
    ApiGetRunRequest,
    ApiLaunchRunReply,
    ApiLaunchRunRequest,
    ApiListJobsReply,
    ApiListJobsRequest,
    ApiStreamEventsRequest,
)
from dagloom.topology import parse_topology
from dagloom.topology.wiring import RunningNode, run_node
from tests.storage.pg import PG_URL, fresh_schema

DEFS = Path(__file__).resolve().parents[1] / "integration" / "defs.py"


def _record(n: int, event_type: EventType = EventType.ENGINE_EVENT) -> EventRecord:
    return EventRecord(storage_id=n, event=Event(run_id="r", event_type=event_type, message=str(n)))


class _CutStreams:
    """An API whose event stream is cut (UNAVAILABLE) after every `per_stream` events, as a
    server whose storage keeps failing answers; it serves events 1..`total` from the
    requested cursor on."""

    def __init__(self, total: int, per_stream: int) -> None:
        self.total = total
        self.per_stream = per_stream
        self.requests: list[int] = []

    async def launch_run(self, message: ApiLaunchRunRequest) -> ApiLaunchRunReply:
        raise AssertionError("not called")

    async def get_run(self, message: ApiGetRunRequest) -> ApiGetRunReply:
        return ApiGetRunReply(run=Run(run_id="r", status=RunStatus.SUCCESS))

    async def stream_run_events(
        self, message: ApiStreamEventsRequest
    ) -> AsyncIterator[EventRecord]:
        self.requests.append(message.after_storage_id)
        start = message.after_storage_id + 1
        for n in range(start, min(start + self.per_stream, self.total + 1)):
            yield _record(n, EventType.RUN_SUCCESS if n == self.total else EventType.ENGINE_EVENT)
        raise GRPCError(Status.UNAVAILABLE, "reading failed: cannot reach PostgreSQL")

    async def cancel_run(self, message: ApiCancelRunRequest) -> ApiCancelRunReply:
        raise AssertionError("not called")

    async def list_jobs(self, message: ApiListJobsRequest) -> ApiListJobsReply:
        raise AssertionError("not called")


async def test_a_follower_resumes_after_each_cut_from_its_last_event() -> None:
    api = _CutStreams(total=10, per_stream=3)
    seen: list[int] = []
    with anyio.fail_after(30):
        run = await AsyncClient(api).wait_for_run("r", on_event=lambda r: seen.append(r.storage_id))
    assert run.status == RunStatus.SUCCESS
    assert seen == list(range(1, 11))
    assert api.requests == [0, 3, 6, 9]


async def test_a_follower_that_gets_nothing_gives_up_after_its_resume_timeout() -> None:
    api = _CutStreams(total=10, per_stream=0)
    with anyio.fail_after(30), pytest.raises(ActorUnavailableError, match="PostgreSQL"):
        await AsyncClient(api).wait_for_run("r", resume_timeout=0.3)
    assert len(api.requests) > 1


async def test_a_call_storage_fails_is_answered_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with DagloomInstance.ephemeral() as instance:

        async def down(*args: Any, **kwargs: Any) -> Any:
            raise StorageUnavailableError("server down", operation="reading")

        monkeypatch.setattr(instance, "get_run", down)
        service = DagloomApiService(instance, coordinator=None, locations={})  # type: ignore[arg-type]
        with pytest.raises(GRPCError) as caught:
            await service.get_run(ApiGetRunRequest(run_id="r"))
        assert caught.value.status is Status.UNAVAILABLE
        with pytest.raises(GRPCError) as streamed:
            async for _ in service.stream_run_events(ApiStreamEventsRequest(run_id="r")):
                pass
        assert streamed.value.status is Status.UNAVAILABLE


# -- a node whose Postgres is cut off ------------------------------------------------------


class _Proxy:
    """A TCP proxy to Postgres that can cut every connection and refuse new ones."""

    def __init__(self) -> None:
        self.port = 0
        self.up = True
        self._scopes: set[anyio.CancelScope] = set()

    async def serve(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        await listener.serve(self._handle)

    def cut(self) -> None:
        self.up = False
        for scope in list(self._scopes):
            scope.cancel()

    async def _handle(self, client: SocketStream) -> None:
        async with client:
            if not self.up:
                return
            with anyio.CancelScope() as scope:
                self._scopes.add(scope)
                try:
                    server = await anyio.connect_tcp("127.0.0.1", 5432)
                    async with server, anyio.create_task_group() as tg:
                        tg.start_soon(self._pipe, client, server, tg.cancel_scope)
                        await self._pipe(server, client, tg.cancel_scope)
                finally:
                    self._scopes.discard(scope)

    @staticmethod
    async def _pipe(src: SocketStream, dst: SocketStream, scope: anyio.CancelScope) -> None:
        try:
            async for chunk in src:
                await dst.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        scope.cancel()


@asynccontextmanager
async def _node_on_postgres(dsn: str, schema: str, home: Path) -> AsyncIterator[RunningNode]:
    topology = parse_topology(
        {
            "locations": {"suite": {"python_file": str(DEFS)}},
            "nodes": {
                "one": {
                    "api": {"port": 0},
                    "coordinator": {},
                    "launcher": {"kind": "in_process"},
                    "code_locations": ["suite"],
                }
            },
        }
    )
    config = {
        "storage": {
            "postgres": {
                "postgres_url": dsn,
                "schema": schema,
                "retry_timeout_seconds": 0.5,
                "connect_timeout_seconds": 2,
                "poll_interval_seconds": 0.2,
            }
        }
    }
    async with (
        DagloomInstance.from_config(config, home=home) as instance,
        anyio.create_task_group() as tg,
    ):
        node = await tg.start(functools.partial(run_node, topology, "one", instance=instance))
        yield node
        tg.cancel_scope.cancel()


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    async for name in fresh_schema():
        yield name


@pytest.mark.postgres
async def test_a_node_whose_postgres_is_cut_off_serves_errors_and_stops_when_asked(
    pg_schema: str, tmp_path: Path
) -> None:
    proxy = _Proxy()
    async with anyio.create_task_group() as proxies:
        await proxies.start(proxy.serve)
        dsn = PG_URL.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        assert dsn != PG_URL
        with anyio.fail_after(120):
            async with (
                _node_on_postgres(dsn, pg_schema, tmp_path) as node,
                AsyncClient.connect(node.api_address) as client,
            ):
                run = await client.launch_run("failing_job")
                done = await client.wait_for_run(run.run_id)
                assert done.status == RunStatus.FAILURE
                proxy.cut()
                with pytest.raises(ActorUnavailableError, match="PostgreSQL"):
                    await client.get_run(run.run_id)
                # Still serving: a call that needs no storage is answered.
                assert "failing_job" in [j.job_name for j in await client.list_jobs()]
            # Leaving the block cancelled the node, as SIGTERM does, with storage down.
        proxies.cancel_scope.cancel()
