"""A code server started on its own (`dagloom code-server start --home`) gives the ticks it
evaluates the instance of that home as `context.instance`: the daemon in another process
ticks its sensors over gRPC, and both read the same SQLite instance."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import structlog

import dagloom as dg
from dagloom.actors import Backoff
from dagloom.daemon._instigators import origin_id
from dagloom.daemon.sensors import SensorLoop
from dagloom.instance import DagloomInstance
from dagloom.messages import InstigatorType, TickStatus
from dagloom.messages.rpc import EvaluateScheduleRequest
from dagloom.transport import GrpcTransport
from tests.actors.test_tick_instance import DEFS
from tests.cli.test_code_server import code_server, location, tick, wait_ready
from tests.daemon._fakes import storing_coordinator

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    structlog.reset_defaults()


@pytest.fixture
async def client() -> AsyncIterator[GrpcTransport]:
    transport = GrpcTransport(reconnect_backoff=Backoff(initial=0.0, maximum=0.0))
    yield transport
    transport.close()


async def test_the_daemon_ticks_a_sensor_that_reads_the_code_servers_instance(
    tmp_path: Path, client: GrpcTransport
) -> None:
    home = tmp_path / "home"
    defs = tmp_path / "defs.py"
    defs.write_text(DEFS)
    async with DagloomInstance.open(home) as instance:
        await instance.add_dynamic_partitions("releases", ["v1", "v2"])
        await instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="upstream"))
    args = ("-f", str(defs), "--location-name", "here", "--port", "0", "--home", str(home))
    with anyio.fail_after(90):
        async with code_server(*args, cwd=tmp_path) as (_, address):
            await wait_ready(client, address)
            ref = location(client, address, "here")
            async with DagloomInstance.open(home) as instance, storing_coordinator(instance) as c:
                await SensorLoop(instance, {"here": ref}, c, owner="d").tick(time.time())
                origin = origin_id(InstigatorType.SENSOR, "here", "new_releases")
                [sensed] = await instance.schedule_storage.get_ticks(origin)
                runs = [r for r in await instance.get_runs() if r.job_name == "release_job"]
            scheduled = await tick(ref, EvaluateScheduleRequest(schedule_name="every_release"))
    assert sensed.status == TickStatus.SUCCESS, sensed.error
    assert sorted(r.tags["dagster/partition"] for r in runs) == ["v1", "v2"]
    assert {r.tags["upstream_run"] for r in runs} == {"none"}
    assert scheduled.error is None
    assert [r.run_key for r in scheduled.run_requests] == ["v1", "v2"]
