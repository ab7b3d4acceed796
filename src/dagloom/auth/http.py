"""Auth for HTTP (aiohttp): the token a request presents, a middleware that checks it, and
the login cookie."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from dagloom.auth._authenticator import Authenticator
from dagloom.auth._permissions import Operation
from dagloom.auth._tokens import ANONYMOUS, Identity, bearer_token
from dagloom.errors import AuthenticationError, PermissionDeniedError, StorageError

COOKIE_NAME = "dagloom_token"
"""The HTTP-only cookie the UI's login page stores the token in."""
IDENTITY_KEY = web.RequestKey("dagloom_identity", Identity)
"""Where the middleware leaves the caller's `Identity` on the request."""

OperationOf = Callable[[web.Request], Operation | None]
"""What a request does, for the permission table; None: it needs no token (the login page,
static assets), and any token it carries is still read to identify the caller."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_token(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer …`, else of the login cookie; None without."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        token = request.cookies.get(COOKIE_NAME) or None
    return token


def request_identity(request: web.Request) -> Identity:
    """The identity the middleware proved for `request` (`ANONYMOUS` with auth disabled,
    or on a public path without a token)."""
    identity = request.get(IDENTITY_KEY)
    return identity if isinstance(identity, Identity) else ANONYMOUS


def _refusal(status: int, error: str, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="dagloom"'} if status == 401 else None
    return web.json_response({"error": error, "message": message}, status=status, headers=headers)


def auth_middleware(authenticator: Authenticator, operation_of: OperationOf) -> Middleware:
    """An aiohttp middleware checking each request's token against `operation_of(request)`.

    Refusals are JSON `{error, message}`: 401 `unauthenticated` (with `WWW-Authenticate`),
    403 `permission_denied`, or 503 `unavailable` when token storage fails. The handler
    reads the caller with `request_identity`.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        operation = operation_of(request)
        token = request_token(request)
        try:
            if operation is None:
                identity = ANONYMOUS
                if authenticator.enabled and token is not None:
                    try:
                        identity = await authenticator.identify(token)
                    except AuthenticationError:
                        identity = ANONYMOUS
            else:
                identity = await authenticator.check(token, operation)
        except AuthenticationError as exc:
            return _refusal(401, "unauthenticated", str(exc))
        except PermissionDeniedError as exc:
            return _refusal(403, "permission_denied", str(exc))
        except StorageError as exc:
            return _refusal(503, "unavailable", f"cannot check the token: {exc}")
        request[IDENTITY_KEY] = identity
        return await handler(request)

    return middleware


def set_login_cookie(response: web.StreamResponse, token: str, *, secure: bool) -> None:
    """Store `token` for the UI: HTTP-only (scripts cannot read it), SameSite=Strict (other
    sites' forms do not send it), `Secure` when served over TLS."""
    response.set_cookie(
        COOKIE_NAME, token, httponly=True, samesite="Strict", secure=secure, path="/"
    )


def clear_login_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE_NAME, path="/")
