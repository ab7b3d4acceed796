"""Event rows: an `Event` as indexed columns plus a compact orjson body, and back.

Rows are not encoded through betterproto2: its serialize+parse costs ~60 µs per event, while
this hand-written converter costs a few µs, most of it in building the `Event` on the way back.
The body holds only fields that are set, so a step-start event has no body at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    EngineEventData,
    ErrorInfo,
    Event,
    EventRecord,
    EventType,
    HandledOutputData,
    LoadedInputData,
    LogLevel,
    MetadataValue,
    RunFailureData,
    StepFailureData,
    StepOutputData,
    StepRetryData,
    StepSkippedData,
)

EventRow = tuple[str, int, str, float, str | None, str | None, bytes | None]
"""(run_id, event_type, step_key, timestamp, asset_key, partition, body), in column order."""

EVENT_COLUMNS = ("run_id", "event_type", "step_key", "timestamp", "asset_key", "partition", "body")

_EVENT_TYPES: dict[int, EventType] = {int(t): t for t in EventType}
_LOG_LEVELS: dict[int, LogLevel] = {int(level): level for level in LogLevel}
_ASSET_EVENT_TYPES = frozenset({EventType.ASSET_MATERIALIZATION, EventType.ASSET_OBSERVATION})


def asset_key_text(path: tuple[str, ...] | list[str]) -> str:
    """Render an asset key path for the `asset_key` column: components joined by `/`.

    Asset key components cannot contain `/` (see `dagloom.definitions.asset_key`), so the
    rendering is unambiguous and `split("/")` inverts it.
    """
    return "/".join(path)


def event_type_of(value: int) -> EventType:
    """The `EventType` for a stored integer (unknown values map to UNSPECIFIED)."""
    return _EVENT_TYPES.get(value, EventType.UNSPECIFIED)


# -- payload converters: message -> plain JSON-able values, and back -------------------------

_META_KINDS = ("text", "int", "float", "bool", "json", "url", "path", "md")


def _meta_out(metadata: Mapping[str, MetadataValue]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for key, value in metadata.items():
        if value.asset is not None:
            out[key] = ["asset", value.asset.path]
            continue
        if value.null is not None:
            out[key] = ["null", value.null]
            continue
        for kind in _META_KINDS:
            item = getattr(value, kind)
            if item is not None:
                out[key] = [kind, item]
                break
        else:
            out[key] = ["null", True]
    return out


def _meta_in(data: Mapping[str, list[Any]]) -> dict[str, MetadataValue]:
    out: dict[str, MetadataValue] = {}
    for key, (kind, item) in data.items():
        if kind == "asset":
            out[key] = MetadataValue(asset=AssetKeyMessage(path=item))
        else:
            out[key] = MetadataValue(**{kind: item})
    return out


def _error_out(error: ErrorInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "c": error.cls_name,
        "m": error.message,
        "s": error.stack,
        "x": _error_out(error.cause),
    }


def _error_in(data: Mapping[str, Any] | None) -> ErrorInfo | None:
    if data is None:
        return None
    return ErrorInfo(
        cls_name=data["c"], message=data["m"], stack=data["s"], cause=_error_in(data["x"])
    )


def _step_output_out(d: StepOutputData) -> list[Any]:
    return [d.output_name, d.mapping_key]


def _step_output_in(d: list[Any]) -> StepOutputData:
    return StepOutputData(output_name=d[0], mapping_key=d[1])


def _step_failure_out(d: StepFailureData) -> list[Any]:
    return [_error_out(d.error), d.user_failure, _meta_out(d.metadata)]


def _step_failure_in(d: list[Any]) -> StepFailureData:
    return StepFailureData(error=_error_in(d[0]), user_failure=d[1], metadata=_meta_in(d[2]))


def _step_retry_out(d: StepRetryData) -> list[Any]:
    return [d.attempt, d.max_retries, d.delay_seconds, _error_out(d.error)]


def _step_retry_in(d: list[Any]) -> StepRetryData:
    return StepRetryData(attempt=d[0], max_retries=d[1], delay_seconds=d[2], error=_error_in(d[3]))


def _step_skipped_out(d: StepSkippedData) -> list[Any]:
    return list(d.upstream_step_keys)


def _step_skipped_in(d: list[Any]) -> StepSkippedData:
    return StepSkippedData(upstream_step_keys=d)


def _handled_output_out(d: HandledOutputData) -> list[Any]:
    return [d.output_name, d.manager_key, d.mapping_key]


def _handled_output_in(d: list[Any]) -> HandledOutputData:
    return HandledOutputData(output_name=d[0], manager_key=d[1], mapping_key=d[2])


def _loaded_input_out(d: LoadedInputData) -> list[Any]:
    return [d.input_name, d.manager_key, d.upstream_step_key, d.upstream_output_name]


def _loaded_input_in(d: list[Any]) -> LoadedInputData:
    return LoadedInputData(
        input_name=d[0], manager_key=d[1], upstream_step_key=d[2], upstream_output_name=d[3]
    )


def _materialization_out(d: AssetMaterializationData) -> list[Any]:
    path = d.asset_key.path if d.asset_key is not None else None
    return [path, _meta_out(d.metadata), d.partition, d.description]


def _materialization_in(d: list[Any]) -> AssetMaterializationData:
    return AssetMaterializationData(
        asset_key=None if d[0] is None else AssetKeyMessage(path=d[0]),
        metadata=_meta_in(d[1]),
        partition=d[2],
        description=d[3],
    )


def _run_failure_out(d: RunFailureData) -> list[Any]:
    return [list(d.failed_step_keys), _error_out(d.error)]


def _run_failure_in(d: list[Any]) -> RunFailureData:
    return RunFailureData(failed_step_keys=d[0], error=_error_in(d[1]))


def _engine_event_out(d: EngineEventData) -> list[Any]:
    return [_meta_out(d.metadata), _error_out(d.error)]


def _engine_event_in(d: list[Any]) -> EngineEventData:
    return EngineEventData(metadata=_meta_in(d[0]), error=_error_in(d[1]))


# Keyed by the name of the field in Event's `data` oneof.
_PAYLOAD_OUT: dict[str, Callable[[Any], list[Any]]] = {
    "step_output": _step_output_out,
    "step_failure": _step_failure_out,
    "step_retry": _step_retry_out,
    "step_skipped": _step_skipped_out,
    "handled_output": _handled_output_out,
    "loaded_input": _loaded_input_out,
    "asset_materialization": _materialization_out,
    "run_failure": _run_failure_out,
    "engine_event": _engine_event_out,
}
_PAYLOAD_IN: dict[str, Callable[[list[Any]], Any]] = {
    "step_output": _step_output_in,
    "step_failure": _step_failure_in,
    "step_retry": _step_retry_in,
    "step_skipped": _step_skipped_in,
    "handled_output": _handled_output_in,
    "loaded_input": _loaded_input_in,
    "asset_materialization": _materialization_in,
    "run_failure": _run_failure_in,
    "engine_event": _engine_event_in,
}
_PAYLOAD_FIELDS = tuple(_PAYLOAD_OUT)


# -- rows ------------------------------------------------------------------------------------


def encode_event(event: Event) -> EventRow:
    """Split an event into its row: indexed columns plus an orjson body of the other fields."""
    body: dict[str, Any] = {}
    if event.job_name:
        body["j"] = event.job_name
    if event.message:
        body["m"] = event.message
    if event.level:
        body["l"] = int(event.level)
    asset_key: str | None = None
    partition: str | None = None
    for name in _PAYLOAD_FIELDS:
        payload = getattr(event, name)
        if payload is not None:
            body[name] = _PAYLOAD_OUT[name](payload)
            if name == "asset_materialization" and payload.asset_key is not None:
                asset_key = asset_key_text(payload.asset_key.path)
                partition = payload.partition or None
            break
    return (
        event.run_id,
        int(event.event_type),
        event.step_key,
        event.timestamp,
        asset_key if event.event_type in _ASSET_EVENT_TYPES else None,
        partition,
        orjson.dumps(body) if body else None,
    )


def decode_event(
    run_id: str, event_type: int, step_key: str, timestamp: float, body: bytes | None
) -> Event:
    """Rebuild the `Event` a row was encoded from (the inverse of `encode_event`)."""
    if body is None:
        return Event(
            run_id=run_id,
            event_type=_EVENT_TYPES.get(event_type, EventType.UNSPECIFIED),
            step_key=step_key,
            timestamp=timestamp,
        )
    fields: dict[str, Any] = orjson.loads(body)
    kwargs: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "j":
            kwargs["job_name"] = value
        elif name == "m":
            kwargs["message"] = value
        elif name == "l":
            kwargs["level"] = _LOG_LEVELS.get(value, LogLevel.UNSPECIFIED)
        else:
            kwargs[name] = _PAYLOAD_IN[name](value)
    return Event(
        run_id=run_id,
        event_type=_EVENT_TYPES.get(event_type, EventType.UNSPECIFIED),
        step_key=step_key,
        timestamp=timestamp,
        **kwargs,
    )


def decode_record(
    storage_id: int,
    run_id: str,
    event_type: int,
    step_key: str,
    timestamp: float,
    body: bytes | None,
) -> EventRecord:
    """Rebuild the `EventRecord` for a stored row; `storage_id` is the row's id."""
    return EventRecord(
        storage_id=storage_id, event=decode_event(run_id, event_type, step_key, timestamp, body)
    )
