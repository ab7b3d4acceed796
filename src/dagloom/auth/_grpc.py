"""Auth on gRPC: the request guards servers install, and the metadata clients send."""

from __future__ import annotations

import contextvars
import hmac
from collections.abc import Awaitable, Callable

from grpclib.const import Status
from grpclib.events import RecvRequest
from grpclib.exceptions import GRPCError

from dagloom.auth._authenticator import Authenticator
from dagloom.auth._tokens import Identity, bearer_token
from dagloom.errors import AuthenticationError, PermissionDeniedError, StorageError

AUTHORIZATION = "authorization"
"""Request metadata carrying `Bearer <token>` to the public API."""
CLUSTER_SECRET_HEADER = "dagloom-cluster-secret"
"""Request metadata carrying the deployment's shared secret to an actor's server."""

RequestGuard = Callable[[RecvRequest], Awaitable[None]]
"""Called by a gRPC server for each request once its headers arrived, before its message is
read; raising `GRPCError` answers the call with that status and nothing else runs."""

_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "dagloom_identity", default=None
)


def current_identity() -> Identity | None:
    """The identity of the gRPC call being handled, as its server's guard proved it; None
    outside a guarded call, or for a method anyone may call."""
    return _identity.get()


def bearer_metadata(token: str | None) -> dict[str, str]:
    """The metadata a client sends to present `token` (nothing without one)."""
    return {AUTHORIZATION: f"Bearer {token}"} if token else {}


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else None


def api_guard(authenticator: Authenticator) -> RequestGuard:
    """The public API's guard: a `Bearer` token in `authorization` metadata, checked against
    the permission table for the method called. Answers UNAUTHENTICATED (no token, or one
    malformed, unknown, expired or revoked), PERMISSION_DENIED (the role does not allow the
    method) or UNAVAILABLE (token storage failed)."""

    async def guard(event: RecvRequest) -> None:
        token = bearer_token(_text(event.metadata.get(AUTHORIZATION)))
        try:
            identity = await authenticator.check_route(token, event.method_name)
        except AuthenticationError as exc:
            raise GRPCError(Status.UNAUTHENTICATED, str(exc)) from exc
        except PermissionDeniedError as exc:
            raise GRPCError(Status.PERMISSION_DENIED, str(exc)) from exc
        except StorageError as exc:
            raise GRPCError(Status.UNAVAILABLE, f"cannot check the token: {exc}") from exc
        _identity.set(identity)

    return guard


def cluster_guard(secret: str) -> RequestGuard:
    """An actor server's guard: every call must carry the deployment's shared `secret`
    (compared in constant time); anything else is answered UNAUTHENTICATED."""
    expected = secret.encode()

    async def guard(event: RecvRequest) -> None:
        given = _text(event.metadata.get(CLUSTER_SECRET_HEADER)) or ""
        if not hmac.compare_digest(given.encode("latin-1", "replace"), expected):
            raise GRPCError(
                Status.UNAUTHENTICATED, "this node only answers nodes of its deployment"
            )

    return guard
