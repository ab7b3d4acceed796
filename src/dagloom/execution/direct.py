"""Calling an op's function directly, outside any job, as unit tests do."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dagloom.definitions.outputs import DynamicOutput, Output
from dagloom.errors import DefinitionError
from dagloom.execution.context import OpExecutionContext, build_op_context

if TYPE_CHECKING:
    from dagloom.definitions.op import OpDefinition


def _unwrap(value: Any) -> Any:
    if isinstance(value, Output):
        return value.value
    return value


def invoke_op_directly(op: OpDefinition, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """Run `op`'s function with a context (given, or built empty), validated config, and the
    given inputs; return its value with Output wrappers removed. An async op returns an
    awaitable; a generator op returns its items as a list."""
    sig = op.signature
    args = list(args)
    call_kwargs = dict(kwargs)
    context: OpExecutionContext | None = None
    if args and isinstance(args[0], OpExecutionContext):
        context = args.pop(0)
    elif "context" in call_kwargs and isinstance(call_kwargs["context"], OpExecutionContext):
        context = call_kwargs.pop("context")
    if sig.takes_context and context is None:
        context = build_op_context()
    if sig.config_param is not None and sig.config_param not in call_kwargs:
        raw = context.op_config if context is not None else None
        call_kwargs[sig.config_param] = op.validate_config(raw, ("config",))
    elif sig.config_param is None and op.has_config and context is not None:
        context.op_config = op.validate_config(context.op_config, ("config",))
    for name in sig.resource_params:
        if name not in call_kwargs:
            if context is None or name not in context.resources:
                raise DefinitionError(
                    f"op {op.name!r} needs resource {name!r}; pass it as a keyword argument "
                    "or in build_op_context(resources=...)",
                    name=op.name,
                )
            call_kwargs[name] = context.resources.get(name)
    if len(args) > len(sig.input_names):
        raise DefinitionError(
            f"op {op.name!r} takes {len(sig.input_names)} inputs, got {len(args)} positional "
            "arguments",
            name=op.name,
        )
    for name, value in zip(sig.input_names, args, strict=False):
        call_kwargs[name] = value
    for name in sig.input_names:
        if name not in call_kwargs and op.ins[name].has_default:
            call_kwargs[name] = op.ins[name].default_value
    missing = [n for n in sig.input_names if n not in call_kwargs]
    if missing:
        raise DefinitionError(f"op {op.name!r} called without inputs {missing}", name=op.name)
    result = (
        op.compute_fn(context, **call_kwargs) if sig.takes_context else op.compute_fn(**call_kwargs)
    )
    if inspect.isgenerator(result):
        return [_unwrap(v) if not isinstance(v, DynamicOutput) else v for v in result]
    if inspect.isawaitable(result):
        return _await_unwrapped(result)
    if isinstance(result, tuple):
        return tuple(_unwrap(v) for v in result)
    return _unwrap(result)


async def _await_unwrapped(awaitable: Any) -> Any:
    return _unwrap(await awaitable)
