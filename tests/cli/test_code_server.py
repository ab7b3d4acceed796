"""`dagloom code-server start`: a code location served over gRPC from a child process.

Each test starts real `python -m dagloom.cli code-server start` processes, waits for the
listening line and a health ping, and talks to them through `GrpcTransport` refs.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.abc
import pytest
import structlog
from typer.testing import CliRunner

from dagloom.actors import Backoff, HealthReporter
from dagloom.actors.code_location import (
    CodeLocationReply,
    CodeLocationRequest,
    CodeLocationServer,
)
from dagloom.cli import app
from dagloom.cli.code_server import DEFAULT_PORT, parse_listening_line, run_code_server
from dagloom.errors import ActorUnavailableError
from dagloom.execution.origin import CodeOrigin
from dagloom.messages.rpc import (
    EvaluateScheduleRequest,
    EvaluateSensorRequest,
    GetSnapshotRequest,
    LocationSnapshot,
    PingRequest,
    ReloadRequest,
    TickResult,
    ValidateRunReply,
    ValidateRunRequest,
)
from dagloom.transport import GrpcRef, GrpcTransport, split_address

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NUMBERS = str(EXAMPLES / "numbers.py")

Ref = GrpcRef[CodeLocationRequest, CodeLocationReply]

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Log through structlog's defaults, whatever an earlier test configured (an in-process
    CLI run may have pointed it at a stream that is closed now)."""
    structlog.reset_defaults()


@pytest.fixture
async def client() -> AsyncIterator[GrpcTransport]:
    # No reconnect backoff: a test that restarts a server polls, and each poll should try.
    transport = GrpcTransport(reconnect_backoff=Backoff(initial=0.0, maximum=0.0))
    yield transport
    transport.close()


@asynccontextmanager
async def code_server(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[anyio.abc.Process, str]]:
    """Start `dagloom code-server start *args` in a child process; yield it and its address
    once it prints its listening line. Kills it on exit if it still runs."""
    command = [sys.executable, "-m", "dagloom.cli", "code-server", "start", *args]
    with (cwd / "code-server.log").open("ab") as log:
        process = await anyio.open_process(
            command, cwd=cwd, env={**os.environ, **(env or {})}, stderr=log
        )
    try:
        assert process.stdout is not None
        line = b""
        with anyio.fail_after(30):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive(1)
                line += chunk
        address = parse_listening_line(line.decode())
        assert address is not None, line
        yield process, address
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.wait()
        await process.aclose()


async def wait_ready(client: GrpcTransport, address: str) -> None:
    """Poll the server's health ping until every actor there is ready."""
    health = client.ref(HealthReporter, name="health", address=address)
    with anyio.fail_after(30):
        while True:
            try:
                reply = await health.ask(PingRequest(), timeout=5)
            except ActorUnavailableError:
                reply = None
            if reply is not None and reply.actors and all(a.ready for a in reply.actors):
                return
            await anyio.sleep(0.02)  # the poll interval, not a wait for something to happen


def location(client: GrpcTransport, address: str, name: str) -> Ref:
    return client.ref(CodeLocationServer, name=name, address=address)


async def snapshot_of(ref: Ref) -> LocationSnapshot:
    reply = await ref.ask(GetSnapshotRequest(), timeout=10)
    assert isinstance(reply, LocationSnapshot)
    return reply


async def tick(ref: Ref, request: EvaluateScheduleRequest | EvaluateSensorRequest) -> TickResult:
    reply = await ref.ask(request, timeout=10)
    assert isinstance(reply, TickResult)
    return reply


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


JOB_V = """
    import dagloom as dg

    @dg.op
    def step():
        return {version}

    @dg.job
    def job_v{version}():
        step()
"""


async def test_serves_the_numbers_snapshot_ticks_and_validation(
    tmp_path: Path, client: GrpcTransport
) -> None:
    check_file = tmp_path / "check"
    check_file.touch()
    env = {"DAGLOOM_EXAMPLE_CHECK_FILE": str(check_file)}
    with anyio.fail_after(60):
        async with code_server("-f", NUMBERS, "--port", "0", cwd=tmp_path, env=env) as (
            _,
            address,
        ):
            await wait_ready(client, address)
            ref = location(client, address, "numbers")
            snapshot = await snapshot_of(ref)
            when = datetime(2024, 5, 1, 7, 30, tzinfo=UTC).timestamp()
            scheduled = await tick(
                ref,
                EvaluateScheduleRequest(
                    schedule_name="process_numbers_schedule", scheduled_execution_time=when
                ),
            )
            sensed = await tick(ref, EvaluateSensorRequest(sensor_name="check_file_sensor"))
            validation = await ref.ask(ValidateRunRequest(job_name="process_numbers"))
    assert snapshot.location_name == "numbers" and snapshot.load_error is None
    assert [j.name for j in snapshot.jobs] == [
        "process_numbers",
        "process_numbers_asset",
        "__ASSET_JOB",
    ]
    (scheduled_run,) = scheduled.run_requests
    assert scheduled_run.job_name == "process_numbers"
    assert scheduled_run.tags["dagloom/scheduled_execution_time"].startswith("2024-05-01T07:30")
    assert [r.run_key for r in sensed.run_requests] == ["check_file_exists"]
    assert isinstance(validation, ValidateRunReply) and validation.valid
    assert validation.job_snapshot_id == snapshot.jobs[0].snapshot_id


async def test_an_import_error_is_served_as_the_load_error_while_another_location_serves(
    tmp_path: Path, client: GrpcTransport
) -> None:
    broken = write(
        tmp_path / "broken_defs.py",
        """
        import dagloom as dg

        raise ImportError("no module named warehouse_client")
        """,
    )
    with anyio.fail_after(60):
        async with (
            code_server("-f", str(broken), "--port", "0", cwd=tmp_path) as (_, broken_address),
            code_server("-f", NUMBERS, "--port", "0", cwd=tmp_path) as (_, numbers_address),
        ):
            await wait_ready(client, broken_address)
            await wait_ready(client, numbers_address)
            failed = await snapshot_of(location(client, broken_address, "broken_defs"))
            healthy = await snapshot_of(location(client, numbers_address, "numbers"))
    assert failed.jobs == []
    assert failed.load_error is not None
    assert "no module named warehouse_client" in failed.load_error.message
    assert "broken_defs.py" in failed.load_error.stack
    assert 'raise ImportError("no module named warehouse_client")' in failed.load_error.stack
    assert healthy.load_error is None and len(healthy.jobs) == 3


async def test_reload_over_grpc_picks_up_a_change_and_survives_a_broken_one(
    tmp_path: Path, client: GrpcTransport
) -> None:
    path = write(tmp_path / "versioned.py", JOB_V.format(version=1))
    with anyio.fail_after(60):
        async with code_server(
            "-f", str(path), "--location-name", "prod", "--port", "0", cwd=tmp_path
        ) as (_, address):
            await wait_ready(client, address)
            ref = location(client, address, "prod")
            first = await snapshot_of(ref)
            write(path, JOB_V.format(version=2))
            second = await ref.ask(ReloadRequest(), timeout=30)
            write(path, "raise SyntaxError('not python')\n")
            failed = await ref.ask(ReloadRequest(), timeout=30)
            after = await snapshot_of(ref)
    assert first.location_name == "prod"
    assert [j.name for j in first.jobs] == ["job_v1"]
    assert isinstance(second, LocationSnapshot) and [j.name for j in second.jobs] == ["job_v2"]
    assert isinstance(failed, LocationSnapshot) and [j.name for j in failed.jobs] == ["job_v2"]
    assert failed.load_error is not None and "not python" in failed.load_error.message
    assert [j.name for j in after.jobs] == ["job_v2"]


async def test_a_ref_survives_the_server_being_killed_and_restarted_on_its_port(
    tmp_path: Path, client: GrpcTransport
) -> None:
    with anyio.fail_after(90):
        async with code_server("-f", NUMBERS, "--port", "0", cwd=tmp_path) as (process, address):
            await wait_ready(client, address)
            ref = location(client, address, "numbers")
            before = await snapshot_of(ref)
            process.kill()
            await process.wait()

        with pytest.raises(ActorUnavailableError) as info:
            await ref.ask(GetSnapshotRequest(), timeout=5)
        assert info.value.address == address

        _, port = split_address(address)
        async with code_server("-f", NUMBERS, "--port", str(port), cwd=tmp_path) as (
            _,
            same_address,
        ):
            assert same_address == address
            await wait_ready(client, address)
            after = await snapshot_of(ref)
    assert [j.snapshot_id for j in after.jobs] == [j.snapshot_id for j in before.jobs]
    assert after.loaded_at > before.loaded_at


async def test_sigterm_stops_the_server_cleanly(tmp_path: Path, client: GrpcTransport) -> None:
    with anyio.fail_after(60):
        async with code_server("-f", NUMBERS, "--port", "0", cwd=tmp_path) as (process, address):
            await wait_ready(client, address)
            process.send_signal(signal.SIGTERM)
            code = await process.wait()
    assert code == 0


async def test_a_module_location_is_served_from_its_working_directory(
    tmp_path: Path, client: GrpcTransport
) -> None:
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    write(code_dir / "my_defs_module.py", JOB_V.format(version=7))
    with anyio.fail_after(60):
        async with code_server(
            "-m", "my_defs_module", "-d", str(code_dir), "--port", "0", cwd=tmp_path
        ) as (_, address):
            await wait_ready(client, address)
            snapshot = await snapshot_of(location(client, address, "my_defs_module"))
    assert [j.name for j in snapshot.jobs] == ["job_v7"]


async def test_without_a_port_it_listens_from_4000_up(client: GrpcTransport) -> None:
    source = CodeOrigin(python_file=NUMBERS)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            address = await tg.start(functools.partial(run_code_server, "numbers", source))
            host, port = split_address(address)
            snapshot = await snapshot_of(location(client, address, "numbers"))
            tg.cancel_scope.cancel()
    assert host == "127.0.0.1"
    assert port >= DEFAULT_PORT
    assert len(snapshot.jobs) == 3


def test_it_needs_exactly_one_of_a_file_and_a_module() -> None:
    runner = CliRunner()
    neither = runner.invoke(app, ["code-server", "start"])
    both = runner.invoke(app, ["code-server", "start", "-f", NUMBERS, "-m", "numbers"])
    assert neither.exit_code == 2
    assert both.exit_code == 2
    assert "exactly one" in neither.output


async def test_a_taken_port_is_reported_and_exits_1(tmp_path: Path) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    try:
        command = [
            sys.executable,
            "-m",
            "dagloom.cli",
            "code-server",
            "start",
            "-f",
            NUMBERS,
            "--port",
            str(port),
        ]
        with anyio.fail_after(60):
            done = await anyio.run_process(command, cwd=tmp_path, check=False)
    finally:
        await listener.aclose()
    assert done.returncode == 1
    assert b"cannot listen on 127.0.0.1" in done.stderr
    assert b"Address already in use" in done.stderr
