"""Auth on the webserver: which permission-table operation each GraphQL root field and HTTP
route performs, the gate that checks a GraphQL operation's token, and the HTTP middleware.

A GraphQL request's token is its `Authorization: Bearer` header or the login cookie; a
websocket's is its `connection_init` payload (`{"Authorization": "Bearer …"}` or
`{"token": "…"}`), else the upgrade request's header or cookie. HTTP routes other than
`/graphql`, `/health`, `/login` and `/logout` need a viewer's token; `/metrics` answers
without one when `auth.metrics_public` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Middleware

from dagloom.auth import UNLISTED_ROLE, Authenticator, Identity, Operation, bearer_token
from dagloom.auth.audit import record_audit
from dagloom.auth.http import Handler, auth_middleware, request_token
from dagloom.auth.tags import USER_TAG, reserved_tags
from dagloom.errors import AuthenticationError, PermissionDeniedError, StorageError
from dagloom.messages import Run

GRAPHQL_OPERATIONS: Mapping[str, Operation] = MappingProxyType(
    {
        "launch_pipeline_execution": Operation.LAUNCH_RUN,
        "launch_pipeline_reexecution": Operation.REEXECUTE_RUN,
        "terminate_pipeline_execution": Operation.CANCEL_RUN,
        "delete_pipeline_run": Operation.DELETE_RUN,
        "reload_repository_location": Operation.RELOAD_LOCATION,
        "reload_workspace": Operation.RELOAD_LOCATION,
        "start_schedule": Operation.TOGGLE_INSTIGATOR,
        "stop_running_schedule": Operation.TOGGLE_INSTIGATOR,
        "edit_sensor": Operation.TOGGLE_INSTIGATOR,
        "launch_partition_backfill": Operation.LAUNCH_BACKFILL,
        "cancel_partition_backfill": Operation.LAUNCH_BACKFILL,
        "resume_partition_backfill": Operation.LAUNCH_BACKFILL,
        "wipe_assets": Operation.WIPE_ASSET,
        "report_runless_asset_events": Operation.REPORT_ASSET_EVENT,
        "validate_run_config": Operation.READ,
    }
)
"""The operation each GraphQL guard name (`guarded(...)`) performs. Names starting with
`view_` are `READ`; a name in neither needs `UNLISTED_ROLE` (admin)."""

PUBLIC_PATHS = frozenset({"/health", "/login", "/logout", "/graphql"})
"""HTTP paths that need no token: `/graphql` checks each root field itself, so a refused
field answers in the GraphQL response rather than as an HTTP error."""


REPORT_PATH_PREFIX = "/report_asset_"
"""The REST endpoints that record asset events from outside (`/report_asset_materialization/
KEY`, ...): any method on them needs `REPORT_ASSET_EVENT`."""


def graphql_operation(name: str) -> Operation | None:
    """The operation the GraphQL guard `name` performs; None: no rule (admin only)."""
    known = GRAPHQL_OPERATIONS.get(name)
    if known is not None:
        return known
    if name.startswith("view_"):
        return Operation.READ
    return None


def _connection_token(params: Any) -> str | None:
    """The token in a websocket's `connection_init` payload, if any."""
    if not isinstance(params, Mapping):
        return None
    for key in ("Authorization", "authorization"):
        value = params.get(key)
        if isinstance(value, str):
            return bearer_token(value)
    headers = params.get("headers")
    if isinstance(headers, Mapping):
        return _connection_token(headers)
    token = params.get("token")
    return token if isinstance(token, str) and token else None


class TokenGate:
    """The GraphQL gate with auth enabled: each root field's operation checked against the
    token the request (or websocket) presents, by the permission table. Leaves the caller's
    identity on the context for the resolver (`dagloom/user`, the audit trail)."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def token(self, context: Any) -> str | None:
        token = _connection_token(getattr(context, "connection_params", None))
        if token is None and context.request is not None:
            token = request_token(context.request)
        return token

    async def refusal(self, operation: str, context: Any) -> str | None:
        token = self.token(context)
        known = graphql_operation(operation)
        try:
            if known is None:
                identity = await self.authenticator.identify(token)
                if identity.role < UNLISTED_ROLE:
                    return f"{identity.name!r} ({identity.role.label}) may not {operation}"
            else:
                identity = await self.authenticator.check(token, known)
        except AuthenticationError as exc:
            return f"unauthenticated: {exc}"
        except PermissionDeniedError as exc:
            return str(exc)
        except StorageError as exc:
            return f"cannot check the token: {exc}"
        context.identity = identity
        return None


def user_of(context: Any) -> Identity | None:
    """The authenticated caller of a GraphQL operation; None without auth."""
    identity = getattr(context, "identity", None)
    if isinstance(identity, Identity) and identity.authenticated:
        return identity
    return None


def http_operation(*, metrics_public: bool, static_public: frozenset[str] = frozenset()) -> Any:
    """What an HTTP request does, for `auth_middleware`: None for the public paths (and
    `/metrics` when `metrics_public`), `READ_METRICS` for `/metrics`, `READ` for the rest
    (the UI's pages and files)."""

    def operation_of(request: web.Request) -> Operation | None:
        path = request.path
        if path in PUBLIC_PATHS or path in static_public:
            return None
        if path == "/metrics":
            return None if metrics_public else Operation.READ_METRICS
        if path.startswith(REPORT_PATH_PREFIX):
            return Operation.REPORT_ASSET_EVENT
        return Operation.READ

    return operation_of


def webserver_middleware(authenticator: Authenticator, *, metrics_public: bool) -> Middleware:
    """`auth_middleware` for the webserver's routes; a browser asking for a page without
    a (valid) token is sent to `/login` instead of getting the JSON refusal."""
    inner = auth_middleware(authenticator, http_operation(metrics_public=metrics_public))

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await inner(request, handler)
        if (
            response.status == 401
            and request.method == "GET"
            and "text/html" in request.headers.get("Accept", "")
        ):
            raise web.HTTPSeeOther(login_url(request.path_qs))
        return response

    return middleware


def login_url(next_path: str) -> str:
    """The login page, coming back to `next_path` after."""
    return f"/login?next={quote(next_path, safe='')}"


def reserved_tag_refusal(tags: Mapping[str, str]) -> str | None:
    """Why `tags` cannot come from a GraphQL client (they set `dagloom/` tags only dagloom
    writes); None when they can."""
    refused = reserved_tags(tags)
    if not refused:
        return None
    return f"tags {refused} are reserved for dagloom itself and cannot be set by a client"


def with_user(tags: Mapping[str, str], context: Any) -> dict[str, str]:
    """`tags` plus `dagloom/user`, the caller's token name when the operation was
    authenticated (without auth, no user is recorded, and none is inherited)."""
    out = dict(tags)
    user = user_of(context)
    if user is not None:
        out[USER_TAG] = user.name
    else:
        out.pop(USER_TAG, None)
    return out


async def audit(context: Any, action: str, target: str, *, run: Run | None = None) -> None:
    """Record that the caller asked for `action` on `target` (`run:<id>`,
    `instigator:<location>/<name>`, `location:<name>`): see `record_audit`. Nothing for
    callers without auth (there is nobody to name)."""
    user = user_of(context)
    if user is not None:
        await record_audit(context.instance, user.name, action, target, via="graphql", run=run)
