"""What schedules and sensors share: names, contexts, tags, and calling user functions.

Schedules and sensors are both *instigators*: definitions that decide, on a tick, which runs to
request. This module holds the small pieces both need and that no one outside this package
imports.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, Self

from dagloom.definitions.resources import (
    ConfigurableResourceFactory,
    ResourceDefinition,
    Resources,
    ResourceScope,
    validate_resource_config,
)
from dagloom.errors import DefinitionError

__all__ = [
    "HasName",
    "InstigatorContext",
    "call_user_function",
    "check_one_target",
    "coerce_run_config",
    "context_param_name",
    "invoke_directly",
    "is_job_like",
    "job_name_of",
    "normalize_tags",
    "split_invocation_args",
    "validate_name",
]

# Dagster's rule for definition names: they end up in URLs, tags and file names.
_VALID_NAME = re.compile(r"^[A-Za-z0-9_]+$")

# First-parameter names taken to mean "the evaluation context", whatever their annotation.
_CONTEXT_NAMES = frozenset({"context", "_context", "ctx", "_ctx", "_"})


class HasName(Protocol):
    """Anything a schedule or sensor can target: a job, or an unresolved asset job."""

    @property
    def name(self) -> str: ...


def is_job_like(value: object) -> bool:
    """True for a job or an unresolved asset job: they carry a string `.name`, while asset
    lists, selections and selection strings do not."""
    return isinstance(getattr(value, "name", None), str) and not isinstance(value, str)


def check_one_target(
    label: str, options: Sequence[tuple[str, Any]], *, name: str | None = None
) -> list[str]:
    """The keys of the (key, value) `options` given (not None); more than one raises
    `DefinitionError` listing every option, for `label` ("schedule 'x'")."""
    given = [key for key, value in options if value is not None]
    if len(given) > 1:
        keys = [key for key, _ in options]
        listed = f"{', '.join(keys[:-1])} or {keys[-1]}"
        raise DefinitionError(f"{label}: give only one of {listed}, got {given}", name=name)
    return given


def job_name_of(job: Any, label: str, *, name: str | None = None) -> str:
    """The string `.name` of a targeted job; `DefinitionError` for `label` without one."""
    job_name = getattr(job, "name", None)
    if not isinstance(job_name, str):
        raise DefinitionError(f"{label}: job {job!r} has no name", name=name)
    return job_name


def validate_name(name: str, *, kind: str) -> str:
    """Return `name` if it is a valid definition name, else raise `DefinitionError`."""
    if not isinstance(name, str) or not _VALID_NAME.match(name):
        raise DefinitionError(
            f"{kind} name {name!r} is not valid: use letters, digits and underscores only",
            name=name if isinstance(name, str) else None,
        )
    return name


class InstigatorContext:
    """What a schedule or sensor function sees on any tick: the instance, resources, a logger.

    `instance` is the dagloom instance, or None when built in a test without one;
    `resources` gives attribute access to the resources given to the context, built on
    first use; `log` is `log` if given, else the logger `dagloom.<kind>.<name>`.
    """

    __slots__ = ("_instance", "_log", "_resource_defs", "_resource_scope", "_resources")

    def __init__(
        self,
        *,
        kind: str,
        name: str | None,
        instance: Any,
        resources: Mapping[str, Any] | None,
        log: logging.Logger | None,
    ) -> None:
        self._instance = instance
        self._resource_defs = dict(resources or {})
        self._resources: Resources | None = None
        self._resource_scope: ResourceScope | None = None
        self._log = log or logging.getLogger(f"dagloom.{kind}" + (f".{name}" if name else ""))

    @property
    def instance(self) -> Any:
        """The instance, called synchronously as in op code (`get_latest_materialization_event`,
        `fetch_materializations`, `get_dynamic_partitions`, `all_logs`...): a
        `DagloomInstance` given to the context is seen through a `SyncInstance`, opened for
        synchronous use on first read. On the daemon's ticks it is the deployment's instance
        (a `ForwardedInstance` when the tick runs in another process). None when the context
        has no instance (a test may build one without)."""
        from dagloom.instance import DagloomInstance

        if isinstance(self._instance, DagloomInstance):
            from dagloom.instance.sync import sync_instance_of

            return sync_instance_of(self._instance)
        return self._instance

    @property
    def resources(self) -> Resources:
        """The resources available to the schedule or sensor function, by attribute: built
        on first use, as a run builds them (`@resource` functions called, configurable
        resources set up, plain objects as given), and torn down when a `with` block on the
        context ends. A resource that fails to build raises `UserCodeError` naming it."""
        if self._resources is None:
            scope = ResourceScope(
                self._resource_defs, validate_resource_config(self._resource_defs, None)
            )
            self._resources = scope.__enter__()
            self._resource_scope = scope
        return self._resources

    @property
    def resource_defs(self) -> dict[str, Any]:
        """The resources as given to the context, before building."""
        return dict(self._resource_defs)

    def _share_resources(self, other: InstigatorContext) -> None:
        """Use `other`'s resources (built, or to be built), so an evaluation that wraps one
        context in another builds them once."""
        self._resource_defs = other.resource_defs
        self._resources = other.resources

    @property
    def log(self) -> logging.Logger:
        """A logger for this evaluation."""
        return self._log

    def __enter__(self) -> Self:
        """`with build_sensor_context() as context:`, as Dagster's tests write it; leaving
        tears down the resources built inside (a later use builds them again). Safe to
        repeat."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        scope, self._resource_scope = self._resource_scope, None
        self._resources = None
        if scope is not None:
            scope.close()


def resource_keys_used(
    functions: Iterable[Callable[..., Any] | None],
    declared: Iterable[str],
    available: Mapping[str, Any],
) -> set[str]:
    """The keys of the `available` resources an evaluation uses: those `declared`
    (`required_resource_keys`), those the `functions` take as parameters, and what those
    resources require in turn. Pure: reads signatures only."""
    names = set(declared)
    for fn in functions:
        if fn is not None:
            unwrapped = inspect.unwrap(fn)
            names |= {p for p in inspect.signature(unwrapped).parameters if p in available}
    todo = [key for key in names if key in available]
    while todo:
        key = todo.pop()
        for dep in getattr(available[key], "required_resource_keys", None) or ():
            if dep in available and dep not in names:
                names.add(dep)
                todo.append(dep)
    return {key for key in names if key in available}


def coerce_run_config(run_config: Any) -> dict[str, Any]:
    """Return run config as a plain dict (a shallow copy).

    Accepts None (an empty config), a mapping, or a `RunConfig`-like object with
    `to_config_dict()`. Anything else raises `DefinitionError`.
    """
    if run_config is None:
        return {}
    if isinstance(run_config, Mapping):
        return dict(run_config)
    to_config_dict = getattr(run_config, "to_config_dict", None)
    if callable(to_config_dict):
        result = to_config_dict()
        if not isinstance(result, Mapping):
            raise DefinitionError(
                f"{type(run_config).__name__}.to_config_dict() returned "
                f"{type(result).__name__}, expected a mapping"
            )
        return dict(result)
    raise DefinitionError(
        f"run_config must be a mapping or a RunConfig, got {type(run_config).__name__}"
    )


def normalize_tags(tags: Mapping[str, Any] | None, *, owner: str) -> dict[str, str]:
    """Return `tags` as a `dict[str, str]`; a key or value that is not a string raises
    `DefinitionError` naming `owner`, since run tags are stored and matched as strings."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise DefinitionError(f"{owner}: tags must be a mapping, got {type(tags).__name__}")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise DefinitionError(
                f"{owner}: tag {key!r}={value!r} is not a string pair; run tags are strings"
            )
        out[key] = value
    return out


def context_param_name(fn: Callable[..., Any]) -> str | None:
    """The name of `fn`'s evaluation-context parameter, or None if it takes none.

    As in Dagster, the context is the first parameter that is not a resource. A parameter is
    taken to be a resource when it is annotated with something other than a context type
    (resources are always annotated in Dagster's pythonic style) and is not named `context`.
    """
    params = list(inspect.signature(fn).parameters.values())
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name in _CONTEXT_NAMES or _is_context_annotation(param.annotation):
            return param.name
        if param.annotation is param.empty:
            return param.name
        # Annotated with a non-context type: a resource. Keep looking.
    return None


def _is_context_annotation(annotation: Any) -> bool:
    if annotation is inspect.Parameter.empty:
        return False
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return "Context" in str(text)


def call_user_function(
    fn: Callable[..., Any],
    context: Any,
    *,
    kind: str,
    name: str,
    extra_resources: Mapping[str, Any] | None = None,
) -> Any:
    """Call a schedule or sensor function the way Dagster does; return what it returns.

    The context goes to the context parameter if `fn` has one; every other named parameter is
    filled from `context.resources` (then `extra_resources`) by name. A parameter with no value
    and no default raises `DefinitionError`. Exceptions from `fn` propagate unchanged; callers
    wrap the call in the user-code boundary (`dagloom.execution.boundary.user_code`).
    """
    ctx_name = context_param_name(fn)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    resources: Resources = context.resources
    extra = dict(extra_resources or {})
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name == ctx_name:
            value = context
        elif param.name in extra:
            value = extra[param.name]
        elif param.name in resources:
            value = getattr(resources, param.name)
        elif param.default is not param.empty:
            continue
        else:
            raise DefinitionError(
                f"{kind} {name!r} takes parameter {param.name!r}, but no resource with that "
                f"key was provided (available: {sorted(resources)})",
                name=name,
            )
        if param.kind is param.POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[param.name] = value
    return fn(*args, **kwargs)


def split_invocation_args(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    kind: str,
    name: str,
) -> tuple[Any, dict[str, Any]]:
    """Split the arguments of a direct invocation (`my_sensor(context)`) into the context
    (None if not given) and resources passed by keyword.

    The context may come positionally or under its parameter name; more than one positional
    argument raises `DefinitionError`.
    """
    ctx_name = context_param_name(fn)
    kwargs = dict(kwargs)
    if len(args) > 1:
        raise DefinitionError(
            f"{kind} {name!r} invoked with {len(args)} positional arguments; pass only the "
            "context positionally",
            name=name,
        )
    context = args[0] if args else None
    if ctx_name is not None and ctx_name in kwargs:
        if context is not None:
            raise DefinitionError(
                f"{kind} {name!r} got the context both positionally and as {ctx_name!r}",
                name=name,
            )
        context = kwargs.pop(ctx_name)
    elif "context" in kwargs and ctx_name is None:
        context = kwargs.pop("context")
    return context, kwargs


def invoke_directly(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    kind: str,
    name: str,
    build_context: Callable[[], Any],
) -> Any:
    """Call `fn` as a direct invocation of its schedule or sensor (`my_sensor(context)`)
    does, and return what it returns.

    The context comes as `split_invocation_args` finds it, or from `build_context()` when
    none is given; other keyword arguments are resources (configurable ones and `@resource`
    definitions built for the call; a generator's items are then returned as a list).
    Exceptions from `fn` propagate unchanged.
    """
    context, resources = split_invocation_args(fn, args, kwargs, kind=kind, name=name)
    if context is None:
        context = build_context()
    to_build = {
        key: value
        for key, value in resources.items()
        if isinstance(value, ConfigurableResourceFactory | ResourceDefinition)
    }
    if not to_build:
        return call_user_function(fn, context, kind=kind, name=name, extra_resources=resources)
    # Resources passed as arguments are built as a tick builds them (EnvVars read, setup
    # called) and torn down once the function's result is complete.
    with ResourceScope(to_build, {}) as built:
        result = call_user_function(
            fn, context, kind=kind, name=name, extra_resources={**resources, **built.as_dict()}
        )
        return list(result) if inspect.isgenerator(result) else result
