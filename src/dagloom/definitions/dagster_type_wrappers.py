"""Dagster's wrapper types: `List`, `Dict`, `Set`, `Tuple` and `Optional`, used as an op
input's or output's type (`In(dagster_type=List[int])`), each a DagsterType whose check
looks at the container and at every item.

Bare, `List`, `Dict`, `Set` and `Tuple` check only the container (`isinstance` list, dict,
set, tuple); `Optional` needs its parameter. A parameter is a DagsterType, a class (checked
with isinstance; a class registered with `usable_as_dagster_type` by its DagsterType), `Any`,
another wrapper, or the typing spelling of one (`list[int]`, `int | None`). A check that
fails says which item failed and why.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from dagloom.definitions.dagster_type import (
    DagsterType,
    PythonObjectDagsterType,
    TypeCheck,
    registered_dagster_type,
)
from dagloom.errors import DagsterInvalidDefinitionError

_BUILTIN_NAMES = {int: "Int", str: "String", float: "Float", bool: "Bool"}
_BUILTINS: dict[type, DagsterType] = {}


def _passes(_context: Any, _value: Any) -> TypeCheck:
    return TypeCheck(True)


AnyType = DagsterType(_passes, name="Any", description="Any value passes.")


def inner_type(declared: Any) -> DagsterType:
    """The DagsterType a wrapper's parameter `declared` stands for (see the module doc);
    DagsterInvalidDefinitionError for anything else."""
    if isinstance(declared, DagsterType):
        return declared
    if declared is typing.Any or declared is object:
        return AnyType
    origin = typing.get_origin(declared)
    if origin is not None:
        args = typing.get_args(declared)
        if origin in (typing.Union, types.UnionType) and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            if len(rest) == 1:
                return Optional[rest[0]]
        if origin is list and len(args) == 1:
            return List[args[0]]
        if origin is set and len(args) == 1:
            return Set[args[0]]
        if origin is dict and len(args) == 2:
            return Dict[args[0], args[1]]
        if origin is tuple and args and args[-1] is not Ellipsis:
            return Tuple[args]
    if isinstance(declared, type):
        found = registered_dagster_type(declared) or _BUILTINS.get(declared)
        if found is None:
            found = PythonObjectDagsterType(declared, name=_BUILTIN_NAMES.get(declared))
            if declared in _BUILTIN_NAMES:
                _BUILTINS[declared] = found
        return found
    raise DagsterInvalidDefinitionError(
        f"{declared!r} cannot be the parameter of a Dagster wrapper type; give a "
        "DagsterType, a class, Any or another wrapper (List[int], Optional[str])"
    )


def _first_failure(context: Any, items: Iterable[tuple[str, Any, DagsterType]]) -> TypeCheck | None:
    """The failed check of the first item (`what`, value, type) whose type rejects it."""
    for what, value, dagster_type in items:
        result = dagster_type.type_check(context, value)
        if not result.success:
            why = f": {result.description}" if result.description else ""
            return TypeCheck(
                False,
                f"{what} failed the type check of {dagster_type.name}{why}",
                result.metadata,
            )
    return None


def _container_check(
    kind: type, name: str, items: Callable[[Any], Iterable[tuple[str, Any, DagsterType]]]
) -> Callable[[Any, Any], TypeCheck]:
    def check(context: Any, value: Any) -> TypeCheck:
        if not isinstance(value, kind):
            return TypeCheck(
                False,
                f"Value of type {type(value)} failed type check for Dagster type {name}"
                f", expected value to be of Python type {kind.__name__}.",
            )
        return _first_failure(context, items(value)) or TypeCheck(True)

    return check


def _no_items(_value: Any) -> Iterable[tuple[str, Any, DagsterType]]:
    return ()


class _ListApi(DagsterType):
    """`List` (any list) and `List[T]` (a list whose every item is a T)."""

    __slots__ = ()

    def __getitem__(self, item: Any) -> DagsterType:
        inner = inner_type(item)
        name = f"List[{inner.name}]"
        return DagsterType(
            _container_check(
                list, name, lambda value: ((f"item {i}", v, inner) for i, v in enumerate(value))
            ),
            name=name,
        )


class _SetApi(DagsterType):
    """`Set` (any set) and `Set[T]` (a set whose every member is a T)."""

    __slots__ = ()

    def __getitem__(self, item: Any) -> DagsterType:
        inner = inner_type(item)
        name = f"Set[{inner.name}]"
        return DagsterType(
            _container_check(set, name, lambda value: ((f"member {v!r}", v, inner) for v in value)),
            name=name,
        )


class _DictApi(DagsterType):
    """`Dict` (any dict) and `Dict[K, V]` (keys K, values V)."""

    __slots__ = ()

    def __getitem__(self, item: Any) -> DagsterType:
        if not isinstance(item, tuple) or len(item) != 2:
            raise DagsterInvalidDefinitionError(
                f"Dict takes a key type and a value type (Dict[str, int]), got {item!r}"
            )
        key_type, value_type = inner_type(item[0]), inner_type(item[1])
        name = f"Dict[{key_type.name},{value_type.name}]"

        def items(value: Any) -> Iterable[tuple[str, Any, DagsterType]]:
            for k, v in value.items():
                yield f"key {k!r}", k, key_type
                yield f"value of key {k!r}", v, value_type

        return DagsterType(_container_check(dict, name, items), name=name)


class _TupleApi(DagsterType):
    """`Tuple` (any tuple) and `Tuple[A, B, ...]` (exactly that many items, of those types)."""

    __slots__ = ()

    def __getitem__(self, item: Any) -> DagsterType:
        inners = [inner_type(t) for t in (item if isinstance(item, tuple) else (item,))]
        name = "Tuple[" + ",".join(t.name for t in inners) + "]"
        contents = _container_check(
            tuple,
            name,
            lambda value: (
                (f"item {i}", v, t) for i, (v, t) in enumerate(zip(value, inners, strict=True))
            ),
        )

        def check(context: Any, value: Any) -> TypeCheck:
            if isinstance(value, tuple) and len(value) != len(inners):
                return TypeCheck(
                    False,
                    f"Tuple with {len(value)} items failed type check for Dagster type "
                    f"{name}, expected {len(inners)} items.",
                )
            return contents(context, value)

        return DagsterType(check, name=name)


class _OptionalApi:
    """`Optional[T]`: None, or a T."""

    needs_parameters = "Optional"

    def __getitem__(self, item: Any) -> DagsterType:
        inner = inner_type(item)
        name = f"Optional[{inner.name}]"

        def check(context: Any, value: Any) -> TypeCheck:
            return TypeCheck(True) if value is None else inner.type_check(context, value)

        return DagsterType(check, name=name)

    def __repr__(self) -> str:
        return "dagloom.Optional"


List = _ListApi(_container_check(list, "List", _no_items), name="List")
Set = _SetApi(_container_check(set, "Set", _no_items), name="Set")
Dict = _DictApi(_container_check(dict, "Dict", _no_items), name="Dict")
Tuple = _TupleApi(_container_check(tuple, "Tuple", _no_items), name="Tuple")
Optional = _OptionalApi()

__all__ = ["Dict", "List", "Optional", "Set", "Tuple"]
