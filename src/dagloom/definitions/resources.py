"""Resources: objects ops reach by parameter name or `context.resources`, built once per run.

The ways to declare one, as in Dagster: a `ConfigurableResource` (or
`ConfigurableResourceFactory`) instance, or its class's `configure_at_launch()`, a plain
object (used as it is), or a `ResourceDefinition` from `@resource` (a function of an init
context). Run config may override a resource's config under `resources.<key>.config`.
`ResourceScope` builds a run's resources and tears them down; `EnvVar` and the parameter
markers live in `resource_types`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import ContextDecorator, ExitStack, contextmanager
from typing import Any, Generic, Self, TypeVar, overload

from pydantic import BaseModel, PrivateAttr

from dagloom.definitions.config import Config, KeyPath, validate_model
from dagloom.definitions.resource_types import (
    EnvVar,
    ResourceDependency,
    ResourceParam,
    env_references,
    is_resource_param,
    with_stand_ins,
)
from dagloom.errors import (
    ConfigError,
    DagsterInvalidDefinitionError,
    DagsterInvalidInvocationError,
    DefinitionError,
)
from dagloom.execution.boundary import user_code

T = TypeVar("T")


class InitResourceContext:
    """What a resource sees while it is built: its config, the run, and other resources."""

    __slots__ = ("instance", "log", "resource_config", "resources", "run_id")

    def __init__(
        self,
        resource_config: Any = None,
        resources: Any = None,
        run_id: str | None = None,
        log: Any = None,
        instance: Any = None,
    ) -> None:
        self.resource_config = resource_config
        self.resources = resources
        self.run_id = run_id
        self.log = log
        self.instance = instance


def build_init_resource_context(
    config: Any = None,
    resources: Mapping[str, Any] | None = None,
    instance: Any = None,
) -> InitResourceContext:
    """An init context for calling a resource function in a unit test."""
    return InitResourceContext(
        dict(config) if isinstance(config, Mapping) else config,
        Resources(dict(resources or {})),
        instance=instance,
    )


class ConfigurableResourceFactory(Config, Generic[T]):
    """A resource whose fields are its config and whose value for a run is what
    `create_resource` returns (a client, a connection...). Fields may be `EnvVar`s, read
    when the run builds the resource, and other resources (built first).

    `setup_for_execution` and `teardown_after_execution` bracket the run: teardown is called
    once the run ends, also when it failed, and only if setup returned.
    """

    def __init__(self, **data: Any) -> None:
        late = {
            key: value for key, value in data.items() if isinstance(value, EnvVar | PartialResource)
        }
        # The variables are read, and resources configured at launch are built, when a run
        # builds this resource: validate the other fields now (with a stand-in for each) and
        # keep the EnvVar and PartialResource objects as the values.
        super().__init__(**_with_stand_ins(type(self), data))
        for key, value in late.items():
            self.__dict__[key] = value

    _resource_context: InitResourceContext | None = PrivateAttr(default=None)

    def get_resource_context(self) -> InitResourceContext:
        """The init context this resource was built with for the run (its instance, log,
        run id); `DagsterInvalidInvocationError` outside a run unless
        `with_resource_context` gave one."""
        if self._resource_context is None:
            raise DagsterInvalidInvocationError(
                f"resource {type(self).__name__} has no resource context: it is given when a "
                "run builds the resource, or by with_resource_context(context)",
                name=type(self).__name__,
            )
        return self._resource_context

    def with_resource_context(self, context: InitResourceContext) -> Self:
        """A copy of this resource that `get_resource_context()` answers with `context`, for
        testing: `MyResource().with_resource_context(build_init_resource_context())`."""
        copy = self.model_copy()
        copy._resource_context = context
        return copy

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Called when a run builds this resource, before any step uses it."""

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        """Called once the run ends, also when it failed."""

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[T]:
        """The resource's whole life in a run, as a context manager: by default
        `setup_for_execution`, then `create_resource`'s value for the run, then
        `teardown_after_execution` once the run ends. Override it (decorated with
        `@contextmanager`) to hold something open around the run."""
        self.setup_for_execution(context)
        try:
            yield self.create_resource(context)
        finally:
            self.teardown_after_execution(context)

    def create_resource(self, context: InitResourceContext) -> T:
        """The value ops and assets receive for this resource."""
        raise DagsterInvalidDefinitionError(
            f"{type(self).__name__} must override create_resource", name=type(self).__name__
        )

    @classmethod
    def from_resource_context(cls, context: InitResourceContext) -> Any:
        """The resource built from an init context's config, as a `@resource` function
        wrapping this class does: `MyResource.from_resource_context(context)`."""
        value = validate_model(
            cls, context.resource_config, ("config",), what=f"resource {cls.__name__}"
        )
        assert isinstance(value, ConfigurableResourceFactory)
        return value.create_resource(context)

    @classmethod
    def configure_at_launch(cls, **values: Any) -> PartialResource:
        """This resource with its config (or the rest of it, beyond `values`) given in the
        run config under `resources.<key>.config` when a run is launched."""
        return PartialResource(cls, values)

    def get_resource_definition(self) -> ResourceDefinition:
        return ResourceDefinition.hardcoded_resource(self)


class ConfigurableResource(ConfigurableResourceFactory[Any]):
    """A resource whose fields are its config: ops receive the object itself (a copy with
    the run's config and environment variables filled in)."""

    def create_resource(self, context: InitResourceContext) -> Any:
        return self


class PartialResource:
    """A `ConfigurableResource` class whose config comes at launch
    (`MyResource.configure_at_launch()`); the run config fills the fields not given here."""

    __slots__ = ("resource_cls", "values")

    def __init__(self, resource_cls: type[ConfigurableResourceFactory[Any]], values: Any) -> None:
        self.resource_cls = resource_cls
        self.values = dict(values)

    def __repr__(self) -> str:
        return f"{self.resource_cls.__name__}.configure_at_launch({self.values!r})"


def _with_stand_ins(cls: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with a stand-in for each EnvVar and for each nested resource configured at
    launch (an unvalidated instance of its class), so the other fields can be validated."""
    out = {
        key: value.resource_cls.model_construct() if isinstance(value, PartialResource) else value
        for key, value in data.items()
    }
    return with_stand_ins(cls, out)


class ResourceDefinition:
    """A resource built by a function of an InitResourceContext; may be a generator to
    clean up after the run."""

    __slots__ = ("config_schema", "description", "required_resource_keys", "resource_fn")

    def __init__(
        self,
        resource_fn: Callable[..., Any],
        config_schema: Any = None,
        description: str | None = None,
        required_resource_keys: Any = None,
    ) -> None:
        self.resource_fn = resource_fn
        self.config_schema = config_schema
        self.description = description
        self.required_resource_keys = frozenset(required_resource_keys or ())

    def __call__(self, context: InitResourceContext | None = None) -> Any:
        """Build the resource directly, as a unit test does:
        `my_resource(build_init_resource_context(config={...}))`."""
        return self.resource_fn(context if context is not None else InitResourceContext())

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        config_schema: Any = None,
        description: str | None = None,
        required_resource_keys: Any = None,
    ) -> Self:
        """A definition built by `fn`, a function of an InitResourceContext or of nothing;
        its description defaults to `fn`'s docstring."""
        takes_context = bool(inspect.signature(fn).parameters)
        build = fn if takes_context else (lambda _ctx: fn())
        return cls(build, config_schema, description or fn.__doc__, required_resource_keys)

    @staticmethod
    def hardcoded_resource(value: Any, description: str | None = None) -> ResourceDefinition:
        return ResourceDefinition(lambda _ctx: value, None, description)

    @staticmethod
    def none_resource(description: str | None = None) -> ResourceDefinition:
        return ResourceDefinition.hardcoded_resource(None, description)

    @staticmethod
    def mock_resource(description: str | None = None) -> ResourceDefinition:
        """A resource that is a fresh `unittest.mock.MagicMock` in each run."""
        from unittest import mock

        return ResourceDefinition(lambda _ctx: mock.MagicMock(), None, description)

    @staticmethod
    def string_resource(description: str | None = None) -> ResourceDefinition:
        """A resource whose value is its config, a string."""
        return ResourceDefinition(lambda ctx: ctx.resource_config, str, description)

    def configured(
        self,
        config_or_config_fn: Any,
        name: str | None = None,
        config_schema: Any = None,
        description: str | None = None,
    ) -> ResourceDefinition:
        """The same resource with its config fixed to a mapping, or mapped by a function
        from the config `config_schema` describes (see `dagloom.definitions.configured`)."""
        from dagloom.definitions.configured import configure_resource

        return configure_resource(self, config_or_config_fn, config_schema, description)


R = TypeVar("R")


@overload
def resource(fn: Callable[..., Any]) -> ResourceDefinition: ...


@overload
def resource(
    fn: None = None,
    *,
    config_schema: Any = None,
    description: str | None = None,
    required_resource_keys: Any = None,
) -> Callable[[Callable[..., Any]], ResourceDefinition]: ...


def resource(
    fn: Callable[..., Any] | None = None,
    *,
    config_schema: Any = None,
    description: str | None = None,
    required_resource_keys: Any = None,
) -> ResourceDefinition | Callable[[Callable[..., Any]], ResourceDefinition]:
    """Declare a resource from a function of an InitResourceContext (or of nothing).

    The function may return the resource, yield it once (the code after `yield` runs when
    the run ends, also when it failed), or return a context manager (`@contextmanager`),
    exited when the run ends. `required_resource_keys` names the resources it reads from
    `context.resources`; they are built first.
    """

    def wrap(func: Callable[..., Any]) -> ResourceDefinition:
        return ResourceDefinition.from_function(
            func, config_schema, description, required_resource_keys
        )

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
    if isinstance(value, ConfigurableResourceFactory):
        return type(value)
    if isinstance(value, PartialResource):
        return value.resource_cls
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
            merged = _with_stand_ins(
                schema, {**_given_fields(resource_defs[key]), **env_references(schema, config)}
            )
            validate_model(schema, merged, ("resources", key, "config"), what=f"resource {key!r}")
        elif schema is not None:
            _process_schema_config(schema, config, key)
        out[key] = config
    return out


def check_resource_config(
    definition: ResourceDefinition, config: Any, what: str, path: KeyPath = ("config",)
) -> Any:
    """`config` checked against `definition`'s config schema (a Config class or Dagster's
    schema), defaults filled; DagsterInvalidConfigError names the key path."""
    schema = definition.config_schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return validate_model(schema, config, path, what=what)
    if schema is None:
        return config
    from dagloom.definitions.config_types import as_field, process_config

    return process_config(as_field(schema), config, tuple(path), what)


def _process_schema_config(schema: Any, config: Any, key: str) -> Any:
    """A resource's config checked against its Dagster-style `config_schema`, defaults filled."""
    from dagloom.definitions.config_types import as_field, process_config

    return process_config(
        as_field(schema), config, ("resources", key, "config"), f"resource {key!r}"
    )


def _given_fields(definition: Any) -> dict[str, Any]:
    """The field values a configurable resource was declared with (EnvVars and nested
    resources as they are), without the defaults pydantic would fill in."""
    if isinstance(definition, PartialResource):
        return dict(definition.values)
    return {key: definition.__dict__[key] for key in definition.model_fields_set}


def resource_order(resource_defs: Mapping[str, Any]) -> list[str]:
    """The keys of `resource_defs` in an order that builds each `@resource` after the
    resources its `required_resource_keys` name. Pure.

    `DagsterInvalidDefinitionError` names the resource and key when a required key is not
    among `resource_defs`, or when resources require each other in a cycle.
    """
    order: list[str] = []
    state: dict[str, int] = {}  # 1 while visiting, 2 once placed
    shared = shared_resource_keys(resource_defs)

    def visit(key: str, path: tuple[str, ...]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = " -> ".join((*path, key))
            raise DagsterInvalidDefinitionError(
                f"resources require each other in a cycle: {cycle}", name=key
            )
        state[key] = 1
        definition = resource_defs[key]
        needs = set(getattr(definition, "required_resource_keys", ()) or ())
        needs |= _nested_keys(definition, shared)
        for needed in sorted(needs):
            if needed not in resource_defs:
                raise DagsterInvalidDefinitionError(
                    f"resource {key!r} requires resource {needed!r}, which is not provided; "
                    f"provided: {sorted(resource_defs)}",
                    name=key,
                )
            visit(needed, (*path, key))
        state[key] = 2
        order.append(key)

    for key in resource_defs:
        visit(key, ())
    return order


def shared_resource_keys(resource_defs: Mapping[str, Any]) -> dict[int, str]:
    """The key of each configurable resource object in `resource_defs`, by the object's id:
    a field of another resource holding that same object (`credentials =
    Credentials.configure_at_launch()` given at the top and in a field) gets the resource
    built for that key."""
    return {
        id(value): key
        for key, value in resource_defs.items()
        if isinstance(value, PartialResource | ConfigurableResourceFactory)
    }


def _nested_keys(definition: Any, shared: Mapping[int, str]) -> set[str]:
    """The top-level keys whose resource objects `definition`'s fields hold."""
    if not isinstance(definition, PartialResource | ConfigurableResourceFactory):
        return set()
    return {
        shared[id(value)]
        for value in _given_fields(definition).values()
        if id(value) in shared and value is not definition
    }


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
        instance: Any = None,
    ) -> None:
        self._defs = resource_defs
        self._instance = instance
        self._config = resources_config
        self._run_id = run_id
        self._log = log
        self._stack = ExitStack()
        self.resources = Resources({})
        self._shared = shared_resource_keys(resource_defs)
        self._built: dict[str, Any] = {}

    def __enter__(self) -> Resources:
        built = self._built
        try:
            for key in resource_order(self._defs):
                built[key] = self._build(key, self._defs[key], built)
        except BaseException:
            self._stack.close()
            raise
        self.resources = Resources(built)
        return self.resources

    def _build(self, key: str, definition: Any, built: dict[str, Any]) -> Any:
        config = self._config.get(key)
        context = InitResourceContext(
            config, Resources(built), self._run_id, self._log, self._instance
        )
        if isinstance(definition, PartialResource | ConfigurableResourceFactory):
            return self._build_configurable(key, definition, config, context)
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
            elif definition.config_schema is not None:
                context.resource_config = _process_schema_config(
                    definition.config_schema, config, key
                )
            return self._build_function(key, definition, context)
        return definition

    def _build_function(
        self, key: str, definition: ResourceDefinition, context: InitResourceContext
    ) -> Any:
        """Call a `@resource` function; a generator or context manager it returns is
        finished when the scope closes."""
        with user_code("resource", key, "setup"):
            produced = definition.resource_fn(context)
            if inspect.isgenerator(produced):
                first = next(produced)
                self._stack.callback(_finish_generator, produced, key)
                return first
            if isinstance(produced, ContextDecorator) and hasattr(produced, "__enter__"):
                value = produced.__enter__()
                self._stack.callback(_exit_context_manager, produced, key)
                return value
        return produced

    def _build_configurable(
        self,
        key: str,
        definition: PartialResource | ConfigurableResourceFactory[Any],
        config: Any,
        context: InitResourceContext,
    ) -> Any:
        """A configurable resource for this run: its declared fields, overridden by run
        config, with EnvVars read and nested resources built; set up, torn down on close."""
        if isinstance(definition, PartialResource):
            cls: type[ConfigurableResourceFactory[Any]] = definition.resource_cls
        else:
            cls = type(definition)
        fields = {**_given_fields(definition), **env_references(cls, config)}
        value = self._resolve_fields(key, cls, fields, ("resources", key, "config"), context)
        return self._enter_for_execution(key, value, context)

    def _enter_for_execution(
        self, key: str, resource: ConfigurableResourceFactory[Any], context: InitResourceContext
    ) -> Any:
        """Enter `resource.yield_for_execution` (a context manager, or a bare generator an
        override forgot to decorate) and leave it when the scope closes."""
        resource._resource_context = context
        with user_code("resource", key, "setup"):
            manager: Any = resource.yield_for_execution(context)
            if inspect.isgenerator(manager):
                value = next(manager)
                self._stack.callback(_finish_generator, manager, key)
                return value
            value = manager.__enter__()
        self._stack.callback(_exit_context_manager, manager, key)
        return value

    def _resolve_fields(
        self,
        key: str,
        cls: type[ConfigurableResourceFactory[Any]],
        fields: Mapping[str, Any],
        path: KeyPath,
        context: InitResourceContext,
    ) -> ConfigurableResourceFactory[Any]:
        resolved: dict[str, Any] = {}
        for name, field_value in fields.items():
            field_path = (*path, name)
            shared_key = self._shared.get(id(field_value))
            if shared_key is not None and shared_key in self._built:
                # The same object as a top-level resource: share what was built for it.
                resolved[name] = self._built[shared_key]
            elif isinstance(field_value, PartialResource):
                raise DagsterInvalidDefinitionError(
                    f"field {name!r} of resource {key!r} is "
                    f"{field_value.resource_cls.__name__}.configure_at_launch(), which must "
                    "also be given as a top-level resource (its config comes from "
                    "resources.<key>.config)",
                    name=key,
                )
            elif isinstance(field_value, EnvVar):
                resolved[name] = field_value.resolve(field_path)
            elif isinstance(field_value, ConfigurableResourceFactory):
                nested = self._resolve_fields(
                    key, type(field_value), _given_fields(field_value), field_path, context
                )
                resolved[name] = self._enter_for_execution(f"{key}.{name}", nested, context)
            elif isinstance(field_value, ResourceDefinition):
                resolved[name] = self._build_function(f"{key}.{name}", field_value, context)
            else:
                resolved[name] = field_value
        value = validate_model(cls, resolved, path, what=f"resource {key!r}")
        assert isinstance(value, ConfigurableResourceFactory)
        return value

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()


def _exit_context_manager(manager: Any, key: str) -> None:
    with user_code("resource", key, "teardown"):
        manager.__exit__(None, None, None)


@contextmanager
def build_resources(
    resources: Mapping[str, Any],
    instance: Any = None,
    resource_config: Mapping[str, Any] | None = None,
    dagster_run: Any = None,
    log_manager: Any = None,
) -> Iterator[Resources]:
    """Build `resources` outside any run, as a test or script does:
    `with build_resources({"db": db}) as resources: resources.db.query(...)`.

    `resource_config` is shaped as run config's `resources:` section (`{"db": {"config":
    {...}}}`) and is validated first (`DagsterInvalidConfigError` names the key path).
    Leaving the block tears every resource down in reverse order, also on an exception.
    """
    config = validate_resource_config(resources, resource_config)
    run_id = getattr(dagster_run, "run_id", None)
    with ResourceScope(resources, config, run_id, log_manager, instance) as built:
        yield built


def _finish_generator(gen: Iterator[Any], key: str) -> None:
    with user_code("resource", key, "teardown"):
        try:
            next(gen)
        except StopIteration:
            return
    raise DefinitionError(f"resource {key!r} generator yielded more than once", name=key)


__all__ = [
    "ConfigurableResource",
    "ConfigurableResourceFactory",
    "EnvVar",
    "InitResourceContext",
    "PartialResource",
    "ResourceDefinition",
    "ResourceDependency",
    "ResourceParam",
    "ResourceScope",
    "Resources",
    "build_init_resource_context",
    "build_resources",
    "check_resource_config",
    "is_resource_param",
    "resource",
    "resource_order",
]
