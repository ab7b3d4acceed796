"""DagsterType, TypeCheck, PythonObjectDagsterType and Nothing: the types of op inputs and
outputs that are checked when a step runs.

A `DagsterType` given as an `In`'s or `Out`'s `dagster_type` has its `type_check_fn` called
with each value the step loads or produces; a check that does not pass fails the step with
`DagsterTypeCheckDidNotPass`. Plain Python annotations are documentation only and cost
nothing at run time. `Nothing` marks an input that carries no value: it only orders the op
after the op whose output it is wired to.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dagloom.errors import DagsterInvalidDefinitionError, DagsterTypeCheckDidNotPass

__all__ = [
    "DagsterType",
    "Nothing",
    "PythonObjectDagsterType",
    "TypeCheck",
    "TypeCheckContext",
    "check_dagster_type",
    "check_value",
    "is_nothing",
    "resolve_dagster_type",
]


@dataclass(frozen=True, slots=True)
class TypeCheck:
    """What a `type_check_fn` may return instead of a bool: whether the value passed, why
    not, and metadata about the value."""

    success: bool
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TypeCheckContext:
    """The first argument of a `type_check_fn`: the run, the step's resources and its log."""

    run_id: str
    resources: Any
    log: Any


class DagsterType:
    """A named type whose `type_check_fn(context, value)` returns a bool or a `TypeCheck`.

    `name` defaults to `key`, which defaults to the check function's name. Instances are
    immutable once built and compare by identity, as Dagster's do.
    """

    __slots__ = (
        "description",
        "key",
        "metadata",
        "name",
        "required_resource_keys",
        "type_check_fn",
        "typing_type",
    )

    def __init__(
        self,
        type_check_fn: Callable[[Any, Any], bool | TypeCheck],
        key: str | None = None,
        name: str | None = None,
        description: str | None = None,
        required_resource_keys: set[str] | frozenset[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        typing_type: Any = Any,
        **_ignored: Any,  # Dagster's loader=, kind=: no meaning here
    ) -> None:
        if not callable(type_check_fn):
            raise DagsterInvalidDefinitionError(
                f"DagsterType {name or key!r}: type_check_fn must be a function of "
                "(context, value)",
                name=name or key,
            )
        self.type_check_fn = type_check_fn
        self.key: str = key or name or str(getattr(type_check_fn, "__name__", "DagsterType"))
        self.name: str = name or self.key
        self.description = description
        self.required_resource_keys = frozenset(required_resource_keys or ())
        self.metadata = dict(metadata or {})
        # The Python type of the values, as IO managers read it (`context.dagster_type`).
        self.typing_type = typing_type

    @property
    def display_name(self) -> str:
        return self.name

    @property
    def is_nothing(self) -> bool:
        return self is Nothing

    def type_check(self, context: Any, value: Any) -> TypeCheck:
        """Run the check on `value`; a bool result becomes a `TypeCheck`. Raises
        DagsterInvalidDefinitionError when the function returns anything else, and what the
        function raises."""
        result = self.type_check_fn(context, value)
        if isinstance(result, TypeCheck):
            return result
        if isinstance(result, bool):
            return TypeCheck(result)
        raise DagsterInvalidDefinitionError(
            f"the type_check_fn of DagsterType {self.name!r} returned "
            f"{type(result).__name__}; it must return a bool or a TypeCheck",
            name=self.name,
        )

    def __repr__(self) -> str:
        return f"<DagsterType {self.name}>"


class PythonObjectDagsterType(DagsterType):
    """A DagsterType whose values are instances of `python_type` (a class or a tuple of
    classes), named after it unless `name` is given."""

    __slots__ = ("python_type",)

    def __init__(
        self,
        python_type: type | tuple[type, ...],
        key: str | None = None,
        name: str | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.python_type = python_type
        if isinstance(python_type, tuple):
            default = "Union[" + ", ".join(t.__name__ for t in python_type) + "]"
        else:
            default = python_type.__name__
        type_name = name or key or default

        def check(_context: Any, value: Any) -> TypeCheck:
            if isinstance(value, python_type):
                return TypeCheck(True)
            return TypeCheck(
                False,
                f'Value of type {type(value)} failed type check for Dagster type "{type_name}", '
                f"expected value to be of Python type {default}.",
            )

        super().__init__(
            check,
            key=key or type_name,
            name=type_name,
            description=description,
            typing_type=python_type,
        )


def _is_none(_context: Any, value: Any) -> TypeCheck:
    if value is None:
        return TypeCheck(True)
    return TypeCheck(False, f"Value must be None, got a value of type {type(value)}.")


Nothing = DagsterType(_is_none, name="Nothing", description="An input that carries no value.")
"""The type of an input that orders its op after another and receives no value:
`@op(ins={"start": In(Nothing)})`, wired as `my_op(start=other_op())`."""


def _any_value(_context: Any, _value: Any) -> bool:
    return True


AnyType = DagsterType(_any_value, name="Any", description="Any value.")
"""The type of an input or output declared with no type."""

_ANNOTATION_TYPES: dict[Any, DagsterType] = {}


def resolve_dagster_type(declared: Any) -> DagsterType:
    """The DagsterType an IO manager sees for an input or output declared as `declared`: a
    DagsterType as it is, `Any` for no type, else one named after the annotation whose
    `typing_type` is it (`list[int]`, `pd.DataFrame`...). Only the DagsterTypes an op
    declares are checked when it runs; these stand for annotations, checking nothing."""
    if isinstance(declared, DagsterType):
        return declared
    if declared is None or declared is inspect.Parameter.empty or declared is Any:
        return AnyType
    name = getattr(declared, "__name__", None) or str(declared)
    try:
        found = _ANNOTATION_TYPES.get(declared)
    except TypeError:  # an unhashable annotation: made each time
        return DagsterType(_any_value, name=name, typing_type=declared)
    if found is None:
        found = _ANNOTATION_TYPES[declared] = DagsterType(
            _any_value, name=name, typing_type=declared
        )
    return found


def is_nothing(dagster_type: Any) -> bool:
    """Whether `dagster_type` is `Nothing`: an input of this type carries no value."""
    return dagster_type is Nothing


def check_dagster_type(dagster_type: Any, value: Any) -> TypeCheck:
    """Run `dagster_type`'s check on `value` outside a run, for a unit test: a DagsterType,
    or a Python class (checked with isinstance). A type that needs resources cannot be
    checked so (DagsterInvalidInvocationError naming it)."""
    import logging

    from dagloom.definitions.resources import Resources
    from dagloom.errors import DagsterInvalidInvocationError

    if isinstance(dagster_type, type) or (
        isinstance(dagster_type, tuple) and all(isinstance(t, type) for t in dagster_type)
    ):
        dagster_type = PythonObjectDagsterType(dagster_type)
    if not isinstance(dagster_type, DagsterType):
        raise DagsterInvalidInvocationError(
            f"check_dagster_type takes a DagsterType or a Python class, not {dagster_type!r}"
        )
    if dagster_type.required_resource_keys:
        raise DagsterInvalidInvocationError(
            f"DagsterType {dagster_type.name!r} needs resources "
            f"{sorted(dagster_type.required_resource_keys)}; check_dagster_type runs without "
            "any: run it in a job with those resources instead",
            name=dagster_type.name,
        )
    context = TypeCheckContext("ephemeral", Resources({}), logging.getLogger("dagloom"))
    return dagster_type.type_check(context, value)


def check_value(
    dagster_type: DagsterType, context: TypeCheckContext, value: Any, *, where: str, step_key: str
) -> None:
    """Check `value` against `dagster_type`; `where` is `input "x"` or `output "result"`.
    Raises DagsterTypeCheckDidNotPass when the check does not pass."""
    result = dagster_type.type_check(context, value)
    if result.success:
        return
    message = f'Type check failed for step {where} - expected type "{dagster_type.name}".'
    if result.description:
        message += f" Description: {result.description}"
    raise DagsterTypeCheckDidNotPass(
        message, dict(result.metadata), dagster_type, step_key=step_key
    )
