"""Workspaces: reading workspace.yaml, planning how each location is reached, and opening
it with in-process, managed-subprocess and remote gRPC locations side by side."""

from __future__ import annotations

import functools
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import structlog

from dagloom.actors import Backoff, unwrap_exception_group
from dagloom.cli.code_server import run_code_server
from dagloom.code.workspace import (
    GrpcServerTarget,
    InProcessLocation,
    ManagedLocation,
    RemoteLocation,
    code_server_command,
    listening_line,
    load_workspace_config,
    open_workspace,
    open_workspace_file,
    parse_listening_line,
    parse_workspace,
    plan_locations,
)
from dagloom.errors import ActorUnavailableError, ConfigError
from dagloom.execution.origin import CodeOrigin
from dagloom.messages.rpc import GetSnapshotRequest, LocationSnapshot
from dagloom.transport import GrpcTransport, MemoryRef

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NUMBERS = EXAMPLES / "numbers.py"


pytestmark = pytest.mark.usefixtures("restore_import_state")


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Log through structlog's defaults, whatever an earlier test configured (an in-process
    CLI run may have pointed it at a stream that is closed now)."""
    structlog.reset_defaults()


@pytest.fixture
async def client() -> AsyncIterator[GrpcTransport]:
    transport = GrpcTransport(reconnect_backoff=Backoff(initial=0.0, maximum=0.0))
    yield transport
    transport.close()


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


# -- the file --------------------------------------------------------------------------------


def test_reads_every_kind_of_entry_in_long_and_short_form() -> None:
    config = parse_workspace(
        {
            "load_from": [
                {"python_file": "defs.py"},
                {
                    "python_file": {
                        "relative_path": "pipelines/etl.py",
                        "location_name": "etl",
                        "attribute": "defs",
                        "working_directory": "pipelines",
                        "managed": True,
                    }
                },
                {"python_module": "analytics.defs"},
                {"python_module": {"module_name": "ml.defs", "location_name": "ml"}},
                {"grpc_server": {"port": 4000, "location_name": "remote"}},
            ]
        }
    )
    entries = config.load_from
    assert [e.kind for e in entries] == [
        "python_file",
        "python_file",
        "python_module",
        "python_module",
        "grpc_server",
    ]
    assert [e.location_name for e in entries] == ["defs", "etl", "analytics.defs", "ml", "remote"]
    assert entries[1].python_file is not None and entries[1].python_file.is_managed
    assert entries[4].grpc_server == GrpcServerTarget(
        host="127.0.0.1", port=4000, location_name="remote"
    )


@pytest.mark.parametrize(
    ("data", "key_path", "text"),
    [
        ({}, "load_from", "required key is missing"),
        ({"load_from": []}, "load_from", "at least 1"),
        ({"load_from": [{}]}, "load_from[0]", "exactly one of"),
        (
            {"load_from": [{"python_file": "a.py", "python_module": "b"}]},
            "load_from[0]",
            "exactly one of",
        ),
        (
            {"load_from": [{"python_file": {"path": "a.py"}}]},
            "load_from[0].python_file.path",
            "unknown key",
        ),
        (
            {"load_from": [{"python_file": {"location_name": "x"}}]},
            "load_from[0].python_file.relative_path",
            "required key is missing",
        ),
        (
            {"load_from": [{"grpc_server": {"port": 70000, "location_name": "x"}}]},
            "load_from[0].grpc_server.port",
            "less than or equal to 65535",
        ),
        (
            {"load_from": [{"grpc_server": {"port": 4000}}]},
            "load_from[0].grpc_server.location_name",
            "required key is missing",
        ),
        (
            {"load_from": [{"python_file": "a/defs.py"}, {"python_file": "b/defs.py"}]},
            "load_from[1].python_file.location_name",
            "'defs' is already used by load_from[0]",
        ),
        ({"load_from": [{"python_package": "x"}]}, "load_from[0].python_package", "unknown key"),
    ],
)
def test_a_bad_workspace_names_the_file_and_the_key_path(
    data: dict[str, object], key_path: str, text: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_workspace(data, source="workspace.yaml")
    assert info.value.source == "workspace.yaml"
    assert key_path in info.value.key_paths
    assert text in str(info.value)
    assert str(info.value).startswith("workspace.yaml: ")


def test_a_file_that_is_not_yaml_or_not_a_mapping_is_a_config_error(tmp_path: Path) -> None:
    bad = write(tmp_path / "workspace.yaml", "load_from: [python_file: {\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_workspace_config(bad)
    assert info.value.source == str(bad)
    write(bad, "- python_file: defs.py\n")
    with pytest.raises(ConfigError, match="expected a mapping with `load_from`"):
        load_workspace_config(bad)
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_workspace_config(tmp_path / "missing.yaml")


def test_the_plan_resolves_paths_against_the_workspace_directory(tmp_path: Path) -> None:
    config = parse_workspace(
        {
            "load_from": [
                {"python_file": "defs.py"},
                {"python_file": {"relative_path": "../other/etl.py", "managed": True}},
                {
                    "python_module": {
                        "module_name": "analytics.defs",
                        "executable_path": "/opt/venv/bin/python",
                        "attribute": "defs",
                    }
                },
                {"python_module": {"module_name": "ml", "working_directory": "src"}},
                {"grpc_server": {"host": "10.0.0.5", "port": 4001, "location_name": "far"}},
            ]
        }
    )
    plans = plan_locations(config, base_dir=tmp_path)
    assert plans == [
        InProcessLocation("defs", CodeOrigin(python_file=str(tmp_path / "defs.py"))),
        ManagedLocation(
            "etl",
            CodeOrigin(python_file=str((tmp_path / "../other/etl.py").resolve())),
            sys.executable,
        ),
        ManagedLocation(
            "analytics.defs",
            CodeOrigin(
                module_name="analytics.defs", attribute="defs", working_directory=str(tmp_path)
            ),
            "/opt/venv/bin/python",
        ),
        InProcessLocation(
            "ml", CodeOrigin(module_name="ml", working_directory=str(tmp_path / "src"))
        ),
        RemoteLocation("far", "10.0.0.5:4001"),
    ]


def test_a_managed_server_command_runs_the_code_server_cli() -> None:
    plan = ManagedLocation(
        "etl",
        CodeOrigin(module_name="etl.defs", attribute="defs", working_directory="/code"),
        "/venv/bin/python",
    )
    assert code_server_command(plan) == [
        "/venv/bin/python",
        "-m",
        "dagloom.cli",
        "code-server",
        "start",
        "--module-name",
        "etl.defs",
        "--attribute",
        "defs",
        "--working-directory",
        "/code",
        "--location-name",
        "etl",
        "--host",
        "127.0.0.1",
    ]
    assert code_server_command(plan, port=4003)[-2:] == ["--port", "4003"]


def test_a_managed_server_is_pointed_at_the_workspaces_instance(tmp_path: Path) -> None:
    """Its ticks' context.instance is the workspace's instance: the command names its home
    and config file; an in-memory instance, which no other process reaches, is not named."""
    import shutil

    from dagloom.code.workspace import instance_args_of
    from dagloom.instance import DagloomInstance

    config = tmp_path / "custom.yaml"
    config.write_text("sensors:\n  num_workers: 2\n")
    on_disk = DagloomInstance.from_config({}, home=tmp_path, source=str(config))
    plan = ManagedLocation("etl", CodeOrigin(module_name="etl.defs"), "/venv/bin/python")
    command = code_server_command(plan, instance_args=instance_args_of(on_disk))
    assert command[-4:] == ["--home", str(tmp_path), "--config", str(config)]
    in_memory = DagloomInstance.ephemeral()
    try:
        assert instance_args_of(in_memory) == []
    finally:
        shutil.rmtree(in_memory.home)
    assert instance_args_of(None) == []


def test_the_listening_line_round_trips() -> None:
    line = listening_line("etl", "127.0.0.1:4002")
    assert parse_listening_line(line + "\n") == "127.0.0.1:4002"
    assert parse_listening_line("2024-01-01 [info] code_location_loaded") is None


# -- running it --------------------------------------------------------------------------------


async def test_in_process_managed_and_remote_locations_serve_side_by_side(
    tmp_path: Path, client: GrpcTransport
) -> None:
    write(tmp_path / "broken.py", "raise RuntimeError('broken on purpose')\n")
    write(tmp_path / "managed_defs.py", "from numbers_copy import *  # noqa\n")
    (tmp_path / "numbers_copy.py").write_text(NUMBERS.read_text(encoding="utf-8"))
    source = CodeOrigin(python_file=str(NUMBERS))
    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:
            remote = await tg.start(functools.partial(run_code_server, "remote", source, port=0))
            host, _, port = remote.rpartition(":")
            write(
                tmp_path / "workspace.yaml",
                f"""
                load_from:
                  - python_file: {NUMBERS}
                  - python_file: broken.py
                  - python_file: {{relative_path: managed_defs.py, managed: true}}
                  - grpc_server: {{host: {host}, port: {port}, location_name: remote}}
                """,
            )
            async with open_workspace_file(tmp_path / "workspace.yaml", grpc=client) as ws:
                snapshots = {}
                for name in ws.location_names:
                    reply = await ws.ref(name).ask(GetSnapshotRequest(), timeout=30)
                    assert isinstance(reply, LocationSnapshot)
                    snapshots[name] = reply
                numbers_server = ws.server("numbers")
                assert numbers_server is not None
                assert numbers_server.get_job("process_numbers").name == "process_numbers"
                assert isinstance(ws.ref("numbers"), MemoryRef)
                assert ws.server("managed_defs") is None
                assert ws.address("managed_defs") is not None
                assert ws.address("remote") == remote
                managed_pid = ws.pid("managed_defs")
                assert managed_pid is not None and managed_pid != os.getpid()
                with pytest.raises(KeyError, match="no code location 'nope'"):
                    ws.ref("nope")
            tg.cancel_scope.cancel()
    assert list(snapshots) == ["numbers", "broken", "managed_defs", "remote"]
    assert snapshots["numbers"].load_error is None and len(snapshots["numbers"].jobs) == 3
    broken = snapshots["broken"].load_error
    assert broken is not None and "broken on purpose" in broken.message
    assert "broken.py" in broken.stack
    assert snapshots["managed_defs"].load_error is None
    assert [j.name for j in snapshots["managed_defs"].jobs][:2] == [
        "process_numbers",
        "process_numbers_asset",
    ]
    assert snapshots["remote"].location_name == "remote"
    with pytest.raises(ProcessLookupError):
        os.kill(managed_pid, 0)  # the managed server was stopped with the workspace


async def test_a_managed_server_that_dies_is_restarted_on_its_port(
    tmp_path: Path, client: GrpcTransport
) -> None:
    plan = ManagedLocation("numbers", CodeOrigin(python_file=str(NUMBERS)), sys.executable)
    backoff = Backoff(initial=0.0, maximum=0.0)
    with anyio.fail_after(90):
        async with open_workspace([plan], grpc=client, restart_backoff=backoff) as ws:
            ref = ws.ref("numbers")
            before = await ref.ask(GetSnapshotRequest(), timeout=30)
            first_pid = ws.pid("numbers")
            assert first_pid is not None
            os.kill(first_pid, signal.SIGKILL)
            while True:
                try:
                    after = await ref.ask(GetSnapshotRequest(), timeout=5)
                    break
                except ActorUnavailableError:
                    await anyio.sleep(0.05)  # the poll interval
            # The new server may answer before the workspace has read its listening line and
            # recorded its pid: wait for that record (under the deadline above).
            while ws.pid("numbers") == first_pid:  # noqa: ASYNC110 - no event marks a pid
                await anyio.sleep(0.05)
            second_pid = ws.pid("numbers")
    assert isinstance(before, LocationSnapshot) and isinstance(after, LocationSnapshot)
    assert second_pid != first_pid
    assert after.loaded_at > before.loaded_at
    assert [j.name for j in after.jobs] == [j.name for j in before.jobs]


async def test_a_managed_server_that_exits_before_serving_is_an_error_naming_it(
    tmp_path: Path, client: GrpcTransport
) -> None:
    fake_python = write(tmp_path / "fake-python", "#!/bin/sh\nexit 3\n")
    fake_python.chmod(0o755)
    plan = ManagedLocation("etl", CodeOrigin(python_file=str(NUMBERS)), str(fake_python))
    with anyio.fail_after(30), pytest.raises(BaseExceptionGroup) as info:
        async with open_workspace([plan], grpc=client):
            pass
    error = unwrap_exception_group(info.value)
    assert isinstance(error, ActorUnavailableError)
    assert error.actor == "etl"
    assert "exit code 3" in str(error)


async def test_a_managed_server_whose_python_is_missing_is_an_error_naming_it(
    tmp_path: Path, client: GrpcTransport
) -> None:
    plan = ManagedLocation("etl", CodeOrigin(python_file=str(NUMBERS)), str(tmp_path / "nope"))
    with anyio.fail_after(30), pytest.raises(BaseExceptionGroup) as info:
        async with open_workspace([plan], grpc=client):
            pass
    error = unwrap_exception_group(info.value)
    assert isinstance(error, ActorUnavailableError)
    assert "cannot start the code server for location 'etl'" in str(error)
