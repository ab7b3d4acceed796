"""The GraphQL schema the webserver serves: Dagster's type and field names over dagloom's
storage and actors."""

from __future__ import annotations

import functools

import strawberry
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from dagloom.webserver.schema.asset_checks import AssetChecksQuery
from dagloom.webserver.schema.asset_latest import AssetLatestQuery
from dagloom.webserver.schema.automation import AutomationQuery
from dagloom.webserver.schema.backfills import BackfillsMutation, BackfillsQuery
from dagloom.webserver.schema.compute_logs import ComputeLogsQuery, ComputeLogsSubscription
from dagloom.webserver.schema.errors import CONFIG_ERROR_TYPES
from dagloom.webserver.schema.external_assets import ExternalAssetsMutation
from dagloom.webserver.schema.inputs import SCALARS
from dagloom.webserver.schema.mutations import Mutation
from dagloom.webserver.schema.partition_sets import PartitionSetsQuery
from dagloom.webserver.schema.query import Query
from dagloom.webserver.schema.runs import EVENT_TYPES
from dagloom.webserver.schema.subscriptions import Subscription

MAX_DEPTH = 15
"""Deepest selection a document may have (Dagster's UI queries go to about 12)."""
MAX_TOKENS = 20_000
"""Most tokens a document may have: well above any real query, far below a flood."""
MAX_ALIASES = 200
PARSED_DOCUMENTS = 256
"""Distinct documents whose parse and validation are kept."""
MAX_DOCUMENT_BYTES = 256 * 1024
"""Largest request body the server reads; a bigger one is refused before parsing."""


def _same(extension: SchemaExtension) -> SchemaExtension:
    return extension


def build_schema() -> strawberry.Schema:
    """The schema with its limits: documents deeper than `MAX_DEPTH`, longer than
    `MAX_TOKENS` or with more than `MAX_ALIASES` aliases are answered with a GraphQL
    error and never executed."""
    # One instance of each limiter for the schema's life: their validation rules are then
    # the same objects for every request, so ValidationCache hits (16 ms per runs query
    # saved) instead of keying on rules made anew each time. They keep no request state.
    limiters: list[SchemaExtension] = [
        QueryDepthLimiter(max_depth=MAX_DEPTH),
        MaxTokensLimiter(max_token_count=MAX_TOKENS),
        MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
    ]
    return strawberry.Schema(
        query=merge_types(
            "Query",
            (
                Query,
                ComputeLogsQuery,
                BackfillsQuery,
                AssetChecksQuery,
                AssetLatestQuery,
                PartitionSetsQuery,
                AutomationQuery,
            ),
        ),
        mutation=merge_types("Mutation", (Mutation, BackfillsMutation, ExternalAssetsMutation)),
        subscription=merge_types("Subscription", (Subscription, ComputeLogsSubscription)),
        types=[*CONFIG_ERROR_TYPES, *EVENT_TYPES],
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=[
            *(functools.partial(_same, limiter) for limiter in limiters),
            # A client sends the same few documents again and again: parse and validate
            # each once.
            functools.partial(ParserCache, maxsize=PARSED_DOCUMENTS),
            functools.partial(ValidationCache, maxsize=PARSED_DOCUMENTS),
        ],
    )


__all__ = ["MAX_DEPTH", "MAX_DOCUMENT_BYTES", "MAX_TOKENS", "build_schema"]
