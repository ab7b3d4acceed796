"""The test actor every transport test runs, and helpers to serve it on each transport."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, assert_never

import anyio
from anyio.abc import TaskStatus

from dagloom.actors import Actor, Backoff, RestartPolicy, Supervisor
from dagloom.transport import ActorRef, GrpcTransport, MemoryTransport

from .echo_pb.dagloomtest.v1 import (
    CrashReply,
    CrashRequest,
    EchoBase,
    EchoReply,
    EchoRequest,
    HoldReply,
    HoldRequest,
)

Request = EchoRequest | HoldRequest | CrashRequest
Reply = EchoReply | HoldReply | CrashReply

KINDS = ["memory", "strict", "grpc"]
"""Every way a test can reach an EchoServer: by reference, through bytes, over gRPC."""


class EchoServer(Actor[Request, Reply]):
    """Echoes, holds until its gate opens, or crashes, as asked; records what it handled."""

    service = EchoBase

    def __init__(self, name: str = "echo", *, inbox_size: int = 8) -> None:
        super().__init__(name, inbox_size=inbox_size)
        self.handled: list[Request] = []
        self.gate = anyio.Event()
        self.holding = anyio.Event()

    async def handle(self, message: Request) -> Reply | None:
        self.handled.append(message)
        match message:
            case EchoRequest(text=text, number=number, payload=payload):
                if text == "no reply":
                    return None
                return EchoReply(
                    text=text, number=number, payload_size=len(payload), actor=self.name
                )
            case HoldRequest(key=key):
                self.holding.set()
                await self.gate.wait()
                return HoldReply(key=key)
            case CrashRequest(bad_reply=True):
                return CrashReply(text=object())  # type: ignore[arg-type]
            case CrashRequest(reason=reason):
                raise RuntimeError(reason)
            case _:
                assert_never(message)


async def no_wait(delay: float) -> None:
    """A supervisor sleep that restarts at once, so tests never wait out a backoff."""
    await anyio.lowlevel.checkpoint()


@asynccontextmanager
async def serving(
    kind: str, actor: EchoServer | None = None, **grpc_options: Any
) -> AsyncIterator[tuple[EchoServer, ActorRef[Request, Reply]]]:
    """Run `actor` under a restarting supervisor and yield it with a ref of `kind`."""
    actor = actor or EchoServer()
    supervisor = Supervisor(sleep=no_wait)
    supervisor.add(actor, RestartPolicy(backoff=Backoff(initial=0.0, maximum=0.0)))
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        ref: ActorRef[Request, Reply]
        if kind == "grpc":
            transport = GrpcTransport(**grpc_options)
            transport.expose(actor)
            address = await tg.start(transport.run)
            ref = transport.ref(EchoServer, name=actor.name, address=address)
        else:
            ref = MemoryTransport(strict=kind == "strict").ref(actor)
        yield actor, ref
        tg.cancel_scope.cancel()


async def wait_until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until `condition()` holds; bound it with `anyio.fail_after`."""
    while not condition():
        await anyio.lowlevel.checkpoint()


# -- an echo server in a child process, for tests that kill it -----------------------------


def _import_root() -> Path:
    # The directory this package is imported from, whichever layout pytest chose.
    return Path(__file__).resolve().parents[__package__.count(".") + 1]


@asynccontextmanager
async def child_server(port: int = 0) -> AsyncIterator[tuple[anyio.abc.Process, str]]:
    """Start `_echo_server` in a child process; yield it and the address it serves on.

    Kills the child on exit if it is still running.
    """
    command = [sys.executable, "-m", f"{__package__}._echo_server", str(port)]
    process = await anyio.open_process(command, cwd=_import_root())
    try:
        assert process.stdout is not None
        line = b""
        with anyio.fail_after(20):
            while not line.endswith(b"\n"):
                line += await process.stdout.receive(1)
        yield process, line.decode().strip()
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.wait()
        await process.aclose()


async def serve_in_child(port: int, *, task_status: TaskStatus[str]) -> None:
    actor = EchoServer()
    supervisor = Supervisor()
    supervisor.add(actor)
    transport = GrpcTransport(port=port)
    transport.expose(actor)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        address = await tg.start(transport.run)
        task_status.started(address)
