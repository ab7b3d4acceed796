"""The GraphQL schema the webserver serves: Dagster's type and field names over dagloom's
storage and actors."""

from __future__ import annotations

import functools

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig

from dagloom.webserver.schema.errors import CONFIG_ERROR_TYPES
from dagloom.webserver.schema.inputs import SCALARS
from dagloom.webserver.schema.mutations import Mutation
from dagloom.webserver.schema.query import Query
from dagloom.webserver.schema.runs import EVENT_TYPES
from dagloom.webserver.schema.subscriptions import Subscription

MAX_DEPTH = 15
"""Deepest selection a document may have (Dagster's UI queries go to about 12)."""
MAX_TOKENS = 20_000
"""Most tokens a document may have: well above any real query, far below a flood."""
MAX_ALIASES = 200
MAX_DOCUMENT_BYTES = 256 * 1024
"""Largest request body the server reads; a bigger one is refused before parsing."""


def build_schema() -> strawberry.Schema:
    """The schema with its limits: documents deeper than `MAX_DEPTH`, longer than
    `MAX_TOKENS` or with more than `MAX_ALIASES` aliases are answered with a GraphQL
    error and never executed."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[*CONFIG_ERROR_TYPES, *EVENT_TYPES],
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=[
            functools.partial(QueryDepthLimiter, max_depth=MAX_DEPTH),
            functools.partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
            functools.partial(MaxAliasesLimiter, max_alias_count=MAX_ALIASES),
        ],
    )


__all__ = ["MAX_DEPTH", "MAX_DOCUMENT_BYTES", "MAX_TOKENS", "build_schema"]
