"""`configured`: a resource or op whose config is fixed, or mapped from a smaller config.

`s3_session.configured({"region": "us-east-1"})` fixes a definition's config;
`@configured(s3_session, config_schema={"region": str})` over a function of the outer config
makes one whose run config is that outer config, mapped by the function to the inner one.
The inner config is checked against the original definition's schema (defaults filled) when
a run builds the resource or validates the op's config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from dagloom.definitions.config import ConfigMapping, validate_model
from dagloom.definitions.op import OpDefinition
from dagloom.definitions.resources import InitResourceContext, ResourceDefinition
from dagloom.errors import DagsterInvalidDefinitionError

ConfigOrFn = Mapping[str, Any] | Callable[[Any], Any]


class _OuterConfig:
    """How a configured definition reads its own config: the function's Config parameter
    or `config_schema`, validated; none for fixed config."""

    def __init__(self, config_or_fn: Any, config_schema: Any) -> None:
        self.fn: Callable[[Any], Any] | None = config_or_fn if callable(config_or_fn) else None
        self.fixed: Any = None if self.fn is not None else config_or_fn
        if self.fn is None and config_schema is not None:
            raise DagsterInvalidDefinitionError(
                "configured: config_schema goes with a function of the config, not with "
                "fixed config"
            )
        mapping = ConfigMapping(self.fn, config_schema) if self.fn is not None else None
        self.model = None if mapping is None else mapping.config_model
        self.field = None if mapping is None else mapping.config_field

    @property
    def takes_config(self) -> bool:
        return self.model is not None or self.field is not None

    def inner(self, value: Any, path: Sequence[str | int], what: str) -> Any:
        """The inner definition's config for `value`, this definition's config."""
        if self.fn is None:
            if value not in (None, {}):
                raise DagsterInvalidDefinitionError(
                    f"{what} has its config fixed by configured(); it takes none, got {value!r}"
                )
            return self.fixed
        outer: Any = value
        if self.model is not None:
            outer = validate_model(self.model, value, path, what=what)
        elif self.field is not None:
            from dagloom.definitions.config_types import process_config

            outer = process_config(self.field, value, tuple(path), what)
        mapped = self.fn(outer)
        return mapped.model_dump(mode="python") if isinstance(mapped, BaseModel) else mapped


def configure_resource(
    definition: ResourceDefinition,
    config_or_fn: ConfigOrFn,
    config_schema: Any = None,
    description: str | None = None,
) -> ResourceDefinition:
    """`definition` with its config fixed to a mapping, or mapped by a function from the
    config `config_schema` (or the function's Config parameter) describes."""
    from dagloom.definitions.resources import check_resource_config

    outer = _OuterConfig(config_or_fn, config_schema)

    def build(context: InitResourceContext) -> Any:
        what = "configured resource"
        raw = outer.inner(context.resource_config, ("config",), what)
        inner = InitResourceContext(
            check_resource_config(definition, raw, what),
            context.resources,
            context.run_id,
            context.log,
            context.instance,
        )
        return definition.resource_fn(inner)

    # A run validates the outer config (`build` sees it checked); fixed config takes none.
    return ResourceDefinition(
        build,
        outer.model or outer.field,
        description or definition.description,
        definition.required_resource_keys,
    )


class ConfiguredOpDefinition(OpDefinition):
    """An op whose config is fixed or mapped from an outer config (see `configured`)."""

    _inner_op: OpDefinition
    _outer: _OuterConfig

    @property
    def has_config(self) -> bool:
        # Always validated, so the fixed or mapped config reaches the function.
        return True

    def validate_config(self, value: Any, path: Sequence[str | int]) -> Any:
        return self._inner_op.validate_config(
            self._outer.inner(value, path, f"op {self.name!r}"), path
        )


def configure_op(
    definition: OpDefinition,
    config_or_fn: ConfigOrFn,
    name: str,
    config_schema: Any = None,
    description: str | None = None,
) -> OpDefinition:
    """A copy of op `definition` named `name`, its config fixed or mapped."""
    if not name:
        raise DagsterInvalidDefinitionError(
            f"configuring op {definition.name!r} needs a name for the new op", name=definition.name
        )
    configured: ConfiguredOpDefinition = object.__new__(ConfiguredOpDefinition)
    configured.__dict__.update(definition.__dict__)
    configured.name = name
    configured.description = description or definition.description
    configured._inner_op = definition
    configured._outer = outer = _OuterConfig(config_or_fn, config_schema)
    configured._output_types = {}
    # Its own config schema is the outer one (what run config gives it; none when fixed).
    configured.config_model = outer.model
    configured.config_field = outer.field
    configured.config_from_schema = False
    return configured


def configured(
    configurable: Any, config_schema: Any = None, name: str | None = None, **kwargs: Any
) -> Callable[[Callable[..., Any]], Any]:
    """Decorate a config-mapping function: `@configured(s3_session, config_schema=...)` over
    `def west(config): return {...}` makes a copy of the resource (or op, named after the
    function) whose config is mapped by the function."""

    def wrap(fn: Callable[..., Any]) -> Any:
        description = kwargs.get("description") or fn.__doc__
        if isinstance(configurable, ResourceDefinition):
            return configure_resource(configurable, fn, config_schema, description)
        if isinstance(configurable, OpDefinition):
            return configure_op(configurable, fn, name or fn.__name__, config_schema, description)
        raise DagsterInvalidDefinitionError(
            f"configured takes a @resource or @op definition, got {configurable!r}"
        )

    return wrap


__all__ = ["ConfiguredOpDefinition", "configure_op", "configure_resource", "configured"]
