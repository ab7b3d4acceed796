"""DagsterType, TypeCheck, PythonObjectDagsterType and Nothing: the types of op inputs and
outputs that are checked when a step runs; and the registry of Python classes made usable
as DagsterTypes (`usable_as_dagster_type`, `make_python_type_usable_as_dagster_type`).

A `DagsterType` given as an `In`'s or `Out`'s `dagster_type` has its `type_check_fn` called
with each value the step loads or produces; a check that does not pass fails the step with
`DagsterTypeCheckDidNotPass`. Plain Python annotations are documentation only and cost
nothing at run time, except a class registered as a DagsterType, whose registered type
checks it. `Nothing` marks an input that carries no value: it only orders the op
after the op whose output it is wired to.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from dagloom.errors import DagsterInvalidDefinitionError, DagsterTypeCheckDidNotPass

if TYPE_CHECKING:
    from dagloom.definitions.dagster_type_loader import DagsterTypeLoader

__all__ = [
    "DagsterType",
    "Nothing",
    "PythonObjectDagsterType",
    "TypeCheck",
    "TypeCheckContext",
    "check_dagster_type",
    "check_value",
    "declared_dagster_type",
    "is_nothing",
    "make_python_type_usable_as_dagster_type",
    "resolve_dagster_type",
    "usable_as_dagster_type",
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

    `name` defaults to `key`, which defaults to the check function's name. `loader` (a
    `@dagster_type_loader`) makes an input of this type that nothing feeds from its run
    config (`ops: {op: {inputs: {name: ...}}}`). Instances are immutable once built and
    compare by identity, as Dagster's do.
    """

    __slots__ = (
        "description",
        "key",
        "loader",
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
        loader: DagsterTypeLoader | None = None,
        **_ignored: Any,  # Dagster's kind=: no meaning here
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
        if loader is not None:
            from dagloom.definitions.dagster_type_loader import DagsterTypeLoader

            if not isinstance(loader, DagsterTypeLoader):
                raise DagsterInvalidDefinitionError(
                    f"DagsterType {self.name!r}: loader must be made with "
                    f"@dagster_type_loader, got {type(loader).__name__}",
                    name=self.name,
                )
        self.loader = loader

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
        loader: DagsterTypeLoader | None = None,
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
            loader=loader,
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
    declares (or a class registered with `usable_as_dagster_type` stands for) are checked
    when it runs; these stand for annotations, checking nothing."""
    declared = declared_dagster_type(declared)
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


_REGISTERED: dict[type, DagsterType] = {}
"""Python class -> the DagsterType it stands for (`usable_as_dagster_type`)."""


def make_python_type_usable_as_dagster_type(python_type: type, dagster_type: DagsterType) -> None:
    """Make `python_type`, where an op names it (an input's annotation, `In(dagster_type=...)`,
    `Out(...)`, inside `List[...]`...), stand for `dagster_type`, which then checks its values.

    Registering the same pair again is a no-op; registering another DagsterType for a class
    that has one raises DagsterInvalidDefinitionError naming both."""
    if not isinstance(python_type, type):
        raise DagsterInvalidDefinitionError(
            f"make_python_type_usable_as_dagster_type takes a class, got {python_type!r}"
        )
    if not isinstance(dagster_type, DagsterType):
        raise DagsterInvalidDefinitionError(
            f"make_python_type_usable_as_dagster_type: {python_type.__name__} must map to a "
            f"DagsterType, got {dagster_type!r}",
            name=python_type.__name__,
        )
    found = _REGISTERED.get(python_type)
    if found is not None and found is not dagster_type:
        raise DagsterInvalidDefinitionError(
            f"the Python type {python_type.__name__} is already usable as DagsterType "
            f"{found.name!r}; it cannot also stand for {dagster_type.name!r}",
            name=python_type.__name__,
        )
    _REGISTERED[python_type] = dagster_type


_Class = TypeVar("_Class", bound=type)


@overload
def usable_as_dagster_type(name: _Class) -> _Class: ...


@overload
def usable_as_dagster_type(
    name: str | None = None,
    description: str | None = None,
    loader: DagsterTypeLoader | None = None,
) -> Callable[[_Class], _Class]: ...


def usable_as_dagster_type(
    name: Any = None,
    description: str | None = None,
    loader: DagsterTypeLoader | None = None,
) -> Any:
    """Decorate a class so that naming it as an op's input type means a
    `PythonObjectDagsterType` of it (an isinstance check), named `name` (default: the
    class's name), with `loader` for inputs given in run config. Used bare
    (`@usable_as_dagster_type`) or called; returns the class unchanged."""

    def decorate(cls: _Class) -> _Class:
        make_python_type_usable_as_dagster_type(
            cls,
            PythonObjectDagsterType(
                cls,
                name=name if isinstance(name, str) else None,
                description=description,
                loader=loader,
            ),
        )
        return cls

    if isinstance(name, type):
        return decorate(name)
    return decorate


def declared_dagster_type(declared: Any) -> Any:
    """What an op's declared type stands for when its values are checked: a DagsterType as
    is, a class registered with `usable_as_dagster_type` its DagsterType, anything else (a
    plain annotation, checked by nobody) unchanged. Raises DagsterInvalidDefinitionError
    for a wrapper used without its parameters (`Optional` rather than `Optional[int]`)."""
    if isinstance(declared, DagsterType):
        return declared
    if isinstance(declared, type):
        return _REGISTERED.get(declared, declared)
    needs = getattr(declared, "needs_parameters", None)
    if needs is not None:
        raise DagsterInvalidDefinitionError(f"{needs} needs its type parameters: {needs}[int]")
    return declared


def any_registered_dagster_types() -> bool:
    """Whether any class has been made usable as a DagsterType."""
    return bool(_REGISTERED)


def registered_dagster_type(python_type: type) -> DagsterType | None:
    """The DagsterType registered for `python_type`, if any."""
    return _REGISTERED.get(python_type)


def check_dagster_type(dagster_type: Any, value: Any) -> TypeCheck:
    """Run `dagster_type`'s check on `value` outside a run, for a unit test: a DagsterType,
    or a Python class (checked with isinstance). A type that needs resources cannot be
    checked so (DagsterInvalidInvocationError naming it)."""
    import logging

    from dagloom.definitions.resources import Resources
    from dagloom.errors import DagsterInvalidInvocationError

    dagster_type = declared_dagster_type(dagster_type)
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
