"""`/metrics` served from an aiohttp app after running jobs: every figure parsed back from
the exposition, on memory, SQLite and Postgres storage."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from dagloom import Failure, job, op
from dagloom._counters import PROCESS
from dagloom.actors import Actor, Backoff, RestartPolicy, Supervisor
from dagloom.actors.code_location import CodeLocationServer
from dagloom.errors import StorageError
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.messages import DaemonHeartbeat, RunStatus
from dagloom.messages.rpc import HealthBase, LocationSnapshot, PingReply, PingRequest
from dagloom.metrics import MetricsSources, add_routes, render_metrics, serve_metrics
from dagloom.metrics import _serve as metrics_serve
from dagloom.storage.base import RUN_DURATION_BUCKETS, RunStats
from dagloom.transport import MemoryTransport
from tests.daemon._stores import BACKENDS, open_instance, run_at

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@op
def one() -> int:
    return 1


@op
def add_one(x: int) -> int:
    return x + 1


@job
def counting() -> None:
    add_one(one())


@op
def explode() -> None:
    raise Failure("no luck")


@job
def failing() -> None:
    explode()


async def scrape(instance: Any, sources: MetricsSources | None = None, **headers: str) -> str:
    app = web.Application()
    add_routes(app, instance=instance, sources=sources)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics", headers=headers)
        assert response.status == 200
        return await response.text()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_scrape_after_running_jobs_reports_runs_durations_queue_and_daemon(
    backend: str, tmp_path: Path
) -> None:
    async with open_instance(backend, tmp_path) as instance:
        events_before = PROCESS.events_written
        assert await instance.get_events_stored() == 0
        PROCESS.step_durations.fold()
        steps_before = PROCESS.step_durations.count
        for _ in range(2):
            result = await counting.execute_in_process_async(instance=instance)
            assert result.success
        failed = await failing.execute_in_process_async(instance=instance, raise_on_error=False)
        assert not failed.success
        await run_at(instance, RunStatus.QUEUED, at=1.0, job_name="counting")
        await instance.schedule_storage.add_daemon_heartbeat(
            DaemonHeartbeat(daemon_type="scheduler", daemon_id="d", timestamp=1.0, interval=30.0)
        )
        got = parse(await scrape(instance))

    assert got[("dagloom_storage_up", ())] == 1
    assert got[("dagloom_runs", (("job", "counting"), ("status", "SUCCESS")))] == 2
    assert got[("dagloom_runs", (("job", "counting"), ("status", "QUEUED")))] == 1
    assert got[("dagloom_runs", (("job", "failing"), ("status", "FAILURE")))] == 1
    assert got[("dagloom_runs", (("job", "failing"), ("status", "SUCCESS")))] == 0
    assert got[("dagloom_run_queue_depth", ())] == 1
    assert got[("dagloom_run_duration_seconds_count", (("job", "counting"),))] == 2
    assert got[("dagloom_run_duration_seconds_count", (("job", "failing"),))] == 1
    longest = repr(RUN_DURATION_BUCKETS[-1])
    assert got[("dagloom_run_duration_seconds_bucket", (("job", "counting"), ("le", longest)))] == 2
    assert got[("dagloom_run_duration_seconds_sum", (("job", "counting"),))] >= 0
    stamp = "dagloom_daemon_loop_last_heartbeat_timestamp_seconds"
    assert got[(stamp, (("loop", "scheduler"),))] == 1.0
    assert got[("dagloom_daemon_loop_lag_seconds", (("loop", "scheduler"),))] > 0
    # This process wrote the runs' events and ran their four successful steps.
    assert got[("dagloom_events_written_total", ())] - events_before >= 3 * 4
    # Every event stored went through this process; the enqueued run stored one more.
    written = got[("dagloom_events_written_total", ())] - events_before
    assert got[("dagloom_events_stored_total", ())] == written
    assert got[("dagloom_step_duration_seconds_count", ())] - steps_before == 4
    assert (
        got[("dagloom_step_duration_seconds_bucket", (("le", "+Inf"),))]
        == (got[("dagloom_step_duration_seconds_count", ())])
    )


class _Probe(Actor[PingRequest, PingReply]):
    """Crashes on its first message, answers the rest."""

    service = HealthBase

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.crashed = False

    async def handle(self, message: PingRequest) -> PingReply:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("first message")
        return PingReply()


async def test_actors_report_inbox_depth_and_restarts() -> None:
    async with DagloomInstance.ephemeral() as instance:
        idle = _Probe("metrics-idle-probe")  # never run: its told messages wait in its inbox
        ref = MemoryTransport().ref(idle)
        for _ in range(3):
            await ref.tell(PingRequest())
        crashing = _Probe("metrics-crashing-probe")
        supervisor = Supervisor()
        supervisor.add(crashing, RestartPolicy(backoff=Backoff(initial=0.0, maximum=0.0)))
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            crashing_ref = MemoryTransport().ref(crashing)
            await crashing_ref.tell(PingRequest())
            with anyio.fail_after(10):
                await crashing_ref.ask(PingRequest())  # answered by the restarted actor
            got = parse(await scrape(instance))
            tg.cancel_scope.cancel()
    assert got[("dagloom_actor_inbox_messages", (("actor", "metrics-idle-probe"),))] == 3
    assert got[("dagloom_actor_ready", (("actor", "metrics-idle-probe"),))] == 0
    assert got[("dagloom_actor_restarts_total", (("actor", "metrics-crashing-probe"),))] == 1
    assert got[("dagloom_actor_ready", (("actor", "metrics-crashing-probe"),))] == 1
    idle.close()


async def test_only_the_given_actors_are_reported_when_sources_name_them() -> None:
    async with DagloomInstance.ephemeral() as instance:
        mine = _Probe("metrics-mine")
        _Probe("metrics-not-mine")
        got = parse(await scrape(instance, MetricsSources(actors=lambda: [mine])))
    actors = {dict(labels)["actor"] for name, labels in got if name == "dagloom_actor_ready"}
    assert actors == {"metrics-mine"}


@pytest.mark.usefixtures("restore_import_state")
async def test_code_locations_report_failed_loads(tmp_path: Path) -> None:
    broken = tmp_path / "broken_defs.py"
    broken.write_text("raise ImportError('the warehouse module is missing')\n")
    server = CodeLocationServer("warehouse", CodeOrigin(python_file=str(broken)))
    supervisor = Supervisor()
    supervisor.add(server)

    async def elsewhere() -> Iterable[LocationSnapshot]:
        return [LocationSnapshot(location_name="remote")]

    async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        got = parse(await scrape(instance, MetricsSources(locations=elsewhere)))
        tg.cancel_scope.cancel()
    failing = "dagloom_code_location_load_failing"
    assert got[(failing, (("location", "warehouse"),))] == 1
    assert got[(failing, (("location", "remote"),))] == 0
    assert got[("dagloom_code_location_load_errors_total", (("location", "warehouse"),))] == 1


class _DownStorage:
    async def get_run_stats(self, duration_buckets: Any = ()) -> RunStats:
        raise StorageError("the database is unreachable", location="db")

    async def get_events_stored(self) -> int:
        raise AssertionError("not reached")

    async def get_daemon_heartbeats(self) -> dict[str, DaemonHeartbeat]:
        raise AssertionError("not reached")


async def test_a_storage_failure_still_answers_with_process_figures() -> None:
    got = parse(await scrape(_DownStorage()))
    assert got[("dagloom_storage_up", ())] == 0
    assert ("dagloom_events_written_total", ()) in got
    assert not any(name == "dagloom_runs" for name, _ in got)


async def test_openmetrics_and_gzip_are_served_when_asked() -> None:
    async with DagloomInstance.ephemeral() as instance:
        body, content_type = await render_metrics(
            instance, accept="application/openmetrics-text; version=1.0.0"
        )
        assert content_type.startswith("application/openmetrics-text")
        assert body.rstrip().endswith(b"# EOF")
        app = web.Application()
        add_routes(app, instance=instance)
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
            assert response.headers["Content-Encoding"] == "gzip"
            assert "dagloom_storage_up 1.0" in await response.text()
            assert response.headers["Content-Type"].startswith("text/plain")


async def test_a_node_without_a_webserver_serves_metrics_on_its_own_port() -> None:
    async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
        port = await tg.start(lambda task_status: serve_metrics(instance, task_status=task_status))
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            assert response.status == 200
            assert ("dagloom_storage_up", ()) in parse(await response.text())
        tg.cancel_scope.cancel()


async def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with DagloomInstance.ephemeral() as instance:
            with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
                await serve_metrics(instance, port=port)


async def test_code_locations_that_do_not_answer_are_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics_serve, "LOCATIONS_TIMEOUT", 0.05)

    async def silent() -> Iterable[LocationSnapshot]:
        await anyio.sleep_forever()
        raise AssertionError("not reached")

    async with DagloomInstance.ephemeral() as instance:
        with anyio.fail_after(10):
            got = parse(await scrape(instance, MetricsSources(locations=silent)))
    assert got[("dagloom_storage_up", ())] == 1
    assert not any(name == "dagloom_code_location_load_failing" for name, _ in got)
