"""What the executor records besides its hot-path event rows (`dagloom.messages.rows`):
errors, and the rows of the events an op reports itself (materializations, observations,
expectations)."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any

from dagloom.definitions.metadata import to_metadata_messages
from dagloom.definitions.outputs import AssetObservation, ExpectationResult
from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    ErrorInfo,
    EventType,
    LogLevel,
)
from dagloom.messages.rows import ASSET_MATERIALIZATION_DATA, EventRow, row


def error_info(exc: BaseException) -> ErrorInfo:
    """An exception as a wire-safe ErrorInfo: class, message, stack, and its cause chain."""
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return ErrorInfo(
        cls_name=type(exc).__name__,
        message=str(exc),
        stack="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        cause=error_info(cause) if cause is not None else None,
    )


def materialization_row(
    step_key: str,
    job_name: str,
    asset_key: Any,
    metadata: Mapping[str, Any] | None,
    description: str | None,
    partition: str | None = None,
) -> EventRow:
    """The ASSET_MATERIALIZATION event of `asset_key` (an AssetKey) reported by a step."""
    return _asset_event_row(
        EventType.ASSET_MATERIALIZATION,
        f"Materialized value {asset_key.to_user_string()}.",
        step_key,
        job_name,
        asset_key,
        metadata,
        description,
        partition,
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
    )


__all__ = ["error_info", "expectation_row", "materialization_row", "observation_row"]
