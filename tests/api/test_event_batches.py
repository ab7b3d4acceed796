"""The batched event stream (`DagloomApiEvents.StreamRunEventBatches`) over gRPC: the same
events as `StreamRunEvents`, several per message, and what `AsyncClient` follows."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from dagloom.api import AsyncClient
from dagloom.messages import EventRecord, EventType, RunStatus
from dagloom.messages.rpc import (
    ApiGetRunRequest,
    ApiStreamEventsRequest,
    DagloomApiEventsStub,
    DagloomApiStub,
)
from dagloom.topology import parse_topology
from dagloom.topology.wiring import run_node
from dagloom.transport import BoundedProtoCodec, split_address

DEFS = """
import dagloom as dg

@dg.op
def one() -> int:
    return 1

@dg.job
def one_op():
    one()

defs = dg.Definitions(jobs=[one_op])
"""


async def test_a_finished_runs_events_come_in_one_message_and_match_the_stream(
    tmp_path: Path,
) -> None:
    defs = tmp_path / "defs.py"
    defs.write_text(DEFS)
    topology = parse_topology(
        {
            "instance": {"home": str(tmp_path)},
            "locations": {"suite": {"python_file": str(defs)}},
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
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            node = await tg.start(functools.partial(run_node, topology, "one"))
            assert node.api_address is not None
            async with AsyncClient.connect(node.api_address) as client:
                run = await client.launch_run("one_op", location_name="suite")
                followed: list[EventRecord] = []
                done = await client.wait_for_run(run.run_id, on_event=followed.append)
                assert done.status == RunStatus.SUCCESS
                stored = await node.instance.get_events(run.run_id)
                assert followed == stored
                one_by_one = [r async for r in client.stream_events(run.run_id)]
                assert one_by_one == stored

                host, port = split_address(node.api_address)
                channel = Channel(host, port, codec=BoundedProtoCodec())
                try:
                    stub = DagloomApiEventsStub(channel)
                    request = ApiStreamEventsRequest(run_id=run.run_id, until_run_ends=True)
                    whole = [b async for b in stub.stream_run_event_batches(request)]
                    batches = [b.records for b in whole]
                    after = ApiStreamEventsRequest(
                        run_id=run.run_id,
                        after_storage_id=stored[1].storage_id,
                        until_run_ends=True,
                    )
                    tail = [b.records async for b in stub.stream_run_event_batches(after)]
                    unknown = ApiStreamEventsRequest(run_id="no-such-run")
                    api = DagloomApiStub(channel)
                    with pytest.raises(GRPCError) as batches_of_unknown:
                        _ = [b async for b in stub.stream_run_event_batches(unknown)]
                    with pytest.raises(GRPCError) as events_of_unknown:
                        _ = [r async for r in api.stream_run_events(unknown)]
                    with pytest.raises(GRPCError) as unknown_run:
                        await api.get_run(ApiGetRunRequest(run_id="no-such-run"))
                finally:
                    channel.close()
            tg.cancel_scope.cancel()
    # The run has ended: one read of storage holds all of it, the end event last.
    assert batches == [stored]
    assert batches[0][-1].event is not None
    assert batches[0][-1].event.event_type == EventType.RUN_SUCCESS
    assert tail == [stored[2:]]
    # The last batch carries the run as it ended: following needs no GetRun.
    assert whole[-1].run == done
    # A run that does not exist is NOT_FOUND, named, on every call that reads one.
    for refused in (batches_of_unknown, events_of_unknown, unknown_run):
        assert refused.value.status is Status.NOT_FOUND
        assert refused.value.message == "no run with id 'no-such-run'"
