"""Event rows: the compact form a run's events take from the executor to the event log.

Building an `Event` message costs ~0.35 µs and keeps ~4 objects alive for the garbage
collector to scan; a tuple of plain values costs ~0.06 µs, is what the event log stores (as
JSON) and leaves the collector nothing to scan. A run emits ~5 events per step, so the executor
emits rows, and an `Event` is built from a row only when something reads it (`event_of`).

A row is the tuple

    (event_type, step_key, timestamp, message, level, job_name, payload_kind, payload)

for one event of a run; the run id is kept beside the rows (by the sink, the chunk), not in
each. `message` is None only in rows kept for a run's result alone (see `standard_message`).
`payload_kind` is the index in `PAYLOAD_FIELDS` of the field of Event's `data` oneof that is
set, or `NO_PAYLOAD`. `payload` is that message; or, for the three payloads of every step
(output, handled output, loaded input), its field values in field order, as a tuple (a list
once read back from JSON); or its JSON object, as read back from JSON. Stored rows depend on
the order of `PAYLOAD_FIELDS` and of each message's fields, so a new one only ever goes at
the end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from time import time
from typing import Any

from dagloom.messages import (
    AssetCheckEvaluationData,
    AssetKeyMessage,
    AssetMaterializationData,
    EngineEventData,
    ErrorInfo,
    Event,
    EventType,
    HandledOutputData,
    LoadedInputData,
    LogLevel,
    MetadataValue,
    RunFailureData,
    StepExpectationResultData,
    StepFailureData,
    StepOutputData,
    StepRetryData,
    StepSkippedData,
)

EventRow = tuple[Any, ...]
"""One event of a run: see the module docstring."""

PAYLOAD_FIELDS = (
    "step_output",
    "step_failure",
    "step_retry",
    "step_skipped",
    "handled_output",
    "loaded_input",
    "asset_materialization",
    "run_failure",
    "engine_event",
    "asset_check_evaluation",
    "step_expectation_result",
)
"""The fields of Event's `data` oneof; a row's `payload_kind` is an index into this."""

NO_PAYLOAD = -1
(
    STEP_OUTPUT_DATA,
    STEP_FAILURE_DATA,
    STEP_RETRY_DATA,
    STEP_SKIPPED_DATA,
    HANDLED_OUTPUT_DATA,
    LOADED_INPUT_DATA,
    ASSET_MATERIALIZATION_DATA,
    RUN_FAILURE_DATA,
    ENGINE_EVENT_DATA,
    ASSET_CHECK_EVALUATION_DATA,
    STEP_EXPECTATION_RESULT_DATA,
) = range(len(PAYLOAD_FIELDS))
"""Payload kinds, by the field of `PAYLOAD_FIELDS` they name."""

TYPE, STEP_KEY, TIMESTAMP, MESSAGE, LEVEL, JOB_NAME, PAYLOAD_KIND, PAYLOAD = range(8)
"""Positions in a row."""

_EVENT_TYPES: dict[int, EventType] = {int(t): t for t in EventType}
_LOG_LEVELS: dict[int, LogLevel] = {int(level): level for level in LogLevel}

_new = object.__new__
# Every field of a message at its default. Building a message by copying these and setting
# what is known costs a third of the generated __init__ (tests/execution/test_event_rows.py
# checks both give equal messages).
_BLANK: dict[str, object] = dict(Event().__dict__)
_POSITIONAL_TYPES: dict[int, type[Any]] = {
    STEP_OUTPUT_DATA: StepOutputData,
    HANDLED_OUTPUT_DATA: HandledOutputData,
    LOADED_INPUT_DATA: LoadedInputData,
}
_POSITIONAL_FIELDS: dict[int, tuple[str, ...]] = {
    kind: tuple(name for name in cls.__dataclass_fields__ if not name.startswith("_"))
    for kind, cls in _POSITIONAL_TYPES.items()
}
_POSITIONAL_BLANKS: dict[int, dict[str, object]] = {
    kind: dict(cls().__dict__) for kind, cls in _POSITIONAL_TYPES.items()
}


_STEP_START = int(EventType.STEP_START)
_LOADED_INPUT = int(EventType.LOADED_INPUT)
_STEP_OUTPUT = int(EventType.STEP_OUTPUT)
_HANDLED_OUTPUT = int(EventType.HANDLED_OUTPUT)
_STEP_SUCCESS = int(EventType.STEP_SUCCESS)


def standard_message(event_type: int, step_key: str, payload: Any) -> str:
    """The message of a row given without one (None): the executor leaves out the messages of
    STEP_START, LOADED_INPUT, STEP_OUTPUT, HANDLED_OUTPUT and STEP_SUCCESS when its run's
    only sink is the `RowLog` kept for its result (`RunFacts.lazy_messages`), which makes
    them when read: ~280 bytes a step a run need not keep. The positional payloads of those
    events hold what their messages say; a STEP_SUCCESS row (of no payload kind) has its
    duration in ms as its payload until then. A row of another type gets ""."""
    if event_type == _STEP_START:
        return f'Started execution of step "{step_key}".'
    if event_type == _LOADED_INPUT:
        name, manager, upstream_step, upstream_output = payload[:4]
        return (
            f'Loaded input "{name}" using input manager "{manager}", from output '
            f'"{upstream_output}" of step "{upstream_step}"'
        )
    if event_type == _STEP_OUTPUT:
        return f'Yielded output "{payload[0]}".'
    if event_type == _HANDLED_OUTPUT:
        return f'Handled output "{payload[0]}" using IO manager "{payload[1]}"'
    if event_type == _STEP_SUCCESS:
        return f'Finished execution of step "{step_key}" in {payload:.2f}ms.'
    return ""


def row(
    event_type: EventType,
    step_key: str,
    message: str,
    level: LogLevel,
    job_name: str,
    payload_kind: int = NO_PAYLOAD,
    payload: Any = None,
) -> EventRow:
    """A row stamped now. The executor's hottest paths write the tuple out instead."""
    return (event_type, step_key, time(), message, level, job_name, payload_kind, payload)


def row_of(event: Event) -> EventRow:
    """The row of an `Event` (its `run_id` aside)."""
    fields = event.__dict__
    kind = NO_PAYLOAD
    payload = None
    for index, name in enumerate(PAYLOAD_FIELDS):
        value = fields[name]
        if value is not None:
            kind, payload = index, value
            break
    return (
        event.event_type,
        event.step_key,
        event.timestamp,
        event.message,
        event.level,
        event.job_name,
        kind,
        payload,
    )


def rows_by_run(events: Sequence[Event]) -> list[tuple[str, list[EventRow]]]:
    """`Event`s as rows, in order: one list per stretch of consecutive events of one run."""
    batches: list[tuple[str, list[EventRow]]] = []
    for event in events:
        if not batches or batches[-1][0] != event.run_id:
            batches.append((event.run_id, []))
        batches[-1][1].append(row_of(event))
    return batches


def event_of(run_id: str, row: Sequence[Any]) -> Event:
    """The `Event` a row stands for, in run `run_id`."""
    made = _new(Event)
    fields = _BLANK.copy()
    fields["run_id"] = run_id
    fields["event_type"] = _EVENT_TYPES.get(row[TYPE], EventType.UNSPECIFIED)
    fields["step_key"] = row[STEP_KEY]
    fields["timestamp"] = row[TIMESTAMP]
    fields["message"] = row[MESSAGE]
    fields["level"] = _LOG_LEVELS.get(row[LEVEL], LogLevel.UNSPECIFIED)
    fields["job_name"] = row[JOB_NAME]
    kind = row[PAYLOAD_KIND]
    if kind != NO_PAYLOAD:
        fields[PAYLOAD_FIELDS[kind]] = payload_message(kind, row[PAYLOAD])
    made.__dict__ = fields
    return made


def payload_message(kind: int, payload: Any) -> Any:
    """The message of a row's payload, given in any of its forms (see the module docstring)."""
    if isinstance(payload, tuple | list):
        made = _new(_POSITIONAL_TYPES[kind])
        fields = _POSITIONAL_BLANKS[kind].copy()
        fields.update(zip(_POSITIONAL_FIELDS[kind], payload, strict=False))
        metadata = fields.get("metadata")
        if (
            isinstance(metadata, dict)
            and metadata
            and not isinstance(next(iter(metadata.values())), MetadataValue)
        ):
            fields["metadata"] = _metadata(metadata)  # read back from JSON
        made.__dict__ = fields
        return made
    if isinstance(payload, dict):
        return PAYLOAD_FROM_JSON[kind](payload)
    return payload


def loaded_row(row: Sequence[Any]) -> EventRow:
    """A row as read back from JSON, with its payload a message again (a positional payload
    stays as it is)."""
    kind = row[PAYLOAD_KIND]
    payload = row[PAYLOAD]
    if isinstance(payload, dict):
        return (*row[:PAYLOAD], PAYLOAD_FROM_JSON[kind](payload))
    return tuple(row)


# -- payloads from JSON (orjson writes a message as an object of all its fields) -------------


def _asset_key(data: Mapping[str, Any] | None) -> AssetKeyMessage | None:
    return None if data is None else AssetKeyMessage(path=data["path"])


def _error(data: Mapping[str, Any] | None) -> ErrorInfo | None:
    if data is None:
        return None
    return ErrorInfo(
        cls_name=data["cls_name"],
        message=data["message"],
        stack=data["stack"],
        cause=_error(data["cause"]),
    )


def _metadata(data: Mapping[str, Mapping[str, Any]]) -> dict[str, MetadataValue]:
    out: dict[str, MetadataValue] = {}
    for key, value in data.items():
        fields = {name: item for name, item in value.items() if item is not None}
        if "asset" in fields:
            fields["asset"] = _asset_key(fields["asset"])
        out[key] = MetadataValue(**fields)
    return out


def _step_output(d: Mapping[str, Any]) -> StepOutputData:
    return StepOutputData(
        output_name=d["output_name"],
        mapping_key=d["mapping_key"],
        metadata=_metadata(d.get("metadata") or {}),
    )


def _expectation(d: Mapping[str, Any]) -> StepExpectationResultData:
    return StepExpectationResultData(
        success=d["success"],
        label=d["label"],
        description=d["description"],
        metadata=_metadata(d["metadata"]),
    )


def _step_failure(d: Mapping[str, Any]) -> StepFailureData:
    return StepFailureData(
        error=_error(d["error"]), user_failure=d["user_failure"], metadata=_metadata(d["metadata"])
    )


def _step_retry(d: Mapping[str, Any]) -> StepRetryData:
    return StepRetryData(
        attempt=d["attempt"],
        max_retries=d["max_retries"],
        delay_seconds=d["delay_seconds"],
        error=_error(d["error"]),
    )


def _materialization(d: Mapping[str, Any]) -> AssetMaterializationData:
    return AssetMaterializationData(
        asset_key=_asset_key(d["asset_key"]),
        metadata=_metadata(d["metadata"]),
        partition=d["partition"],
        description=d["description"],
        tags=d.get("tags") or {},
    )


def _run_failure(d: Mapping[str, Any]) -> RunFailureData:
    return RunFailureData(failed_step_keys=d["failed_step_keys"], error=_error(d["error"]))


def _engine_event(d: Mapping[str, Any]) -> EngineEventData:
    return EngineEventData(metadata=_metadata(d["metadata"]), error=_error(d["error"]))


def _check_evaluation(d: Mapping[str, Any]) -> AssetCheckEvaluationData:
    return AssetCheckEvaluationData(
        asset_key=_asset_key(d["asset_key"]),
        check_name=d["check_name"],
        passed=d["passed"],
        severity=d["severity"],
        metadata=_metadata(d["metadata"]),
        description=d["description"],
        blocking=d["blocking"],
        partition=d["partition"],
    )


PAYLOAD_FROM_JSON: tuple[Callable[[Mapping[str, Any]], Any], ...] = (
    _step_output,
    _step_failure,
    _step_retry,
    lambda d: StepSkippedData(**d),
    lambda d: HandledOutputData(**d),
    lambda d: LoadedInputData(**d),
    _materialization,
    _run_failure,
    _engine_event,
    _check_evaluation,
    _expectation,
)
"""In `PAYLOAD_FIELDS` order: each rebuilds a payload message from its JSON object."""
