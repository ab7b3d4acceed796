"""Sensors on runs and materializations: `run_status_sensor`, `run_failure_sensor` and
`asset_sensor`, with Dagster's signatures and context fields.

They are sensors whose ticks look at what storage recorded. The daemon finds the runs that
ended with the watched status, or the new materializations of the watched asset, since the
sensor's cursor, and passes them in with the tick, so the code location evaluating it reads
no storage for them (the function may still read `context.instance`). `evaluate_events`
then calls the user's function once per run or materialization and gathers what the calls
requested into one tick.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from dagloom.definitions._instigator import (
    HasName,
    call_user_function,
    context_param_name,
    job_name_of,
)
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.outputs import AssetMaterialization, AssetObservation
from dagloom.definitions.run_request import RunRequest, SkipReason
from dagloom.definitions.sensor import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorExecutionData,
)
from dagloom.errors import DefinitionError
from dagloom.execution.boundary import user_code
from dagloom.execution.event_view import DagsterEvent, materialization_of, observation_of
from dagloom.execution.partitions import PARTITION_TAG
from dagloom.messages import EventRecord, EventType, Run
from dagloom.messages import RunStatus as DagsterRunStatus

__all__ = [
    "AssetSensorDefinition",
    "DagsterRunStatus",
    "EventLogEntry",
    "RunFailureSensorContext",
    "RunStatusSensorContext",
    "RunStatusSensorDefinition",
    "asset_sensor",
    "build_run_status_sensor_context",
    "run_failure_sensor",
    "run_status_sensor",
]

_END_STATUSES = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


@dataclass(frozen=True, slots=True)
class EventLogEntry:
    """A stored event as Dagster's `EventLogEntry` shows it: `dagster_event` and, for a
    materialization, `asset_materialization`."""

    run_id: str
    timestamp: float
    storage_id: int
    dagster_event: DagsterEvent
    user_message: str = ""

    @staticmethod
    def of(record: EventRecord) -> EventLogEntry:
        """The entry for a stored record."""
        event = record.event
        assert event is not None
        return EventLogEntry(
            run_id=event.run_id,
            timestamp=event.timestamp,
            storage_id=record.storage_id,
            dagster_event=DagsterEvent(event),
            user_message=event.message,
        )

    @property
    def job_name(self) -> str:
        return self.dagster_event.job_name

    @property
    def step_key(self) -> str | None:
        return self.dagster_event.step_key

    @property
    def is_dagster_event(self) -> bool:
        return True

    @property
    def asset_materialization(self) -> AssetMaterialization | None:
        """The materialization this event records, or None for another kind of event."""
        event = self.dagster_event
        data = event.event.asset_materialization
        if data is None or not event.is_asset_materialization:
            return None
        return materialization_of(data)

    @property
    def asset_observation(self) -> AssetObservation | None:
        """The observation this event records, or None for another kind of event."""
        event = self.dagster_event
        data = event.event.asset_materialization
        if data is None or not event.is_asset_observation:
            return None
        return observation_of(data)


class RunStatusSensorContext:
    """What a run status sensor's function sees for one run: `dagster_run` (the run, with
    `run_id`, `job_name`, `status`, `tags`), `dagster_event` (the event that ended it),
    `sensor_name`, `resources`, `log`, and `instance` (called synchronously, as a sensor
    context's; None when the context has none)."""

    __slots__ = ("_event", "_instance", "_log", "_resources", "_run", "_sensor_name")

    def __init__(
        self,
        *,
        sensor_name: str,
        dagster_run: Any,
        dagster_event: DagsterEvent,
        instance: Any = None,
        resources: Any = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._sensor_name = sensor_name
        self._run = dagster_run
        self._event = dagster_event
        self._instance = instance
        self._resources = resources
        self._log = logger or logging.getLogger(f"dagloom.sensor.{sensor_name}")

    @property
    def sensor_name(self) -> str:
        return self._sensor_name

    @property
    def dagster_run(self) -> Any:
        return self._run

    @property
    def dagster_event(self) -> DagsterEvent:
        return self._event

    @property
    def instance(self) -> Any:
        """The instance, called synchronously (a `DagloomInstance` given is seen through a
        `SyncInstance`, as a sensor context's is); None when there is none."""
        from dagloom.instance import DagloomInstance

        if isinstance(self._instance, DagloomInstance):
            from dagloom.instance.sync import sync_instance_of

            return sync_instance_of(self._instance)
        return self._instance

    @property
    def resources(self) -> Any:
        return self._resources

    @property
    def log(self) -> logging.Logger:
        return self._log

    @property
    def partition_key(self) -> str | None:
        """The partition the run was for (its `dagster/partition` tag), or None."""
        tags = getattr(self._run, "tags", None) or {}
        key = tags.get(PARTITION_TAG)
        return str(key) if key is not None else None

    def __enter__(self) -> Self:
        """`with build_run_status_sensor_context(...) as context:`; nothing to release."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def for_run_failure(
        self, step_failure_events: Sequence[DagsterEvent] | None = None
    ) -> RunFailureSensorContext:
        """This context as a `RunFailureSensorContext`, with the run's STEP_FAILURE events
        (read from the instance when not given)."""
        return RunFailureSensorContext(
            sensor_name=self._sensor_name,
            dagster_run=self._run,
            dagster_event=self._event,
            instance=self._instance,
            resources=self._resources,
            logger=self._log,
            step_failure_events=step_failure_events,
        )


class RunFailureSensorContext(RunStatusSensorContext):
    """A run status context for a failed run; `failure_event` is its RUN_FAILURE event and
    `get_step_failure_events()` the STEP_FAILURE events of the run: as the daemon found them
    in storage, or, for a context built by `build_run_status_sensor_context(...)
    .for_run_failure()`, as its instance holds them (none without an instance)."""

    __slots__ = ("_step_failures",)

    def __init__(
        self, *, step_failure_events: Sequence[DagsterEvent] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._step_failures = None if step_failure_events is None else list(step_failure_events)

    @property
    def failure_event(self) -> DagsterEvent:
        return self.dagster_event

    def get_step_failure_events(self) -> list[DagsterEvent]:
        """The run's STEP_FAILURE events, in run order."""
        if self._step_failures is not None:
            return list(self._step_failures)
        if self.instance is None:
            return []
        from dagloom.instance.sync import sync_instance_of

        entries = sync_instance_of(self.instance).all_logs(
            self.dagster_run.run_id, of_type=EventType.STEP_FAILURE
        )
        return [entry.dagster_event for entry in entries]


def build_run_status_sensor_context(
    sensor_name: str,
    dagster_event: DagsterEvent,
    dagster_instance: Any,
    dagster_run: Any,
    context: Any = None,
    resources: Any = None,
) -> RunStatusSensorContext:
    """A context to invoke a run status sensor with directly, as in tests: `dagster_run`
    is a run (`result.dagster_run` of an in-process execution will do), `dagster_event` its
    end event (`result.get_run_success_event()`). `.for_run_failure()` gives the failure
    context."""
    del context  # Dagster's optional sensor context; nothing here reads it.
    return RunStatusSensorContext(
        sensor_name=sensor_name,
        dagster_run=dagster_run,
        dagster_event=dagster_event,
        instance=dagster_instance,
        resources=resources,
    )


def _gathered(items: list[Any]) -> list[Any]:
    """The items of several calls as one tick's: SkipReasons are dropped once any call
    requested a run, and only the last of several SkipReasons is kept."""
    requests = [item for item in items if isinstance(item, RunRequest)]
    if requests:
        return [item for item in items if not isinstance(item, SkipReason)]
    skips = [item for item in items if isinstance(item, SkipReason)]
    return [*(item for item in items if not isinstance(item, SkipReason)), *skips[-1:]]


class _EventSensor(SensorDefinition):
    """A sensor whose function is called once per stored run or event (`evaluate_events`)."""

    def __init__(self, *, user_fn: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(evaluation_fn=self._plain_tick, **kwargs)
        self._user_fn = user_fn

    @property
    def _resource_function(self) -> Callable[..., Any]:
        return self._user_fn

    def _plain_tick(self, context: SensorEvaluationContext) -> Any:
        """A tick evaluated without the stored runs or events (`evaluate_tick`): refused,
        unless a subclass can read them itself."""
        raise DefinitionError(
            f"sensor {self.name!r} is evaluated on stored runs or events: the daemon passes "
            "them with each tick",
            name=self.name,
        )

    def _call(self, context: Any, extra: tuple[Any, ...]) -> list[Any]:
        def bound(context: Any) -> Any:
            return self._user_fn(context, *extra)

        fn = bound if extra else self._user_fn
        with user_code("sensor", self.name):
            raw = call_user_function(fn, context, kind="sensor", name=self.name)
            return self._flatten(raw)

    def evaluate_events(
        self,
        context: SensorEvaluationContext,
        runs: Sequence[Run],
        events: Sequence[EventRecord],
        step_failures: Sequence[EventRecord] = (),
    ) -> SensorExecutionData:
        """Call the function once per run (run status sensors; `events[i]` ended `runs[i]`)
        or per event (asset sensors) and return what the calls requested together, or why
        none did; `step_failures` are the runs' STEP_FAILURE events (run failure sensors).
        Raises as `evaluate_tick` does, at the first call that raises."""
        items: list[Any] = []
        for context_for_call, extra in self._calls(context, runs, events, step_failures):
            items.extend(self._call(context_for_call, extra))
        return self._execution_data(_gathered(items), context)

    def _calls(
        self,
        context: SensorEvaluationContext,
        runs: Sequence[Run],
        events: Sequence[EventRecord],
        step_failures: Sequence[EventRecord],
    ) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        raise DefinitionError(f"sensor {self.name!r} has no event evaluation", name=self.name)


class RunStatusSensorDefinition(_EventSensor):
    """A sensor called once per run that reached `run_status` in a monitored job."""

    def __init__(
        self,
        *,
        name: str,
        run_status: DagsterRunStatus,
        run_status_sensor_fn: Callable[..., Any],
        minimum_interval_seconds: int | None = None,
        description: str | None = None,
        monitored_jobs: Sequence[Any] | None = None,
        monitor_all_code_locations: bool = False,
        default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
        request_job: HasName | None = None,
        request_jobs: Sequence[HasName] | None = None,
        required_resource_keys: set[str] | None = None,
        tags: Mapping[str, str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        failure_context: bool = False,
    ) -> None:
        if not isinstance(run_status, DagsterRunStatus) or run_status not in _END_STATUSES:
            raise DefinitionError(
                f"run status sensor {name!r}: run_status must be one of "
                f"{[s.name for s in _END_STATUSES]}, got {run_status!r}",
                name=name,
            )
        super().__init__(
            user_fn=run_status_sensor_fn,
            name=name,
            minimum_interval_seconds=minimum_interval_seconds,
            description=description,
            job=request_job,
            jobs=request_jobs,
            default_status=default_status,
            required_resource_keys=required_resource_keys,
            tags=tags,
            metadata=metadata,
        )
        self._run_status = run_status
        self._monitored = [
            each
            if isinstance(each, str)
            else job_name_of(each, f"run status sensor {name!r}", name=name)
            for each in monitored_jobs or ()
        ]
        self._all_locations = monitor_all_code_locations
        self._failure_context = failure_context

    @property
    def run_status(self) -> DagsterRunStatus:
        return self._run_status

    @property
    def monitored_job_names(self) -> list[str]:
        """The jobs whose runs are watched; empty for every job of the code location."""
        return list(self._monitored)

    @property
    def monitor_all_code_locations(self) -> bool:
        return self._all_locations

    def _calls(
        self,
        context: SensorEvaluationContext,
        runs: Sequence[Run],
        events: Sequence[EventRecord],
        step_failures: Sequence[EventRecord],
    ) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        for run, record in zip(runs, events, strict=True):
            assert record.event is not None
            run_context = RunStatusSensorContext(
                sensor_name=self.name,
                dagster_run=run,
                dagster_event=DagsterEvent(record.event),
                instance=context.instance,
                resources=context.resources,
            )
            if not self._failure_context:
                yield run_context, ()
                continue
            failures = [
                DagsterEvent(each.event)
                for each in step_failures
                if each.event is not None and each.event.run_id == run.run_id
            ]
            yield run_context.for_run_failure(failures), ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Invoke the function directly with a context, as Dagster's tests do."""
        return self._user_fn(*args, **kwargs)


class AssetSensorDefinition(_EventSensor):
    """A sensor called as `fn(context, asset_event)` once per new materialization of
    `asset_key`."""

    def __init__(
        self,
        *,
        name: str,
        asset_key: AssetKey,
        asset_materialization_fn: Callable[..., Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(user_fn=asset_materialization_fn, name=name, **kwargs)
        self._asset_key = asset_key

    def _plain_tick(self, context: SensorEvaluationContext) -> Any:
        if context.instance is None:
            return super()._plain_tick(context)
        return self._evaluate_on_instance(context)

    def _evaluate_on_instance(self, context: SensorEvaluationContext) -> Iterator[Any]:
        """Evaluate as Dagster does where the context holds an instance (a test's
        `build_sensor_context(instance)`): read the newest materialization of the asset after
        the cursor from `context.instance`, and call the function on it, or skip when there
        is none. The cursor moves to that materialization before the call, as on the
        daemon's ticks. A generator: it reads and calls when iterated."""
        from dagloom.instance.sync import AssetRecordsFilter, sync_instance_of

        instance = sync_instance_of(context.instance)
        found = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=self._asset_key), limit=1
        ).records
        after = _storage_id(context.cursor)
        if not found or (after is not None and found[0].storage_id <= after):
            yield SkipReason(
                f"No new materialization events found for asset key {self._asset_key!r}"
            )
            return
        record = found[0]
        context.update_cursor(str(record.storage_id))
        yield from self._flatten(self._call_with_event(context, record.event_log_entry))

    def _call(self, context: Any, extra: tuple[Any, ...]) -> list[Any]:
        (entry,) = extra
        with user_code("sensor", self.name):
            return self._flatten(self._call_with_event(context, entry))

    def _call_with_event(self, context: SensorEvaluationContext, entry: EventLogEntry) -> Any:
        """Call the function as Dagster does: its first parameter that is not a resource
        gets the context, the next the event (any of them may be left out); other
        parameters are resources."""
        event_param = _asset_event_param_name(self._user_fn)
        return call_user_function(
            self._user_fn,
            context,
            kind="sensor",
            name=self.name,
            extra_resources={event_param: entry} if event_param else None,
        )

    @property
    def asset_key(self) -> AssetKey:
        return self._asset_key

    def _calls(
        self,
        context: SensorEvaluationContext,
        runs: Sequence[Run],
        events: Sequence[EventRecord],
        step_failures: Sequence[EventRecord],
    ) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        for record in events:
            # As in Dagster, the function sees the cursor of the event it is called for.
            context.update_cursor(str(record.storage_id))
            yield context, (EventLogEntry.of(record),)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Invoke the function directly with `(context, asset_event)`; or, as Dagster's
        tests do, with only a context that holds an instance (`build_sensor_context(
        instance)`), which evaluates it on the instance's materializations (see
        `_evaluate_on_instance`) and returns the items as a generator."""
        given = [*args, *kwargs.values()]
        if len(given) == 1 and isinstance(given[0], SensorEvaluationContext):
            context = given[0]
            if context.instance is None:
                raise DefinitionError(
                    f"asset sensor {self.name!r} invoked with only a context reads the "
                    "asset's materializations from context.instance, which is None; build "
                    "the context with build_sensor_context(instance=...) or pass the "
                    "asset_event too",
                    name=self.name,
                )
            return self._evaluate_on_instance(context)
        return self._user_fn(*args, **kwargs)


def _asset_event_param_name(fn: Callable[..., Any]) -> str | None:
    """The parameter of an asset sensor function that takes the event: the first after the
    context one that is named `asset_event`, unannotated, or annotated as an
    `EventLogEntry` (others are resources); None when it takes none."""
    ctx_name = context_param_name(fn)
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name == ctx_name:
            continue
        annotation = param.annotation
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        if param.name == "asset_event" or annotation is param.empty or "EventLogEntry" in text:
            return param.name
    return None


def _storage_id(cursor: str | None) -> int | None:
    """The storage id an asset sensor's cursor holds; None for none (or an unreadable one)."""
    try:
        return int(cursor) if cursor else None
    except ValueError:
        return None


def run_status_sensor(
    run_status: DagsterRunStatus = DagsterRunStatus.SUCCESS,
    name: str | None = None,
    minimum_interval_seconds: int | None = None,
    description: str | None = None,
    monitored_jobs: Sequence[Any] | None = None,
    job_selection: Sequence[Any] | None = None,
    monitor_all_code_locations: bool | None = None,
    request_job: HasName | None = None,
    request_jobs: Sequence[HasName] | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    required_resource_keys: set[str] | None = None,
    tags: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    monitor_all_repositories: bool | None = None,
) -> Callable[[Callable[..., Any]], RunStatusSensorDefinition]:
    """A sensor whose function `(context: RunStatusSensorContext)` is called once for each
    run of a monitored job that reached `run_status` (SUCCESS, FAILURE or CANCELED) since the
    sensor started; it may return RunRequests for `request_job` or a SkipReason.
    `monitored_jobs` (jobs or job names; `job_selection` is Dagster's older name) defaults to
    every job of the sensor's code location; `monitor_all_code_locations` watches every
    location (`monitor_all_repositories` is Dagster's older name). Each run is seen once,
    also when its evaluation failed."""
    if monitored_jobs is not None and job_selection is not None:
        raise DefinitionError("run_status_sensor: give monitored_jobs or job_selection")
    return _run_sensor_decorator(
        run_status,
        failure_context=False,
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        description=description,
        monitored_jobs=monitored_jobs if monitored_jobs is not None else job_selection,
        monitor_all_code_locations=_monitor_all(
            monitor_all_code_locations, monitor_all_repositories
        ),
        request_job=request_job,
        request_jobs=request_jobs,
        default_status=default_status,
        required_resource_keys=required_resource_keys,
        tags=tags,
        metadata=metadata,
    )


def run_failure_sensor(
    name: Callable[..., Any] | str | None = None,
    minimum_interval_seconds: int | None = None,
    description: str | None = None,
    monitored_jobs: Sequence[Any] | None = None,
    job_selection: Sequence[Any] | None = None,
    monitor_all_code_locations: bool | None = None,
    request_job: HasName | None = None,
    request_jobs: Sequence[HasName] | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    required_resource_keys: set[str] | None = None,
    tags: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    monitor_all_repositories: bool | None = None,
) -> Any:
    """`run_status_sensor(DagsterRunStatus.FAILURE)` whose function receives a
    `RunFailureSensorContext`; usable bare (`@run_failure_sensor`)."""
    if callable(name):
        return run_failure_sensor()(name)
    if monitored_jobs is not None and job_selection is not None:
        raise DefinitionError("run_failure_sensor: give monitored_jobs or job_selection")
    return _run_sensor_decorator(
        DagsterRunStatus.FAILURE,
        failure_context=True,
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        description=description,
        monitored_jobs=monitored_jobs if monitored_jobs is not None else job_selection,
        monitor_all_code_locations=_monitor_all(
            monitor_all_code_locations, monitor_all_repositories
        ),
        request_job=request_job,
        request_jobs=request_jobs,
        default_status=default_status,
        required_resource_keys=required_resource_keys,
        tags=tags,
        metadata=metadata,
    )


def _monitor_all(code_locations: bool | None, repositories: bool | None) -> bool:
    """`monitor_all_code_locations`, or its older name `monitor_all_repositories`."""
    if code_locations is not None and repositories is not None:
        raise DefinitionError(
            "run status sensor: give monitor_all_code_locations or its older name "
            "monitor_all_repositories, not both"
        )
    return bool(code_locations if code_locations is not None else repositories)


def _run_sensor_decorator(
    run_status: DagsterRunStatus, *, failure_context: bool, name: str | None, **kwargs: Any
) -> Callable[[Callable[..., Any]], RunStatusSensorDefinition]:
    def inner(fn: Callable[..., Any]) -> RunStatusSensorDefinition:
        definition = RunStatusSensorDefinition(
            name=name or fn.__name__,
            run_status=run_status,
            run_status_sensor_fn=fn,
            failure_context=failure_context,
            **kwargs,
        )
        definition.__doc__ = fn.__doc__
        return definition

    return inner


def asset_sensor(
    asset_key: AssetKey,
    *,
    job_name: str | None = None,
    name: str | None = None,
    minimum_interval_seconds: int | None = None,
    description: str | None = None,
    job: HasName | None = None,
    jobs: Sequence[HasName] | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    required_resource_keys: set[str] | None = None,
    tags: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], AssetSensorDefinition]:
    """A sensor whose function `(context, asset_event)` is called once for each new
    materialization of `asset_key` (an `EventLogEntry`: `asset_event.dagster_event.asset_key`,
    `asset_event.asset_materialization`), oldest first. A materialization is seen again on
    the next tick when the evaluation that saw it failed."""
    if not isinstance(asset_key, AssetKey):
        raise DefinitionError(f"asset_sensor: asset_key must be an AssetKey, got {asset_key!r}")

    def inner(fn: Callable[..., Any]) -> AssetSensorDefinition:
        definition = AssetSensorDefinition(
            name=name or fn.__name__,
            asset_key=asset_key,
            asset_materialization_fn=fn,
            job_name=job_name,
            minimum_interval_seconds=minimum_interval_seconds,
            description=description,
            job=job,
            jobs=jobs,
            default_status=default_status,
            required_resource_keys=required_resource_keys,
            tags=tags,
            metadata=metadata,
        )
        definition.__doc__ = fn.__doc__
        return definition

    return inner
