"""Corked connections: what one loop iteration writes reaches the socket as one write."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio

from dagloom.messages.rpc import PingRequest
from dagloom.transport import CorkedTransport, cork_connections

from ._echo import EchoReply, EchoRequest, serving


class RecordingTransport:
    """An asyncio transport's fake that records each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return f"extra {name}"


async def next_iteration() -> None:
    await asyncio.sleep(0)


async def test_writes_of_one_iteration_are_joined_in_order_into_one() -> None:
    inner = RecordingTransport()
    corked = CorkedTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    corked.write(b"head")
    corked.write(b"")
    corked.write(b"ers")
    assert inner.writes == [] and corked.get_write_buffer_size() == 7
    await next_iteration()
    assert inner.writes == [b"headers"]
    corked.write(b"data")
    await next_iteration()
    assert inner.writes == [b"headers", b"data"]


async def test_closing_writes_what_is_buffered_and_aborting_drops_it() -> None:
    inner = RecordingTransport()
    corked = CorkedTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    corked.write(b"last words")
    corked.close()
    assert inner.writes == [b"last words"] and inner.closed
    await next_iteration()
    assert inner.writes == [b"last words"]

    dropped = RecordingTransport()
    corked = CorkedTransport(dropped, asyncio.get_running_loop())  # type: ignore[arg-type]
    corked.write(b"never sent")
    corked.abort()
    await next_iteration()
    assert dropped.writes == [] and dropped.aborted


async def test_the_rest_is_the_wrapped_transports() -> None:
    inner = RecordingTransport()
    corked = CorkedTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    assert corked.get_extra_info("peername") == "extra peername"
    assert not corked.is_closing()


async def test_calls_over_corked_connections_are_answered() -> None:
    """Server and client both cork (as the API and the actors' transport do): one call, and
    many at once over one connection, are answered as before."""
    with anyio.fail_after(30):
        async with serving("grpc") as (_, ref):
            reply = await ref.ask(EchoRequest(text="one"), timeout=5)
            assert isinstance(reply, EchoReply) and reply.text == "one"
            replies = await asyncio.gather(
                *(ref.ask(EchoRequest(text=str(i)), timeout=5) for i in range(50))
            )
    assert [r.text for r in replies] == [str(i) for i in range(50)]  # type: ignore[union-attr]


def test_corking_twice_corks_once() -> None:
    class Owner:
        def _protocol_factory(self) -> Any:
            return PingRequest()

    owner = Owner()
    cork_connections(owner)
    first = owner._protocol_factory
    cork_connections(owner)
    assert owner._protocol_factory is first
