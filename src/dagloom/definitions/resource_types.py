"""The values and markers a resource's declaration uses: `EnvVar` for a field read from the
environment when a run builds the resource, and `ResourceParam` / `ResourceDependency` for
parameters and fields that hold resources of any type. Pure: nothing here builds a resource.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, SkipValidation

from dagloom.definitions.config import KeyPath
from dagloom.errors import DagsterInvalidConfigError


class EnvVar(str):
    """A config value read from the environment variable it names when a run builds the
    resource, not when the definition is declared: `password=EnvVar("DB_PASSWORD")`.

    The object is the variable's name (its `repr` is `EnvVar('DB_PASSWORD')`), so printing
    or logging a definition never shows the secret. `EnvVar.int("PORT")` reads an integer.
    Resolving a variable that is not set raises `DagsterInvalidConfigError` naming it.
    """

    __slots__ = ()

    @classmethod
    def int(cls, name: str) -> EnvVar:
        """An environment variable read as an integer."""
        return IntEnvVar(name)

    @property
    def env_var_name(self) -> str:
        return str.__str__(self)

    def get_value(self, default: str | None = None) -> str | None:
        """The variable's current value, or `default` when it is not set."""
        return os.environ.get(self.env_var_name, default)

    def resolve(self, path: KeyPath) -> Any:
        """The current value; `DagsterInvalidConfigError` naming `path` when unset."""
        value = os.environ.get(self.env_var_name)
        if value is None:
            raise DagsterInvalidConfigError(
                "invalid resource config",
                problems=[(path, f"environment variable {self.env_var_name!r} is not set")],
            )
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env_var_name!r})"


class IntEnvVar(EnvVar):
    """An environment variable read as an integer."""

    __slots__ = ()

    def resolve(self, path: KeyPath) -> Any:
        value = super().resolve(path)
        try:
            return int(value)
        except ValueError:
            raise DagsterInvalidConfigError(
                "invalid resource config",
                problems=[(path, f"environment variable {self.env_var_name!r} is not an int")],
            ) from None


_RESOURCE_PARAM = "dagloom.resource_param"
# pydantic's marker for a field it stores without validating (the class is its own marker).
_SKIP_VALIDATION: Any = SkipValidation


class _ResourceAlias:
    """`X[T]` is `Annotated[T, marker]`; shared by ResourceParam and ResourceDependency."""

    _marker: Any = None

    def __class_getitem__(cls, item: Any) -> Any:
        return Annotated[item, cls._marker]


class ResourceParam(_ResourceAlias):
    """Marks an op or asset parameter as a resource of any type:
    `def my_op(client: ResourceParam[Client])` gets the `client` resource as it is."""

    _marker = _RESOURCE_PARAM


class ResourceDependency(_ResourceAlias):
    """Marks a `ConfigurableResource` field as holding another resource of any kind (a plain
    object or a `@resource` definition, built for the run before the resource using it)."""

    def __class_getitem__(cls, item: Any) -> Any:
        return Annotated[item, _SKIP_VALIDATION]


def is_resource_param(annotation: Any) -> bool:
    """Whether an annotation is `ResourceParam[...]`."""
    return get_origin(annotation) is Annotated and _RESOURCE_PARAM in get_args(annotation)[1:]


def with_stand_ins(cls: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with each EnvVar of a known field replaced by a value of the field's type, so
    the other fields can be validated before the variables are read."""
    fields = cls.model_fields
    out = dict(data)
    for key, value in data.items():
        if isinstance(value, EnvVar) and key in fields:
            annotation = fields[key].annotation
            out[key] = next(
                (c for c in ("", 0, 0.0, False) if annotation is type(c)),
                value.env_var_name,
            )
    return out


def env_references(cls: type[BaseModel], config: Any) -> dict[str, Any]:
    """Run config for a configurable resource, with each `{"env": "NAME"}` value (Dagster's
    way to read a field from the environment in run config) made an `EnvVar`, an integer
    one for an `int` field, so it is read when the run builds the resource. Pure."""
    out = dict(config or {})
    fields = cls.model_fields
    for key, value in out.items():
        if isinstance(value, Mapping) and set(value) == {"env"} and isinstance(value["env"], str):
            is_int = key in fields and fields[key].annotation is int
            out[key] = EnvVar.int(value["env"]) if is_int else EnvVar(value["env"])
    return out


__all__ = [
    "EnvVar",
    "IntEnvVar",
    "ResourceDependency",
    "ResourceParam",
    "env_references",
    "is_resource_param",
    "with_stand_ins",
]
