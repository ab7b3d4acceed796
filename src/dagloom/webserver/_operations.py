"""The one place where every GraphQL query, mutation and subscription names its operation.

Each root field is declared with `guarded("operation_name")`, which wraps its resolver: the
request's `OperationGate` is asked first whether the operation may run. A refused field
answers Dagster's typed `UnauthorizedError` when its result union has one, and a GraphQL
error (code `UNAUTHORIZED`) otherwise; its resolver never runs. The gate is chosen by the
`Backend` (tokens when `auth.enabled`), so no resolver knows about auth.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from graphql import GraphQLError
from strawberry.extensions.field_extension import FieldExtension
from strawberry.types import Info
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField
from strawberry.types.union import StrawberryUnion

OPERATIONS: set[str] = set()
"""Every operation name a root field declares (for listing and for tests)."""

UNAUTHORIZED_CODE = "UNAUTHORIZED"
"""`extensions.code` of the GraphQL error a refused field without `UnauthorizedError` in
its result answers."""


class OperationGate(Protocol):
    """Decides whether one GraphQL operation may run. `context` is the operation's
    `GraphQLContext` (its `request`: the aiohttp request, for a websocket subscription the
    upgrade request; its `connection_params`: a websocket's `connection_init` payload)."""

    def refusal(self, operation: str, context: Any) -> Awaitable[str | None]:
        """None when `operation` may run; otherwise why not, for the caller to read."""
        ...


class AllowAll:
    """The gate without authorization: every operation is allowed."""

    async def refusal(self, operation: str, context: Any) -> str | None:
        return None


def _offers_unauthorized(field: StrawberryField) -> bool:
    """Whether the field's result is a union with `UnauthorizedError` in it."""
    result = field.type
    if isinstance(result, StrawberryOptional):
        result = result.of_type
    if not isinstance(result, StrawberryUnion):
        return False
    return any(getattr(t, "__name__", "") == "UnauthorizedError" for t in result.types)


def _unauthorized(message: str) -> Any:
    from dagloom.webserver.schema.errors import UnauthorizedError  # the schema imports us

    return UnauthorizedError(message=message)


class OperationGuard(FieldExtension):
    """Asks the context's gate about one named operation before the resolver runs."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self._typed = False

    def apply(self, field: StrawberryField) -> None:
        self._typed = _offers_unauthorized(field)

    def _refused(self, message: str) -> Any:
        if self._typed:
            return _unauthorized(message)
        raise GraphQLError(message, extensions={"code": UNAUTHORIZED_CODE})

    async def resolve_async(
        self, next_: Callable[..., Any], source: Any, info: Info[Any, Any], **kwargs: Any
    ) -> Any:
        refusal = await info.context.gate.refusal(self.operation, info.context)
        if refusal is not None:
            return self._refused(refusal)
        result = next_(source, info, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result  # a sync resolver's value, or a subscription's async generator


def guarded(operation: str) -> list[FieldExtension]:
    """The field extensions of a root field that runs `operation`."""
    OPERATIONS.add(operation)
    return [OperationGuard(operation)]
