"""Sensors: `SensorDefinition`, the `@sensor` decorator, and their evaluation context.

A sensor is polled by the daemon every `minimum_interval_seconds` at most; on each tick its
function looks at the world and requests runs, skips, or moves its cursor. `evaluate_tick` is
the pure, sync entry point the daemon and code location call: it runs user code and turns
whatever it produced into a `SensorExecutionData`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import FunctionType
from typing import Any, overload

from dagloom.definitions._instigator import (
    HasName,
    InstigatorContext,
    call_user_function,
    check_one_target,
    invoke_directly,
    is_job_like,
    job_name_of,
    normalize_tags,
    resource_keys_used,
    validate_name,
)
from dagloom.definitions.run_request import RunRequest, SensorResult, SkipReason
from dagloom.errors import DefinitionError
from dagloom.execution.boundary import user_code

__all__ = [
    "DEFAULT_SENSOR_INTERVAL_SECONDS",
    "SENSOR_NAME_TAG",
    "DefaultSensorStatus",
    "SensorDefinition",
    "SensorEvaluationContext",
    "SensorExecutionData",
    "build_sensor_context",
    "sensor",
]

# Dagster's default: often enough to feel live, rare enough that polling stays cheap.
DEFAULT_SENSOR_INTERVAL_SECONDS = 30
SENSOR_NAME_TAG = "dagloom/sensor_name"
_EMPTY_RESULT = "Sensor function returned an empty result"

SensorEvaluationFunction = Callable[..., Any]
"""`(context) -> RunRequest | SkipReason | SensorResult | list | iterator of those | None`."""


class DefaultSensorStatus(Enum):
    """Whether a sensor runs as soon as it is loaded (before anyone toggles it)."""

    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


@dataclass(frozen=True, slots=True)
class SensorExecutionData:
    """The outcome of one sensor tick: runs to request or why none were, and the cursor to
    store for the next tick."""

    run_requests: list[RunRequest]
    skip_message: str | None = None
    cursor: str | None = None
    # Add/DeleteDynamicPartitionsRequests of a SensorResult, applied before the runs
    dynamic_partitions_requests: tuple[Any, ...] = ()


class SensorEvaluationContext(InstigatorContext):
    """What a sensor function sees on a tick.

    `cursor` is the value stored by the previous tick (None at first); `update_cursor` sets
    the value to store after this one. `last_tick_completion_time` (a POSIX timestamp) and
    `last_run_key` describe the previous tick. `instance` is the dagloom instance, or None in
    tests. `resources` gives attribute access to the resources given to the context.
    """

    __slots__ = (
        "_cursor",
        "_cursor_updated",
        "_last_run_key",
        "_last_sensor_start_time",
        "_last_tick_completion_time",
        "_repository_def",
        "_repository_name",
        "_sensor_name",
    )

    def __init__(
        self,
        *,
        cursor: str | None = None,
        last_tick_completion_time: float | None = None,
        last_run_key: str | None = None,
        instance: Any = None,
        repository_name: str | None = None,
        repository_def: Any = None,
        sensor_name: str | None = None,
        resources: Mapping[str, Any] | None = None,
        last_sensor_start_time: float | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        if cursor is not None and not isinstance(cursor, str):
            raise DefinitionError(f"a sensor cursor must be a string, got {cursor!r}")
        super().__init__(
            kind="sensor", name=sensor_name, instance=instance, resources=resources, log=log
        )
        self._cursor = cursor
        self._cursor_updated = False
        self._last_tick_completion_time = last_tick_completion_time
        self._last_run_key = last_run_key
        self._repository_name = repository_name
        self._repository_def = repository_def
        self._sensor_name = sensor_name
        self._last_sensor_start_time = last_sensor_start_time

    @property
    def cursor(self) -> str | None:
        """The cursor: the previous tick's, or this tick's once `update_cursor` was called."""
        return self._cursor

    def update_cursor(self, cursor: str | None) -> None:
        """Set the cursor to store once this tick completes. Calling it again replaces it."""
        if cursor is not None and not isinstance(cursor, str):
            raise DefinitionError(f"a sensor cursor must be a string, got {cursor!r}")
        self._cursor = cursor
        self._cursor_updated = True

    @property
    def cursor_updated(self) -> bool:
        """True once `update_cursor` has been called during this evaluation."""
        return self._cursor_updated

    @property
    def last_tick_completion_time(self) -> float | None:
        """When the previous tick completed, as a POSIX timestamp; None before the first."""
        return self._last_tick_completion_time

    @property
    def last_completion_time(self) -> float | None:
        """The old name of `last_tick_completion_time`, kept for Dagster code using it."""
        return self._last_tick_completion_time

    @property
    def last_run_key(self) -> str | None:
        """The run key of the last run this sensor requested, if any."""
        return self._last_run_key

    @property
    def last_sensor_start_time(self) -> float | None:
        """When the sensor was last turned on, as a POSIX timestamp, if known."""
        return self._last_sensor_start_time

    @property
    def repository_name(self) -> str | None:
        """The name of the code location's repository, when known."""
        return self._repository_name

    @property
    def repository_def(self) -> Any:
        """The definitions the sensor was loaded from, when given."""
        return self._repository_def

    @property
    def sensor_name(self) -> str | None:
        """The name of the sensor being evaluated, when known."""
        return self._sensor_name


def build_sensor_context(
    instance: Any = None,
    cursor: str | None = None,
    repository_name: str | None = None,
    repository_def: Any = None,
    sensor_name: str | None = None,
    resources: Mapping[str, Any] | None = None,
    definitions: Any = None,
    last_sensor_start_time: float | None = None,
    *,
    last_tick_completion_time: float | None = None,
    last_run_key: str | None = None,
) -> SensorEvaluationContext:
    """Build a context to evaluate or invoke a sensor with, as in tests.

    `definitions` is Dagster's newer name for `repository_def`; give at most one.
    """
    if repository_def is not None and definitions is not None:
        raise DefinitionError("build_sensor_context: give repository_def or definitions, not both")
    return SensorEvaluationContext(
        cursor=cursor,
        last_tick_completion_time=last_tick_completion_time,
        last_run_key=last_run_key,
        instance=instance,
        repository_name=repository_name,
        repository_def=repository_def if repository_def is not None else definitions,
        sensor_name=sensor_name,
        resources=resources,
        last_sensor_start_time=last_sensor_start_time,
    )


class SensorDefinition:
    """A function polled by the daemon that decides which runs to request, with Dagster's
    constructor and meaning.

    Targets: `job` (anything with a `.name`: a job, or an asset job still to be resolved),
    `jobs` (several; each RunRequest must then name its `job_name`), `job_name`, `target`
    (a job, or an asset selection), or `asset_selection`; at most one of them. A sensor with
    no target may only skip. `minimum_interval_seconds` defaults to 30. The name defaults to
    the function's name. Constructing a sensor does no I/O and never calls user code.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        evaluation_fn: SensorEvaluationFunction | None = None,
        job_name: str | None = None,
        minimum_interval_seconds: int | None = None,
        description: str | None = None,
        job: HasName | None = None,
        jobs: Sequence[HasName] | None = None,
        default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
        asset_selection: Any = None,
        required_resource_keys: set[str] | None = None,
        tags: Mapping[str, str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        target: Any = None,
    ) -> None:
        if evaluation_fn is None:
            raise DefinitionError(
                f"sensor {name!r} needs an evaluation_fn", name=name if name else None
            )
        if not callable(evaluation_fn):
            raise DefinitionError(f"sensor {name!r}: evaluation_fn must be callable")
        if name is None:
            name = getattr(evaluation_fn, "__name__", None)
            if not isinstance(name, str):
                raise DefinitionError("a sensor needs a name")
        self._name = validate_name(name, kind="sensor")
        label = f"sensor {self._name!r}"

        check_one_target(
            label,
            (
                ("job", job),
                ("jobs", jobs),
                ("job_name", job_name),
                ("asset_selection", asset_selection),
                ("target", target),
            ),
            name=self._name,
        )
        self._given_target = target
        if target is not None:
            if is_job_like(target):
                job = target
            else:
                asset_selection = target
        self._jobs: list[HasName] = []
        if job is not None:
            self._jobs = [job]
        elif jobs is not None:
            if isinstance(jobs, str) or not isinstance(jobs, Sequence) or not jobs:
                raise DefinitionError(f"{label}: jobs must be a non-empty list", name=self._name)
            self._jobs = list(jobs)
        self._job_names = [job_name_of(each, label, name=self._name) for each in self._jobs]
        if len(set(self._job_names)) != len(self._job_names):
            raise DefinitionError(
                f"{label}: targets the same job name twice: {self._job_names}", name=self._name
            )
        if job_name is not None:
            if not isinstance(job_name, str):
                raise DefinitionError(f"{label}: job_name must be a string", name=self._name)
            self._job_names = [job_name]
        self._asset_selection = asset_selection

        if minimum_interval_seconds is None:
            minimum_interval_seconds = DEFAULT_SENSOR_INTERVAL_SECONDS
        if (
            not isinstance(minimum_interval_seconds, int)
            or isinstance(minimum_interval_seconds, bool)
            or minimum_interval_seconds < 0
        ):
            raise DefinitionError(
                f"{label}: minimum_interval_seconds must be a non-negative int, got "
                f"{minimum_interval_seconds!r}",
                name=self._name,
            )
        if not isinstance(default_status, DefaultSensorStatus):
            raise DefinitionError(
                f"{label}: default_status must be a DefaultSensorStatus", name=self._name
            )
        self._evaluation_fn = evaluation_fn
        self._min_interval = minimum_interval_seconds
        self._description = description
        self._default_status = default_status
        self._required_resource_keys = set(required_resource_keys or ())
        self._tags = normalize_tags(tags, owner=label)
        self._metadata = dict(metadata or {})

    # -- identity -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The sensor's name, unique within its code location."""
        return self._name

    @property
    def description(self) -> str | None:
        """A human-readable description, if any."""
        return self._description

    @property
    def minimum_interval_seconds(self) -> int:
        """The fewest seconds between two evaluations of this sensor."""
        return self._min_interval

    @property
    def default_status(self) -> DefaultSensorStatus:
        """Whether the sensor runs before anyone turns it on or off."""
        return self._default_status

    @property
    def job_name(self) -> str | None:
        """The name of the one job this sensor targets, or None if it targets none.

        Raises `DefinitionError` when the sensor targets several jobs; use `job_names`.
        """
        if len(self._job_names) > 1:
            raise DefinitionError(
                f"sensor {self._name!r} targets several jobs {self._job_names}; use job_names",
                name=self._name,
            )
        return self._job_names[0] if self._job_names else None

    @property
    def job_names(self) -> list[str]:
        """The names of every job this sensor targets (empty for none or assets only)."""
        return list(self._job_names)

    @property
    def job(self) -> HasName:
        """The one targeted job object; `DefinitionError` if there is not exactly one."""
        if len(self._jobs) != 1:
            raise DefinitionError(
                f"sensor {self._name!r} does not hold exactly one job object "
                f"(it targets {self._job_names or 'no job'})",
                name=self._name,
            )
        return self._jobs[0]

    @property
    def jobs(self) -> list[HasName]:
        """Every targeted job object; `DefinitionError` if the sensor holds none."""
        if not self._jobs:
            raise DefinitionError(f"sensor {self._name!r} holds no job objects", name=self._name)
        return list(self._jobs)

    @property
    def has_jobs(self) -> bool:
        """True when the sensor holds job objects (not just a name or assets)."""
        return bool(self._jobs)

    @property
    def asset_selection(self) -> Any:
        """The asset selection this sensor materializes, if it targets assets."""
        return self._asset_selection

    def resource_keys_for_tick(self, available: Mapping[str, Any]) -> set[str]:
        """The keys of the `available` resources a tick of this sensor uses (see
        `resource_keys_used`): a code location builds only those for it."""
        return resource_keys_used(
            [self._resource_function], self._required_resource_keys, available
        )

    @property
    def _resource_function(self) -> Callable[..., Any]:
        """The user's function, whose parameters may name resources."""
        return self._evaluation_fn

    @property
    def target(self) -> Any:
        """The `target=` given (a job, or assets to materialize), or None."""
        return self._given_target

    @property
    def required_resource_keys(self) -> set[str]:
        """Resource keys that must be in the context's resources."""
        return set(self._required_resource_keys)

    @property
    def tags(self) -> Mapping[str, str]:
        """Tags describing the sensor itself."""
        return dict(self._tags)

    @property
    def metadata(self) -> Mapping[str, Any]:
        """Free-form metadata about the sensor."""
        return dict(self._metadata)

    def __repr__(self) -> str:
        return f"SensorDefinition(name={self._name!r}, job_names={self._job_names!r})"

    # -- evaluation -----------------------------------------------------------------------

    def evaluate_tick(self, context: SensorEvaluationContext) -> SensorExecutionData:
        """Run the sensor function for one tick and return what it requested.

        The function may return or yield RunRequests or one SkipReason, return a list of
        them, a single `SensorResult`, or None. Every request is aimed at a target job
        (filled in when the sensor has one) and tagged `dagloom/sensor_name`. The returned
        cursor is the context's cursor after the call, or the `SensorResult`'s.

        Raises `UserCodeError` (from the original, naming the sensor) when the function
        raises, and `DefinitionError` for a result of the wrong shape: RunRequests mixed with
        a SkipReason, a SensorResult with other items, a SensorResult cursor after
        `context.update_cursor()`, a RunRequest with no or an unknown target. Sync: it may
        block as long as the user's function does.
        """
        self._check_resources(context)
        with user_code("sensor", self._name):
            raw = call_user_function(self._evaluation_fn, context, kind="sensor", name=self._name)
            items = self._flatten(raw)
        return self._execution_data(items, context)

    def _execution_data(
        self, items: list[Any], context: SensorEvaluationContext
    ) -> SensorExecutionData:
        """What the items a sensor function produced request (see `evaluate_tick`)."""
        skip_message: str | None = None
        run_requests: list[RunRequest] = []
        changes: tuple[Any, ...] = ()
        cursor = context.cursor
        items = [item for item in items if item is not None]
        if not items:
            skip_message = _EMPTY_RESULT
        elif len(items) == 1 and isinstance(items[0], SensorResult):
            result = items[0]
            run_requests = list(result.run_requests or ())
            changes = tuple(result.dynamic_partitions_requests or ())
            if result.skip_reason is not None:
                skip_message = result.skip_reason.skip_message
            elif not run_requests and not changes:
                skip_message = _EMPTY_RESULT
            if result.cursor is not None:
                if context.cursor_updated:
                    raise DefinitionError(
                        f"sensor {self._name!r}: SensorResult.cursor cannot be set if "
                        "context.update_cursor() was called",
                        name=self._name,
                    )
                cursor = result.cursor
        else:
            skips = [item for item in items if isinstance(item, SkipReason)]
            for item in items:
                if isinstance(item, SensorResult):
                    raise DefinitionError(
                        f"sensor {self._name!r}: a SensorResult must be the only object the "
                        "sensor returns",
                        name=self._name,
                    )
                if not isinstance(item, RunRequest | SkipReason):
                    raise DefinitionError(
                        f"sensor {self._name!r} returned {item!r} of type "
                        f"{type(item).__name__}; expected RunRequest, SkipReason or "
                        "SensorResult",
                        name=self._name,
                    )
            run_requests = [item for item in items if isinstance(item, RunRequest)]
            if skips and run_requests:
                raise DefinitionError(
                    f"sensor {self._name!r}: expected a single SkipReason or one or more "
                    "RunRequests, received both",
                    name=self._name,
                )
            if len(skips) > 1:
                raise DefinitionError(
                    f"sensor {self._name!r}: expected a single SkipReason, received {len(skips)}",
                    name=self._name,
                )
            if skips:
                skip_message = skips[0].skip_message
        resolved = [self._resolve_request(request) for request in run_requests]
        return SensorExecutionData(
            run_requests=resolved,
            skip_message=skip_message,
            cursor=cursor,
            dynamic_partitions_requests=changes,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Invoke the sensor function directly, as Dagster does, and return its raw result.

        Accepts the context positionally or by its parameter name; builds an empty one when
        the function wants a context and none is given. Other keyword arguments are resources.
        Exceptions from the function propagate unchanged.
        """
        return invoke_directly(
            self._evaluation_fn,
            args,
            kwargs,
            kind="sensor",
            name=self._name,
            build_context=lambda: build_sensor_context(sensor_name=self._name),
        )

    # -- internals ------------------------------------------------------------------------

    def _flatten(self, raw: Any) -> list[Any]:
        """The items a sensor function produced, in order; a generator is drained, and the
        value it returns (if any) counts as a last item."""
        if inspect.isgenerator(raw):
            return _drain(raw)
        if isinstance(raw, list | tuple):
            return list(raw)
        if raw is None or isinstance(raw, RunRequest | SkipReason | SensorResult):
            return [raw]
        raise DefinitionError(
            f"sensor {self._name!r} unexpectedly returned {raw!r} of type "
            f"{type(raw).__name__}; it should return RunRequest, SkipReason or SensorResult "
            "objects",
            name=self._name,
        )

    def _check_resources(self, context: SensorEvaluationContext) -> None:
        missing = sorted(
            key for key in self._required_resource_keys if key not in context.resources
        )
        if missing:
            raise DefinitionError(
                f"sensor {self._name!r} requires resources {missing}, which the context lacks",
                name=self._name,
            )

    def _resolve_request(self, request: RunRequest) -> RunRequest:
        job_name = request.job_name
        if job_name is None:
            if len(self._job_names) > 1:
                raise DefinitionError(
                    f"sensor {self._name!r} returned a RunRequest that did not name its "
                    f"job_name; expected one of {self._job_names}",
                    name=self._name,
                )
            if self._job_names:
                job_name = self._job_names[0]
            elif self._asset_selection is None:
                raise DefinitionError(
                    f"sensor {self._name!r} returned a RunRequest but has no target: give "
                    "job, jobs or job_name to @sensor",
                    name=self._name,
                )
        elif job_name not in self._job_names and self._asset_selection is None:
            raise DefinitionError(
                f"sensor {self._name!r} returned a RunRequest for job {job_name!r}; "
                f"expected one of {self._job_names}",
                name=self._name,
            )
        return request.with_replaced_attrs(
            job_name=job_name, tags={**request.tags, SENSOR_NAME_TAG: self._name}
        )


@overload
def sensor(target: FunctionType) -> SensorDefinition: ...


@overload
def sensor(
    target: Any = ...,
    *,
    job_name: str | None = ...,
    name: str | None = ...,
    minimum_interval_seconds: int | None = ...,
    description: str | None = ...,
    job: HasName | None = ...,
    jobs: Sequence[HasName] | None = ...,
    default_status: DefaultSensorStatus = ...,
    asset_selection: Any = ...,
    required_resource_keys: set[str] | None = ...,
    tags: Mapping[str, str] | None = ...,
    metadata: Mapping[str, Any] | None = ...,
) -> Callable[[SensorEvaluationFunction], SensorDefinition]: ...


def sensor(
    target: Any = None,
    *,
    job_name: str | None = None,
    name: str | None = None,
    minimum_interval_seconds: int | None = None,
    description: str | None = None,
    job: HasName | None = None,
    jobs: Sequence[HasName] | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    asset_selection: Any = None,
    required_resource_keys: set[str] | None = None,
    tags: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> SensorDefinition | Callable[[SensorEvaluationFunction], SensorDefinition]:
    """Make a sensor from a function `(context) -> ...` (the context parameter is optional).

    Use as `@sensor(job=my_job, minimum_interval_seconds=5)`. The first positional argument
    is the target: a job (or asset selection), or, as in older Dagster, a job name string.
    Bare `@sensor` also works. See `SensorDefinition` for the other arguments and
    `SensorDefinition.evaluate_tick` for what the function may return.
    """
    if inspect.isfunction(target):
        # Bare `@sensor`: the "target" is the decorated function itself.
        return sensor()(target)
    positional_job_name = target if isinstance(target, str) else None
    positional_target = None if isinstance(target, str) else target
    if positional_job_name is not None and job_name is not None:
        raise DefinitionError("@sensor: job_name given both positionally and by keyword")

    def inner(fn: SensorEvaluationFunction) -> SensorDefinition:
        if not callable(fn):
            raise DefinitionError(f"@sensor decorates a function, got {fn!r}")
        definition = SensorDefinition(
            name=name or fn.__name__,
            evaluation_fn=fn,
            job_name=positional_job_name or job_name,
            minimum_interval_seconds=minimum_interval_seconds,
            description=description,
            job=job,
            jobs=jobs,
            default_status=default_status,
            asset_selection=asset_selection,
            required_resource_keys=required_resource_keys,
            tags=tags,
            metadata=metadata,
            target=positional_target,
        )
        definition.__doc__ = fn.__doc__
        definition.__wrapped__ = fn  # type: ignore[attr-defined]  # as functools.wraps sets it
        return definition

    return inner


def _drain(gen: Generator[Any, Any, Any]) -> list[Any]:
    items: list[Any] = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            # A generator that yields and also `return`s a value: the value counts too.
            if stop.value is not None:
                items.append(stop.value)
            return items
