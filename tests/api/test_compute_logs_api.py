"""Compute logs through the public gRPC API: `AsyncClient.read_compute_log` and
`tail_compute_log` against an `ApiServer` on a real port."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import dagloom as dg
from dagloom.api import AsyncClient
from dagloom.api.server import ApiServer, DagloomApiService
from dagloom.instance import DagloomInstance


@dg.op
async def talk() -> None:
    print("first line")
    print("second line")
    print("oops", file=sys.stderr)


@dg.job
def talking() -> None:
    talk()


async def test_a_client_reads_and_tails_a_steps_output(tmp_path: Path) -> None:
    async with DagloomInstance.open(tmp_path) as instance:
        result = await talking.execute_in_process_async(instance=instance)
        coordinator: Any = None  # compute log calls read storage only
        server = ApiServer(DagloomApiService(instance, coordinator, {}))
        async with anyio.create_task_group() as tg:
            address = await tg.start(server.run)
            with anyio.fail_after(30):
                async with AsyncClient.connect(address) as client:
                    head = await client.read_compute_log(result.run_id, "talk", max_bytes=6)
                    rest = await client.read_compute_log(result.run_id, "talk", cursor=head.cursor)
                    err = await client.read_compute_log(result.run_id, "talk", stderr=True)
                    tailed = [c.data async for c in client.tail_compute_log(result.run_id, "talk")]
                    with pytest.raises(dg.RunNotFoundError):
                        await client.read_compute_log("no-such-run", "talk")
                    with pytest.raises(dg.DagloomError, match="path separator"):
                        await client.read_compute_log(result.run_id, "../talk")
                    none = await client.read_compute_log(result.run_id, "other")
            tg.cancel_scope.cancel()
    assert (head.data, head.cursor, head.attempt) == (b"first ", 6, 0)
    assert rest.data == b"line\nsecond line\n"
    assert err.data == b"oops\n"
    assert b"".join(tailed) == b"first line\nsecond line\n"
    assert (none.data, none.attempt) == (b"", None)
