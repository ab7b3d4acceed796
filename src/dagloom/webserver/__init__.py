"""The webserver: GraphQL (Dagster's schema names), GraphiQL, subscriptions and `/health`
over aiohttp. It never runs user code."""

from __future__ import annotations

from dagloom.webserver._auth import GRAPHQL_OPERATIONS, TokenGate, graphql_operation
from dagloom.webserver._context import Backend, GraphQLContext
from dagloom.webserver._operations import OPERATIONS, AllowAll, OperationGate
from dagloom.webserver.app import build_app
from dagloom.webserver.schema import build_schema
from dagloom.webserver.server import Webserver

__all__ = [
    "GRAPHQL_OPERATIONS",
    "OPERATIONS",
    "AllowAll",
    "Backend",
    "GraphQLContext",
    "OperationGate",
    "TokenGate",
    "Webserver",
    "build_app",
    "build_schema",
    "graphql_operation",
]
