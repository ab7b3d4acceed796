"""Config: pydantic schemas for op, asset and resource config, and run-config validation.

Validation turns pydantic's errors into one ConfigError whose problems name key paths as a
user writes them in run config (`ops.fetch.config.limit`).
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict

from dagloom.errors import ConfigError, DagsterInvalidConfigError

KeyPath = tuple[str | int, ...]


class Config(BaseModel):
    """Base class for op and asset config. Unknown keys are errors; instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class PermissiveConfig(Config):
    """Config that also accepts keys its schema does not declare."""

    model_config = ConfigDict(extra="allow", frozen=True)


class RunConfig:
    """Run config built from objects: `RunConfig(ops={"fetch": FetchConfig(limit=3)})`."""

    __slots__ = ("execution", "loggers", "ops", "resources")

    def __init__(
        self,
        ops: Mapping[str, Any] | None = None,
        resources: Mapping[str, Any] | None = None,
        execution: Mapping[str, Any] | None = None,
        loggers: Mapping[str, Any] | None = None,
    ) -> None:
        self.ops = dict(ops or {})
        self.resources = dict(resources or {})
        self.execution = dict(execution or {})
        self.loggers = dict(loggers or {})

    def to_config_dict(self) -> dict[str, Any]:
        """The same config as a plain dict, in run-config shape."""
        out: dict[str, Any] = {}
        if self.ops:
            out["ops"] = {name: _op_entry(value) for name, value in self.ops.items()}
        if self.resources:
            out["resources"] = {
                name: {"config": _plain(value)} if isinstance(value, BaseModel) else value
                for name, value in self.resources.items()
            }
        if self.execution:
            out["execution"] = dict(self.execution)
        if self.loggers:
            out["loggers"] = dict(self.loggers)
        return out


class ConfigMapping:
    """Maps a small outer config onto a job's full run config: `config_fn` takes the outer
    config, validated against `config_schema` (or the Config class its first parameter is
    annotated with), and returns run config (a dict or RunConfig).

    Given as `@job(config=ConfigMapping(...))`, the job's run config is the outer config:
    `job.execute_in_process(run_config={"simplified_param": "stuff"})`.
    """

    __slots__ = ("config_field", "config_fn", "config_model", "receive_processed_config_values")

    def __init__(
        self,
        config_fn: Callable[[Any], Any],
        config_schema: Any = None,
        receive_processed_config_values: bool | None = None,
    ) -> None:
        from dagloom.definitions.config_types import as_field

        self.config_fn = config_fn
        self.receive_processed_config_values = receive_processed_config_values
        self.config_model: type[BaseModel] | None = None
        self.config_field = None
        if isinstance(config_schema, type) and issubclass(config_schema, BaseModel):
            self.config_model = config_schema
        elif config_schema is not None:
            self.config_field = as_field(config_schema)
        else:
            self.config_model = _first_param_model(config_fn)

    def resolve_from_unvalidated_config(
        self, config: Any, path: Sequence[str | int] = ()
    ) -> dict[str, Any]:
        """Validate `config` against the outer schema (raising DagsterInvalidConfigError
        naming key paths below `path`) and return what `config_fn` maps it to, as a dict:
        run config for a job's mapping, its nodes' config for a graph's."""
        from dagloom.definitions.config_types import process_config

        value: Any = config
        if self.config_model is not None:
            value = validate_model(self.config_model, config, path, what="config mapping")
        elif self.config_field is not None:
            value = process_config(self.config_field, config, tuple(path), "config mapping")
        return coerce_run_config(self.config_fn(value))


def config_mapping(
    config_fn: Callable[[Any], Any] | None = None,
    *,
    config_schema: Any = None,
    receive_processed_config_values: bool | None = None,
) -> Any:
    """Decorate a function into a ConfigMapping, bare (`@config_mapping`, the schema read from
    the Config class its parameter is annotated with) or called with a `config_schema`."""
    if config_fn is not None:
        return ConfigMapping(config_fn, config_schema, receive_processed_config_values)

    def decorate(fn: Callable[[Any], Any]) -> ConfigMapping:
        return ConfigMapping(fn, config_schema, receive_processed_config_values)

    return decorate


def _first_param_model(fn: Callable[..., Any]) -> type[BaseModel] | None:
    import inspect
    import typing

    params = list(inspect.signature(fn).parameters)
    if not params:
        return None
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):
        return None
    kind = hints.get(params[0])
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _plain(value: BaseModel) -> dict[str, Any]:
    return value.model_dump(mode="python")


def _op_entry(value: Any) -> Any:
    """One `ops:` entry in run-config shape; Config objects become `{"config": ...}` at any
    depth of nested graphs."""
    if isinstance(value, BaseModel):
        return {"config": _plain(value)}
    if isinstance(value, Mapping):
        out = dict(value)
        if isinstance(out.get("config"), BaseModel):
            out["config"] = _plain(out["config"])
        if isinstance(out.get("ops"), Mapping):
            out["ops"] = {name: _op_entry(inner) for name, inner in out["ops"].items()}
        return out
    return value


def coerce_run_config(run_config: Mapping[str, Any] | RunConfig | None) -> dict[str, Any]:
    """Accept a dict, a RunConfig or None; return a plain dict (a copy)."""
    if run_config is None:
        return {}
    if isinstance(run_config, RunConfig):
        return run_config.to_config_dict()
    if not isinstance(run_config, Mapping):
        raise ConfigError(
            f"run config must be a mapping or RunConfig, got {type(run_config).__name__}"
        )
    return {key: value for key, value in run_config.items()}


def validate_model(
    model: type[BaseModel], value: Any, path: Sequence[str | int], *, what: str
) -> BaseModel:
    """Validate `value` against `model`; on failure raise DagsterInvalidConfigError (a
    ConfigError) naming each key path below `path` and what was expected."""
    if isinstance(value, model):
        return value
    if value is None:
        value = {}
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    elif isinstance(value, Mapping):
        value = from_run_config_form(model, value, tuple(path))
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as exc:
        raise DagsterInvalidConfigError(
            f"invalid config for {what}", problems=problems_from(exc, tuple(path))
        ) from exc


_ENV_SCALARS: tuple[type, ...] = (str, int, float, bool)


def from_run_config_form(
    model: type[BaseModel], value: Mapping[str, Any], path: KeyPath
) -> Mapping[str, Any]:
    """`value`, as run config writes it for `model`, in the form pydantic validates: each
    `{"env": "NAME"}` given for a str, int, float or bool field replaced by the variable's
    value (Dagster's StringSource, IntSource...), and each member of a discriminated union
    written as Dagster's selector, `{"cat": {"meows": 10}}`, made
    `{"pet_type": "cat", "meows": 10}`; also in nested Config. Pure but for reading the
    environment; `value` is copied only when something changes. DagsterInvalidConfigError
    names the key path of a variable that is not set."""
    out: dict[str, Any] | None = None
    for name, field in model.model_fields.items():
        key = field.alias or name
        item = value.get(key)
        if not isinstance(item, Mapping):
            continue
        kind = _without_none(field.annotation)
        replaced: Any = item
        if kind in _ENV_SCALARS and set(item) == {"env"} and isinstance(item["env"], str):
            found = os.environ.get(item["env"])
            if found is None:
                raise DagsterInvalidConfigError(
                    "invalid config",
                    problems=[((*path, key), f"environment variable {item['env']!r} is not set")],
                )
            replaced = found
        elif isinstance(field.discriminator, str) and len(item) == 1:
            ((tag, inner),) = item.items()
            member = _union_member(kind, field.discriminator, tag)
            if member is not None and isinstance(inner, Mapping | None):
                replaced = {
                    field.discriminator: tag,
                    **from_run_config_form(member, inner or {}, (*path, key, tag)),
                }
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            replaced = from_run_config_form(kind, item, (*path, key))
        if replaced is item:
            continue
        if out is None:
            out = dict(value)
        out[key] = replaced
    return value if out is None else out


def _union_member(union: Any, discriminator: str, tag: str) -> type[BaseModel] | None:
    """The model of `union` whose `discriminator` field is the literal `tag`, if any."""
    for member in typing.get_args(union):
        if not (isinstance(member, type) and issubclass(member, BaseModel)):
            continue
        field = member.model_fields.get(discriminator)
        if field is not None and tag in typing.get_args(field.annotation):
            return member
    return None


def _without_none(annotation: Any) -> Any:
    """`X` for `X | None` (or `Optional[X]`); the annotation itself otherwise."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def problems_from(exc: pydantic.ValidationError, prefix: KeyPath) -> list[tuple[KeyPath, str]]:
    """pydantic's errors as (key path, message) pairs, phrased for run-config authors."""
    problems: list[tuple[KeyPath, str]] = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if isinstance(part, str | int))
        kind = error["type"]
        if kind == "missing":
            text = "missing required key"
        elif kind == "extra_forbidden":
            text = "unknown key"
        else:
            text = f"{error['msg']} (got {error.get('input')!r})"
        problems.append((prefix + loc, text))
    return problems


__all__ = [
    "Config",
    "ConfigMapping",
    "PermissiveConfig",
    "RunConfig",
    "coerce_run_config",
    "validate_model",
]
