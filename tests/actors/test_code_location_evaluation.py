"""Schedule and sensor ticks evaluated outside the code location's inbox, in its warm
evaluation processes: concurrently, under a timeout that kills what overruns, and with
whatever user code raises (`SystemExit` included) reported as the tick's error.

Sensors here report that they started by connecting to a listener of the test, so the tests
order what happens by those connections, never by time.
"""

from __future__ import annotations

import multiprocessing
import textwrap
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest
import structlog

from dagloom.actors import Supervisor
from dagloom.actors.code_location import (
    CodeLocationReply,
    CodeLocationRequest,
    CodeLocationServer,
    EvaluationSettings,
)
from dagloom.execution.origin import CodeOrigin
from dagloom.messages.rpc import (
    EvaluateScheduleRequest,
    EvaluateSensorRequest,
    GetSnapshotRequest,
    LocationSnapshot,
    ReloadRequest,
    TickResult,
    ValidateRunReply,
    ValidateRunRequest,
)
from dagloom.transport import ActorRef, MemoryTransport

Ref = ActorRef[CodeLocationRequest, CodeLocationReply]

pytestmark = pytest.mark.usefixtures("restore_import_state")

PORT_ENV = "DAGLOOM_TEST_SIGNAL_PORT"

SENSORS = """
    import os
    import socket
    import sys
    import time

    import dagloom as dg

    @dg.op
    def noop() -> None:
        pass

    @dg.job
    def nothing():
        noop()

    def started(name):
        sock = socket.create_connection(("127.0.0.1", int(os.environ["{port_env}"])))
        sock.sendall(name.encode() + b"\\n")
        return sock

    @dg.sensor(job=nothing)
    def forever(context):
        started("forever")
        while True:
            time.sleep(3600)

    @dg.sensor(job=nothing)
    def gated_a(context):
        started("gated_a").recv(1)
        return dg.SkipReason("released a")

    @dg.sensor(job=nothing)
    def gated_b(context):
        started("gated_b").recv(1)
        return dg.SkipReason("released b")

    @dg.sensor(job=nothing)
    def exits(context):
        sys.exit(3)

    @dg.sensor(job=nothing)
    def interrupted(context):
        raise KeyboardInterrupt

    @dg.sensor(job=nothing)
    def version(context):
        return dg.SkipReason("version {version}")

    @dg.schedule(cron_schedule="0 * * * *", job=nothing)
    def hourly(context):
        return dg.RunRequest(run_key=str(context.scheduled_execution_time.hour))
"""


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    structlog.reset_defaults()


def write_sensors(path: Path, version: int = 1) -> Path:
    source = SENSORS.replace("{port_env}", PORT_ENV).replace("{version}", str(version))
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


@pytest.fixture
def sensors_file(tmp_path: Path) -> Path:
    return write_sensors(tmp_path / f"sensors_{uuid.uuid4().hex[:8]}.py")


class Signals:
    """The test's end of the sensors' connections: `next()` waits for a sensor to start and
    returns its name and connection (write a byte to release a gated sensor)."""

    def __init__(self, listener: anyio.abc.SocketListener) -> None:
        self.listener = listener

    async def next(self) -> tuple[str, anyio.abc.SocketStream]:
        stream = await self.listener.accept()
        name = b""
        while not name.endswith(b"\n"):
            name += await stream.receive(64)
        return name.decode().strip(), stream


@asynccontextmanager
async def signals(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Signals]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener:
        (inner,) = listener.listeners
        assert isinstance(inner, anyio.abc.SocketListener)
        port = inner.extra(anyio.abc.SocketAttribute.local_port)
        # Read by the evaluation processes, which are spawned after this.
        monkeypatch.setenv(PORT_ENV, str(port))
        yield Signals(inner)


@asynccontextmanager
async def serving(actor: CodeLocationServer) -> AsyncIterator[Ref]:
    supervisor = Supervisor()
    supervisor.add(actor)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        yield MemoryTransport(strict=True).ref(actor)
        tg.cancel_scope.cancel()


async def tick(ref: Ref, request: EvaluateScheduleRequest | EvaluateSensorRequest) -> TickResult:
    reply = await ref.ask(request, timeout=120)
    assert isinstance(reply, TickResult)
    return reply


def evaluators() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("dagloom-eval")]


async def test_a_sensor_past_its_timeout_is_killed_and_reported_while_validation_answers(
    sensors_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = CodeLocationServer(
        "sensors",
        CodeOrigin(python_file=str(sensors_file)),
        evaluation=EvaluationSettings(timeout_seconds=5.0),
    )
    order: list[str] = []
    result: list[TickResult] = []
    with anyio.fail_after(60):
        async with signals(monkeypatch) as sensors, serving(actor) as ref:
            threads_before = set(threading.enumerate())

            async def evaluate_forever() -> None:
                result.append(await tick(ref, EvaluateSensorRequest(sensor_name="forever")))
                order.append("tick answered")

            async with anyio.create_task_group() as tg:
                tg.start_soon(evaluate_forever)
                name, stream = await sensors.next()
                order.append(f"{name} started")
                reply = await ref.ask(ValidateRunRequest(job_name="nothing"), timeout=60)
                assert isinstance(reply, ValidateRunReply) and reply.valid
                snapshot = await ref.ask(GetSnapshotRequest(), timeout=60)
                assert isinstance(snapshot, LocationSnapshot)
                order.append("validated")
            await stream.aclose()
            threads_after = set(threading.enumerate())
            processes_after = evaluators()
    assert order == ["forever started", "validated", "tick answered"]
    (timed_out,) = result
    assert timed_out.error is not None
    assert timed_out.error.cls_name == "UserCodeTimeoutError"
    assert "sensor 'forever'" in timed_out.error.message
    assert "timed out after 5 s" in timed_out.error.message
    # Nothing of the sensor is left running: its process was killed, and no thread was
    # started to wait for it.
    assert processes_after == []
    assert threads_after <= threads_before


async def test_several_evaluations_run_at_once_and_a_stop_kills_their_processes(
    sensors_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = CodeLocationServer(
        "sensors",
        CodeOrigin(python_file=str(sensors_file)),
        evaluation=EvaluationSettings(processes=2),
    )
    results: dict[str, TickResult] = {}
    with anyio.fail_after(60):
        async with signals(monkeypatch) as sensors, serving(actor) as ref:

            async def evaluate(name: str) -> None:
                results[name] = await tick(ref, EvaluateSensorRequest(sensor_name=name))

            async with anyio.create_task_group() as tg:
                tg.start_soon(evaluate, "gated_a")
                tg.start_soon(evaluate, "gated_b")
                # Both sensors are running before either is released: two at once.
                first, first_stream = await sensors.next()
                second, second_stream = await sensors.next()
                assert {first, second} == {"gated_a", "gated_b"}
                await first_stream.send(b"go")
                await second_stream.send(b"go")
            async with anyio.create_task_group() as tg:
                tg.start_soon(tick, ref, EvaluateSensorRequest(sensor_name="forever"))
                name, stream = await sensors.next()
                assert name == "forever"
                tg.cancel_scope.cancel()
            await stream.aclose()
            assert len(evaluators()) == 2
        left = evaluators()
    assert results["gated_a"].skip_message == "released a"
    assert results["gated_b"].skip_message == "released b"
    assert left == []


async def test_a_sensor_calling_sys_exit_fails_its_tick_and_the_process_evaluates_on(
    sensors_file: Path,
) -> None:
    actor = CodeLocationServer(
        "sensors",
        CodeOrigin(python_file=str(sensors_file)),
        evaluation=EvaluationSettings(processes=1),
    )
    with anyio.fail_after(60):
        async with serving(actor) as ref:
            exited = await tick(ref, EvaluateSensorRequest(sensor_name="exits"))
            interrupted = await tick(ref, EvaluateSensorRequest(sensor_name="interrupted"))
            workers = [p.pid for p in evaluators()]
            scheduled = await tick(
                ref, EvaluateScheduleRequest(schedule_name="hourly", scheduled_execution_time=0)
            )
            workers_after = [p.pid for p in evaluators()]
    assert exited.error is not None
    assert exited.error.cls_name == "UserCodeError"
    assert "sensor 'exits'" in exited.error.message
    assert "called sys.exit(3)" in exited.error.message
    assert exited.error.cause is not None and exited.error.cause.cls_name == "SystemExit"
    assert interrupted.error is not None
    assert "sensor 'interrupted'" in interrupted.error.message
    assert "KeyboardInterrupt" in interrupted.error.message
    assert scheduled.error is None and len(scheduled.run_requests) == 1
    assert len(workers) == 1 and workers_after == workers
    assert actor.health().restarts == 0


async def test_after_a_reload_ticks_see_the_new_code(tmp_path: Path) -> None:
    path = write_sensors(tmp_path / f"sensors_{uuid.uuid4().hex[:8]}.py", version=1)
    actor = CodeLocationServer("sensors", CodeOrigin(python_file=str(path)))
    with anyio.fail_after(60):
        async with serving(actor) as ref:
            before = await tick(ref, EvaluateSensorRequest(sensor_name="version"))
            write_sensors(path, version=2)
            assert isinstance(await ref.ask(ReloadRequest(), timeout=60), LocationSnapshot)
            after = await tick(ref, EvaluateSensorRequest(sensor_name="version"))
    assert before.skip_message == "version 1"
    assert after.skip_message == "version 2"
