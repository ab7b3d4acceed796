"""A real Azure Storage server (Azurite, the npm package pinned in tests/azure/azurite,
installed with `npm ci` there) on 127.0.0.1 for the Azure tests. Without it the tests
skip, except in CI (`CI=true`), where they fail."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests._servers import server_missing

try:
    import obstore  # noqa: F401  # the client under test
except ImportError:
    server_missing("obstore", "pip install '.[dev]'")

AZURITE = Path(__file__).with_name("azurite") / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account and key."""


@dataclass(frozen=True)
class AzureServer:
    endpoint: str
    """The account's blob endpoint: `http://127.0.0.1:<port>/devstoreaccount1`."""

    def create_container(self) -> str:
        """A new, empty container's name (a Shared Key signed `Create Container`)."""
        name = f"ctr-{uuid.uuid4().hex[:12]}"
        headers = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
        canonical = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
        # VERB, then 11 standard headers of which only Content-Type is set.
        to_sign = (
            "PUT\n\n\n\n\napplication/octet-stream\n\n\n\n\n\n\n"
            + canonical
            + f"/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        )
        digest = hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()
        request = urllib.request.Request(
            f"{self.endpoint}/{name}?restype=container",
            data=b"",
            method="PUT",
            headers={
                **headers,
                "Content-Type": "application/octet-stream",
                "Authorization": f"SharedKey {ACCOUNT}:{base64.b64encode(digest).decode()}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
        return name

    def account_sas(self) -> str:
        """An account SAS token for blobs (read, write, delete, list, add, create), valid
        for an hour."""
        expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        version = "2021-08-06"
        # account, permissions, services, resource types, start, expiry, IP, protocols,
        # version, encryption scope, and a closing newline.
        fields = [ACCOUNT, "rwdlac", "b", "sco", "", expiry, "", "https,http", version, "", ""]
        digest = hmac.new(base64.b64decode(KEY), "\n".join(fields).encode(), hashlib.sha256)
        return urllib.parse.urlencode(
            {
                "sv": version,
                "ss": "b",
                "srt": "sco",
                "sp": "rwdlac",
                "se": expiry,
                "spr": "https,http",
                "sig": base64.b64encode(digest.digest()).decode(),
            }
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # Node starts slowly on a loaded machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"azurite-blob exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{endpoint}?comp=list", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers (unsigned requests are refused)
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)  # the process is starting: nothing to wait on but its port
    raise RuntimeError(f"azurite-blob did not answer at {endpoint} within 60 s")


@pytest.fixture(scope="session")
def azure_server() -> Iterator[AzureServer]:
    if not AZURITE.exists():
        server_missing("Azurite", "npm ci in tests/azure/azurite")
    port = _free_port()
    process = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
    try:
        _wait_ready(endpoint, process)
        yield AzureServer(endpoint)
    finally:
        process.send_signal(signal.SIGINT)  # Azurite closes on SIGINT; SIGTERM it ignores
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def container(azure_server: AzureServer) -> str:
    return azure_server.create_container()
