"""@op and OpDefinition: the smallest unit of work, a Python function with declared inputs,
outputs, config and resources."""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, overload

from pydantic import BaseModel

from dagloom.definitions.config import Config, validate_model
from dagloom.definitions.dagster_type import (
    DagsterType,
    any_registered_dagster_types,
    declared_dagster_type,
    is_nothing,
    resolve_dagster_type,
)
from dagloom.definitions.hook import _NO_HOOKS, check_hooks
from dagloom.definitions.outputs import DEFAULT_OUTPUT, NO_VALUE, In, Out
from dagloom.definitions.resources import ConfigurableResource, is_resource_param
from dagloom.definitions.retry import RetryPolicy
from dagloom.errors import DagsterInvalidDefinitionError, DefinitionError

if TYPE_CHECKING:
    from dagloom.definitions.config_types import Field
    from dagloom.definitions.graph import Composition
    from dagloom.definitions.hook import HookDefinition

_new = object.__new__

COMPOSITION: contextvars.ContextVar[Composition | None] = contextvars.ContextVar(
    "dagloom_composition", default=None
)
"""The Composition recording the @job or @graph body running in this context, if any (read
here, where op calls start, without an import per call)."""


@dataclass(frozen=True, slots=True)
class InputDefinition:
    """One input of an op, as `OpDefinition.input_defs` lists it."""

    name: str
    dagster_type: Any = None
    description: str | None = None
    default_value: Any = NO_VALUE
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_default_value(self) -> bool:
        return self.default_value is not NO_VALUE


@dataclass(frozen=True, slots=True)
class OutputDefinition:
    """One output of an op, as `OpDefinition.output_defs` lists it."""

    name: str
    dagster_type: Any = None
    description: str | None = None
    is_required: bool = True
    io_manager_key: str = "io_manager"
    is_dynamic: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)


_CONTEXT_NAMES = frozenset({"context", "_context", "ctx", "_ctx", "_"})


@dataclass(frozen=True, slots=True)
class ComputeSignature:
    """How to call a compute function: which parameter gets what."""

    takes_context: bool
    input_names: tuple[str, ...]  # in call order
    config_param: str | None
    resource_params: tuple[str, ...]
    is_async: bool
    is_generator: bool
    nothing_inputs: tuple[str, ...] = ()  # `In(Nothing)` inputs: wired, never passed
    returns_none: bool = False  # annotated `-> None`: an asset's None is stored nowhere


def _is_context_annotation(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] in {
            "OpExecutionContext",
            "AssetExecutionContext",
            "AssetCheckExecutionContext",
        }
    name = getattr(annotation, "__name__", "")
    return name in {"OpExecutionContext", "AssetExecutionContext", "AssetCheckExecutionContext"}


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The function's annotations, resolved one by one: one that cannot be resolved (a class
    defined inside a function, under `from __future__ import annotations`) stays a string
    instead of hiding the others."""
    with contextlib.suppress(Exception):  # then resolve each annotation alone
        return typing.get_type_hints(fn, include_extras=True)
    scope = getattr(fn, "__globals__", {})
    hints: dict[str, Any] = {}
    for key, value in getattr(fn, "__annotations__", {}).items():
        if isinstance(value, str):
            with contextlib.suppress(Exception):  # an unresolvable one stays a string
                value = eval(value, scope)  # an annotation, evaluated as typing does
        hints[key] = value
    return hints


def _subclass_of(value: Any, base: type) -> bool:
    return isinstance(value, type) and issubclass(value, base)


def analyse_compute_fn(
    fn: Callable[..., Any], *, name: str, explicit_ins: Mapping[str, Any] | None
) -> tuple[ComputeSignature, dict[str, In], type[BaseModel] | None]:
    """Split a compute function's parameters into context, inputs, config and resources."""
    params = list(inspect.signature(fn).parameters.values())
    takes_context = False
    if params and (
        params[0].name in _CONTEXT_NAMES or _is_context_annotation(params[0].annotation)
    ):
        takes_context = True
        params = params[1:]
    inputs: dict[str, In] = {}
    input_names: list[str] = []
    config_param: str | None = None
    config_model: type[BaseModel] | None = None
    resource_params: list[str] = []
    explicit = dict(explicit_ins or {})
    hints = _type_hints(fn)
    takes_kwargs = False
    for param in params:
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            # `**kwargs` receives the declared ins that are not named parameters, by name.
            takes_kwargs = True
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            raise DefinitionError(
                f"op {name!r}: *{param.name} is not supported; declare each input as a "
                "parameter, or take the ins by name with **kwargs",
                name=name,
            )
        annotation = hints.get(param.name, param.annotation)
        if param.name == "config" and param.name not in explicit and isinstance(annotation, str):
            raise DefinitionError(
                f"op {name!r}: the annotation {annotation!r} of parameter 'config' cannot be "
                "resolved; define the Config class at module level so dagloom can see it",
                name=name,
            )
        if (
            param.name not in explicit
            and _subclass_of(annotation, Config)
            and not _subclass_of(annotation, ConfigurableResource)
        ):
            config_param = param.name
            config_model = annotation
            continue
        if param.name not in explicit and (
            _subclass_of(annotation, ConfigurableResource) or is_resource_param(annotation)
        ):
            resource_params.append(param.name)
            continue
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        declared = explicit.pop(param.name, None)
        if isinstance(declared, In) and is_nothing(declared.dagster_type):
            raise DagsterInvalidDefinitionError(
                f"op {name!r}: input {param.name!r} is of type Nothing, so it carries no value "
                f"and must not be a parameter of {fn.__name__}",
                name=name,
            )
        if declared is None:
            declared = In()
        elif not isinstance(declared, In):
            raise DefinitionError(
                f"op {name!r}: ins[{param.name!r}] must be an In, got {type(declared).__name__}",
                name=name,
            )
        if not declared.has_default and param.default is not inspect.Parameter.empty:
            declared = replace(declared, default_value=param.default)
        if declared.dagster_type is None and annotation is not inspect.Parameter.empty:
            declared = replace(declared, dagster_type=annotation)
        inputs[param.name] = declared
        input_names.append(param.name)
    nothing_inputs: list[str] = []
    for input_name, declared in list(explicit.items()):
        if isinstance(declared, In) and is_nothing(declared.dagster_type):
            inputs[input_name] = explicit.pop(input_name)
            nothing_inputs.append(input_name)
        elif takes_kwargs and isinstance(declared, In):
            inputs[input_name] = explicit.pop(input_name)
            input_names.append(input_name)
    if explicit:
        raise DefinitionError(
            f"op {name!r}: ins {sorted(explicit)} do not match any parameter of {fn.__name__}",
            name=name,
        )
    signature = ComputeSignature(
        takes_context=takes_context,
        input_names=tuple(input_names),
        config_param=config_param,
        resource_params=tuple(resource_params),
        is_async=inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn),
        is_generator=inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn),
        nothing_inputs=tuple(nothing_inputs),
        returns_none=hints.get("return", inspect.Signature.empty) in (None, type(None), "None"),
    )
    return signature, inputs, config_model


def _config_from_schema(schema: Any, name: str) -> tuple[type[BaseModel] | None, Field | None]:
    """`config_schema` as a pydantic model (a Config class) or as a Field of Dagster's config
    types (anything else: a dict of field -> type, a scalar type, Field, Shape, ...)."""
    if schema is None:
        return None, None
    if _subclass_of(schema, BaseModel):
        return schema, None
    from dagloom.definitions.config_types import as_field

    try:
        return None, as_field(schema)
    except DagsterInvalidDefinitionError as exc:
        raise DagsterInvalidDefinitionError(
            f"{name!r}: invalid config_schema: {exc}", name=name
        ) from exc


def normalize_outs(out: Any, name: str) -> dict[str, Out]:
    if out is None:
        return {DEFAULT_OUTPUT: Out()}
    if isinstance(out, Out):
        return {DEFAULT_OUTPUT: out}
    if isinstance(out, Mapping):
        outs: dict[str, Out] = {}
        for key, value in out.items():
            if not isinstance(value, Out):
                raise DefinitionError(
                    f"op {name!r}: out[{key!r}] must be an Out, got {type(value).__name__}",
                    name=name,
                )
            outs[key] = value
        return outs
    raise DefinitionError(f"op {name!r}: out must be an Out or a dict of Outs", name=name)


class OpDefinition:
    """A declared op. Call it inside a @job or @graph body to wire it into the graph; call it
    anywhere else to run its function directly (for unit tests)."""

    def __init__(
        self,
        compute_fn: Callable[..., Any],
        *,
        name: str | None = None,
        ins: Mapping[str, In] | None = None,
        out: Out | Mapping[str, Out] | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        config_schema: Any = None,
        required_resource_keys: Sequence[str] | None = None,
        retry_policy: RetryPolicy | None = None,
        code_version: str | None = None,
    ) -> None:
        self.name = name or compute_fn.__name__
        _check_name(self.name, "op")
        self.compute_fn = compute_fn
        self.signature, self.ins, config_model = analyse_compute_fn(
            compute_fn, name=self.name, explicit_ins=ins
        )
        schema_model, schema_field = _config_from_schema(config_schema, self.name)
        if config_model is not None and (schema_model or schema_field) is not None:
            raise DefinitionError(
                f"op {self.name!r}: give config either as a Config parameter or as "
                "config_schema, not both",
                name=self.name,
            )
        self.config_model: type[BaseModel] | None = config_model or schema_model
        self.config_from_schema = schema_model is not None
        self.config_field = schema_field
        self.outs = normalize_outs(out, self.name)
        self.description = description or inspect.getdoc(compute_fn)
        self.tags = dict(tags or {})
        self.required_resource_keys = frozenset(required_resource_keys or ()) | frozenset(
            self.signature.resource_params
        )
        self.retry_policy = retry_policy
        self.code_version = code_version
        # The inputs and outputs whose DagsterType is checked when the step runs; empty (and
        # so free on the executor's path) unless the op declares a DagsterType.
        # A class registered with `usable_as_dagster_type` is checked by its DagsterType.
        in_types = {
            name: declared_dagster_type(spec.dagster_type) for name, spec in self.ins.items()
        }
        self.input_type_checks: tuple[tuple[str, DagsterType], ...] = tuple(
            (input_name, dagster_type)
            for input_name, dagster_type in in_types.items()
            if isinstance(dagster_type, DagsterType) and not is_nothing(dagster_type)
        )
        out_types = {
            name: declared_dagster_type(out.dagster_type) for name, out in self.outs.items()
        }
        if out is None and any_registered_dagster_types():
            # `-> Cls` of a class usable as a DagsterType types the op's one output.
            returned = _type_hints(compute_fn).get("return")
            if isinstance(returned, type) and DEFAULT_OUTPUT in out_types:
                out_types[DEFAULT_OUTPUT] = declared_dagster_type(returned)
        self._output_types: dict[str, DagsterType] = {}  # see output_type
        self.output_type_checks: dict[str, DagsterType] = {
            out_name: dagster_type
            for out_name, dagster_type in out_types.items()
            if isinstance(dagster_type, DagsterType)
        }
        # As in Dagster, the resources its types' checks and loaders use are the op's too.
        for dagster_type in (*in_types.values(), *out_types.values()):
            if isinstance(dagster_type, DagsterType):
                self.required_resource_keys |= dagster_type.required_resource_keys
                if dagster_type.loader is not None:
                    self.required_resource_keys |= dagster_type.loader.required_resource_keys

    def input_type(self, input_name: str) -> DagsterType:
        """The DagsterType of input `input_name` as its loader's context shows it
        (`context.dagster_type`): its declared DagsterType or annotation, else `Any`."""
        spec = self.ins.get(input_name)
        return resolve_dagster_type(None if spec is None else spec.dagster_type)

    def output_type(self, output_name: str) -> DagsterType:
        """The DagsterType of output `output_name` as its IO manager's context shows it:
        its Out's type, or the function's return annotation for a sole output, else `Any`.
        Worked out once per output (reading annotations costs ~20 µs)."""
        found = self._output_types.get(output_name)
        if found is None:
            out = self.outs.get(output_name)
            declared = None if out is None else out.dagster_type
            if declared is None and len(self.outs) == 1 and out is not None:
                declared = self._return_annotation()
            found = self._output_types[output_name] = resolve_dagster_type(declared)
        return found

    def _return_annotation(self) -> Any:
        try:
            return typing.get_type_hints(self.compute_fn).get("return")
        except (NameError, TypeError):
            # An annotation that does not resolve here (a name imported for type checking
            # only) types nothing, as if absent.
            return None

    @property
    def input_defs(self) -> list[InputDefinition]:
        """The op's inputs as Dagster's InputDefinitions, in declaration order."""
        return [
            InputDefinition(
                name=input_name,
                dagster_type=spec.dagster_type,
                description=spec.description,
                default_value=spec.default_value,
                metadata=dict(spec.metadata or {}),
            )
            for input_name, spec in self.ins.items()
        ]

    @property
    def output_defs(self) -> list[OutputDefinition]:
        """The op's outputs as Dagster's OutputDefinitions, in declaration order."""
        return [
            OutputDefinition(
                name=out_name,
                dagster_type=out.dagster_type,
                description=out.description,
                is_required=out.is_required,
                io_manager_key=out.io_manager_key,
                is_dynamic=out.is_dynamic,
                metadata=dict(out.metadata or {}),
            )
            for out_name, out in self.outs.items()
        ]

    @property
    def input_dict(self) -> dict[str, InputDefinition]:
        return {d.name: d for d in self.input_defs}

    @property
    def output_dict(self) -> dict[str, OutputDefinition]:
        return {d.name: d for d in self.output_defs}

    @property
    def has_config(self) -> bool:
        """Whether this op declares config (a Config parameter or a config_schema)."""
        return self.config_model is not None or self.config_field is not None

    @property
    def is_async(self) -> bool:
        return self.signature.is_async

    def validate_config(self, value: Any, path: Sequence[str | int]) -> Any:
        """Validate this op's config; returns the model instance (or plain value for a
        scalar schema) that `context.op_config` exposes."""
        if self.config_field is not None:
            from dagloom.definitions.config_types import process_config

            return process_config(self.config_field, value, tuple(path), f"op {self.name!r}")
        if self.config_model is None:
            if value not in (None, {}):
                raise _unexpected_config(self.name, path)
            return None
        model = validate_model(self.config_model, value, path, what=f"op {self.name!r}")
        if self.config_from_schema:
            root = getattr(model, "root", NO_VALUE)
            return root if root is not NO_VALUE else model.model_dump(mode="python")
        return model

    def configured(
        self,
        config_or_config_fn: Any,
        name: str,
        config_schema: Any = None,
        description: str | None = None,
    ) -> OpDefinition:
        """A copy of this op named `name` whose config is fixed to a mapping, or mapped by
        a function from the config `config_schema` describes."""
        from dagloom.definitions.configured import configure_op

        return configure_op(self, config_or_config_fn, name, config_schema, description)

    def alias(self, name: str) -> PendingNodeInvocation:
        # What `PendingNodeInvocation(self, alias=name)` makes, in a third of the time: a
        # large job is often written as one aliased call per node.
        pending: PendingNodeInvocation = _new(PendingNodeInvocation)
        pending.definition = self
        pending.given_alias = name
        pending.tags = {}
        pending.retry_policy = None
        pending.hooks = _NO_HOOKS
        return pending

    def tag(self, tags: Mapping[str, Any]) -> PendingNodeInvocation:
        return PendingNodeInvocation(self, tags=tags)

    def with_retry_policy(self, retry_policy: RetryPolicy) -> PendingNodeInvocation:
        return PendingNodeInvocation(self, retry_policy=retry_policy)

    def with_hooks(self, hook_defs: AbstractSet[HookDefinition]) -> PendingNodeInvocation:
        """This op with `hook_defs` run after each of its steps, to call in a job body."""
        return PendingNodeInvocation(self, hooks=hook_defs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        composition = COMPOSITION.get()
        if composition is not None:
            return composition.invoke(self, None, None, None, args, kwargs)
        from dagloom.execution.direct import invoke_op_directly

        return invoke_op_directly(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<OpDefinition {self.name}>"


def _unexpected_config(name: str, path: Sequence[str | int]) -> Exception:
    from dagloom.errors import ConfigError

    return ConfigError(
        f"op {name!r} takes no config", problems=[(tuple(path), "unexpected config")]
    )


class PendingNodeInvocation:
    """An op (or graph) with an alias, tags or a retry policy, waiting to be called."""

    __slots__ = ("definition", "given_alias", "hooks", "retry_policy", "tags")

    def __init__(
        self,
        definition: Any,
        *,
        alias: str | None = None,
        tags: Mapping[str, Any] | None = None,
        retry_policy: RetryPolicy | None = None,
        hooks: AbstractSet[HookDefinition] | None = None,
    ) -> None:
        self.definition = definition
        self.given_alias = alias
        self.tags = dict(tags) if tags else {}
        self.retry_policy = retry_policy
        self.hooks = check_hooks(hooks, f"{definition.name!r}") if hooks else _NO_HOOKS

    def alias(self, name: str) -> PendingNodeInvocation:
        return PendingNodeInvocation(
            self.definition,
            alias=name,
            tags=self.tags,
            retry_policy=self.retry_policy,
            hooks=self.hooks,
        )

    def tag(self, tags: Mapping[str, Any]) -> PendingNodeInvocation:
        return PendingNodeInvocation(
            self.definition,
            alias=self.given_alias,
            tags={**self.tags, **tags},
            retry_policy=self.retry_policy,
            hooks=self.hooks,
        )

    def with_retry_policy(self, retry_policy: RetryPolicy) -> PendingNodeInvocation:
        return PendingNodeInvocation(
            self.definition,
            alias=self.given_alias,
            tags=self.tags,
            retry_policy=retry_policy,
            hooks=self.hooks,
        )

    def with_hooks(self, hook_defs: AbstractSet[HookDefinition]) -> PendingNodeInvocation:
        return PendingNodeInvocation(
            self.definition,
            alias=self.given_alias,
            tags=self.tags,
            retry_policy=self.retry_policy,
            hooks=self.hooks | check_hooks(hook_defs, f"{self.definition.name!r}"),
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        composition = COMPOSITION.get()
        if composition is None:
            if isinstance(self.definition, OpDefinition):
                # Outside a @job or @graph body: the op runs directly, as a unit test calls
                # it, its tags visible to its context (its hooks and retry policy apply in
                # a run only).
                from dagloom.execution.direct import invoke_op_directly

                return invoke_op_directly(self.definition, args, kwargs, tags=self.tags)
            raise DefinitionError(
                f"{self.definition.name!r} with an alias, tags or retry policy can only be "
                "called inside a @job or @graph body",
                name=self.definition.name,
            )
        return composition.invoke(
            self.definition,
            self.given_alias,
            self.tags,
            self.retry_policy,
            args,
            kwargs,
            hooks=self.hooks,
        )


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _check_name(name: str, kind: str) -> None:
    if not name or not set(name) <= _NAME_CHARS:
        raise DefinitionError(
            f"{kind} name {name!r} must be a non-empty string of letters, digits and '_'",
            name=name,
        )


check_name = _check_name


@overload
def op(fn: Callable[..., Any]) -> OpDefinition: ...


@overload
def op(
    fn: None = None,
    *,
    name: str | None = None,
    ins: Mapping[str, In] | None = None,
    out: Out | Mapping[str, Out] | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    config_schema: Any = None,
    required_resource_keys: Sequence[str] | None = None,
    retry_policy: RetryPolicy | None = None,
    code_version: str | None = None,
) -> Callable[[Callable[..., Any]], OpDefinition]: ...


def op(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    ins: Mapping[str, In] | None = None,
    out: Out | Mapping[str, Out] | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    config_schema: Any = None,
    required_resource_keys: Sequence[str] | None = None,
    retry_policy: RetryPolicy | None = None,
    code_version: str | None = None,
) -> OpDefinition | Callable[[Callable[..., Any]], OpDefinition]:
    """Declare an op from a function (sync or `async def`). Parameters become inputs, except
    a leading `context`, a `Config`-annotated `config`, and resource-annotated parameters."""

    def wrap(func: Callable[..., Any]) -> OpDefinition:
        return OpDefinition(
            func,
            name=name,
            ins=ins,
            out=out,
            description=description,
            tags=tags,
            config_schema=config_schema,
            required_resource_keys=required_resource_keys,
            retry_policy=retry_policy,
            code_version=code_version,
        )

    return wrap(fn) if fn is not None else wrap


__all__ = ["InputDefinition", "OpDefinition", "OutputDefinition", "PendingNodeInvocation", "op"]
