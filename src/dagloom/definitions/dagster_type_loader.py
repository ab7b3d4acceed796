"""Dagster type loaders: how an input of a DagsterType that no upstream output feeds is made
from the value run config gives it (`ops: {op: {inputs: {name: <config>}}}`).

The config is validated against the loader's `config_schema` with the rest of the run
config, so a bad value is a config error naming its key path before the run starts; the
loader function runs in the step, with the step's resources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagloom.errors import DagsterInvalidDefinitionError

LoaderFn = Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class DagsterTypeLoaderContext:
    """The first argument of a loader function: the step's resources, op and op config."""

    run_id: str
    resources: Any
    log: Any
    op_def: Any = None
    op_config: Any = None


class DagsterTypeLoader:
    """A loader made by `@dagster_type_loader`: `loader_fn(context, config)` with `config`
    checked against `config_schema`; needs `required_resource_keys` of the step."""

    __slots__ = ("config_field", "loader_fn", "required_resource_keys")

    def __init__(
        self,
        config_schema: Any,
        loader_fn: LoaderFn,
        required_resource_keys: set[str] | frozenset[str] | None = None,
    ) -> None:
        # Imported here: a run whose ops declare no loader never loads config schemas.
        from dagloom.definitions.config_types import Field

        self.config_field = (
            config_schema if isinstance(config_schema, Field) else Field(config_schema)
        )
        self.loader_fn = loader_fn
        self.required_resource_keys = frozenset(required_resource_keys or ())

    @property
    def schema_type(self) -> Any:
        """The config type the loader's config is checked against."""
        return self.config_field.config_type

    def validate(self, value: Any, path: tuple[str | int, ...], what: str) -> Any:
        """`value` checked against the config schema, defaults filled; raises
        DagsterInvalidConfigError naming each failing key path below `path`."""
        from dagloom.definitions.config_types import process_config

        return process_config(self.config_field, value, path, what)

    def construct_from_config_value(self, context: DagsterTypeLoaderContext, config: Any) -> Any:
        """The input's value: what the loader function returns for `config` (already
        validated). What the function raises propagates (the step fails with it)."""
        return self.loader_fn(context, config)


def dagster_type_loader(
    config_schema: Any, required_resource_keys: set[str] | None = None
) -> Callable[[LoaderFn], DagsterTypeLoader]:
    """Declare a loader, as Dagster's `@dagster_type_loader` does: the decorated function of
    `(context, config)` makes a value of the type from `config`, which run config gives
    under the input's name and which `config_schema` checks. Give it to a DagsterType as
    `loader=` (or to `usable_as_dagster_type(loader=...)`)."""

    def decorate(fn: LoaderFn) -> DagsterTypeLoader:
        if not callable(fn):
            raise DagsterInvalidDefinitionError(
                f"@dagster_type_loader decorates a function of (context, config), not {fn!r}"
            )
        return DagsterTypeLoader(config_schema, fn, required_resource_keys)

    return decorate


def input_loader(dagster_type: Any) -> DagsterTypeLoader | None:
    """The loader of an input declared with `dagster_type` (after resolution), if any."""
    from dagloom.definitions.dagster_type import DagsterType, declared_dagster_type

    resolved = declared_dagster_type(dagster_type)
    return resolved.loader if isinstance(resolved, DagsterType) else None


__all__ = [
    "DagsterTypeLoader",
    "DagsterTypeLoaderContext",
    "dagster_type_loader",
    "input_loader",
]
