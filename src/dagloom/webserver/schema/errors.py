"""The GraphQL error types, with Dagster's names and interfaces, so clients written for
Dagster's API recognise them (`PythonError`, `RunNotFoundError`, `PipelineNotFoundError`,
`RunConfigValidationInvalid`, …)."""

from __future__ import annotations

import enum
import traceback

import strawberry

from dagloom.messages import ErrorInfo
from dagloom.messages.rpc import ConfigProblem
from dagloom.webserver.schema._unions import named_union


@strawberry.interface(description="Anything that went wrong, with a human-readable message.")
class Error:
    message: str


@strawberry.type
class PythonError(Error):
    """An error raised while answering; `stack` holds the traceback lines."""

    className: str | None = None
    stack: list[str] = strawberry.field(default_factory=list)
    cause: PythonError | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> PythonError:
        return cls(
            message=str(exc) or type(exc).__name__,
            className=type(exc).__name__,
            stack=traceback.format_tb(exc.__traceback__),
        )

    @classmethod
    def from_info(cls, info: ErrorInfo) -> PythonError:
        return cls(
            message=info.message,
            className=info.cls_name or None,
            stack=info.stack.splitlines(keepends=True) if info.stack else [],
            cause=cls.from_info(info.cause) if info.cause is not None else None,
        )


@strawberry.type
class UnauthorizedError(Error):
    pass


@strawberry.interface
class PipelineRunNotFoundError(Error):
    runId: str


@strawberry.type
class RunNotFoundError(PipelineRunNotFoundError):
    @classmethod
    def of(cls, run_id: str) -> RunNotFoundError:
        return cls(runId=run_id, message=f"Run {run_id} could not be found.")


@strawberry.type
class PipelineNotFoundError(Error):
    pipelineName: str
    repositoryName: str
    repositoryLocationName: str


@strawberry.type
class RepositoryNotFoundError(Error):
    repositoryName: str
    repositoryLocationName: str


@strawberry.type
class RepositoryLocationNotFound(Error):
    pass


@strawberry.type
class ReloadNotSupported(Error):
    pass


@strawberry.type
class InvalidStepError:
    invalidStepKey: str


@strawberry.type
class InvalidOutputError:
    stepKey: str
    invalidOutputName: str


@strawberry.type
class InvalidSubsetError(Error):
    pass


@strawberry.type
class PresetNotFoundError(Error):
    preset: str


@strawberry.type
class ConflictingExecutionParamsError(Error):
    pass


@strawberry.type
class NoModeProvidedError(Error):
    pipelineName: str


@strawberry.interface
class PipelineRunConflict(Error):
    pass


@strawberry.type
class RunConflict(PipelineRunConflict):
    pass


@strawberry.type
class ReexecutionNotPossibleError(Error):
    """A run cannot be re-executed as asked (from failure, when it did not fail)."""


@strawberry.type
class ScheduleNotFoundError(Error):
    scheduleName: str


@strawberry.type
class SensorNotFoundError(Error):
    sensorName: str


@strawberry.enum
class EvaluationErrorReason(enum.Enum):
    RUNTIME_TYPE_MISMATCH = "RUNTIME_TYPE_MISMATCH"
    MISSING_REQUIRED_FIELD = "MISSING_REQUIRED_FIELD"
    MISSING_REQUIRED_FIELDS = "MISSING_REQUIRED_FIELDS"
    FIELD_NOT_DEFINED = "FIELD_NOT_DEFINED"
    FIELDS_NOT_DEFINED = "FIELDS_NOT_DEFINED"
    SELECTOR_FIELD_ERROR = "SELECTOR_FIELD_ERROR"


@strawberry.type
class EvaluationStackPathEntry:
    fieldName: str


@strawberry.type
class EvaluationStackListItemEntry:
    listIndex: int


EvaluationStackEntry = named_union(
    "EvaluationStackEntry", (EvaluationStackPathEntry, EvaluationStackListItemEntry)
)


@strawberry.type
class EvaluationStack:
    entries: list[EvaluationStackEntry]  # type: ignore[valid-type]


@strawberry.interface
class PipelineConfigValidationError:
    message: str
    path: list[str]
    stack: EvaluationStack
    reason: EvaluationErrorReason


@strawberry.type
class RuntimeMismatchConfigError(PipelineConfigValidationError):
    valueRep: str | None = None


@strawberry.type
class MissingFieldConfigError(PipelineConfigValidationError):
    pass


@strawberry.type
class FieldNotDefinedConfigError(PipelineConfigValidationError):
    fieldName: str


CONFIG_ERROR_TYPES = (
    RuntimeMismatchConfigError,
    MissingFieldConfigError,
    FieldNotDefinedConfigError,
)
"""Reached only through `PipelineConfigValidationError`: the schema lists them itself."""


def _path_parts(key_path: str) -> list[str]:
    """`ops.a.config.values[2]` as ["ops", "a", "config", "values", "2"]."""
    parts: list[str] = []
    for piece in key_path.split("."):
        head, _, rest = piece.partition("[")
        if head:
            parts.append(head)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(index)
            rest = rest.lstrip("[")
    return [p for p in parts if p and p != "<root>"]


def config_error(problem: ConfigProblem) -> PipelineConfigValidationError:
    """One run-config problem as the Dagster config error type its text describes."""
    path = _path_parts(problem.key_path)
    entries: list[EvaluationStackPathEntry | EvaluationStackListItemEntry] = [
        EvaluationStackListItemEntry(listIndex=int(p))
        if p.isdigit()
        else EvaluationStackPathEntry(fieldName=p)
        for p in path
    ]
    stack = EvaluationStack(entries=entries)
    message = f"{problem.key_path}: {problem.message}" if problem.key_path else problem.message
    text = problem.message.lower()
    if "required" in text or "missing" in text:
        return MissingFieldConfigError(
            message=message,
            path=path,
            stack=stack,
            reason=EvaluationErrorReason.MISSING_REQUIRED_FIELD,
        )
    if "not permitted" in text or "not defined" in text or "extra" in text or "unknown" in text:
        return FieldNotDefinedConfigError(
            message=message,
            path=path,
            stack=stack,
            reason=EvaluationErrorReason.FIELD_NOT_DEFINED,
            fieldName=path[-1] if path else "",
        )
    return RuntimeMismatchConfigError(
        message=message, path=path, stack=stack, reason=EvaluationErrorReason.RUNTIME_TYPE_MISMATCH
    )


@strawberry.interface
class PipelineConfigValidationInvalid:
    pipelineName: str
    errors: list[PipelineConfigValidationError]


@strawberry.type
class RunConfigValidationInvalid(PipelineConfigValidationInvalid):
    pass


@strawberry.type
class PipelineConfigValidationValid:
    pipelineName: str
