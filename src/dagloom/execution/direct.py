"""Calling an op's function directly, outside any job, as unit tests do."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dagloom.definitions.config import Config
from dagloom.definitions.outputs import Output
from dagloom.definitions.resources import (
    ConfigurableResourceFactory,
    ResourceDefinition,
    ResourceScope,
)
from dagloom.errors import DagsterInvalidInvocationError
from dagloom.execution.context import OpExecutionContext, build_op_context

if TYPE_CHECKING:
    from dagloom.definitions.op import OpDefinition


def _unwrap(value: Any) -> Any:
    if isinstance(value, Output):
        return value.value
    return value


def _split_context(
    op: OpDefinition, args: list[Any], kwargs: dict[str, Any]
) -> OpExecutionContext | None:
    """Take the context out of the arguments: the first positional one (or `context=`) when
    it is a context, or `None` standing in for one, as Dagster allows."""
    takes_context = op.signature.takes_context
    if args and isinstance(args[0], OpExecutionContext):
        return args.pop(0)  # type: ignore[no-any-return]
    if "context" in kwargs and (kwargs["context"] is None or takes_context):
        context = kwargs.pop("context")
        return context if isinstance(context, OpExecutionContext) else None
    if takes_context and args and args[0] is None:
        args.pop(0)
    return None


def _bind_positional(op: OpDefinition, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """Bind positional arguments to the function's parameters after the context, in the
    order they are declared, as Dagster does: a `Config` object to the config parameter, a
    configurable resource (or any value once no input is left) to a resource parameter,
    anything else to the next input."""
    sig = op.signature
    params = [
        p.name
        for p in inspect.signature(op.compute_fn).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    if sig.takes_context:
        params = params[1:]
    # Inputs taken through `**kwargs` follow the named parameters, in the order of `ins`.
    params += [n for n in sig.input_names if n not in params]
    free = [p for p in params if p not in kwargs]
    for value in args:
        inputs_left = any(p in sig.input_names for p in free)
        for name in free:
            if name == sig.config_param and not isinstance(value, Config):
                continue
            if (
                name in sig.resource_params
                and inputs_left
                and not isinstance(value, ConfigurableResourceFactory)
            ):
                continue
            kwargs[name] = value
            free.remove(name)
            break
        else:
            raise DagsterInvalidInvocationError(
                f"op {op.name!r} takes {len(params)} arguments after its context, got "
                f"{len(args)} positional arguments besides {sorted(kwargs)}",
                name=op.name,
            )


def invoke_op_directly(
    op: OpDefinition,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    tags: Mapping[str, Any] | None = None,
) -> Any:
    """Run `op`'s function with a context (given, or built empty), validated config, the
    given resources and inputs; return its value with Output wrappers removed.

    Arguments bind as Dagster binds them: a context first (or `None` for an empty one), then
    positional arguments to the remaining parameters in order (a `Config` object goes to the
    config parameter, a resource to a resource parameter). An async op returns an awaitable;
    a generator op returns the generator of what it yields. Bad arguments raise
    `DagsterInvalidInvocationError` naming the op and the parameter.
    """
    sig = op.signature
    args = list(args)
    call_kwargs = dict(kwargs)
    context = _split_context(op, args, call_kwargs)
    _bind_positional(op, args, call_kwargs)
    known = {*sig.input_names, *sig.resource_params}
    if sig.config_param is not None:
        known.add(sig.config_param)
    unknown = sorted(set(call_kwargs) - known)
    if unknown:
        raise DagsterInvalidInvocationError(
            f"op {op.name!r} has no parameters {unknown}; it takes {sorted(known)}",
            name=op.name,
        )
    if sig.takes_context and context is None:
        context = build_op_context()
    if tags and context is not None:
        # `op.tag({...})(context)`: the invocation's tags, read by context.has_tag/get_tag.
        context.run_tags = {**context.run_tags, **{str(k): str(v) for k, v in tags.items()}}
    if sig.config_param is not None:
        given = call_kwargs.get(sig.config_param)
        if not isinstance(given, Config):
            raw = given if given is not None else (context.op_config if context else None)
            call_kwargs[sig.config_param] = op.validate_config(raw, ("config",))
    elif op.has_config and context is not None:
        context.op_config = op.validate_config(context.op_config, ("config",))
    given = set(call_kwargs)
    for name in sig.resource_params:
        if name not in call_kwargs:
            if context is None or name not in context.resources:
                raise DagsterInvalidInvocationError(
                    f"op {op.name!r} needs resource {name!r}; pass it as an argument or in "
                    "build_op_context(resources=...)",
                    name=op.name,
                )
            call_kwargs[name] = context.resources.get(name)
    # Resources given as arguments are built as a run builds them (EnvVars read, nested
    # resources built, setup_for_execution called) and torn down once the call returns.
    to_build = {
        name: call_kwargs[name]
        for name in sig.resource_params
        if name in given
        and isinstance(call_kwargs[name], ConfigurableResourceFactory | ResourceDefinition)
    }
    scope = ResourceScope(to_build, {}, context.run_id if context else None) if to_build else None
    if scope is not None:
        call_kwargs.update(scope.__enter__().as_dict())
    try:
        result = _call(op, context, call_kwargs)
    except BaseException:
        if scope is not None:
            scope.close()
        raise
    if scope is None:
        return result
    if inspect.isawaitable(result):
        return _closing_after(result, scope)
    scope.close()
    return result


def _call(op: OpDefinition, context: OpExecutionContext | None, call_kwargs: dict[str, Any]) -> Any:
    sig = op.signature
    for name in sig.input_names:
        if name not in call_kwargs and op.ins[name].has_default:
            call_kwargs[name] = op.ins[name].default_value
    missing = [n for n in sig.input_names if n not in call_kwargs]
    if missing:
        raise DagsterInvalidInvocationError(
            f"op {op.name!r} called without inputs {missing}", name=op.name
        )
    result = (
        op.compute_fn(context, **call_kwargs) if sig.takes_context else op.compute_fn(**call_kwargs)
    )
    if inspect.isgenerator(result):
        # As Dagster's: a generator of what the op yields, Output objects and events alike
        # (`next(my_asset())`, `list(my_op())`).
        return result
    if inspect.isawaitable(result):
        return _await_unwrapped(result)
    if isinstance(result, tuple):
        return tuple(_unwrap(v) for v in result)
    return _unwrap(result)


async def _await_unwrapped(awaitable: Any) -> Any:
    return _unwrap(await awaitable)


async def _closing_after(awaitable: Any, scope: ResourceScope) -> Any:
    try:
        return await awaitable
    finally:
        scope.close()
