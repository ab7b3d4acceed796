"""The webserver's aiohttp application: GraphQL (with GraphiQL and both websocket
subscription protocols) at `/graphql`, and `/health` for load balancers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import anyio
import orjson
import strawberry
from aiohttp import web
from cross_web import HTTPException
from strawberry.aiohttp.views import GraphQLView
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from dagloom.errors import StorageError
from dagloom.messages.rpc import LocationSnapshot
from dagloom.metrics import MetricsSources, add_routes
from dagloom.webserver._auth import webserver_middleware
from dagloom.webserver._context import Backend, GraphQLContext
from dagloom.webserver._login import login_routes
from dagloom.webserver._reporting import add_report_routes
from dagloom.webserver.logs import add_log_routes
from dagloom.webserver.schema import MAX_DOCUMENT_BYTES, build_schema
from dagloom.webserver.ui import add_ui_routes

HEALTH_TIMEOUT = 5.0
"""How long `/health` waits for storage before answering 503."""

BACKEND_KEY: web.AppKey[Backend] = web.AppKey("backend", Backend)


class DagloomGraphQLView(GraphQLView[GraphQLContext, None]):
    """Strawberry's aiohttp view, with dagloom's context for every operation."""

    def __init__(self, schema: strawberry.Schema, backend: Backend, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self._backend = backend

    async def get_context(self, request: web.Request, response: Any) -> GraphQLContext:
        return GraphQLContext(self._backend, request=request, response=response)

    def parse_json(self, data: str | bytes) -> Any:
        # A body that is JSON but not an operation (`"query"`, `1`, `[1]`) is the client's
        # mistake: 400, not the 500 of the view reading fields off it.
        parsed = super().parse_json(data)
        items = parsed if isinstance(parsed, list) else [parsed]
        if not all(isinstance(item, dict) for item in items):
            raise HTTPException(400, "the body must be a GraphQL operation: a JSON object")
        return parsed

    def encode_json(self, data: object) -> str:
        # orjson: a 40,000-event subscription batch encodes ~5x faster than with `json`.
        return orjson.dumps(data).decode()


def _too_large(size: int) -> web.Response:
    body = {
        "errors": [
            {
                "message": f"the document is {size} bytes; at most {MAX_DOCUMENT_BYTES} are read",
                "extensions": {"code": "DOCUMENT_TOO_LARGE"},
            }
        ]
    }
    return web.Response(status=413, body=orjson.dumps(body), content_type="application/json")


@web.middleware
async def _document_size_limit(request: web.Request, handler: Any) -> web.StreamResponse:
    """Refuse a request body over `MAX_DOCUMENT_BYTES` with a GraphQL error (413), before
    anything reads it."""
    if request.content_length is not None and request.content_length > MAX_DOCUMENT_BYTES:
        return _too_large(request.content_length)
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:
        return _too_large(exc.actual_size if hasattr(exc, "actual_size") else -1)
    return response


async def _health(request: web.Request) -> web.Response:
    """200 when storage answers a read within `HEALTH_TIMEOUT`, else 503 saying why."""
    backend = request.app[BACKEND_KEY]
    try:
        with anyio.fail_after(HEALTH_TIMEOUT):
            await backend.instance.get_runs_async(limit=1)
    except (StorageError, TimeoutError) as exc:
        body = {"status": "unavailable", "error": str(exc) or type(exc).__name__}
        return web.Response(status=503, body=orjson.dumps(body), content_type="application/json")
    return web.Response(body=orjson.dumps({"status": "ok"}), content_type="application/json")


def build_app(backend: Backend, *, graphiql: bool = True) -> web.Application:
    """The application for `backend`: `/graphql` (POST and GET queries, websocket
    subscriptions over `graphql-transport-ws` and `graphql-ws`, GraphiQL in a browser
    unless `graphiql` is false), `/health`, `/metrics`, step log downloads (`/logs/...`), the
    login page and the web UI at every other path. Tokens are checked by
    `backend.authenticator` (HTTP) and `backend.gate` (GraphQL fields)."""
    auth = webserver_middleware(backend.authenticator, metrics_public=backend.metrics_public)
    app = web.Application(
        middlewares=[_document_size_limit, auth], client_max_size=MAX_DOCUMENT_BYTES + 1
    )
    app[BACKEND_KEY] = backend
    view = DagloomGraphQLView(
        build_schema(),
        backend,
        graphql_ide="graphiql" if graphiql else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        connection_init_wait_timeout=timedelta(seconds=30),
    )
    app.router.add_route("*", "/graphql", view)
    app.router.add_get("/health", _health)
    app.router.add_routes(login_routes(backend.authenticator))
    add_routes(
        app, instance=backend.instance, sources=MetricsSources(locations=_snapshots(backend))
    )
    add_log_routes(app, backend.instance)
    add_report_routes(app, backend.instance)
    add_ui_routes(app)
    return app


def _snapshots(backend: Backend) -> Callable[[], Awaitable[list[LocationSnapshot]]]:
    """The code locations' snapshots, for `/metrics` to report their load errors; a
    location that does not answer is left out."""

    async def snapshots() -> list[LocationSnapshot]:
        views = await GraphQLContext(backend).all_locations()
        return [view.snapshot for view in views if view.snapshot is not None]

    return snapshots
