"""`dagloom dev`, `dagloom serve` and `dagloom job launch`, as a user runs them."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from typer.testing import CliRunner

from dagloom.cli import app
from dagloom.code.workspace import parse_listening_line
from tests.integration._stacks import START_TIMEOUT

REPO = Path(__file__).resolve().parents[2]
NUMBERS = REPO / "examples" / "numbers.py"
SUITE = REPO / "tests" / "integration" / "defs.py"


def test_serve_refuses_an_unknown_node() -> None:
    result = CliRunner().invoke(
        app, ["serve", "--topology", str(REPO / "configs" / "dev.yaml"), "--node", "nope"]
    )
    assert result.exit_code == 2
    assert "no node named 'nope'" in result.output


def test_serve_names_the_key_path_of_a_bad_topology(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("nodes:\n  one:\n    grpc_port: many\n")
    result = CliRunner().invoke(app, ["serve", "--topology", str(path), "--node", "one"])
    assert result.exit_code == 2
    assert "nodes.one.grpc_port" in result.output


def test_dev_needs_code() -> None:
    result = CliRunner().invoke(app, ["dev"])
    assert result.exit_code == 2


@asynccontextmanager
async def dev_server(
    home: Path, code: tuple[str, ...] = ("-f", str(NUMBERS), "-f", str(SUITE))
) -> AsyncIterator[tuple[str, list[str]]]:
    """`dagloom dev` on `code` (default: the two example files), its API on a port the OS
    picks; yields the API address it reports and what it printed up to `ready`. Terminated
    on the way out."""
    command = [sys.executable, "-m", "dagloom.cli", "dev", *code, "--api-port", "0", "--port", "0"]
    env = {**os.environ, "DAGLOOM_HOME": str(home)}
    process: Process = await anyio.open_process(command, env=env, stderr=None)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        buffered = ""
        with anyio.fail_after(START_TIMEOUT):
            while not any(line.endswith("ready") for line in lines):
                chunk = await process.stdout.receive()
                buffered += chunk.decode()
                *done, buffered = buffered.split("\n")
                lines += done
        (api,) = [
            address
            for line in lines
            if "public gRPC API" in line and (address := parse_listening_line(line)) is not None
        ]
        yield api, lines
    finally:
        process.terminate()
        with anyio.fail_after(30):
            await process.wait()


async def _launch(api: str, *args: str) -> tuple[int, str]:
    done = await anyio.run_process(
        [sys.executable, "-m", "dagloom.cli", "job", "launch", "--api", api, *args],
        check=False,
    )
    return done.returncode, done.stdout.decode() + done.stderr.decode()


@pytest.mark.slow
async def test_dev_serves_and_job_launch_follows_runs_to_their_end(tmp_path: Path) -> None:
    async with dev_server(tmp_path / "home") as (api, printed):
        assert f"public gRPC API listening on {api}" in "\n".join(printed)
        with anyio.fail_after(120):
            code, output = await _launch(api, "-j", "process_numbers", "-l", "numbers")
            assert code == 0, output
            assert "STEP_SUCCESS" in output and "RUN_SUCCESS" in output

            code, output = await _launch(api, "-j", "failing_job", "-l", "defs")
            assert code == 1, output
            assert "RUN_FAILURE" in output

            config = tmp_path / "run.yaml"
            config.write_text("ops:\n  count_to:\n    config:\n      limit: many\n")
            code, output = await _launch(
                api, "-j", "configured_job", "-l", "defs", "-c", str(config)
            )
            assert code == 2, output
            assert "ops.count_to.config.limit" in output

            code, output = await _launch(api, "-j", "nope", "-l", "defs")
            assert code == 2, output


async def test_job_launch_without_an_api_exits_2() -> None:
    # A port held bound but not listening: connecting to it is refused, and no other
    # process can start listening on it meanwhile.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        code, output = await _launch(f"127.0.0.1:{bound.getsockname()[1]}", "-j", "anything")
    assert code == 2
    assert "unreachable" in output


def test_dev_on_a_taken_port_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLOOM_HOME", str(tmp_path / "home"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            app, ["dev", "-f", str(NUMBERS), "--api-port", str(port), "--port", "0"]
        )
    assert result.exit_code == 1
    assert "cannot listen" in result.output


async def test_dev_serves_the_locations_of_a_workspace_file(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - python_file:\n      relative_path: {NUMBERS}\n      location_name: nums\n"
    )
    async with dev_server(tmp_path / "home", ("-w", str(workspace))) as (api, _):
        with anyio.fail_after(120):
            code, output = await _launch(api, "-j", "process_numbers", "-l", "nums")
    assert code == 0, output
    assert "RUN_SUCCESS" in output


def test_dev_refuses_a_workspace_location_served_elsewhere(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: 4266\n"
        "      location_name: remote\n"
    )
    result = CliRunner().invoke(app, ["dev", "-w", str(workspace)])
    assert result.exit_code == 2
    assert "remote" in result.output


async def test_a_node_that_never_gets_ready_still_stops_on_sigterm(tmp_path: Path) -> None:
    """`dagloom daemon run` on code that does not import: its warm pool's workers cannot
    start, so the launcher restarts with backoff and the node never gets ready; SIGTERM
    still stops it."""
    broken = tmp_path / "broken.py"
    broken.write_text('raise RuntimeError("this code does not import")\n')
    home = tmp_path / "home"
    home.mkdir()
    command = [sys.executable, "-m", "dagloom.cli", "daemon", "run", "-f", str(broken)]
    env = {**os.environ, "DAGLOOM_HOME": str(home)}
    process: Process = await anyio.open_process(command, env=env)
    try:
        assert process.stderr is not None
        seen = ""
        with anyio.fail_after(START_TIMEOUT):
            while "actor_crashed" not in seen:
                seen += (await process.stderr.receive()).decode(errors="replace")
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(60):
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
