"""Config: pydantic schemas for op, asset and resource config, and run-config validation.

Validation turns pydantic's errors into one ConfigError whose problems name key paths as a
user writes them in run config (`ops.fetch.config.limit`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict

from dagloom.errors import ConfigError

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
    """Validate `value` against `model`; on failure raise ConfigError naming each key path
    below `path` and what was expected."""
    if isinstance(value, model):
        return value
    if value is None:
        value = {}
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as exc:
        raise ConfigError(
            f"invalid config for {what}", problems=problems_from(exc, tuple(path))
        ) from exc


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


__all__ = ["Config", "PermissiveConfig", "RunConfig", "coerce_run_config", "validate_model"]
