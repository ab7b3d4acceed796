"""The exceptions dagloom raises: one root, each carrying the fields that say what went wrong.

DagloomError
├── DefinitionError          a definition is malformed (cycle, missing input, duplicate name)
│   ├── DagloomInvalidSelectionError   an asset selection names something that is not there
│   ├── CodeLocationLoadError          user code did not import, or has no one Definitions
│   ├── DagsterInvalidDefinitionError  Dagster's name: a definition Dagster would reject
│   └── DagsterInvalidInvocationError  Dagster's name: a definition called in a way Dagster
│                                      rejects (bad arguments, a graph called outside one)
│       └── DagsterUnknownPartitionError  a partition key or range the definition lacks
├── ConfigError              config does not match its schema (file, key path, expected)
│   └── DagsterInvalidConfigError      Dagster's name: run or definition config is invalid
├── UserCodeError            user code raised; wraps the original as __cause__
│   └── UserCodeTimeoutError   user code did not finish in time and was stopped
├── Failure                  raised BY user code to fail a step on purpose, with metadata
├── RetryRequested           raised BY user code to ask for the step to run again
├── DagsterTypeCheckDidNotPass   an op's input or output failed its DagsterType's check
├── DagloomExecutionError    a run could not be executed (raised only when asked to raise)
├── RunNotFoundError         no run with that id
├── RunClaimRefusedError     a stored run could not be claimed for execution: it moved on
├── LeaseLostError           a write under a storage lease another owner has taken since
├── SnapshotMismatchError    a worker's loaded code is not the code a run was validated against
├── StorageError             storage unreachable, corrupt, or of an unknown schema
│   ├── StorageUnavailableError   a fault that may pass: connection lost, locked, disk full
│   └── SchemaVersionError   the database's schema is newer or older than this code knows
├── ActorUnavailableError    a remote actor did not answer
├── AuthenticationError      no credential, or one that is unknown, expired or revoked
├── PermissionDeniedError    the caller's role does not allow the operation
├── AssetReportError         an asset event reported from outside a run is malformed
└── ObjectStoreError         an object store (S3, GCS, Azure) refused or failed a read or write
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagloom.messages import RunStatus


class DagloomError(Exception):
    """The root of every error dagloom raises on purpose."""


DagsterError = DagloomError
"""Dagster's name for the root of its errors: `except DagsterError` catches every error
dagloom raises on purpose."""


class DefinitionError(DagloomError):
    """A definition is malformed; `name` is the definition at fault, when there is one."""

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class DagloomInvalidSelectionError(DefinitionError):
    """An asset selection or step selection names keys that do not exist."""


def format_key_path(path: Sequence[str | int]) -> str:
    """Render a key path as `ops.my_op.config.limit` (list indexes as `[2]`)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "<root>"


class ConfigError(DagloomError):
    """Config failed validation. Each problem names its key path; `source` names the file."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        problems: Sequence[tuple[Sequence[str | int], str]] = (),
    ) -> None:
        self.source = source
        self.problems = [(tuple(path), text) for path, text in problems]
        lines = [message if source is None else f"{source}: {message}"]
        lines += [f"  at {format_key_path(path)}: {text}" for path, text in self.problems]
        super().__init__("\n".join(lines))

    @property
    def key_paths(self) -> list[str]:
        """Every failing key path, rendered, in the order reported."""
        return [format_key_path(path) for path, _ in self.problems]


class DagsterInvalidDefinitionError(DefinitionError):
    """A definition used in a way Dagster rejects (a malformed config schema, a bad
    `@definitions` function); raised under Dagster's name so code catching it keeps working."""


class DagsterInvalidInvocationError(DefinitionError):
    """A definition called in a way Dagster rejects: an op or asset called directly (as a unit
    test does) with too many, unknown or missing inputs, config or resources; a hook given
    arguments it does not take; a graph called outside a composition. `name` is the
    definition."""


class DagsterInvalidConfigError(ConfigError):
    """Run config or a definition's config failed validation, raised where Dagster raises
    this class: `execute_in_process`, `materialize`, `validate_run_config`, and the config
    types' own checks. `problems` and `key_paths` name every failing key."""

    @property
    def errors(self) -> list[str]:
        """Each problem as `key.path: text`, in the order reported."""
        return [f"{format_key_path(path)}: {text}" for path, text in self.problems]


class UserCodeError(DagloomError):
    """User code raised while dagloom called it; the original exception is `__cause__`."""

    def __init__(self, message: str, *, step_key: str | None = None) -> None:
        super().__init__(message)
        self.step_key = step_key


class UserCodeTimeoutError(UserCodeError):
    """User code ran past its timeout and the process running it was killed; `kind` and
    `name` say which definition, `timeout_seconds` what it was allowed."""

    def __init__(self, message: str, *, kind: str, name: str, timeout_seconds: float) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.timeout_seconds = timeout_seconds


class Failure(DagloomError):
    """Raise from an op to fail its step with a description and metadata; it is not retried
    unless `allow_retries` is true."""

    def __init__(
        self,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        allow_retries: bool | None = None,
    ) -> None:
        super().__init__(description or "")
        self.description = description
        self.metadata = dict(metadata or {})
        self.allow_retries = bool(allow_retries)


class RetryRequested(DagloomError):
    """Raise from an op to have its step run again, up to `max_retries` times, after
    `seconds_to_wait`."""

    def __init__(self, max_retries: int | None = 1, seconds_to_wait: float | int = 0) -> None:
        super().__init__(f"retry requested (max_retries={max_retries})")
        self.max_retries = 1 if max_retries is None else max_retries
        self.seconds_to_wait = float(seconds_to_wait)


class DagsterTypeCheckDidNotPass(DagloomError):
    """A value did not pass the type check of the DagsterType declared for an op's input or
    output: the step fails with this error (and `execute_in_process` raises it).

    `description` and `metadata` come from the failed `TypeCheck`; `dagster_type` is the
    type; `step_key` and `name` (`input "x"` / `output "result"`) say where it was checked.
    """

    def __init__(
        self,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        dagster_type: Any = None,
        *,
        step_key: str | None = None,
    ) -> None:
        super().__init__(description or "type check did not pass")
        self.description = description
        self.metadata = dict(metadata or {})
        self.dagster_type = dagster_type
        self.step_key = step_key


class DagloomExecutionError(DagloomError):
    """A run failed and the caller asked for failures to raise (`raise_on_error=True`)."""

    def __init__(self, message: str, *, run_id: str, step_key: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.step_key = step_key


class RunNotFoundError(DagloomError):
    """No run with this id is stored."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class RunClaimRefusedError(DagloomError):
    """Storage refused to move run `run_id` to STARTED for this executor: `status` is the
    stored status that won (another executor claimed it first, or it was canceled or
    finished), so this executor must not execute it."""

    def __init__(self, run_id: str, status: RunStatus) -> None:
        super().__init__(
            f"run {run_id} was not claimed for execution: storage refused {status.name} -> STARTED"
        )
        self.run_id = run_id
        self.status = status


class LeaseLostError(DagloomError):
    """A write made under lease `name` with fencing token `token` was refused: the lease has
    since passed to another owner (whose token is `current`), so this holder must stop
    acting under it."""

    def __init__(self, name: str, token: int, current: int | None) -> None:
        super().__init__(
            f"lease {name!r} was lost: this holder's fencing token is {token}, "
            f"the lease's is now {current if current is not None else 'gone'}"
        )
        self.name = name
        self.token = token
        self.current = current


class SnapshotMismatchError(DagloomError):
    """The job a worker would execute is not the one the run was validated against.

    `expected` is the job snapshot id stored on the run, `actual` the one of the job the
    worker's loaded code gives (after reloading it, where the worker can).
    """

    def __init__(self, *, location: str, job_name: str, expected: str, actual: str) -> None:
        super().__init__(
            f"job {job_name!r} of code location {location!r} was validated as job snapshot "
            f"{expected} but the loaded code has job snapshot {actual}; the code changed "
            "after the run was submitted"
        )
        self.location = location
        self.job_name = job_name
        self.expected = expected
        self.actual = actual


class StorageError(DagloomError):
    """Storage could not be opened or used; `location` says which database and `operation`
    what was being done ("writing", "reading", ...), when known.

    Every fault of a storage backend reaches callers as one of these, raised from the driver's
    own exception, never as the driver's exception itself.
    """

    def __init__(
        self, message: str, *, location: str | None = None, operation: str | None = None
    ) -> None:
        super().__init__(message if location is None else f"{location}: {message}")
        self.location = location
        self.operation = operation


class StorageUnavailableError(StorageError):
    """A storage fault that may pass if the operation is tried again: the connection was
    lost, the database stayed locked past its timeout, the disk was full.

    Storage retries these itself for a bounded time before raising one; a caller that gets
    one knows that time has passed.
    """


class SchemaVersionError(StorageError):
    """The database schema version is not one this code can use as it is."""

    def __init__(self, message: str, *, location: str | None, found: int, expected: int) -> None:
        super().__init__(message, location=location)
        self.found = found
        self.expected = expected


class ActorUnavailableError(DagloomError):
    """A remote actor did not answer; `actor` names it and `address` where it was sought."""

    def __init__(self, message: str, *, actor: str, address: str | None = None) -> None:
        super().__init__(message)
        self.actor = actor
        self.address = address


class CodeLocationLoadError(DefinitionError):
    """User code could not be loaded: importing it raised, or it exposes no usable (or more
    than one) Definitions.

    `location` names the file or module; `traceback_text` is the formatted traceback of what
    user code raised (empty when nothing raised). The exception raised is `__cause__`.
    """

    def __init__(self, message: str, *, location: str, traceback_text: str = "") -> None:
        super().__init__(message, name=location)
        self.location = location
        self.traceback_text = traceback_text


class AuthenticationError(DagloomError):
    """The caller could not be identified: no token, or one that is malformed, unknown,
    expired or revoked. `reason` is the short cause ("missing", "expired", ...); the message
    never contains the credential itself."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class PermissionDeniedError(DagloomError):
    """The caller is known but its role does not allow `operation`."""

    def __init__(self, message: str, *, operation: str, role: str, user: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.role = role
        self.user = user


class DagsterUnknownPartitionError(DagsterInvalidInvocationError):
    """A partition key (or an end of a partition range) is not a partition of the asset or
    job it was given for, or a range is reversed; `name` is the key at fault."""


class ObjectStoreError(DagloomError):
    """Reading or writing an object failed: a missing bucket or object, refused
    credentials, an unreachable endpoint, or a value that cannot be stored. `uri`
    (`s3://bucket/key`), `bucket` and `key` name the object."""

    def __init__(self, message: str, *, bucket: str, key: str, uri: str) -> None:
        super().__init__(message)
        self.bucket = bucket
        self.key = key
        self.uri = uri


class AssetReportError(DagloomError):
    """An asset event reported from outside a run (CLI, REST, GraphQL) is malformed; the
    message names the field, `asset_key` the asset (`a/b`) when known."""

    def __init__(self, message: str, *, asset_key: str | None = None) -> None:
        super().__init__(message)
        self.asset_key = asset_key
