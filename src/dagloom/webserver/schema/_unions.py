"""Named GraphQL unions built from a tuple of types."""

from __future__ import annotations

from typing import Annotated, Any, Union

import strawberry


def named_union(name: str, types: tuple[type, ...]) -> Any:
    """The annotation of a GraphQL union called `name` of `types`."""
    return Annotated[Union[types], strawberry.union(name)]  # noqa: UP007 - built at runtime
