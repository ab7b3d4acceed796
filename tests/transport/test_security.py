"""Actor-to-actor gRPC between nodes of one deployment: a node without the cluster secret
cannot call any actor, TLS and mutual TLS round trips, a plain-text client is refused by a
TLS server, and an oversized message is refused by its announced length before it is read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import grpc
import pytest
import trustme
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from dagloom.auth import TlsConfig
from dagloom.errors import ActorUnavailableError
from dagloom.transport import ClusterSecurity, GrpcTransport
from dagloom.transport._grpc import _BoundedReads

from ._echo import EchoRequest, EchoServer, serving

SECRET = "correct horse battery staple"
ECHO_ROUTE = "/dagloomtest.v1.Echo/Echo"


async def _call_from(client: GrpcTransport, address: str, name: str) -> str:
    ref = client.ref(EchoServer, name=name, address=address)
    try:
        with anyio.fail_after(10):
            reply = await ref.ask(EchoRequest(text="hi"), timeout=5)
        return str(reply.text)
    finally:
        client.close()


async def test_a_node_without_the_cluster_secret_cannot_call_any_actor() -> None:
    security = ClusterSecurity(secret=SECRET)
    async with serving("grpc", security=security) as (actor, ref):
        assert (await ref.ask(EchoRequest(text="ok"), timeout=5)).text == "ok"
        address = ref.address  # type: ignore[attr-defined]
        for stranger in (ClusterSecurity(), ClusterSecurity(secret="x" * len(SECRET))):
            with pytest.raises(ActorUnavailableError, match="UNAUTHENTICATED"):
                await _call_from(GrpcTransport(security=stranger), address, actor.name)
        assert await _call_from(GrpcTransport(security=security), address, actor.name) == "hi"
        assert [m.text for m in actor.handled] == ["ok", "hi"]  # type: ignore[union-attr]


def test_the_secret_never_shows_in_the_settings_repr() -> None:
    assert SECRET not in repr(ClusterSecurity(secret=SECRET))


def test_settings_travel_to_child_processes_through_the_environment() -> None:
    tls = TlsConfig(cert="/c.pem", key="/k.pem", ca="/ca.pem")
    exported = ClusterSecurity(secret=SECRET, tls=tls).environ()
    back = ClusterSecurity.from_env(exported)
    assert (back.secret, back.tls) == (SECRET, tls)
    assert ClusterSecurity.from_env({}).guard is None


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TlsConfig]]:
    """Two CAs: `ours` issues this deployment's node certificate; `theirs` an outsider's."""
    root = tmp_path_factory.mktemp("pki")
    out: dict[str, TlsConfig] = {}
    for name in ("ours", "theirs"):
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(root / f"{name}-ca.pem"))
        leaf.private_key_pem.write_to_path(str(root / f"{name}-key.pem"))
        leaf.cert_chain_pems[0].write_to_path(str(root / f"{name}-cert.pem"))
        out[name] = TlsConfig(
            cert=str(root / f"{name}-cert.pem"),
            key=str(root / f"{name}-key.pem"),
            ca=str(root / f"{name}-ca.pem"),
        )
    yield out


async def test_tls_round_trip_and_a_plain_text_client_is_refused(
    pki: dict[str, TlsConfig],
) -> None:
    server_only = TlsConfig(cert=pki["ours"].cert, key=pki["ours"].key)
    async with serving("grpc", security=ClusterSecurity(tls=server_only)) as (actor, ref):
        address = ref.address  # type: ignore[attr-defined]
        client = ClusterSecurity(tls=TlsConfig(ca=pki["ours"].ca))
        assert await _call_from(GrpcTransport(security=client), address, actor.name) == "hi"
        with pytest.raises(ActorUnavailableError):
            await _call_from(GrpcTransport(security=ClusterSecurity()), address, actor.name)
        outsider_trust = ClusterSecurity(tls=TlsConfig(ca=pki["theirs"].ca))
        with pytest.raises(ActorUnavailableError):
            await _call_from(GrpcTransport(security=outsider_trust), address, actor.name)


async def test_mutual_tls_needs_a_client_certificate_from_the_deployments_ca(
    pki: dict[str, TlsConfig],
) -> None:
    ours = ClusterSecurity(tls=pki["ours"])
    async with serving("grpc", security=ours) as (actor, ref):
        address = ref.address  # type: ignore[attr-defined]
        assert await _call_from(GrpcTransport(security=ours), address, actor.name) == "hi"
        no_cert = ClusterSecurity(tls=TlsConfig(ca=pki["ours"].ca))
        with pytest.raises(ActorUnavailableError):
            await _call_from(GrpcTransport(security=no_cert), address, actor.name)
        theirs = ClusterSecurity(
            tls=TlsConfig(cert=pki["theirs"].cert, key=pki["theirs"].key, ca=pki["ours"].ca)
        )
        with pytest.raises(ActorUnavailableError):
            await _call_from(GrpcTransport(security=theirs), address, actor.name)
        assert [m.text for m in actor.handled] == ["hi"]  # type: ignore[union-attr]


async def test_an_oversized_message_is_refused_by_its_announced_length() -> None:
    async with serving("grpc", max_message_size=1024) as (_, ref):
        address = ref.address  # type: ignore[attr-defined]

        def call() -> None:
            with grpc.insecure_channel(address) as channel:
                channel.unary_unary(ECHO_ROUTE)(bytes(EchoRequest(text="x" * 4096)), timeout=5)

        with pytest.raises(grpc.RpcError) as caught:
            await anyio.to_thread.run_sync(call)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "exceeds the limit of 1024" in (caught.value.details() or "")


class _Recorder:
    def __init__(self) -> None:
        self.asked: list[int] = []

    async def recv_data(self, size: int) -> bytes:
        self.asked.append(size)
        return b"\0" * size


async def test_a_bounded_read_never_asks_the_stream_for_more_than_the_limit() -> None:
    inner = _Recorder()
    bounded = _BoundedReads(inner, 1024)
    assert await bounded.recv_data(5) == b"\0" * 5
    with pytest.raises(GRPCError) as caught:
        await bounded.recv_data(256 * 2**20)
    assert caught.value.status is Status.RESOURCE_EXHAUSTED
    assert inner.asked == [5]


def test_tls_settings_resolve_relative_paths(tmp_path: Path) -> None:
    tls = TlsConfig(cert="c.pem", key="k.pem", ca="/abs/ca.pem").resolved(tmp_path)
    assert (tls.cert, tls.key, tls.ca) == (
        str(tmp_path / "c.pem"),
        str(tmp_path / "k.pem"),
        "/abs/ca.pem",
    )
