"""The gRPC transport: one grpclib server per process for its actors, stubs to remote ones."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from ssl import SSLContext
from typing import Any, Generic

import anyio
from anyio.abc import TaskStatus
from grpclib.client import Channel
from grpclib.const import Cardinality, Handler, Status
from grpclib.events import RecvRequest, listen
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from grpclib.server import Server, Stream

from dagloom.actors._backoff import Backoff
from dagloom.actors._protocol import Method, ServiceSpec
from dagloom.actors._runtime import Actor, Clock, Envelope, ReplySlot, RepT, ReqT
from dagloom.auth import RequestGuard
from dagloom.errors import ActorUnavailableError
from dagloom.transport._codec import DEFAULT_MAX_MESSAGE_SIZE, BoundedProtoCodec
from dagloom.transport._corked import cork_connections
from dagloom.transport._security import ClusterSecurity

ACTOR_HEADER = "dagloom-actor"
"""Request metadata naming the target actor, for a node hosting two actors of one service."""
TELL_HEADER = "dagloom-tell"
"""Request metadata marking a tell: the server replies once the message is queued."""

DEFAULT_RECONNECT_BACKOFF = Backoff(initial=0.1, maximum=10.0)


def split_address(address: str) -> tuple[str, int]:
    """`"host:port"` (or `"[v6]:port"`) as a host and a port; `ValueError` if malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected an address like 127.0.0.1:4266, got {address!r}")
    return host.strip("[]"), int(port)


def _listening_socket(host: str, port: int) -> socket.socket:
    # Bound here rather than by grpclib so the port chosen for port 0 can be read back.
    # The socket is made with proto=IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY
    # on sockets that say so, and without it Nagle's algorithm meets delayed ACKs and a
    # call takes 40 ms instead of 0.5 ms.
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


class _BoundedReads:
    """A grpclib request stream whose message reads refuse, before reading, a length prefix
    over the limit: grpclib reads a message whole before its codec sees it, so without this
    a peer announcing 256 MiB gets 256 MiB buffered. HTTP/2 flow control holds back what
    was not read, so a refused message costs at most one flow-control window (64 KiB)."""

    __slots__ = ("_inner", "_limit")

    def __init__(self, inner: Any, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def recv_data(self, size: int) -> bytes:
        if size > self._limit:
            raise GRPCError(
                Status.RESOURCE_EXHAUSTED,
                f"message of {size} bytes exceeds the limit of {self._limit}",
            )
        data: bytes = await self._inner.recv_data(size)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _guarded(server: Server, guard: RequestGuard | None, max_message_size: int) -> None:
    """Check each request with `guard` once its headers arrive, before any of its message is
    read, and bound the size of the messages it reads."""

    async def on_request(event: RecvRequest) -> None:
        if guard is not None:
            await guard(event)
        handle = event.method_func
        # The 5-byte gRPC frame header is read first, then the announced length.
        limit = max(max_message_size, 5)

        async def bounded(stream: Stream[Any, Any]) -> None:
            # grpclib keeps the HTTP/2 stream in a private attribute; this is the one place
            # that touches it, and `test_grpc` proves the bound holds.
            stream._stream = _BoundedReads(stream._stream, limit)  # type: ignore[assignment]
            await handle(stream)

        event.method_func = bounded

    listen(server, RecvRequest, on_request)


@asynccontextmanager
async def open_grpc_server(
    handlers: Iterable[Any],
    *,
    host: str,
    port: int,
    codec: BoundedProtoCodec,
    guard: RequestGuard | None = None,
    ssl: SSLContext | None = None,
) -> AsyncIterator[str]:
    """Serve grpclib `handlers` on `host:port` inside the block; yields the `host:port` bound.

    Port 0 binds any free port, which the yielded address names. Raises `OSError` if the
    address is taken. `guard` checks each call before its message is read (see
    `dagloom.auth.RequestGuard`); messages longer than the codec's `max_message_size` are
    refused as their length arrives; `ssl` serves TLS only (a plain-text client fails). On
    exit it stops accepting, drops open calls and waits, shielded from cancellation, for
    the server to close.
    """
    sock = _listening_socket(host, port)
    server = Server(list(handlers), codec=codec)
    cork_connections(server)
    _guarded(server, guard, codec.max_message_size)
    try:
        await server.start(sock=sock, ssl=ssl)
        yield f"{host}:{sock.getsockname()[1]}"
    finally:
        server.close()
        with anyio.CancelScope(shield=True):
            await server.wait_closed()
        sock.close()


class _ServiceAdapter:
    """Serves one generated service by forwarding each call into a local actor's inbox.

    Derived from the service's generated mapping, so no method is written by hand. grpclib
    runs each handler in its own task; cancelling it (deadline, client gone) abandons the
    reply slot, and the actor still handles the message.
    """

    def __init__(self, spec: ServiceSpec) -> None:
        self.spec = spec
        self.actors: dict[str, Actor[Any, Any]] = {}

    def __mapping__(self) -> dict[str, Handler]:
        return {
            method.route: Handler(
                self._handler(method),
                Cardinality.UNARY_UNARY,
                method.request_type,
                method.reply_type,
            )
            for method in self.spec.methods
        }

    def _pick(self, name: str | None) -> Actor[Any, Any]:
        if name is None and len(self.actors) == 1:
            return next(iter(self.actors.values()))
        actor = self.actors.get(name) if name is not None else None
        if actor is None:
            served = ", ".join(sorted(self.actors))
            raise GRPCError(
                Status.NOT_FOUND, f"no actor {name!r} serves {self.spec.name} here ({served})"
            )
        return actor

    def _handler(self, method: Method) -> Callable[[Stream[Any, Any]], Coroutine[Any, Any, None]]:
        async def handle(stream: Stream[Any, Any]) -> None:
            request = await stream.recv_message()
            if request is None:
                raise GRPCError(Status.INVALID_ARGUMENT, "the request carried no message")
            metadata: Mapping[str, Any] = stream.metadata or {}
            name = metadata.get(ACTOR_HEADER)
            actor = self._pick(name if isinstance(name, str) else None)
            try:
                if metadata.get(TELL_HEADER):
                    await actor.deliver(Envelope(request))
                    reply = method.reply_type()
                else:
                    slot: ReplySlot[Any] = ReplySlot()
                    await actor.deliver(Envelope(request, slot))
                    reply = await slot.wait()
            except ActorUnavailableError as exc:
                raise GRPCError(Status.UNAVAILABLE, str(exc)) from exc
            await stream.send_message(reply)

        return handle


class _Peer:
    """The channel to one remote node, and when it may next be tried after failing."""

    def __init__(
        self,
        address: str,
        *,
        codec: BoundedProtoCodec,
        backoff: Backoff,
        clock: Clock,
        security: ClusterSecurity,
    ) -> None:
        self.address = address
        self.security = security
        self._host, self._port = split_address(address)
        self._codec = codec
        self._backoff = backoff
        self._clock = clock
        self._channel: Channel | None = None
        self._stubs: dict[type[Any], Any] = {}
        self._failures = 0
        self._retry_at = 0.0

    def stub(self, spec: ServiceSpec, actor: str) -> Any:
        """The generated stub for `spec`, or `ActorUnavailableError` while backing off."""
        now = self._clock()
        if now < self._retry_at:
            raise ActorUnavailableError(
                f"actor {actor!r} at {self.address} is unreachable; "
                f"next attempt in {self._retry_at - now:.3g} s",
                actor=actor,
                address=self.address,
            )
        if self._channel is None:
            # grpclib binds a channel to the running loop, so it is made on first use.
            self._channel = Channel(
                self._host, self._port, codec=self._codec, ssl=self.security.client_ssl
            )
            cork_connections(self._channel)
        stub = self._stubs.get(spec.stub)
        if stub is None:
            stub = self._stubs[spec.stub] = spec.stub(self._channel)
        return stub

    def failed(self) -> float:
        """Record a connection failure; return the delay before the next attempt."""
        now = self._clock()
        if now >= self._retry_at:
            # Calls in flight when the link dropped fail together; count that as one failure.
            self._retry_at = now + self._backoff.delay(self._failures)
            self._failures += 1
        return self._retry_at - now

    def succeeded(self) -> None:
        self._failures = 0
        self._retry_at = 0.0

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            self._stubs.clear()


class GrpcRef(Generic[ReqT, RepT]):
    """A ref to an actor on another node, called through its generated stub.

    When the node cannot be reached the call raises `ActorUnavailableError` and the node is
    left alone for a backoff delay (0.1 s doubling up to 10 s by default), during which calls
    fail at once without touching the network; the first call after it reconnects, and a
    success resets the delay. Nobody has to reload anything when the peer comes back.
    """

    __slots__ = ("_name", "_peer", "_spec")

    def __init__(self, peer: _Peer, spec: ServiceSpec, actor: str) -> None:
        self._peer = peer
        self._spec = spec
        self._name = actor

    @property
    def actor(self) -> str:
        """The name of the actor this ref reaches."""
        return self._name

    @property
    def address(self) -> str:
        """The `host:port` of the node hosting the actor."""
        return self._peer.address

    async def tell(self, message: ReqT) -> None:
        """Queue `message` on the remote actor; see `ActorRef.tell`.

        Returns once the remote inbox took it, which never waits for room there.
        """
        await self._call(message, timeout=None, tell=True)

    async def ask(self, message: ReqT, *, timeout: float | None = None) -> RepT:  # noqa: ASYNC109 - over gRPC it travels as the call's deadline
        """Send `message` and wait for the reply; see `ActorRef.ask`."""
        reply: RepT = await self._call(message, timeout=timeout, tell=False)
        return reply

    async def _call(self, message: ReqT, *, timeout: float | None, tell: bool) -> Any:  # noqa: ASYNC109 - over gRPC it travels as the call's deadline
        method = self._spec.method_for(type(message))
        stub = self._peer.stub(self._spec, self._name)
        metadata = {ACTOR_HEADER: self._name, **self._peer.security.metadata()}
        if tell:
            metadata[TELL_HEADER] = "1"
        replies: list[Any] = []

        async def call() -> None:
            # grpclib's timeout bounds connecting too and travels to the server as the
            # call's deadline.
            replies.append(
                await stub._unary_unary(
                    method.route, message, method.reply_type, timeout=timeout, metadata=metadata
                )
            )

        try:
            # grpclib wakes a call on a deadline or a lost connection by cancelling the task
            # that makes it, and never withdraws that cancel request; left in the caller's
            # task it would confuse every anyio cancel scope around it. So the call gets a
            # task of its own (about 10 us, against a ~1 ms call).
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
        except ExceptionGroup as group:
            if len(group.exceptions) != 1:
                raise
            error = group.exceptions[0]
            translated = self._translate(error, method)
            if translated is error:
                raise error from error.__cause__
            raise translated from error
        self._peer.succeeded()
        return replies[0]

    def _translate(self, exc: Exception, method: Method) -> Exception:
        if isinstance(exc, GRPCError):
            if exc.status is Status.DEADLINE_EXCEEDED:
                return TimeoutError(f"{method.route} on {self._name!r} timed out")
            return ActorUnavailableError(
                f"actor {self._name!r} at {self.address} failed {method.name}: "
                f"{exc.status.name} {exc.message or ''}".rstrip(),
                actor=self._name,
                address=self.address,
            )
        if isinstance(exc, TimeoutError):
            # An OSError subclass, but a slow peer is not an unreachable one.
            return TimeoutError(f"{method.route} on {self._name!r} timed out")
        if isinstance(exc, OSError | StreamTerminatedError | ProtocolError):
            delay = self._peer.failed()
            return ActorUnavailableError(
                f"actor {self._name!r} at {self.address} is unreachable ({exc!r}); "
                f"next attempt in {delay:.3g} s",
                actor=self._name,
                address=self.address,
            )
        return exc

    def __repr__(self) -> str:
        return f"<GrpcRef {self._name!r} at {self.address}>"


class GrpcTransport:
    """One process's gRPC endpoint: a grpclib server for the actors it exposes, and refs to
    actors on other nodes.

    Every request and reply goes through `BoundedProtoCodec`: messages over
    `max_message_size` bytes or with mistyped fields are refused with a gRPC status, and
    the server keeps serving. `security` (default: `ClusterSecurity.from_env()`) is the
    deployment's shared secret and TLS, for the server and every channel alike. `run` serves
    until cancelled; refs work whether or not this process serves anything, and `close`
    (called by `run` on exit) releases their channels.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        reconnect_backoff: Backoff = DEFAULT_RECONNECT_BACKOFF,
        clock: Clock = time.monotonic,
        security: ClusterSecurity | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security if security is not None else ClusterSecurity.from_env()
        self._codec = BoundedProtoCodec(max_message_size)
        self._backoff = reconnect_backoff
        self._clock = clock
        self._adapters: dict[str, _ServiceAdapter] = {}
        self._peers: dict[str, _Peer] = {}
        self._address: str | None = None
        self._running = False

    @property
    def address(self) -> str:
        """`host:port` this process serves on; `RuntimeError` until `run` has started."""
        if self._address is None:
            raise RuntimeError("the gRPC server is not running")
        return self._address

    def expose(self, actor: Actor[Any, Any]) -> None:
        """Serve `actor` to other nodes; call before `run`.

        Several actors may share a service: callers then name theirs (refs always do).
        Raises `ValueError` if an actor of that name already serves the service.
        """
        if self._running:
            raise RuntimeError("expose actors before the gRPC server runs")
        adapter = self._adapters.get(actor.spec.name)
        if adapter is None:
            adapter = self._adapters[actor.spec.name] = _ServiceAdapter(actor.spec)
        if actor.name in adapter.actors:
            raise ValueError(f"actor {actor.name!r} already serves {actor.spec.name}")
        adapter.actors[actor.name] = actor

    async def run(self, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve the exposed actors until cancelled; `task_status.started(address)` once
        listening.

        Binds `host:port` (port 0: any free one, see `address`). Not re-entrant. On exit it
        stops accepting, drops open calls and closes refs' channels.
        """
        if self._running:
            raise RuntimeError("the gRPC server is already running")
        self._running = True
        try:
            async with open_grpc_server(
                self._adapters.values(),
                host=self.host,
                port=self.port,
                codec=self._codec,
                guard=self.security.guard,
                ssl=self.security.server_ssl,
            ) as address:
                self._address = address
                task_status.started(address)
                await anyio.sleep_forever()
        finally:
            self._address = None
            self._running = False
            self.close()

    def ref(
        self, actor_type: type[Actor[ReqT, RepT]], *, name: str, address: str
    ) -> GrpcRef[ReqT, RepT]:
        """A ref to the actor `name`, of class `actor_type`, on the node at `address`.

        Does not block or connect: the first call does. Refs to one address share a channel.
        """
        peer = self._peers.get(address)
        if peer is None:
            peer = self._peers[address] = _Peer(
                address,
                codec=self._codec,
                backoff=self._backoff,
                clock=self._clock,
                security=self.security,
            )
        return GrpcRef(peer, ServiceSpec.of(actor_type.service), name)

    def close(self) -> None:
        """Close the refs' channels; idempotent. A ref used afterwards reconnects."""
        for peer in self._peers.values():
            peer.close()
