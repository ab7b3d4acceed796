"""Hooks: functions run after an op's step succeeds (`@success_hook`) or fails
(`@failure_hook`), attached to a job (`@job(hooks={...})`) or to one op call
(`my_op.with_hooks({...})()` in a job body).

A hook runs in the step's process right after the step's success or failure event, inside
the user-code boundary: what it raises is recorded as a HOOK_ERRORED event and never changes
the step's or the run's outcome.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, overload

from dagloom.definitions.resources import Resources
from dagloom.errors import DagsterInvalidDefinitionError, DagsterInvalidInvocationError

__all__ = [
    "HookContext",
    "HookDefinition",
    "build_hook_context",
    "check_hooks",
    "failure_hook",
    "success_hook",
]

SUCCESS = "success"
FAILURE = "failure"


class HookContext:
    """The `context` argument of a hook: the step it follows, its op, config, resources, the
    error a failed step raised (`op_exception`) and the values a step produced
    (`op_output_values`, loaded through their IO managers on first read)."""

    __slots__ = (
        "_output_values",
        "hook_def",
        "job_name",
        "log",
        "op",
        "op_config",
        "op_exception",
        "resources",
        "run_id",
        "step_key",
    )

    def __init__(
        self,
        *,
        hook_def: HookDefinition | None,
        run_id: str,
        job_name: str,
        step_key: str,
        op: Any,
        op_config: Any,
        resources: Resources,
        log: Any,
        op_exception: BaseException | None = None,
        output_values: Callable[[], dict[str, Any]] | Mapping[str, Any] | None = None,
    ) -> None:
        self.hook_def = hook_def
        self.run_id = run_id
        self.job_name = job_name
        self.step_key = step_key
        self.op = op
        self.op_config = op_config
        self.resources = resources
        self.log = log
        self.op_exception = op_exception
        self._output_values = output_values

    @property
    def required_resource_keys(self) -> frozenset[str]:
        return self.hook_def.required_resource_keys if self.hook_def else frozenset()

    @property
    def op_output_values(self) -> dict[str, Any]:
        """Output name -> value of what the step produced (for a dynamic output, a dict of
        mapping key -> value). Empty for a failed step's missing outputs."""
        values = self._output_values
        if callable(values):
            values = values()
            self._output_values = values
        return dict(values or {})


class HookDefinition:
    """A success or failure hook. Apply it with `@job(hooks={hook})`, `op.with_hooks({hook})`,
    or by decorating a job (`@hook` above `@job`); call it with a HookContext (see
    `build_hook_context`) to run its function directly in a test."""

    __slots__ = ("decorated_fn", "description", "kind", "name", "required_resource_keys")

    def __init__(
        self,
        *,
        name: str,
        kind: str,
        decorated_fn: Callable[[HookContext], Any],
        required_resource_keys: AbstractSet[str] | None = None,
        description: str | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.decorated_fn = decorated_fn
        self.required_resource_keys = frozenset(required_resource_keys or ())
        self.description = description

    def triggers_on(self, succeeded: bool) -> bool:
        """Whether this hook runs after a step that `succeeded` (or failed)."""
        return (self.kind == SUCCESS) == succeeded

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Decorate a job (a new job with this hook added), or run the hook function on a
        HookContext. Anything else raises DagsterInvalidInvocationError."""
        from dagloom.definitions.job import JobDefinition

        if len(args) == 1 and not kwargs and isinstance(args[0], JobDefinition):
            job: JobDefinition = args[0]
            return job.with_replaced_attrs(hooks=job.hook_defs | {self})
        context = args[0] if len(args) == 1 and not kwargs else kwargs.get("context")
        if isinstance(context, HookContext) and len(args) + len(kwargs) == 1:
            return self.decorated_fn(context)
        raise DagsterInvalidInvocationError(
            f"hook {self.name!r} can decorate a @job or be called with one HookContext "
            f"(see build_hook_context); got {len(args)} positional and {sorted(kwargs)} "
            "keyword arguments",
            name=self.name,
        )

    def __repr__(self) -> str:
        return f"<HookDefinition {self.name} ({self.kind})>"


_NO_HOOKS: frozenset[HookDefinition] = frozenset()


def check_hooks(hooks: Iterable[Any] | None, owner: str) -> frozenset[HookDefinition]:
    """`hooks` as a frozenset, each checked to be a HookDefinition (else
    DagsterInvalidDefinitionError naming `owner`, the job or op they were given to)."""
    checked: set[HookDefinition] = set()
    for hook in hooks or ():
        if not isinstance(hook, HookDefinition):
            raise DagsterInvalidDefinitionError(
                f"{owner}: hooks must be HookDefinitions (from @success_hook or "
                f"@failure_hook), got {type(hook).__name__}",
                name=owner,
            )
        checked.add(hook)
    # Most nodes have no hooks: one shared empty set saves 216 bytes per node.
    return frozenset(checked) if checked else _NO_HOOKS


def _hook_decorator(
    kind: str,
    fn: Callable[[HookContext], Any] | None,
    name: str | None,
    required_resource_keys: AbstractSet[str] | None,
) -> HookDefinition | Callable[[Callable[[HookContext], Any]], HookDefinition]:
    def wrap(func: Callable[[HookContext], Any]) -> HookDefinition:
        hook_name = name or func.__name__
        params = list(inspect.signature(func).parameters.values())
        if len(params) != 1:
            raise DagsterInvalidDefinitionError(
                f"{kind} hook {hook_name!r} must take exactly one argument, its context "
                f"(HookContext); {func.__name__} takes {len(params)}",
                name=hook_name,
            )
        return HookDefinition(
            name=hook_name,
            kind=kind,
            decorated_fn=func,
            required_resource_keys=required_resource_keys,
            description=inspect.getdoc(func),
        )

    return wrap(fn) if fn is not None else wrap


@overload
def success_hook(fn: Callable[[HookContext], Any]) -> HookDefinition: ...


@overload
def success_hook(
    fn: None = None,
    *,
    name: str | None = None,
    required_resource_keys: AbstractSet[str] | None = None,
) -> Callable[[Callable[[HookContext], Any]], HookDefinition]: ...


def success_hook(
    fn: Callable[[HookContext], Any] | None = None,
    *,
    name: str | None = None,
    required_resource_keys: AbstractSet[str] | None = None,
) -> HookDefinition | Callable[[Callable[[HookContext], Any]], HookDefinition]:
    """Declare a hook run after each step it is attached to succeeds."""
    return _hook_decorator(SUCCESS, fn, name, required_resource_keys)


@overload
def failure_hook(fn: Callable[[HookContext], Any]) -> HookDefinition: ...


@overload
def failure_hook(
    fn: None = None,
    *,
    name: str | None = None,
    required_resource_keys: AbstractSet[str] | None = None,
) -> Callable[[Callable[[HookContext], Any]], HookDefinition]: ...


def failure_hook(
    fn: Callable[[HookContext], Any] | None = None,
    *,
    name: str | None = None,
    required_resource_keys: AbstractSet[str] | None = None,
) -> HookDefinition | Callable[[Callable[[HookContext], Any]], HookDefinition]:
    """Declare a hook run after each step it is attached to fails (after its last retry);
    `context.op_exception` is what the step raised."""
    return _hook_decorator(FAILURE, fn, name, required_resource_keys)


def build_hook_context(
    resources: Mapping[str, Any] | None = None,
    op: Any = None,
    run_id: str | None = None,
    job_name: str | None = None,
    op_exception: BaseException | None = None,
    op_output_values: Mapping[str, Any] | None = None,
) -> HookContext:
    """A HookContext for calling a hook directly in a unit test; logs go to the Python
    logger only."""
    from dagloom.execution.context import DagloomLogManager

    run = run_id or "ephemeral"
    job = job_name or "__ephemeral__"
    step_key = getattr(op, "name", "op")
    return HookContext(
        hook_def=None,
        run_id=run,
        job_name=job,
        step_key=step_key,
        op=op,
        op_config=None,
        resources=Resources(dict(resources or {})),
        log=DagloomLogManager(run, job, step_key, None),
        op_exception=op_exception,
        output_values=dict(op_output_values or {}),
    )
