"""The stacks the integration suite runs on: one event loop on the memory transport, or
three OS processes (control, code, workers) talking gRPC over a shared SQLite file or
Postgres, optionally each in its own network namespace."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import yaml

from dagloom.actors import HealthReporter
from dagloom.api import AsyncClient
from dagloom.errors import ActorUnavailableError
from dagloom.instance import DagloomInstance
from dagloom.messages.rpc import PingReply, PingRequest
from dagloom.topology import parse_topology
from dagloom.topology.wiring import run_node
from dagloom.transport import GrpcTransport, MemoryTransport
from tests._ports import reserved_ports

REPO = Path(__file__).resolve().parents[2]
LOCATIONS = {
    "numbers": {"python_file": str(REPO / "examples" / "numbers.py")},
    "suite": {"python_file": str(Path(__file__).with_name("defs.py"))},
}
START_TIMEOUT = 120.0
"""Seconds a node process may take to import dagloom and the user code and serve: a deadline,
not a measure (a three-node stack took ~30 s to start on 2 cores at load average 11)."""


@dataclass
class Stack:
    """A running dagloom, reached through its public API."""

    client: AsyncClient
    processes: dict[str, NodeProcess] = field(default_factory=dict)


@asynccontextmanager
async def memory_stack() -> AsyncIterator[Stack]:
    """Every actor in this event loop, on the (strict) memory transport and in-memory
    storage; the API is called in-process, so nothing listens on a socket."""
    topology = parse_topology(
        {
            "locations": LOCATIONS,
            "nodes": {
                "all": {
                    "api": {"port": None},
                    "coordinator": {},
                    "launcher": {"kind": "worker_pool"},
                    "code_locations": list(LOCATIONS),
                    "worker_pool": {"workers": 2},
                }
            },
        }
    )
    async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
        start = functools.partial(
            run_node, topology, "all", instance=instance, memory=MemoryTransport()
        )
        node = await tg.start(start)
        assert node.api is not None
        yield Stack(AsyncClient.in_process(node.api))
        tg.cancel_scope.cancel()


@dataclass
class NodeProcess:
    """One `dagloom serve` child: how to start it again, and the process itself."""

    name: str
    argv: list[str]
    grpc_address: str
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env
            )

    def kill(self) -> None:
        """SIGKILL, as a crashed host would go: nothing is cleaned up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


async def wait_healthy(node: NodeProcess) -> None:
    """Poll the node's `Health` until every actor it hosts reports ready."""
    transport = GrpcTransport()
    ref = transport.ref(HealthReporter, name="health", address=node.grpc_address)
    try:
        with anyio.fail_after(START_TIMEOUT):
            while True:
                assert node.process is not None
                if node.process.poll() is not None:
                    raise RuntimeError(
                        f"node {node.name} exited with {node.process.returncode}:\n" + node.output()
                    )
                try:
                    reply = await ref.ask(PingRequest(), timeout=5)
                except (ActorUnavailableError, TimeoutError):
                    # A poll interval: another process's readiness has no event to wait on.
                    await anyio.sleep(0.05)
                    continue
                assert isinstance(reply, PingReply)
                if reply.actors and all(a.ready for a in reply.actors):
                    return
    finally:
        transport.close()


@dataclass(frozen=True)
class Hosts:
    """Where each node listens (and, for network namespaces, the command prefix per node)."""

    control: str = "127.0.0.1"
    code: str = "127.0.0.1"
    workers: str = "127.0.0.1"
    prefix: dict[str, list[str]] = field(default_factory=dict)


PORTS = ("control", "code", "workers", "api")
"""What listens in a three-node stack: each node's gRPC port, and the API's."""


def three_node_topology(
    tmp: Path, instance: dict[str, Any], hosts: Hosts, ports: dict[str, int]
) -> tuple[Path, dict[str, str], str]:
    """Write a control/code/workers topology listening on `ports` (one for each of `PORTS`)
    under `tmp`; return its path, each node's gRPC address and the API address."""
    topology = {
        "instance": instance,
        "locations": LOCATIONS,
        "nodes": {
            "control": {
                "host": hosts.control,
                "grpc_port": ports["control"],
                "api": {"port": ports["api"]},
                "coordinator": {},
                "launcher": {"kind": "worker_pool"},
            },
            "code": {
                "host": hosts.code,
                "grpc_port": ports["code"],
                "code_locations": list(LOCATIONS),
            },
            "workers": {
                "host": hosts.workers,
                "grpc_port": ports["workers"],
                "worker_pool": {"workers": 2},
            },
        },
    }
    path = tmp / "topology.yaml"
    path.write_text(yaml.safe_dump(topology))
    addresses = {
        "control": f"{hosts.control}:{ports['control']}",
        "code": f"{hosts.code}:{ports['code']}",
        "workers": f"{hosts.workers}:{ports['workers']}",
    }
    return path, addresses, f"{hosts.control}:{ports['api']}"


@asynccontextmanager
async def process_stack(
    tmp: Path, instance: dict[str, Any], hosts: Hosts | None = None
) -> AsyncIterator[Stack]:
    """Three `dagloom serve` processes (code, workers, control) on one instance; every
    child is terminated on the way out, whatever happened."""
    hosts = hosts or Hosts()
    with ExitStack() as held:
        if hosts.prefix:
            # Each network namespace has ports of its own, free whatever runs beside it.
            ports = {"control": 4100, "code": 4000, "workers": 4200, "api": 3030}
        else:
            ports = held.enter_context(reserved_ports(PORTS))
        path, addresses, api = three_node_topology(tmp, instance, hosts, ports)
        async with _node_processes(tmp, hosts, path, addresses, api) as stack:
            yield stack


@asynccontextmanager
async def _node_processes(
    tmp: Path, hosts: Hosts, path: Path, addresses: dict[str, str], api: str
) -> AsyncIterator[Stack]:
    """Start the three nodes of the topology at `path`; stop them on the way out."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    nodes = {
        name: NodeProcess(
            name,
            [
                *hosts.prefix.get(name, []),
                sys.executable,
                "-m",
                "dagloom.cli",
                "serve",
                "--topology",
                str(path),
                "--node",
                name,
                # Separate hosts listen beyond loopback; what that takes (tokens, a cluster
                # secret, TLS) is the secured stack's test, not this one's.
                *(["--insecure"] if hosts.prefix else []),
            ],
            addresses[name],
            tmp / f"{name}.log",
            env,
        )
        for name in ("code", "workers", "control")
    }
    try:
        for node in nodes.values():
            node.start()
        for node in nodes.values():
            await wait_healthy(node)
        async with AsyncClient.connect(api) as client:
            yield Stack(client, nodes)
    finally:
        for node in nodes.values():
            node.stop()


def sqlite_instance(tmp: Path) -> dict[str, Any]:
    """An instance on a SQLite file under `tmp`, polled often: the API's watchers see the
    workers' writes by polling (no notifications cross processes on SQLite)."""
    home = tmp / "home"
    home.mkdir()
    (home / "dagloom.yaml").write_text(
        yaml.safe_dump({"storage": {"sqlite": {"poll_interval_seconds": 0.02}}})
    )
    return {"home": str(home)}


def postgres_instance(tmp: Path, url: str, schema: str) -> dict[str, Any]:
    """An instance on `schema` of the Postgres at `url`."""
    config = tmp / "postgres.dagloom.yaml"
    config.write_text(
        yaml.safe_dump({"storage": {"postgres": {"postgres_url": url, "schema": schema}}})
    )
    return {"home": str(tmp / "home"), "config": str(config)}
