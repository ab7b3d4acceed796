"""The aiohttp pieces the webserver uses, on a tiny app: the middleware refuses missing,
bad and under-privileged tokens, reads the login cookie, and the TLS context serves HTTPS."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dagloom.auth import (
    Authenticator,
    Operation,
    Role,
    TlsConfig,
    allows,
    new_token,
    server_ssl_context,
)
from dagloom.auth.http import (
    COOKIE_NAME,
    auth_middleware,
    request_identity,
    set_login_cookie,
)
from dagloom.storage.memory import MemoryScheduleStorage


def _operation(request: web.Request) -> Operation | None:
    return {
        "/runs": Operation.READ,
        "/launch": Operation.LAUNCH_RUN,
        "/login": None,
    }.get(request.path, Operation.MANAGE_TOKENS)


async def _whoami(request: web.Request) -> web.Response:
    identity = request_identity(request)
    return web.json_response({"name": identity.name, "role": identity.role.label})


async def _login(request: web.Request) -> web.Response:
    response = web.json_response({"ok": True})
    set_login_cookie(response, request.query["token"], secure=False)
    return response


def _app(auth: Authenticator) -> web.Application:
    app = web.Application(middlewares=[auth_middleware(auth, _operation)])
    app.router.add_get("/runs", _whoami)
    app.router.add_post("/launch", _whoami)
    app.router.add_get("/login", _login)
    return app


@pytest.fixture
async def client_and_tokens() -> AsyncIterator[tuple[TestClient, dict[str, str]]]:
    store = MemoryScheduleStorage()
    tokens = {}
    for role in (Role.VIEWER, Role.LAUNCHER):
        stored, tokens[role.label] = new_token(role.label, role, now=time.time())
        await store.add_api_token(stored)
    async with TestClient(TestServer(_app(Authenticator(store, enabled=True)))) as client:
        yield client, tokens


async def test_the_middleware_answers_as_the_permission_table_says(
    client_and_tokens: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = client_and_tokens
    missing = await client.get("/runs")
    assert missing.status == 401 and "Bearer" in missing.headers["WWW-Authenticate"]
    assert (await missing.json())["error"] == "unauthenticated"
    bad = await client.get("/runs", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    ok = await client.get("/runs", headers=viewer)
    assert ok.status == 200 and (await ok.json()) == {"name": "viewer", "role": "viewer"}
    denied = await client.post("/launch", headers=viewer)
    assert denied.status == 403 and (await denied.json())["error"] == "permission_denied"
    launcher = {"Authorization": f"Bearer {tokens['launcher']}"}
    assert (await client.post("/launch", headers=launcher)).status == 200


async def test_the_login_cookie_is_http_only_and_identifies_later_requests(
    client_and_tokens: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = client_and_tokens
    login = await client.get("/login", params={"token": tokens["launcher"]})
    assert login.status == 200
    cookie = login.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    after = await client.post("/launch")
    assert after.status == 200 and (await after.json())["name"] == "launcher"


async def test_a_disabled_authenticator_lets_requests_through_as_anonymous() -> None:
    async with TestClient(TestServer(_app(Authenticator.disabled()))) as client:
        reply = await client.post("/launch")
        assert reply.status == 200 and (await reply.json())["name"] == "anonymous"


async def test_the_tls_context_serves_https_to_clients_trusting_the_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = TlsConfig(cert=str(tmp_path / "cert.pem"), key=str(tmp_path / "key.pem"))
    context = server_ssl_context(tls, alpn=("http/1.1",))
    app = _app(Authenticator.disabled())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        trusting = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        async with aiohttp.ClientSession() as session:
            async with session.get(f"https://127.0.0.1:{port}/runs", ssl=trusting) as reply:
                assert reply.status == 200
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get(f"https://127.0.0.1:{port}/runs")
    finally:
        await runner.cleanup()


async def test_every_operation_answers_each_credential_as_the_table_says() -> None:
    """One route per operation of the permission table, tried with no token, a malformed,
    an unknown, an expired and a revoked token and each role's."""
    store = MemoryScheduleStorage()
    now = time.time()
    tokens: dict[str, str] = {}
    for role in Role:
        stored, tokens[role.label] = new_token(role.label, role, now=now)
        await store.add_api_token(stored)
    stored, tokens["expired"] = new_token("old", Role.ADMIN, now=now - 10, expires_at=now - 1)
    await store.add_api_token(stored)
    stored, tokens["revoked"] = new_token("gone", Role.ADMIN, now=now)
    await store.add_api_token(stored.revoked(now))
    _, tokens["unknown"] = new_token("never", Role.ADMIN, now=now)
    tokens["malformed"] = "x"

    def operation_of(request: web.Request) -> Operation | None:
        return Operation(request.match_info["op"])

    app = web.Application(
        middlewares=[auth_middleware(Authenticator(store, enabled=True), operation_of)]
    )
    app.router.add_get("/{op}", _whoami)
    got: dict[tuple[str, Operation], int] = {}
    expected: dict[tuple[str, Operation], int] = {}
    async with TestClient(TestServer(app)) as client:
        for credential in ["none", *tokens]:
            token = tokens.get(credential)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            role = Role.parse(credential) if credential in {r.label for r in Role} else None
            for op in Operation:
                got[credential, op] = (await client.get(f"/{op.value}", headers=headers)).status
                expected[credential, op] = (
                    200 if allows(role, op) else 403 if role is not None else 401
                )
    assert got == expected
    assert len(got) == 9 * len(Operation)
