"""What the executor records besides its hot-path event rows (`dagloom.messages.rows`):
errors, and the rows of the events an op reports itself (materializations, observations,
expectations)."""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from dagloom.definitions.metadata import to_metadata_messages
from dagloom.definitions.outputs import AssetMaterialization, AssetObservation, ExpectationResult
from dagloom.errors import DagloomError
from dagloom.messages import (
    AssetCheckEvaluationData,
    AssetKeyMessage,
    AssetMaterializationData,
    ErrorInfo,
    EventType,
    LogLevel,
    StepExpectationResultData,
)
from dagloom.messages.rows import (
    ASSET_CHECK_EVALUATION_DATA,
    ASSET_MATERIALIZATION_DATA,
    STEP_EXPECTATION_RESULT_DATA,
    EventRow,
    row,
)


def error_info(exc: BaseException) -> ErrorInfo:
    """An exception as a wire-safe ErrorInfo: class, message, stack, and its cause chain."""
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return ErrorInfo(
        cls_name=type(exc).__name__,
        message=str(exc),
        stack="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        cause=error_info(cause) if cause is not None else None,
    )


def run_start_row(job_name: str) -> EventRow:
    """The RUN_START row of a run of job `job_name`, stamped now: what claims a stored run."""
    return row(
        EventType.RUN_START,
        "",
        f'Started execution of run for "{job_name}".',
        LogLevel.DEBUG,
        job_name,
    )


def materialization_row(
    step_key: str,
    job_name: str,
    asset_key: Any,
    metadata: Mapping[str, Any] | None,
    description: str | None,
    partition: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> EventRow:
    """The ASSET_MATERIALIZATION event of `asset_key` (an AssetKey) reported by a step, for
    one `partition` of it when given."""
    return _asset_event_row(
        EventType.ASSET_MATERIALIZATION,
        f"Materialized value {asset_key.to_user_string()}"
        + (f" partition {partition}." if partition else "."),
        step_key,
        job_name,
        asset_key,
        metadata,
        description,
        partition,
        tags,
    )


def observation_row(step_key: str, job_name: str, observation: AssetObservation) -> EventRow:
    """The ASSET_OBSERVATION event of an AssetObservation a step reported; it carries the
    same payload as a materialization, so storage indexes it under its asset key."""
    key = observation.asset_key
    return _asset_event_row(
        EventType.ASSET_OBSERVATION,
        f"Observed asset {key.to_user_string()}.",
        step_key,
        job_name,
        key,
        observation.metadata,
        observation.description,
        observation.partition,
        observation.tags,
    )


def reported_asset_row(
    step_key: str, job_name: str, event: AssetMaterialization | AssetObservation
) -> EventRow:
    """The event of an AssetMaterialization or AssetObservation reported by a step (or, with
    no step, outside any run)."""
    if isinstance(event, AssetObservation):
        return observation_row(step_key, job_name, event)
    return materialization_row(
        step_key,
        job_name,
        event.asset_key,
        event.metadata,
        event.description,
        event.partition,
        event.tags,
    )


def _asset_event_row(
    event_type: EventType,
    text: str,
    step_key: str,
    job_name: str,
    asset_key: Any,
    metadata: Mapping[str, Any] | None,
    description: str | None,
    partition: str | None,
    tags: Mapping[str, str] | None = None,
) -> EventRow:
    return row(
        event_type,
        step_key,
        text,
        LogLevel.INFO,
        job_name,
        ASSET_MATERIALIZATION_DATA,
        AssetMaterializationData(
            asset_key=AssetKeyMessage(path=list(asset_key.path)),
            metadata=to_metadata_messages(metadata or {}),
            description=description or "",
            partition=partition or "",
            tags={str(k): str(v) for k, v in (tags or {}).items()},
        ),
    )


def expectation_row(step_key: str, job_name: str, result: ExpectationResult) -> EventRow:
    """The STEP_EXPECTATION_RESULT event of an ExpectationResult a step reported; a failed
    expectation is a warning, not a step failure."""
    label = f' "{result.label}"' if result.label else ""
    verdict = "passed" if result.success else "failed"
    text = f"Expectation{label} {verdict}"
    if result.description:
        text += f": {result.description}"
    return row(
        EventType.STEP_EXPECTATION_RESULT,
        step_key,
        text,
        LogLevel.INFO if result.success else LogLevel.WARNING,
        job_name,
        STEP_EXPECTATION_RESULT_DATA,
        StepExpectationResultData(
            success=bool(result.success),
            label=result.label or "",
            description=result.description or "",
            metadata=to_metadata_messages(result.metadata),
        ),
    )


def match_check_spec(specs: Sequence[Any], result: Any, node: str) -> Any:
    """The AssetCheckSpec of `specs` a result reports: the one named by its `asset_key` and
    `check_name`, or the only one. Raises DagloomError naming the node otherwise."""
    from dagloom.definitions.asset_key import AssetKey

    wanted_key = None if result.asset_key is None else AssetKey.from_coercible(result.asset_key)
    found = [
        s
        for s in specs
        if (wanted_key is None or s.asset_key == wanted_key)
        and (result.check_name is None or s.name == result.check_name)
    ]
    if len(found) != 1:
        declared = sorted(s.key.to_user_string() for s in specs)
        raise DagloomError(
            f'"{node}" reported an AssetCheckResult (asset {wanted_key}, check '
            f"{result.check_name!r}) that matches {len(found)} of its checks {declared}"
        )
    return found[0]


def check_evaluation_row(
    step_key: str, job_name: str, spec: Any, result: Any, partition: str | None
) -> EventRow:
    """The ASSET_CHECK_EVALUATION event of a check's result."""
    verdict = "passed" if result.passed else "failed"
    return row(
        EventType.ASSET_CHECK_EVALUATION,
        step_key,
        f'Asset check "{spec.key.to_user_string()}" {verdict}.',
        LogLevel.INFO if result.passed else LogLevel.WARNING,
        job_name,
        ASSET_CHECK_EVALUATION_DATA,
        AssetCheckEvaluationData(
            asset_key=AssetKeyMessage(path=list(spec.asset_key.path)),
            check_name=spec.name,
            passed=bool(result.passed),
            severity=result.severity.value,
            metadata=to_metadata_messages(result.metadata or {}),
            description=result.description or "",
            blocking=spec.blocking,
            partition=partition or "",
        ),
    )


__all__ = [
    "check_evaluation_row",
    "error_info",
    "expectation_row",
    "match_check_spec",
    "materialization_row",
    "observation_row",
]
