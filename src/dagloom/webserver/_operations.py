"""The one place where every GraphQL query, mutation and subscription names its operation.

Each root field is declared with `guarded("operation_name")`, which attaches an
`OperationPermission` for that name. The permission asks the request's `OperationGate`
whether the operation may run; the default gate allows everything. Adding authorization is
then one gate implementation, with no resolver to touch.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

OPERATIONS: set[str] = set()
"""Every operation name a root field declares (for listing and for tests)."""


class OperationGate(Protocol):
    """Decides whether a request may run an operation. `request` is the aiohttp request
    (for a websocket subscription: the upgrade request)."""

    def allows(self, operation: str, request: Any) -> bool | Awaitable[bool]: ...


class AllowAll:
    """The gate used until authorization is configured: every operation is allowed."""

    def allows(self, operation: str, request: Any) -> bool:
        return True


class OperationPermission(BasePermission):
    """Asks the context's gate about one named operation."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.message = f"not allowed: {operation}"

    def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> Any:
        gate: OperationGate = info.context.gate
        return gate.allows(self.operation, info.context.request)


def guarded(operation: str) -> list[FieldExtension]:
    """The field extensions of a root field that runs `operation`."""
    OPERATIONS.add(operation)
    return [PermissionExtension(permissions=[OperationPermission(operation)], use_directives=False)]
