"""A real S3-compatible server (moto's) on 127.0.0.1 for the object-store tests."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests._servers import server_missing

try:
    import moto.server as moto_server
except ImportError:
    server_missing("moto's S3 server", "pip install '.[dev]'")


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def create_bucket(self) -> str:
        """A new, empty bucket's name."""
        name = f"bucket-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        return name

    def require_auth(self, enabled: bool) -> None:
        """From now on check every request's credentials against the server's IAM (which
        knows none), or stop checking. Process-wide in moto: tests run one at a time."""
        count = b"0" if enabled else b"inf"
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=count,
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket()
