"""Executor definitions: which executor runs a job's steps, and its config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from dagloom.definitions.config import Config, validate_model


class InProcessExecutorConfig(Config):
    """`execution: {config: ...}` for the in-process executor."""

    max_concurrent: int = Field(default=64, ge=1)  # async steps in flight at once
    sync_op_threads: int = Field(default=0, ge=0)  # >0: run sync ops in a thread pool
    retries: dict[str, Any] | None = None


class MultiprocessExecutorConfig(Config):
    """`execution: {config: ...}` for the multiprocess executor."""

    max_concurrent: int = Field(default=0, ge=0)  # 0: one process per core
    retries: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ExecutorDefinition:
    """A named executor with a config schema and the config it was `configured` with."""

    name: str
    config_model: type[Config]
    config: Mapping[str, Any] = field(default_factory=dict)

    def configured(self, config: Mapping[str, Any]) -> ExecutorDefinition:
        """The same executor with `config` as its defaults (validated now)."""
        merged = {**self.config, **config}
        validate_model(self.config_model, merged, ("execution", "config"), what=self.name)
        return ExecutorDefinition(self.name, self.config_model, merged)

    def resolve_config(self, run_config_value: Any) -> Config:
        """This executor's config for a run: defaults, then `execution.config` from run
        config."""
        given = dict(run_config_value or {})
        # Dagster nests executor config under the executor's name; accept both shapes.
        if set(given) == {self.name} and isinstance(given[self.name], Mapping):
            given = dict(given[self.name])
        merged = {**self.config, **given}
        model = validate_model(
            self.config_model, merged, ("execution", "config"), what=f"executor {self.name!r}"
        )
        assert isinstance(model, Config)
        return model


in_process_executor = ExecutorDefinition("in_process", InProcessExecutorConfig)
multiprocess_executor = ExecutorDefinition("multiprocess", MultiprocessExecutorConfig)

EXECUTORS: dict[str, ExecutorDefinition] = {
    e.name: e for e in (in_process_executor, multiprocess_executor)
}
"""The built-in executors by name, which run config can pick (`select_executor`)."""


def select_executor(default: ExecutorDefinition, run_config_value: Any) -> ExecutorDefinition:
    """The executor a run uses: the one `execution.config` names, else the job's own.

    Run config picks an executor as Dagster does, by nesting its config under its name:
    `execution: {config: {multiprocess: {max_concurrent: 4}}}`. The job's executor keeps
    the config it was `configured` with when run config names that same executor.
    """
    if isinstance(run_config_value, Mapping) and len(run_config_value) == 1:
        (name,) = run_config_value
        if name != default.name and name in EXECUTORS:
            return EXECUTORS[name]
    return default


__all__ = [
    "EXECUTORS",
    "ExecutorDefinition",
    "in_process_executor",
    "multiprocess_executor",
    "select_executor",
]
