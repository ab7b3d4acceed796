"""The gRPC transport: bad input never kills the server; a peer that dies is reconnected."""

from __future__ import annotations

from typing import Any

import anyio
import grpc
import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from dagloom.actors import Backoff, HealthReporter, Supervisor
from dagloom.errors import ActorUnavailableError
from dagloom.messages.rpc import PingRequest
from dagloom.transport import GrpcTransport, split_address

from ._echo import EchoReply, EchoRequest, EchoServer, child_server, serving

ECHO_ROUTE = "/dagloomtest.v1.Echo/Echo"


async def raw_call(address: str, route: str, payload: bytes) -> bytes:
    """Send `payload` as the request of `route` from grpcio, an independent client, and
    return the reply's bytes; raises `grpc.RpcError` with the status the server sent."""

    def call() -> bytes:
        with grpc.insecure_channel(address) as channel:
            reply: bytes = channel.unary_unary(route)(payload, timeout=5)
            return reply

    return await anyio.to_thread.run_sync(call)


async def still_serves(ref: Any) -> None:
    reply = await ref.ask(EchoRequest(text="still here"), timeout=5)
    assert reply.text == "still here"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_raw_bytes_are_a_well_formed_echo_request() -> None:
    with anyio.fail_after(10):
        async with serving("grpc") as (_, ref):
            data = await raw_call(ref.address, ECHO_ROUTE, bytes(EchoRequest(text="raw")))  # type: ignore[attr-defined]
    assert EchoReply.parse(data).text == "raw"


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\x08\x05", "text (a string) sent as a varint"),
        (b"\x12\x03abc", "number (an int32) sent as length-delimited bytes"),
        (b"\xff\xff\xff", "a truncated varint"),
        (b"\x0a\x10ab", "a string shorter than its declared length"),
        (b"\x0a\x02\xff\xfe", "a string that is not UTF-8"),
        (b"\x0b", "a group start, which proto3 does not have"),
    ],
)
async def test_a_malformed_request_gets_invalid_argument(payload: bytes, why: str) -> None:
    with anyio.fail_after(10):
        async with serving("grpc") as (actor, ref):
            with pytest.raises(grpc.RpcError) as info:
                await raw_call(ref.address, ECHO_ROUTE, payload)  # type: ignore[attr-defined]
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT, why
            await still_serves(ref)
    assert [m.text for m in actor.handled if isinstance(m, EchoRequest)] == ["still here"]


@pytest.mark.parametrize(
    "route", ["/dagloomtest.v1.Echo/Nope", "/no.such.Service/Echo", "not-even-a-path"]
)
async def test_an_unknown_method_gets_unimplemented(route: str) -> None:
    with anyio.fail_after(10):
        async with serving("grpc") as (_, ref):
            with pytest.raises(grpc.RpcError) as info:
                await raw_call(ref.address, route, b"")  # type: ignore[attr-defined]
            assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
            await still_serves(ref)


async def test_a_message_over_the_size_limit_gets_resource_exhausted() -> None:
    with anyio.fail_after(10):
        async with serving("grpc", max_message_size=64 * 1024) as (actor, ref):
            with pytest.raises(ActorUnavailableError) as info:
                await ref.ask(EchoRequest(payload=b"x" * 2**20))
            assert isinstance(info.value.__cause__, GRPCError)
            assert info.value.__cause__.status is Status.RESOURCE_EXHAUSTED
            reply = await ref.ask(EchoRequest(payload=b"x" * 1000))
            assert reply.payload_size == 1000
    assert len(actor.handled) == 1


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff" * 5000,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64,
    ],
)
async def test_garbage_bytes_drop_the_connection_not_the_server(garbage: bytes) -> None:
    with anyio.fail_after(10):
        async with serving("grpc") as (_, ref):
            host, port = split_address(ref.address)  # type: ignore[attr-defined]
            async with await anyio.connect_tcp(host, port) as stream:
                await stream.send(garbage)
                # The server may drop that connection or wait for more; either way it
                # goes on serving everyone else.
                await still_serves(ref)
            await still_serves(ref)


async def test_a_call_naming_an_actor_that_is_not_here_gets_not_found() -> None:
    with anyio.fail_after(10):
        async with serving("grpc") as (_, ref):
            transport = GrpcTransport()
            stray = transport.ref(EchoServer, name="nobody", address=ref.address)  # type: ignore[attr-defined]
            with pytest.raises(ActorUnavailableError) as info:
                await stray.ask(EchoRequest())
            assert isinstance(info.value.__cause__, GRPCError)
            assert info.value.__cause__.status is Status.NOT_FOUND
            transport.close()


async def test_one_server_hosts_several_actors_of_one_service() -> None:
    left, right = EchoServer("left"), EchoServer("right")
    supervisor = Supervisor()
    supervisor.add(left)
    supervisor.add(right)
    transport = GrpcTransport()
    transport.expose(left)
    transport.expose(right)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            address = await tg.start(transport.run)
            to_left = transport.ref(EchoServer, name="left", address=address)
            to_right = transport.ref(EchoServer, name="right", address=address)
            assert (await to_left.ask(EchoRequest())).actor == "left"
            assert (await to_right.ask(EchoRequest())).actor == "right"
            tg.cancel_scope.cancel()


async def test_health_reports_every_actor_over_grpc() -> None:
    echo = EchoServer()
    supervisor = Supervisor()
    health = HealthReporter(supervisor.health)
    supervisor.add(echo)
    supervisor.add(health)
    transport = GrpcTransport()
    transport.expose(echo)
    transport.expose(health)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            address = await tg.start(transport.run)
            reply = await transport.ref(HealthReporter, name="health", address=address).ask(
                PingRequest()
            )
            tg.cancel_scope.cancel()
    assert sorted(a.actor for a in reply.actors) == ["echo", "health"]
    assert all(a.ready and a.heartbeat > 0 for a in reply.actors)
    assert reply.time > 0


async def test_a_peer_that_is_down_is_unavailable_then_reconnected_with_backoff() -> None:
    clock = FakeClock()
    client = GrpcTransport(clock=clock, reconnect_backoff=Backoff(initial=1.0, maximum=8.0))
    with anyio.fail_after(60):
        async with child_server() as (process, address):
            ref = client.ref(EchoServer, name="echo", address=address)
            assert (await ref.ask(EchoRequest(text="one"))).text == "one"
            process.kill()
            await process.wait()

        # The peer is gone: the call fails, and the next ones fail fast while backing off.
        with pytest.raises(ActorUnavailableError) as info:
            await ref.ask(EchoRequest(text="two"))
        assert (info.value.actor, info.value.address) == ("echo", address)
        with pytest.raises(ActorUnavailableError, match="next attempt in 1 s"):
            await ref.ask(EchoRequest(text="three"))
        clock.now += 1.0
        with pytest.raises(ActorUnavailableError, match="next attempt in 2 s"):
            await ref.ask(EchoRequest(text="four"))

        # The peer comes back on the same port; once the delay is over, calls reach it.
        _, port = split_address(address)
        async with child_server(port) as (_, same_address):
            assert same_address == address
            with pytest.raises(ActorUnavailableError, match="next attempt in 2 s"):
                await ref.ask(EchoRequest(text="five"))
            clock.now += 2.0
            assert (await ref.ask(EchoRequest(text="six"))).text == "six"
            await ref.tell(EchoRequest(text="seven"))
            # A success resets the backoff.
            assert (await ref.ask(EchoRequest(text="eight"))).text == "eight"
    client.close()


async def test_a_peer_never_started_is_unavailable() -> None:
    with anyio.fail_after(10):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()
        transport = GrpcTransport()
        ref = transport.ref(EchoServer, name="echo", address=f"127.0.0.1:{port}")
        with pytest.raises(ActorUnavailableError):
            await ref.ask(EchoRequest())
        transport.close()


def test_addresses_are_host_and_port() -> None:
    assert split_address("127.0.0.1:4266") == ("127.0.0.1", 4266)
    assert split_address("[::1]:80") == ("::1", 80)
    for bad in ["127.0.0.1", ":80", "host:port"]:
        with pytest.raises(ValueError):
            split_address(bad)


async def test_expose_refuses_a_duplicate_name_and_a_running_server() -> None:
    transport = GrpcTransport()
    transport.expose(EchoServer())
    with pytest.raises(ValueError):
        transport.expose(EchoServer())
    with pytest.raises(RuntimeError):
        _ = transport.address
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            address = await tg.start(transport.run)
            assert transport.address == address
            with pytest.raises(RuntimeError):
                transport.expose(EchoServer("other"))
            tg.cancel_scope.cancel()
