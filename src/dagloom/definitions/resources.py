"""Resources: objects ops reach by parameter name or `context.resources`, built once per run.

Three ways to declare one, as in Dagster: a `ConfigurableResource` subclass instance, a plain
object (used as it is), or a `ResourceDefinition` from `@resource` (a function of an init
context). Run config may override a resource's config under `resources.<key>.config`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from typing import Any, Self, TypeVar, overload

from pydantic import BaseModel

from dagloom.definitions.config import Config, validate_model
from dagloom.errors import ConfigError, DefinitionError
from dagloom.execution.boundary import user_code


class InitResourceContext:
    """What a resource sees while it is built: its config, the run, and other resources."""

    __slots__ = ("log", "resource_config", "resources", "run_id")

    def __init__(
        self,
        resource_config: Any = None,
        resources: Any = None,
        run_id: str | None = None,
        log: Any = None,
    ) -> None:
        self.resource_config = resource_config
        self.resources = resources
        self.run_id = run_id
        self.log = log


def build_init_resource_context(
    config: Mapping[str, Any] | None = None, resources: Mapping[str, Any] | None = None
) -> InitResourceContext:
    """An init context for calling a resource function in a unit test."""
    return InitResourceContext(dict(config or {}), Resources(dict(resources or {})))


class ConfigurableResource(Config):
    """A resource whose fields are its config. Override `setup_for_execution` and
    `teardown_after_execution` for work around a run; both are called once per run."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Called before the run's first step that needs this resource."""

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        """Called once the run ends, also when it failed."""

    def get_resource_definition(self) -> ResourceDefinition:
        return ResourceDefinition.hardcoded_resource(self)


class ResourceDefinition:
    """A resource built by a function of an InitResourceContext; may be a generator to
    clean up after the run."""

    __slots__ = ("config_schema", "description", "resource_fn")

    def __init__(
        self,
        resource_fn: Callable[..., Any],
        config_schema: Any = None,
        description: str | None = None,
    ) -> None:
        self.resource_fn = resource_fn
        self.config_schema = config_schema
        self.description = description

    def __call__(self, context: InitResourceContext | None = None) -> Any:
        """Build the resource directly, as a unit test does:
        `my_resource(build_init_resource_context(config={...}))`."""
        return self.resource_fn(context if context is not None else InitResourceContext())

    @classmethod
    def from_function(
        cls, fn: Callable[..., Any], config_schema: Any = None, description: str | None = None
    ) -> Self:
        """A definition built by `fn`, a function of an InitResourceContext or of nothing;
        its description defaults to `fn`'s docstring."""
        takes_context = bool(inspect.signature(fn).parameters)
        build = fn if takes_context else (lambda _ctx: fn())
        return cls(build, config_schema, description or fn.__doc__)

    @staticmethod
    def hardcoded_resource(value: Any, description: str | None = None) -> ResourceDefinition:
        return ResourceDefinition(lambda _ctx: value, None, description)

    @staticmethod
    def none_resource(description: str | None = None) -> ResourceDefinition:
        return ResourceDefinition.hardcoded_resource(None, description)

    def configured(self, config: Mapping[str, Any]) -> ResourceDefinition:
        """The same resource with its config fixed to `config`."""
        fixed = dict(config)
        outer = self

        def build(ctx: InitResourceContext) -> Any:
            inner = InitResourceContext(fixed, ctx.resources, ctx.run_id, ctx.log)
            return outer.resource_fn(inner)

        return ResourceDefinition(build, None, self.description)


R = TypeVar("R")


@overload
def resource(fn: Callable[..., Any]) -> ResourceDefinition: ...


@overload
def resource(
    fn: None = None, *, config_schema: Any = None, description: str | None = None
) -> Callable[[Callable[..., Any]], ResourceDefinition]: ...


def resource(
    fn: Callable[..., Any] | None = None,
    *,
    config_schema: Any = None,
    description: str | None = None,
) -> ResourceDefinition | Callable[[Callable[..., Any]], ResourceDefinition]:
    """Declare a resource from a function of an InitResourceContext (or of nothing)."""

    def wrap(func: Callable[..., Any]) -> ResourceDefinition:
        return ResourceDefinition.from_function(func, config_schema, description)

    return wrap(fn) if fn is not None else wrap


class Resources:
    """Attribute access to resources by key: `context.resources.db`.

    Holds a run's built resources, or those given to a schedule or sensor. Read-only; the
    objects are handed out as given, nothing is built or torn down here.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_values", dict(values or {}))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"no resource named {name!r}; available: {sorted(self._values)}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("resources are read-only")

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def get(self, name: str, default: Any = None) -> Any:
        """The resource `name`, or `default` when there is none."""
        return self._values.get(name, default)

    def as_dict(self) -> dict[str, Any]:
        """A copy of the resources, by key."""
        return dict(self._values)

    def __repr__(self) -> str:
        return f"Resources({sorted(self._values)})"


def resource_config_schema(value: Any) -> Any:
    """The pydantic model or dict schema of a resource, if any."""
    if isinstance(value, ConfigurableResource):
        return type(value)
    if isinstance(value, ResourceDefinition):
        return value.config_schema
    return None


def validate_resource_config(
    resource_defs: Mapping[str, Any], resources_config: Any
) -> dict[str, Any]:
    """Check `resources:` run config against the job's resources; return it per key."""
    if resources_config is None:
        return {}
    if not isinstance(resources_config, Mapping):
        raise ConfigError("invalid run config", problems=[(("resources",), "must be a mapping")])
    out: dict[str, Any] = {}
    for key, entry in resources_config.items():
        if key not in resource_defs:
            raise ConfigError(
                "invalid run config",
                problems=[
                    (("resources", key), f"unknown resource; known: {sorted(resource_defs)}")
                ],
            )
        if not isinstance(entry, Mapping) or set(entry) - {"config"}:
            raise ConfigError(
                "invalid run config",
                problems=[(("resources", key), "expected a mapping with one key, 'config'")],
            )
        config = entry.get("config")
        schema = resource_config_schema(resource_defs[key])
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            base = resource_defs[key].model_dump(mode="python")
            merged = {**base, **dict(config or {})}
            validate_model(schema, merged, ("resources", key, "config"), what=f"resource {key!r}")
        out[key] = config
    return out


class ResourceScope:
    """Builds a run's resources and tears them down in reverse order; a context manager.

    Entering builds every resource (ConfigurableResource copies with run-config overrides,
    ResourceDefinition functions, plain objects as they are); leaving tears them down even
    when the run failed. Calling `close` twice is safe. What a resource's setup or teardown
    raises (`SystemExit` included) becomes `UserCodeError` naming the resource, raised from it.
    """

    def __init__(
        self,
        resource_defs: Mapping[str, Any],
        resources_config: Mapping[str, Any],
        run_id: str | None = None,
        log: Any = None,
    ) -> None:
        self._defs = resource_defs
        self._config = resources_config
        self._run_id = run_id
        self._log = log
        self._stack = ExitStack()
        self.resources = Resources({})

    def __enter__(self) -> Resources:
        built: dict[str, Any] = {}
        try:
            for key, definition in self._defs.items():
                built[key] = self._build(key, definition, built)
        except BaseException:
            self._stack.close()
            raise
        self.resources = Resources(built)
        return self.resources

    def _build(self, key: str, definition: Any, built: dict[str, Any]) -> Any:
        config = self._config.get(key)
        context = InitResourceContext(config, Resources(built), self._run_id, self._log)
        if isinstance(definition, ConfigurableResource):
            value: ConfigurableResource = definition
            if config:
                merged = {**definition.model_dump(mode="python"), **dict(config)}
                value = type(definition).model_validate(merged)
            with user_code("resource", key, "setup"):
                value.setup_for_execution(context)
            self._stack.callback(_teardown, key, value.teardown_after_execution, context)
            return value
        if isinstance(definition, ResourceDefinition):
            if isinstance(definition.config_schema, type) and issubclass(
                definition.config_schema, BaseModel
            ):
                context.resource_config = validate_model(
                    definition.config_schema,
                    config,
                    ("resources", key, "config"),
                    what=f"resource {key!r}",
                )
            with user_code("resource", key, "setup"):
                produced = definition.resource_fn(context)
                if inspect.isgenerator(produced):
                    first = next(produced)
                    self._stack.callback(_finish_generator, produced, key)
                    return first
            return produced
        return definition

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()


def _teardown(key: str, teardown: Callable[[InitResourceContext], None], context: Any) -> None:
    with user_code("resource", key, "teardown"):
        teardown(context)


def _finish_generator(gen: Iterator[Any], key: str) -> None:
    with user_code("resource", key, "teardown"):
        try:
            next(gen)
        except StopIteration:
            return
    raise DefinitionError(f"resource {key!r} generator yielded more than once", name=key)


__all__ = [
    "ConfigurableResource",
    "InitResourceContext",
    "ResourceDefinition",
    "ResourceScope",
    "Resources",
    "build_init_resource_context",
    "resource",
]
