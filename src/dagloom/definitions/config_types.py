"""Dagster's config schema types: Field, Shape, Permissive, Selector, Noneable, Array, Enum and
the env-var sources, and the validator that checks a value against them.

A schema is what `config_schema=` takes on an op, resource or IO manager when it is not a
`Config` class: a Python scalar type (`int`, `float`, `str`, `bool`), `Any`, a dict of field
name to schema (a `Shape`), a one-item list (an `Array`), or one of the classes here.
Validation is pure: it returns the value with defaults filled in, enum names turned into their
Python values and sources read from the environment, or raises one DagsterInvalidConfigError
listing every failing key path. A field that is absent and not required, with no default,
stays absent, as in Dagster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from dagloom.errors import DagsterInvalidConfigError, DagsterInvalidDefinitionError

KeyPath = tuple[str | int, ...]
Problems = list[tuple[KeyPath, str]]


class _NoValue:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()
"""A field's default when it has none."""


class ConfigType:
    """The base of every config schema type; `describe()` names it in errors."""

    def describe(self) -> str:
        return type(self).__name__

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        """`value` checked: returns it processed, or appends to `problems` and returns it."""
        raise DagsterInvalidDefinitionError(f"{self.describe()} cannot check values")


class Field:
    """A schema with a default, a requiredness and a description, as one field of a Shape
    (or a whole `config_schema`).

    A field with a default is optional and takes its default when absent. Without one it is
    required unless `is_required=False` (then it stays absent) or its type is `Noneable`
    (then it is None when absent).
    """

    __slots__ = ("config_type", "default_value", "description", "is_required")

    def __init__(
        self,
        config: Any,
        default_value: Any = NO_VALUE,
        is_required: bool | None = None,
        description: str | None = None,
    ) -> None:
        self.config_type = resolve_config_type(config)
        self.default_value = default_value
        self.description = description
        if is_required is None:
            is_required = default_value is NO_VALUE and not _defaults_itself(self.config_type)
        elif is_required and default_value is not NO_VALUE:
            raise DagsterInvalidDefinitionError(
                "a Field with a default value cannot be required (is_required=True)"
            )
        self.is_required = is_required

    @property
    def has_default_value(self) -> bool:
        return self.default_value is not NO_VALUE or _defaults_itself(self.config_type)

    def default(self) -> Any:
        """The value an absent field takes (NO_VALUE: stay absent)."""
        if self.default_value is not NO_VALUE:
            return self.default_value
        if isinstance(self.config_type, Noneable):
            return None
        if _defaults_itself(self.config_type):
            return {}
        return NO_VALUE

    def __repr__(self) -> str:
        return f"Field({self.config_type.describe()}, is_required={self.is_required})"


def _defaults_itself(config_type: ConfigType) -> bool:
    """Whether an absent value of this type is valid on its own: None for Noneable, `{}`
    for a Shape whose every field may be absent or a Selector of one defaulted field."""
    if isinstance(config_type, Noneable):
        return True
    if isinstance(config_type, Selector):
        fields = list(config_type.fields.values())
        return len(fields) == 1 and fields[0].has_default_value
    return isinstance(config_type, Shape) and not config_type.has_required_fields


def _fields_of(fields: Mapping[str, Any] | None, what: str) -> dict[str, Field]:
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise DagsterInvalidDefinitionError(f"{what} takes a dict of field name to schema")
    return {
        str(name): value if isinstance(value, Field) else Field(value)
        for name, value in fields.items()
    }


class Shape(ConfigType):
    """A dict with declared fields; unknown keys are errors. `{"a": int}` is `Shape`."""

    def __init__(self, fields: Mapping[str, Any], description: str | None = None) -> None:
        self.fields = _fields_of(fields, type(self).__name__)
        self.description = description

    @property
    def has_required_fields(self) -> bool:
        return any(f.is_required for f in self.fields.values())

    def describe(self) -> str:
        return f"{type(self).__name__}({sorted(self.fields)})"

    _allow_extra = False

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            problems.append((path, f"expected a dict, got {type(value).__name__} {value!r}"))
            return value
        out: dict[str, Any] = {}
        for name, item in value.items():
            if name not in self.fields:
                if self._allow_extra:
                    out[name] = item
                else:
                    problems.append(((*path, name), f"unknown key; expected {sorted(self.fields)}"))
        for name, field in self.fields.items():
            if name in value:
                out[name] = field.config_type.check(value[name], (*path, name), problems)
                continue
            default = field.default()
            if default is not NO_VALUE:
                out[name] = field.config_type.check(default, (*path, name), problems)
            elif field.is_required:
                problems.append(
                    ((*path, name), f"missing required key of type {field.config_type.describe()}")
                )
        return out


class Permissive(Shape):
    """A dict with declared fields that also keeps keys it does not declare."""

    _allow_extra = True

    def __init__(
        self, fields: Mapping[str, Any] | None = None, description: str | None = None
    ) -> None:
        super().__init__(fields or {}, description)


class Selector(ConfigType):
    """A dict with exactly one of its fields set: `{"in_process": {}}`."""

    def __init__(self, fields: Mapping[str, Any], description: str | None = None) -> None:
        self.fields = _fields_of(fields, "Selector")
        self.description = description

    def describe(self) -> str:
        return f"Selector({sorted(self.fields)})"

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        if value is None and len(self.fields) == 1:
            value = {}
        if not isinstance(value, Mapping):
            problems.append((path, f"expected a dict with one of {sorted(self.fields)}"))
            return value
        if not value and len(self.fields) == 1:
            (only,) = self.fields
            value = {only: None}
        if len(value) != 1:
            problems.append(
                (path, f"expected exactly one of {sorted(self.fields)}, got {sorted(value)}")
            )
            return value
        ((name, item),) = value.items()
        if name not in self.fields:
            problems.append(((*path, name), f"unknown key; expected one of {sorted(self.fields)}"))
            return value
        field = self.fields[name]
        if item is None:
            default = field.default()
            item = None if default is NO_VALUE else default
        return {name: field.config_type.check(item, (*path, name), problems)}


class Noneable(ConfigType):
    """The inner type, or None."""

    def __init__(self, inner: Any) -> None:
        self.inner = resolve_config_type(inner)

    def describe(self) -> str:
        return f"Noneable({self.inner.describe()})"

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        return None if value is None else self.inner.check(value, path, problems)


class Array(ConfigType):
    """A list whose every item is of the inner type; `[int]` is `Array(int)`."""

    def __init__(self, inner: Any) -> None:
        self.inner = resolve_config_type(inner)

    def describe(self) -> str:
        return f"Array({self.inner.describe()})"

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        if not isinstance(value, list | tuple):
            problems.append((path, f"expected a list, got {type(value).__name__} {value!r}"))
            return value
        return [self.inner.check(item, (*path, i), problems) for i, item in enumerate(value)]


class Map(ConfigType):
    """A dict of any keys of `key_type` (str, int, float or bool) to values of `inner_type`:
    `Map(str, int)` takes `{"a": 1, "b": 2}`. `key_label_name` names the keys in docs."""

    def __init__(self, key_type: Any, inner_type: Any, key_label_name: str | None = None) -> None:
        key = _BUILTINS.get(key_type) if _hashable(key_type) else None
        if not isinstance(key, _Scalar):
            raise DagsterInvalidDefinitionError(
                f"Map keys must be str, int, float or bool, got {key_type!r}"
            )
        self.key_type = key
        self.inner_type = resolve_config_type(inner_type)
        self.key_label_name = key_label_name

    def describe(self) -> str:
        return f"Map({self.key_type.describe()}, {self.inner_type.describe()})"

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        if not isinstance(value, Mapping):
            problems.append((path, f"expected a dict, got {type(value).__name__} {value!r}"))
            return value
        out: dict[Any, Any] = {}
        for key, item in value.items():
            key_problems: Problems = []
            self.key_type.check(key, (*path, key), key_problems)
            if key_problems:
                problems.append(((*path, key), f"key must be {self.key_type.describe()}"))
                continue
            out[key] = self.inner_type.check(item, (*path, key), problems)
        return out


class ScalarUnion(ConfigType):
    """Either a scalar of `scalar_type` or a value of `non_scalar_schema`: a string path,
    say, or a dict with more settings."""

    def __init__(self, scalar_type: Any, non_scalar_schema: Any, _key: str | None = None) -> None:
        scalar = _BUILTINS.get(scalar_type) if _hashable(scalar_type) else scalar_type
        if not isinstance(scalar, _Scalar):
            raise DagsterInvalidDefinitionError(
                f"ScalarUnion's scalar_type must be str, int, float or bool, got {scalar_type!r}"
            )
        non_scalar = resolve_config_type(non_scalar_schema)
        if isinstance(non_scalar, _Scalar | _Source):
            raise DagsterInvalidDefinitionError(
                "ScalarUnion's non_scalar_schema must be a dict or list schema, got "
                f"{non_scalar.describe()}"
            )
        self.scalar_type = scalar
        self.non_scalar_type = non_scalar

    def describe(self) -> str:
        return f"ScalarUnion({self.scalar_type.describe()}, {self.non_scalar_type.describe()})"

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        if isinstance(value, Mapping | list | tuple):
            return self.non_scalar_type.check(value, path, problems)
        return self.scalar_type.check(value, path, problems)


class EnumValue:
    """One value of an Enum: written as `config_value` in config, handed to code as
    `python_value` (default: the same string)."""

    __slots__ = ("config_value", "description", "python_value")

    def __init__(
        self, config_value: str, python_value: Any = None, description: str | None = None
    ) -> None:
        self.config_value = config_value
        self.python_value = config_value if python_value is None else python_value
        self.description = description


class Enum(ConfigType):
    """One of a fixed set of names, given in config as a string."""

    def __init__(self, name: str, enum_values: Sequence[EnumValue]) -> None:
        self.name = name
        self.enum_values = list(enum_values)
        self._by_name = {v.config_value: v.python_value for v in self.enum_values}

    @classmethod
    def from_python_enum(cls, enum: type[Any]) -> Enum:
        """An Enum of a Python enum's member names, handing code the members."""
        return cls(enum.__name__, [EnumValue(member.name, member) for member in enum])

    def describe(self) -> str:
        return f"Enum {self.name}"

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        if not isinstance(value, str) or value not in self._by_name:
            problems.append((path, f"expected one of {sorted(self._by_name)} of enum {self.name}"))
            return value
        return self._by_name[value]


class _Scalar(ConfigType):
    def __init__(self, name: str, kinds: tuple[type, ...]) -> None:
        self.name = name
        self.kinds = kinds

    def describe(self) -> str:
        return self.name

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        ok = isinstance(value, self.kinds) and not (
            isinstance(value, bool) and bool not in self.kinds
        )
        if not ok:
            problems.append((path, f"expected {self.name}, got {type(value).__name__} {value!r}"))
            return value
        return float(value) if self.name == "Float" else value


class _AnyType(ConfigType):
    def describe(self) -> str:
        return "Any"

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        return value


class _Source(ConfigType):
    """A scalar, or `{"env": "NAME"}` to read it from the environment when config is
    checked; a missing variable is a config error naming it."""

    def __init__(self, scalar: _Scalar) -> None:
        self.scalar = scalar

    def describe(self) -> str:
        return f"{self.scalar.name}Source"

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        if isinstance(value, Mapping):
            if set(value) != {"env"} or not isinstance(value["env"], str):
                problems.append((path, "expected a value or {'env': 'VARIABLE_NAME'}"))
                return value
            name = value["env"]
            raw = os.environ.get(name)
            if raw is None:
                problems.append((path, f"environment variable {name!r} is not set"))
                return value
            return _parse_env(self.scalar, raw, name, path, problems)
        return self.scalar.check(value, path, problems)


def _parse_env(scalar: _Scalar, raw: str, name: str, path: KeyPath, problems: Problems) -> Any:
    if scalar.name == "String":
        return raw
    if scalar.name == "Int":
        try:
            return int(raw)
        except ValueError:
            problems.append((path, f"environment variable {name!r} is not an int"))
            return raw
    lowered = raw.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    problems.append((path, f"environment variable {name!r} is not a bool"))
    return raw


class _PythonType(ConfigType):
    """A Python type Dagster's config does not know, checked by pydantic."""

    def __init__(self, kind: Any) -> None:
        from pydantic import TypeAdapter

        self.kind = kind
        self.adapter: Any = TypeAdapter(kind)

    def describe(self) -> str:
        return getattr(self.kind, "__name__", repr(self.kind))

    def check(self, value: Any, path: KeyPath, problems: Problems) -> Any:
        import pydantic

        try:
            return self.adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            from dagloom.definitions.config import problems_from

            problems.extend(problems_from(exc, path))
            return value


_INT = _Scalar("Int", (int,))
_FLOAT = _Scalar("Float", (int, float))
_STR = _Scalar("String", (str,))
_BOOL = _Scalar("Bool", (bool,))
_ANY = _AnyType()

StringSource = _Source(_STR)
"""A string, or `{"env": "NAME"}`."""
IntSource = _Source(_INT)
"""An int, or `{"env": "NAME"}` holding one."""
BoolSource = _Source(_BOOL)
"""A bool, or `{"env": "NAME"}` holding `true`/`false`."""

_BUILTINS: dict[Any, ConfigType] = {
    int: _INT,
    float: _FLOAT,
    str: _STR,
    bool: _BOOL,
    Any: _ANY,
    object: _ANY,
}


def resolve_config_type(schema: Any) -> ConfigType:
    """The ConfigType a user's schema stands for (see the module docstring)."""
    if isinstance(schema, ConfigType):
        return schema
    if isinstance(schema, Field):
        raise DagsterInvalidDefinitionError(
            "a Field cannot be nested directly in a Field, Array or Noneable; give its type"
        )
    builtin = _BUILTINS.get(schema) if _hashable(schema) else None
    if builtin is not None:
        return builtin
    if schema is dict:
        return Permissive()
    if schema is list:
        return Array(Any)
    if isinstance(schema, Mapping):
        return Shape(schema)
    if isinstance(schema, list):
        if len(schema) != 1:
            raise DagsterInvalidDefinitionError(
                f"a list config schema has exactly one item type, got {schema!r}"
            )
        return Array(schema[0])
    if isinstance(schema, type) or getattr(schema, "__origin__", None) is not None:
        return _PythonType(schema)
    raise DagsterInvalidDefinitionError(f"{schema!r} is not a config schema")


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def as_field(schema: Any) -> Field:
    """A whole `config_schema` as a Field (a bare schema is a required Field of it, unless
    every key of its Shape has a default)."""
    return schema if isinstance(schema, Field) else Field(schema)


def process_config(field: Field, value: Any, path: KeyPath, what: str) -> Any:
    """`value` (None: absent) checked against `field`, defaults filled; raises one
    DagsterInvalidConfigError naming every failing key path below `path`."""
    problems: Problems = []
    if value is None:
        default = field.default()
        if default is NO_VALUE:
            if field.is_required:
                problems.append(
                    (path, f"missing required config of type {field.config_type.describe()}")
                )
            result: Any = None
        else:
            result = field.config_type.check(default, path, problems)
    else:
        result = field.config_type.check(value, path, problems)
    if problems:
        raise DagsterInvalidConfigError(f"invalid config for {what}", problems=problems)
    return result


__all__ = [
    "Array",
    "BoolSource",
    "ConfigType",
    "Enum",
    "EnumValue",
    "Field",
    "IntSource",
    "Map",
    "Noneable",
    "Permissive",
    "ScalarUnion",
    "Selector",
    "Shape",
    "StringSource",
    "as_field",
    "process_config",
    "resolve_config_type",
]
