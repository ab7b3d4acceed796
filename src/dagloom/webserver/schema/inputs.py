"""The GraphQL input types and scalars, with Dagster's names (`ExecutionParams`,
`JobOrPipelineSelector`, `RepositorySelector`, `RunConfigData`, …): a client declares its
variables with these names, so they must match exactly."""

from __future__ import annotations

import enum
from typing import Any, NewType

import orjson
import strawberry
import yaml

from dagloom.webserver.schema.runs import AssetCheckHandleInput, AssetKeyInput, ExecutionTag


def _parse_run_config(value: Any) -> Any:
    """Run config as a mapping, given as JSON or as YAML text (Dagster accepts both)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value) if value.strip() else {}
        except yaml.YAMLError as exc:
            raise ValueError(f"run config is not valid YAML: {exc}") from exc
        value = value or {}
    if not isinstance(value, dict):
        raise ValueError(f"run config must be a mapping, got {type(value).__name__}")
    return value


RunConfigData = NewType("RunConfigData", object)
"""Run config as a client sends it; `SCALARS` says how GraphQL reads it."""

SCALARS: dict[object, Any] = {
    RunConfigData: strawberry.scalar(
        name="RunConfigData",
        description="Run config: a mapping (`ops`, `resources`, `execution`), or its YAML text.",
        serialize=lambda v: v,
        parse_value=_parse_run_config,
    )
}


def run_config_json(value: Any) -> str:
    """The run config a client sent, as the JSON text a submission carries."""
    config = _parse_run_config(value)
    return orjson.dumps(config).decode() if config else ""


@strawberry.input
class RepositorySelector:
    repositoryName: str
    repositoryLocationName: str


@strawberry.input
class PipelineSelector:
    repositoryName: str
    repositoryLocationName: str
    pipelineName: str | None = None
    jobName: str | None = None
    solidSelection: list[str] | None = None
    assetSelection: list[AssetKeyInput] | None = None


@strawberry.input
class JobOrPipelineSelector:
    repositoryName: str
    repositoryLocationName: str
    pipelineName: str | None = None
    jobName: str | None = None
    solidSelection: list[str] | None = None
    assetSelection: list[AssetKeyInput] | None = None
    assetCheckSelection: list[AssetCheckHandleInput] | None = None


@strawberry.input
class ExecutionMetadata:
    tags: list[ExecutionTag] | None = None
    rootRunId: str | None = None
    parentRunId: str | None = None


@strawberry.input
class ExecutionParams:
    selector: JobOrPipelineSelector
    runConfigData: RunConfigData | None = None
    mode: str | None = None
    executionMetadata: ExecutionMetadata | None = None
    stepKeys: list[str] | None = None
    preset: str | None = None


@strawberry.enum
class ReexecutionStrategy(enum.Enum):
    ALL_STEPS = "ALL_STEPS"
    FROM_FAILURE = "FROM_FAILURE"


@strawberry.input
class ReexecutionParams:
    parentRunId: str
    strategy: ReexecutionStrategy = ReexecutionStrategy.ALL_STEPS
    extraTags: list[ExecutionTag] | None = None


@strawberry.input
class ScheduleSelector:
    repositoryName: str
    repositoryLocationName: str
    scheduleName: str


@strawberry.input
class SensorSelector:
    repositoryName: str
    repositoryLocationName: str
    sensorName: str


@strawberry.input
class AssetGroupSelector:
    groupName: str
    repositoryName: str | None = None
    repositoryLocationName: str | None = None


@strawberry.enum
class TerminateRunPolicy(enum.Enum):
    SAFE_TERMINATE = "SAFE_TERMINATE"
    MARK_AS_CANCELED_IMMEDIATELY = "MARK_AS_CANCELED_IMMEDIATELY"
