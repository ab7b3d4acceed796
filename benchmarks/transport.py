"""`ask` round-trip latency on each transport, beside the bare machinery it is built on.

Workloads (each `system` row is one way to answer the same `Ping`):

    ask_memory              an actor in this process, through a `MemoryRef`
    ask_memory_strict       the same, every request and reply round-tripped through bytes
    ask_grpc_same_process   a `GrpcRef` to a `GrpcTransport` served by this process
    ask_grpc_child_process  a `GrpcRef` to a server in a child process, over 127.0.0.1

Systems: `dagloom` is the actor runtime; `floor` is the least that can do the same job — a
bare asyncio queue and future per call for memory (plus the same bytes round-trips, for
strict), and a generated grpclib service and stub with no actor or inbox behind them for
gRPC. Each run of a workload is one `ask` (n_steps = 1), so
`median_s` and `p95_s` are per-call latencies over `--calls` calls after a warm-up.
Every (workload, system) pair runs in a fresh interpreter, so `peak_rss_mb` is its own
(the child-process server's memory is not counted).

    python -m benchmarks transport [--calls N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from benchmarks._common import peak_rss_mb

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = (
    "ask_memory",
    "ask_memory_strict",
    "ask_grpc_same_process",
    "ask_grpc_child_process",
)
SYSTEMS = ("dagloom", "floor")
DEFAULT_CALLS = {"memory": 20_000, "grpc": 2_000}
WARMUP = 200

Call = Callable[[], Awaitable[Any]]


# -- what is measured ------------------------------------------------------------------


def _pong_actor() -> Any:
    from dagloom.actors import Actor
    from dagloom.messages.rpc import HealthBase, PingReply, PingRequest

    reply = PingReply(time=1.0)

    class Pong(Actor[PingRequest, PingReply]):
        """Answers every ping with one constant reply, so only the transport is timed."""

        service = HealthBase

        async def handle(self, message: PingRequest) -> PingReply:
            return reply

    return Pong("pong")


def _floor_service() -> Any:
    from dagloom.messages.rpc import HealthBase, PingReply, PingRequest

    reply = PingReply(time=1.0)

    class PongService(HealthBase):
        async def ping(self, message: PingRequest) -> PingReply:
            return reply

    return PongService()


async def serve_grpc(system: str, *, task_status: TaskStatus[str]) -> None:
    """Serve `Ping` on 127.0.0.1 (any port) until cancelled; report the address."""
    if system == "dagloom":
        from dagloom.transport import GrpcTransport

        actor = _pong_actor()
        transport = GrpcTransport()
        transport.expose(actor)
        async with anyio.create_task_group() as tg:
            await tg.start(actor.run)
            task_status.started(await tg.start(transport.run))
        return
    import socket

    from grpclib.server import Server

    # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections, as the
    # runtime's transport does; without it a call waits ~40 ms on delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = Server([_floor_service()])
    await server.start(sock=sock)
    try:
        task_status.started(f"127.0.0.1:{sock.getsockname()[1]}")
        await anyio.sleep_forever()
    finally:
        server.close()
        with anyio.CancelScope(shield=True):
            await server.wait_closed()
        sock.close()


@asynccontextmanager
async def grpc_client(system: str, address: str) -> AsyncIterator[Call]:
    from dagloom.messages.rpc import PingRequest

    request = PingRequest()
    if system == "dagloom":
        from dagloom.transport import GrpcTransport

        transport = GrpcTransport()
        ref = transport.ref(type(_pong_actor()), name="pong", address=address)
        try:
            yield lambda: ref.ask(request)
        finally:
            transport.close()
        return
    from grpclib.client import Channel

    from dagloom.messages.rpc import HealthStub

    host, _, port = address.rpartition(":")
    channel = Channel(host, int(port))
    stub = HealthStub(channel)
    try:
        yield lambda: stub.ping(request)
    finally:
        channel.close()


@asynccontextmanager
async def child_server(system: str) -> AsyncIterator[str]:
    command = [sys.executable, "-m", "benchmarks.transport", "--serve", system]
    process = await anyio.open_process(command, cwd=REPO_ROOT)
    try:
        assert process.stdout is not None
        line = b""
        with anyio.fail_after(30):
            while not line.endswith(b"\n"):
                line += await process.stdout.receive(1)
        yield line.decode().strip()
    finally:
        process.terminate()
        await process.wait()
        await process.aclose()


@asynccontextmanager
async def setup(workload: str, system: str) -> AsyncIterator[Call]:
    """Yield a coroutine function making one ask of `workload` for `system`."""
    async with anyio.create_task_group() as tg:
        if workload in ("ask_memory", "ask_memory_strict"):
            if system == "dagloom":
                from dagloom.messages.rpc import PingRequest
                from dagloom.transport import MemoryTransport

                actor = _pong_actor()
                await tg.start(actor.run)
                ref = MemoryTransport(strict=workload == "ask_memory_strict").ref(actor)
                request = PingRequest()
                yield lambda: ref.ask(request)
            else:
                yield await _memory_floor(tg, strict=workload == "ask_memory_strict")
        elif workload == "ask_grpc_same_process":
            address = await tg.start(serve_grpc, system)
            async with grpc_client(system, address) as call:
                yield call
        elif workload == "ask_grpc_child_process":
            async with child_server(system) as address, grpc_client(system, address) as call:
                yield call
        else:
            raise ValueError(f"unknown workload {workload!r}")
        tg.cancel_scope.cancel()


async def _memory_floor(tg: anyio.abc.TaskGroup, *, strict: bool) -> Call:
    """The least an in-process ask needs: a queue to a serving task and a future per call,
    in bare asyncio (the loop the runtime runs on), with no actor, envelope or anyio."""
    import asyncio

    from dagloom.messages.rpc import PingReply, PingRequest

    queue: asyncio.Queue[tuple[PingRequest, asyncio.Future[PingReply]]] = asyncio.Queue(64)
    reply = PingReply(time=1.0)

    async def serve() -> None:
        while True:
            message, future = await queue.get()
            if strict:
                message = PingRequest.parse(bytes(message))
                future.set_result(PingReply.parse(bytes(reply)))
            else:
                future.set_result(reply)

    tg.start_soon(serve)
    request = PingRequest()
    loop = asyncio.get_running_loop()

    async def call() -> PingReply:
        future: asyncio.Future[PingReply] = loop.create_future()
        queue.put_nowait((request, future))
        return await future

    return call


async def measure(workload: str, system: str, calls: int) -> list[float]:
    """Per-call latencies of `calls` asks, after a warm-up."""
    clock = time.perf_counter
    async with setup(workload, system) as call:
        for _ in range(WARMUP):
            await call()
        times = []
        for _ in range(calls):
            start = clock()
            await call()
            times.append(clock() - start)
    return times


# -- one measurement per interpreter ---------------------------------------------------


def record(workload: str, system: str, times: Sequence[float]) -> dict[str, Any]:
    """One row of latencies (one call per step) and this process's peak RSS."""
    ordered = sorted(times)
    median = statistics.median(ordered)
    return {
        "workload": workload,
        "n_steps": 1,
        "system": system,
        "median_s": median,
        "us_per_step": median * 1e6,
        "peak_rss_mb": peak_rss_mb(),
        "p95_s": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
        "calls": len(ordered),
    }


def run_one(workload: str, system: str, calls: int) -> dict[str, Any]:
    """Measure in a fresh interpreter and return its record."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.transport",
        "--one",
        workload,
        system,
        "--calls",
        str(calls),
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{workload} ({system}) failed:\n{done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def print_table(results: Sequence[dict[str, Any]]) -> None:
    floors = {r["workload"]: r for r in results if r["system"] == "floor"}
    header = ("workload", "system", "calls", "median_us", "p95_us", "peak_rss_mb", "vs_floor")
    rows = [header]
    for r in results:
        floor = floors.get(r["workload"])
        versus = ""
        if r["system"] != "floor" and floor is not None:
            versus = f"{r['median_s'] / floor['median_s']:.1f}x"
        rows.append(
            (
                r["workload"],
                r["system"],
                str(r["calls"]),
                f"{r['median_s'] * 1e6:.1f}",
                f"{r['p95_s'] * 1e6:.1f}",
                f"{r['peak_rss_mb']:.1f}",
                versus,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks transport",
        description="ask round-trip latency on the memory and gRPC transports",
    )
    parser.add_argument(
        "--calls", type=int, help="asks timed per row (default 20000 on memory, 2000 on gRPC)"
    )
    parser.add_argument(
        "--workload", action="append", choices=WORKLOADS, help="run only this workload (repeatable)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows here")
    parser.add_argument("--one", nargs=2, metavar=("WORKLOAD", "SYSTEM"), help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=SYSTEMS, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)

    if ns.serve:
        return _serve_forever(ns.serve)
    if ns.one:
        workload, system = ns.one
        times = anyio.run(measure, workload, system, ns.calls, backend="asyncio")
        print(json.dumps(record(workload, system, times)))
        return 0

    results = []
    for workload in ns.workload or WORKLOADS:
        calls = ns.calls or DEFAULT_CALLS["grpc" if "grpc" in workload else "memory"]
        for system in SYSTEMS:
            results.append(run_one(workload, system, calls))
    print_table(results)
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _serve_forever(system: str) -> int:
    async def serve() -> None:
        async with anyio.create_task_group() as tg:
            address = await tg.start(serve_grpc, system)
            print(address, flush=True)

    anyio.run(serve, backend="asyncio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
