"""DagsterEvent and DagsterEventType: a run's events as Dagster's API shows them to user code.

The executor records rows (`dagloom.messages.rows`); a result builds an `Event` message from
a row, and a `DagsterEvent` around that message, only when user code reads its events. The
view adds Dagster's names (`event_type` as a DagsterEventType, `is_step_success`,
`materialization`, ...) and hands out every field of the message as well
(`event.step_failure.error`, `event.timestamp`), so code written against either keeps working.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.metadata import metadata_values_of
from dagloom.definitions.outputs import (
    AssetMaterialization,
    AssetObservation,
    ExpectationResult,
)
from dagloom.execution.plan import split_step_key
from dagloom.messages import (
    AssetMaterializationData,
    ErrorInfo,
    Event,
    EventType,
    StepExpectationResultData,
    StepFailureData,
    StepOutputData,
)
from dagloom.messages.rows import PAYLOAD_FIELDS


class DagsterEventType(enum.StrEnum):
    """The kind of a run's event, named as Dagster names it (`STEP_SUCCESS`, ...).

    A member equals the `dagloom.messages.EventType` of the same name, and hashes as it, so
    code comparing events, or keying dicts by their types, with either enum reads the same.
    (It also equals its name as a string, but does not hash as one.)
    """

    RUN_ENQUEUED = "RUN_ENQUEUED"
    RUN_DEQUEUED = "RUN_DEQUEUED"
    RUN_STARTING = "RUN_STARTING"
    RUN_START = "RUN_START"
    RUN_SUCCESS = "RUN_SUCCESS"
    RUN_FAILURE = "RUN_FAILURE"
    RUN_CANCELING = "RUN_CANCELING"
    RUN_CANCELED = "RUN_CANCELED"
    STEP_START = "STEP_START"
    STEP_OUTPUT = "STEP_OUTPUT"
    STEP_SUCCESS = "STEP_SUCCESS"
    STEP_FAILURE = "STEP_FAILURE"
    STEP_UP_FOR_RETRY = "STEP_UP_FOR_RETRY"
    STEP_RESTARTED = "STEP_RESTARTED"
    STEP_SKIPPED = "STEP_SKIPPED"
    HANDLED_OUTPUT = "HANDLED_OUTPUT"
    LOADED_INPUT = "LOADED_INPUT"
    ASSET_MATERIALIZATION = "ASSET_MATERIALIZATION"
    ASSET_OBSERVATION = "ASSET_OBSERVATION"
    ENGINE_EVENT = "ENGINE_EVENT"
    LOG_MESSAGE = "LOG_MESSAGE"
    STEP_EXPECTATION_RESULT = "STEP_EXPECTATION_RESULT"
    HOOK_COMPLETED = "HOOK_COMPLETED"
    ASSET_CHECK_EVALUATION = "ASSET_CHECK_EVALUATION"
    HOOK_ERRORED = "HOOK_ERRORED"
    HOOK_SKIPPED = "HOOK_SKIPPED"
    UNSPECIFIED = "UNSPECIFIED"

    # Dagster's aliases for the run events.
    PIPELINE_SUCCESS = "RUN_SUCCESS"
    PIPELINE_FAILURE = "RUN_FAILURE"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventType):
            return self.value == other.name
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(EventType[self.value])

    @classmethod
    def of(cls, event_type: EventType | DagsterEventType | str) -> DagsterEventType:
        """The member for a message's EventType, a member, or a name."""
        if isinstance(event_type, DagsterEventType):
            return event_type
        if isinstance(event_type, EventType):
            return _BY_NAME.get(event_type.name or "", cls.UNSPECIFIED)
        return cls(event_type)


_BY_NAME: dict[str, DagsterEventType] = {member.value: member for member in DagsterEventType}

_FAILURES = frozenset({DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE})


@dataclass(frozen=True, slots=True)
class StepMaterializationData:
    """What an ASSET_MATERIALIZATION event carries: the materialization."""

    materialization: AssetMaterialization


@dataclass(frozen=True, slots=True)
class AssetObservationData:
    """What an ASSET_OBSERVATION event carries: the observation."""

    asset_observation: AssetObservation


@dataclass(frozen=True, slots=True)
class UserFailureData:
    """What a `Failure` raised by user code said: its description and typed metadata."""

    description: str | None
    metadata: dict[str, Any]


class StepFailureView:
    """A STEP_FAILURE event's payload as Dagster reads it: `error` (class name, message,
    stack, cause) and `user_failure_data` (None unless user code raised `Failure`); other
    attributes are the stored message's."""

    __slots__ = ("_data",)

    def __init__(self, data: StepFailureData) -> None:
        self._data = data

    @property
    def error(self) -> ErrorInfo | None:
        return self._data.error

    @property
    def user_failure_data(self) -> UserFailureData | None:
        data = self._data
        if not data.user_failure:
            return None
        message = data.error.message if data.error is not None else ""
        return UserFailureData(message or None, metadata_values_of(data.metadata))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)


class StepOutputView:
    """A STEP_OUTPUT event's payload as Dagster reads it: `output_name`, `mapping_key`
    (None unless a dynamic output's) and `metadata` as typed values."""

    __slots__ = ("_data",)

    def __init__(self, data: StepOutputData) -> None:
        self._data = data

    @property
    def output_name(self) -> str:
        return self._data.output_name

    @property
    def mapping_key(self) -> str | None:
        return self._data.mapping_key or None

    @property
    def metadata(self) -> dict[str, Any]:
        return metadata_values_of(self._data.metadata)


@dataclass(frozen=True, slots=True)
class StepExpectationResultView:
    """A STEP_EXPECTATION_RESULT event's payload: the `expectation_result`."""

    expectation_result: ExpectationResult


def expectation_result_of(data: StepExpectationResultData) -> ExpectationResult:
    """An expectation payload as the ExpectationResult user code built, its metadata as
    typed values."""
    return ExpectationResult(
        success=data.success,
        label=data.label or None,
        description=data.description or None,
        metadata=metadata_values_of(data.metadata),
    )


def observation_of(data: AssetMaterializationData) -> AssetObservation:
    """An observation payload as the AssetObservation user code built, its metadata as
    typed values."""
    key = AssetKey(list(data.asset_key.path)) if data.asset_key is not None else AssetKey([])
    metadata = metadata_values_of(data.metadata)
    return AssetObservation(
        key, data.description or None, metadata, data.partition or None, dict(data.tags) or None
    )


def materialization_of(data: AssetMaterializationData) -> AssetMaterialization:
    """A materialization payload as the AssetMaterialization user code built, its metadata
    as typed values (`metadata["rows"].value`)."""
    key = AssetKey(list(data.asset_key.path)) if data.asset_key is not None else AssetKey([])
    metadata = metadata_values_of(data.metadata)
    return AssetMaterialization(
        key, data.description or None, metadata, data.partition or None, dict(data.tags) or None
    )


class DagsterEvent:
    """One event of a run, read through Dagster's names; any other attribute is the
    underlying `Event` message's field of that name."""

    __slots__ = ("_event",)

    def __init__(self, event: Event) -> None:
        self._event = event

    @property
    def event(self) -> Event:
        """The wire message this view reads."""
        return self._event

    @property
    def event_type(self) -> DagsterEventType:
        return DagsterEventType.of(self._event.event_type)

    @property
    def event_type_value(self) -> str:
        return self.event_type.value

    @property
    def step_key(self) -> str | None:
        return self._event.step_key or None

    @property
    def node_name(self) -> str | None:
        """The op (node) the event is about; for a mapped step, its node without the key."""
        step_key = self._event.step_key
        return split_step_key(step_key)[0] if step_key else None

    @property
    def job_name(self) -> str:
        return self._event.job_name

    @property
    def message(self) -> str:
        return self._event.message

    @property
    def is_step_event(self) -> bool:
        return bool(self._event.step_key)

    @property
    def is_step_start(self) -> bool:
        return self.event_type == DagsterEventType.STEP_START

    @property
    def is_step_success(self) -> bool:
        return self.event_type == DagsterEventType.STEP_SUCCESS

    @property
    def is_step_failure(self) -> bool:
        return self.event_type == DagsterEventType.STEP_FAILURE

    @property
    def is_step_skipped(self) -> bool:
        return self.event_type == DagsterEventType.STEP_SKIPPED

    @property
    def is_step_up_for_retry(self) -> bool:
        return self.event_type == DagsterEventType.STEP_UP_FOR_RETRY

    @property
    def is_successful_output(self) -> bool:
        return self.event_type == DagsterEventType.STEP_OUTPUT

    @property
    def is_handled_output(self) -> bool:
        return self.event_type == DagsterEventType.HANDLED_OUTPUT

    @property
    def is_loaded_input(self) -> bool:
        return self.event_type == DagsterEventType.LOADED_INPUT

    @property
    def is_step_materialization(self) -> bool:
        return self.event_type == DagsterEventType.ASSET_MATERIALIZATION

    @property
    def is_asset_materialization(self) -> bool:
        return self.event_type == DagsterEventType.ASSET_MATERIALIZATION

    @property
    def is_run_success(self) -> bool:
        return self.event_type == DagsterEventType.RUN_SUCCESS

    @property
    def is_run_failure(self) -> bool:
        return self.event_type == DagsterEventType.RUN_FAILURE

    @property
    def is_failure(self) -> bool:
        """A step's or the run's failure."""
        return self.event_type in _FAILURES

    @property
    def is_engine_event(self) -> bool:
        return self.event_type == DagsterEventType.ENGINE_EVENT

    @property
    def is_asset_observation(self) -> bool:
        return self.event_type == DagsterEventType.ASSET_OBSERVATION

    @property
    def materialization(self) -> AssetMaterialization:
        """The materialization of an ASSET_MATERIALIZATION event; other events raise
        AttributeError."""
        data = self._event.asset_materialization
        if data is None or not self.is_asset_materialization:
            raise AttributeError(f"a {self.event_type_value} event has no materialization")
        return materialization_of(data)

    @property
    def asset_observation_data(self) -> AssetObservationData:
        """The observation of an ASSET_OBSERVATION event (`.asset_observation`); other
        events raise AttributeError."""
        data = self._event.asset_materialization
        if data is None or not self.is_asset_observation:
            raise AttributeError(f"a {self.event_type_value} event has no observation")
        return AssetObservationData(observation_of(data))

    @property
    def step_failure_data(self) -> StepFailureView:
        """The failure of a STEP_FAILURE event; other events raise AttributeError."""
        data = self._event.step_failure
        if data is None:
            raise AttributeError(f"a {self.event_type_value} event has no step failure data")
        return StepFailureView(data)

    @property
    def step_output_data(self) -> StepOutputView:
        """The output (`output_name`, `mapping_key`, `metadata`) of a STEP_OUTPUT event."""
        data = self._event.step_output
        if data is None:
            raise AttributeError(f"a {self.event_type_value} event has no step output data")
        return StepOutputView(data)

    @property
    def is_expectation_result(self) -> bool:
        return self.event_type == DagsterEventType.STEP_EXPECTATION_RESULT

    @property
    def step_expectation_result_data(self) -> StepExpectationResultView:
        """The `expectation_result` of a STEP_EXPECTATION_RESULT event; other events raise
        AttributeError."""
        data = self._event.step_expectation_result
        if data is None:
            raise AttributeError(f"a {self.event_type_value} event has no expectation result")
        return StepExpectationResultView(expectation_result_of(data))

    @property
    def expectation_result(self) -> ExpectationResult:
        return self.step_expectation_result_data.expectation_result

    @property
    def step_materialization_data(self) -> StepMaterializationData:
        return StepMaterializationData(self.materialization)

    @property
    def asset_key(self) -> AssetKey | None:
        """The asset a materialization or observation is of; None for other events."""
        data = self._event.asset_materialization
        if data is None or data.asset_key is None:
            return None
        return AssetKey(list(data.asset_key.path))

    @property
    def partition(self) -> str | None:
        data = self._event.asset_materialization
        return (data.partition or None) if data is not None else None

    @property
    def event_specific_data(self) -> Any:
        """The payload particular to this kind of event: StepMaterializationData for a
        materialization, AssetObservationData for an observation, else the message's payload
        (StepFailureData with `.error`, ...), or None."""
        event = self._event
        if event.step_failure is not None:
            return StepFailureView(event.step_failure)
        if event.asset_materialization is not None:
            if self.is_asset_observation:
                return self.asset_observation_data
            return self.step_materialization_data
        if event.step_output is not None:
            return StepOutputView(event.step_output)
        if event.step_expectation_result is not None:
            return StepExpectationResultView(expectation_result_of(event.step_expectation_result))
        for name in PAYLOAD_FIELDS:
            value = getattr(event, name)
            if value is not None:
                return value
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._event, name)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its message: unpickling field by field would ask `__getattr__` for
        # `_event` before it is set, which recurses.
        return (DagsterEvent, (self._event,))

    def __bytes__(self) -> bytes:
        return bytes(self._event)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DagsterEvent):
            return self._event == other._event
        return self._event == other

    def __hash__(self) -> int:
        return id(self._event)

    def __repr__(self) -> str:
        return f"<DagsterEvent {self.event_type_value} step={self.step_key!r}>"


__all__ = [
    "AssetObservationData",
    "DagsterEvent",
    "DagsterEventType",
    "StepFailureView",
    "StepMaterializationData",
    "UserFailureData",
    "materialization_of",
    "observation_of",
]
