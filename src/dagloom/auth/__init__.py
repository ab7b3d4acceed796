"""Who may do what: API tokens, roles, the permission table, and the hooks every entry
point (gRPC API, actor gRPC, HTTP) uses to enforce them; TLS contexts for servers and
channels.

Tokens are stored hashed in the instance's schedule storage (`TokenStorage`). An entry point
asks an `Authenticator` for the caller's `Identity` and whether its `Role` allows the
`Operation`; `PERMISSIONS` is the one table that answers. The aiohttp pieces (middleware,
login cookie) are in `dagloom.auth.http`, imported on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dagloom.auth._authenticator import CACHE_SECONDS, Authenticator, TokenStorage
from dagloom.auth._permissions import (
    GRPC_API_OPERATIONS,
    PERMISSIONS,
    UNLISTED_ROLE,
    Operation,
    Role,
    allows,
    grpc_operation,
    permission_table,
    required_role,
    route_allows,
)
from dagloom.auth._tls import TlsConfig, client_ssl_context, server_ssl_context
from dagloom.auth._tokens import (
    ANONYMOUS,
    Identity,
    StoredToken,
    bearer_token,
    check_name,
    new_token,
    parse_expiry,
    split_token,
    verify,
)

if TYPE_CHECKING:
    from dagloom.auth._grpc import (
        AUTHORIZATION,
        CLUSTER_SECRET_HEADER,
        RequestGuard,
        api_guard,
        bearer_metadata,
        cluster_guard,
        current_identity,
    )

# The gRPC hooks load on first use: the instance config and the HTTP side need no grpclib.
_GRPC_NAMES = frozenset(
    {
        "AUTHORIZATION",
        "CLUSTER_SECRET_HEADER",
        "RequestGuard",
        "api_guard",
        "bearer_metadata",
        "cluster_guard",
        "current_identity",
    }
)


def __getattr__(name: str) -> Any:
    """The gRPC hooks, imported on first use and then kept as module globals."""
    if name not in _GRPC_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module("dagloom.auth._grpc"), name)
    globals()[name] = value
    return value


__all__ = [
    "ANONYMOUS",
    "AUTHORIZATION",
    "CACHE_SECONDS",
    "CLUSTER_SECRET_HEADER",
    "GRPC_API_OPERATIONS",
    "PERMISSIONS",
    "UNLISTED_ROLE",
    "Authenticator",
    "Identity",
    "Operation",
    "RequestGuard",
    "Role",
    "StoredToken",
    "TlsConfig",
    "TokenStorage",
    "allows",
    "api_guard",
    "bearer_metadata",
    "bearer_token",
    "check_name",
    "client_ssl_context",
    "cluster_guard",
    "current_identity",
    "grpc_operation",
    "new_token",
    "parse_expiry",
    "permission_table",
    "required_role",
    "route_allows",
    "server_ssl_context",
    "split_token",
    "verify",
]
