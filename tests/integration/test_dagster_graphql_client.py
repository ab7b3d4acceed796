"""Dagster's own Python GraphQL client (`dagster-graphql`'s `DagsterGraphQLClient`), run
unchanged from its own virtualenv, against `dagloom dev` in a subprocess.

The client pins an older graphql-core than strawberry needs, so it cannot share dagloom's
environment. Its virtualenv lives at $DAGLOOM_DAGSTER_CLIENT_VENV (default
~/.cache/dagloom/dagster-graphql-<version>); `.ci/run` creates it, and this test creates it
when missing. Off CI, a machine that cannot install it skips the test; on CI it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process

DAGSTER_GRAPHQL_VERSION = "1.13.29"
NUMBERS = Path(__file__).resolve().parents[2] / "examples" / "numbers.py"
SCRIPT = Path(__file__).with_name("_dagster_client.py")
SECURED_SCRIPT = Path(__file__).with_name("_dagster_client_secured.py")
START_TIMEOUT = 120
LISTENING = re.compile(r"webserver .* listening on http://(\S+):(\d+)")

pytestmark = pytest.mark.slow


def client_venv() -> Path:
    default = Path.home() / ".cache" / "dagloom" / f"dagster-graphql-{DAGSTER_GRAPHQL_VERSION}"
    return Path(os.environ.get("DAGLOOM_DAGSTER_CLIENT_VENV", default))


def _has_client(python: Path) -> bool:
    if not python.exists():
        return False
    done = subprocess.run([python, "-c", "import dagster_graphql"], capture_output=True)
    return done.returncode == 0


@pytest.fixture(scope="module")
def client_python() -> Path:
    venv = client_venv()
    python = venv / "bin" / "python"
    if not _has_client(python):
        try:
            subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
            subprocess.run(
                [
                    python,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    f"dagster-graphql=={DAGSTER_GRAPHQL_VERSION}",
                ],
                check=True,
                timeout=280,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"cannot install dagster-graphql into {venv}: {exc}")
    return python


@asynccontextmanager
async def dev_webserver(home: Path) -> AsyncIterator[int]:
    """`dagloom dev` on examples/numbers.py; yields its webserver's port."""
    command = [
        sys.executable,
        "-m",
        "dagloom.cli",
        "dev",
        "-f",
        str(NUMBERS),
        "--api-port",
        "0",
        "--port",
        "0",
        "--no-reload",
    ]
    env = {**os.environ, "DAGLOOM_HOME": str(home)}
    process: Process = await anyio.open_process(command, env=env, stderr=None)
    try:
        assert process.stdout is not None
        buffered = ""
        port = None
        with anyio.fail_after(START_TIMEOUT):
            while "ready" not in buffered:
                buffered += (await process.stdout.receive()).decode()
        match = LISTENING.search(buffered)
        assert match is not None, buffered
        port = int(match.group(2))
        yield port
    finally:
        process.terminate()
        with anyio.fail_after(30):
            await process.wait()


async def test_dagster_graphql_client_works_unchanged(client_python: Path, tmp_path: Path) -> None:
    async with dev_webserver(tmp_path / "home") as port:
        with anyio.fail_after(240):
            done = await anyio.run_process([client_python, SCRIPT, str(port)], check=False)
    output = done.stdout.decode()
    assert done.returncode == 0, output + done.stderr.decode()
    calls: dict[str, dict[str, Any]] = {}
    for line in output.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            calls[record["call"]] = record

    assert calls["submit_job_execution"]["status"] == "SUCCESS"
    assert calls["submit_with_location"]["run_id"]

    unknown_job = calls["unknown_job"]["error"]
    assert unknown_job["args"][0] == "JobNotFoundError"
    invalid = calls["invalid_config"]["error"]
    assert invalid["args"][0] == "RunConfigValidationInvalid"
    assert "ops.nope" in invalid["args"][1] or "'nope'" in invalid["args"][1]
    assert calls["unknown_run"]["error"]["args"][0] == "RunNotFoundError"

    assert calls["reload"]["status"] == "SUCCESS"
    assert calls["reload_missing"] == {
        "call": "reload_missing",
        "status": "FAILURE",
        "failure_type": "RepositoryLocationNotFound",
    }
    assert calls["shutdown"]["status"] == "SUCCESS"
    assert calls["terminate_unknown"]["error"]["args"][0] == "RunNotFoundError"
    # One run already finished, one unknown: every termination failed.
    assert calls["terminate_runs"]["error"]["args"][0] == "TerminateRunsError"


def _token(home: Path, role: str) -> str:
    """A new token of `role` from `dagloom token create` (the token is its last line)."""
    done = subprocess.run(
        [sys.executable, "-m", "dagloom.cli", "token", "create", "--role", role, "--name", role],
        env={**os.environ, "DAGLOOM_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


async def test_dagster_graphql_client_sends_its_token_in_headers(
    client_python: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagloom.yaml").write_text("auth:\n  enabled: true\n")
    launcher, viewer = _token(home, "launcher"), _token(home, "viewer")
    async with dev_webserver(home) as port:
        with anyio.fail_after(240):
            done = await anyio.run_process(
                [client_python, SECURED_SCRIPT, str(port), launcher, viewer], check=False
            )
    output = done.stdout.decode()
    assert done.returncode == 0, output + done.stderr.decode()
    calls = {
        record["call"]: record
        for record in (json.loads(line) for line in output.splitlines() if line.startswith("{"))
    }
    assert calls["launcher_submit"]["status"] == "SUCCESS"
    assert calls["viewer_status"]["status"] == "SUCCESS"
    assert "UnauthorizedError" in json.dumps(calls["viewer_submit"]["error"])
    assert "a token is required" in json.dumps(calls["anonymous_status"]["error"])
    # Without a token even the client's first read (the job's repository) is refused.
    assert "UNAUTHORIZED" in json.dumps(calls["anonymous_submit"]["error"])
