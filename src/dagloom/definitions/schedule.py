"""Schedules: `ScheduleDefinition`, the `@schedule` decorator, and their evaluation context.

A schedule fires on a cron cadence in its timezone (UTC unless told otherwise). At each tick
the scheduler daemon asks the schedule what to run with `evaluate_tick`; the tick times
themselves come from `next_tick_after` / `tick_times_between`. Both are pure and sync: they do
no I/O, so the daemon and tests call them without an event loop.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import Enum
from typing import Any

from dagloom.definitions._cron import cron_problem, iter_cron_ticks, load_timezone
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
from dagloom.definitions.run_request import RunRequest, SkipReason
from dagloom.errors import DefinitionError
from dagloom.execution.boundary import user_code

__all__ = [
    "SCHEDULED_EXECUTION_TIME_TAG",
    "SCHEDULE_NAME_TAG",
    "DefaultScheduleStatus",
    "ScheduleDefinition",
    "ScheduleEvaluationContext",
    "ScheduleExecutionData",
    "build_schedule_context",
    "schedule",
]

SCHEDULE_NAME_TAG = "dagloom/schedule_name"
SCHEDULED_EXECUTION_TIME_TAG = "dagloom/scheduled_execution_time"
CATCH_UP_MODES = ("latest", "all", "none")
"""The values of a schedule's `catch_up` (see `ScheduleDefinition`)."""

ScheduleEvaluationFunction = Callable[..., Any]
"""`(context) -> RunRequest | SkipReason | run config dict | iterator of those | None`."""


class DefaultScheduleStatus(Enum):
    """Whether a schedule runs as soon as it is loaded (before anyone toggles it)."""

    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


@dataclass(frozen=True, slots=True)
class ScheduleExecutionData:
    """The outcome of one schedule tick: the runs to request, or why none were."""

    run_requests: list[RunRequest]
    skip_message: str | None = None


class ScheduleEvaluationContext(InstigatorContext):
    """What a schedule function sees on a tick.

    `scheduled_execution_time` is the tick's time (timezone-aware); it may differ slightly
    from the moment the function actually runs. `instance` is the dagloom instance, or None
    when built in a test without one. `resources` gives attribute access to the resources
    given to the context. `log` is a logger for messages about this tick. `repository_def`
    is the definitions the schedule was loaded from, when given.
    """

    __slots__ = ("_repository_def", "_schedule_name", "_scheduled_execution_time")

    def __init__(
        self,
        *,
        instance: Any = None,
        scheduled_execution_time: datetime | None = None,
        resources: Mapping[str, Any] | None = None,
        schedule_name: str | None = None,
        log: logging.Logger | None = None,
        repository_def: Any = None,
    ) -> None:
        when = datetime.now(UTC) if scheduled_execution_time is None else scheduled_execution_time
        if not isinstance(when, datetime):
            raise TypeError(f"scheduled_execution_time must be a datetime, got {when!r}")
        super().__init__(
            kind="schedule", name=schedule_name, instance=instance, resources=resources, log=log
        )
        # A naive time is read as UTC, the default schedule timezone.
        self._scheduled_execution_time = when if when.tzinfo else when.replace(tzinfo=UTC)
        self._schedule_name = schedule_name
        self._repository_def = repository_def

    @property
    def repository_def(self) -> Any:
        """The definitions the schedule was loaded from, when given."""
        return self._repository_def

    @property
    def scheduled_execution_time(self) -> datetime:
        """The time this tick was scheduled for (timezone-aware)."""
        return self._scheduled_execution_time

    @property
    def schedule_name(self) -> str | None:
        """The name of the schedule being evaluated, when known."""
        return self._schedule_name


def build_schedule_context(
    instance: Any = None,
    scheduled_execution_time: datetime | None = None,
    resources: Mapping[str, Any] | None = None,
    repository_def: Any = None,
) -> ScheduleEvaluationContext:
    """Build a context to evaluate or invoke a schedule with, as in tests.

    `scheduled_execution_time` defaults to now; a naive datetime is read as UTC.
    """
    return ScheduleEvaluationContext(
        instance=instance,
        scheduled_execution_time=scheduled_execution_time,
        resources=resources,
        repository_def=repository_def,
    )


class ScheduleDefinition:
    """A job run on a cron cadence, with Dagster's constructor and meaning.

    Exactly one of `job` (anything with a `.name`: a job, or an asset job still to be
    resolved), `job_name`, or `target` names what runs. `target` may also be an asset
    selection, in which case `name` is required and the job is an anonymous asset job that
    `Definitions` builds. The name defaults to `f"{job.name}_schedule"`.

    `cron_schedule` is a cron string or a list of them (fires when any matches), validated
    here; `execution_timezone` is an IANA name, UTC if omitted. Either raise
    `DefinitionError` naming the schedule and the bad value.

    `catch_up` (dagloom's own) chooses this schedule's catch-up after downtime: `latest`
    (Dagster's behaviour: only the most recent missed tick), `all` (every missed tick, up to
    `scheduler.config.max_catchup_runs`) or `none` (only ticks within
    `schedules.catch_up_grace_seconds`); None takes `schedules.catch_up` from dagloom.yaml.
    No mode fires a tick from before the schedule was started.

    What a tick requests comes from `execution_fn` (used by `@schedule`) or, for a plain
    schedule, from `run_config` / `run_config_fn`, `tags` / `tags_fn` and `should_execute`.
    Constructing a schedule does no I/O and never calls user code.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        cron_schedule: str | Sequence[str] | None = None,
        job_name: str | None = None,
        run_config: Any = None,
        run_config_fn: Callable[[ScheduleEvaluationContext], Any] | None = None,
        tags: Mapping[str, str] | None = None,
        tags_fn: Callable[[ScheduleEvaluationContext], Mapping[str, str] | None] | None = None,
        should_execute: Callable[[ScheduleEvaluationContext], bool] | None = None,
        environment_vars: Mapping[str, str] | None = None,
        execution_timezone: str | None = None,
        execution_fn: ScheduleEvaluationFunction | None = None,
        description: str | None = None,
        job: HasName | None = None,
        default_status: DefaultScheduleStatus = DefaultScheduleStatus.STOPPED,
        target: Any = None,
        metadata: Mapping[str, Any] | None = None,
        catch_up: str | None = None,
        required_resource_keys: set[str] | None = None,
    ) -> None:
        self._required_resource_keys = set(required_resource_keys or ())
        self._job, self._job_name, self._target = _resolve_schedule_target(
            name, job=job, job_name=job_name, target=target
        )
        if name is None:
            if self._job_name is None:
                raise DefinitionError("a schedule needs a name when its target is not a job")
            name = f"{self._job_name}_schedule"
        self._name = validate_name(name, kind="schedule")
        if self._job_name is None:
            # Assets as the target: the schedule runs an asset job of its own, which
            # Definitions resolves like any other.
            from dagloom.definitions.asset_job import define_asset_job

            self._job_name = f"__anonymous_asset_job_{self._name}"
            self._job = define_asset_job(self._job_name, selection=self._target)

        self._cron_strings = _validate_cron_schedule(cron_schedule, self._name)
        self._cron_schedule: str | Sequence[str] = (
            cron_schedule if isinstance(cron_schedule, str) else list(self._cron_strings)
        )
        try:
            self._tz: tzinfo = load_timezone(execution_timezone)
        except ValueError as exc:
            raise DefinitionError(
                f"invalid execution timezone {execution_timezone!r} for schedule "
                f"{self._name!r}: {exc}",
                name=self._name,
            ) from exc
        self._execution_timezone = execution_timezone

        if execution_fn is not None:
            given = {
                "run_config": run_config,
                "run_config_fn": run_config_fn,
                "tags_fn": tags_fn,
                "should_execute": should_execute,
            }
            clash = sorted(key for key, value in given.items() if value is not None)
            if clash:
                raise DefinitionError(
                    f"schedule {self._name!r}: execution_fn cannot be combined with {clash}",
                    name=self._name,
                )
        if run_config is not None and run_config_fn is not None:
            raise DefinitionError(
                f"schedule {self._name!r}: give run_config or run_config_fn, not both",
                name=self._name,
            )
        if tags and tags_fn is not None:
            raise DefinitionError(
                f"schedule {self._name!r}: give tags or tags_fn, not both", name=self._name
            )
        if not isinstance(default_status, DefaultScheduleStatus):
            raise DefinitionError(
                f"schedule {self._name!r}: default_status must be a DefaultScheduleStatus",
                name=self._name,
            )
        self._execution_fn = execution_fn
        self._run_config = run_config
        self._run_config_fn = run_config_fn
        self._tags = normalize_tags(tags, owner=f"schedule {self._name!r}")
        self._tags_fn = tags_fn
        self._should_execute = should_execute
        self._environment_vars = dict(environment_vars or {})
        self._description = description
        self._default_status = default_status
        self._metadata = dict(metadata or {})
        if catch_up is not None and catch_up not in CATCH_UP_MODES:
            raise DefinitionError(
                f"schedule {self._name!r}: catch_up must be one of {list(CATCH_UP_MODES)}, "
                f"got {catch_up!r}",
                name=self._name,
            )
        self._catch_up = catch_up

    # -- identity -------------------------------------------------------------------------

    @property
    def required_resource_keys(self) -> set[str]:
        """Resource keys that must be in the context's resources."""
        return set(self._required_resource_keys)

    def resource_keys_for_tick(self, available: Mapping[str, Any]) -> set[str]:
        """The keys of the `available` resources a tick of this schedule uses (see
        `resource_keys_used`): a code location builds only those for it."""
        functions = [
            self._execution_fn,
            self._run_config_fn,
            self._tags_fn,
            self._should_execute,
        ]
        return resource_keys_used(functions, self._required_resource_keys, available)

    @property
    def name(self) -> str:
        """The schedule's name, unique within its code location."""
        return self._name

    @property
    def cron_schedule(self) -> str | Sequence[str]:
        """The cron string, or list of cron strings, as given."""
        return self._cron_schedule

    @property
    def execution_timezone(self) -> str | None:
        """The IANA timezone name the cron is read in, or None for UTC."""
        return self._execution_timezone

    @property
    def description(self) -> str | None:
        """A human-readable description, if any."""
        return self._description

    @property
    def catch_up(self) -> str | None:
        """How missed ticks are caught up after downtime: `latest`, `all` or `none`; None
        for the instance's default (`schedules.catch_up` in dagloom.yaml)."""
        return self._catch_up

    @property
    def default_status(self) -> DefaultScheduleStatus:
        """Whether the schedule runs before anyone turns it on or off."""
        return self._default_status

    @property
    def job_name(self) -> str:
        """The name of the job each tick runs."""
        assert self._job_name is not None  # set in __init__ in every branch
        return self._job_name

    @property
    def job(self) -> HasName:
        """The targeted job object; `DefinitionError` when only a name or assets were given."""
        if self._job is None:
            raise DefinitionError(
                f"schedule {self._name!r} targets {self.job_name!r} by name or by assets; "
                "it holds no job object",
                name=self._name,
            )
        return self._job

    @property
    def target(self) -> Any:
        """What the schedule targets: the job object, or the asset selection given."""
        return self._target if self._target is not None else self._job

    @property
    def has_job(self) -> bool:
        """True when the schedule holds a job object (not just a name or assets)."""
        return self._job is not None

    @property
    def tags(self) -> Mapping[str, str]:
        """Tags added to every run the schedule requests."""
        return dict(self._tags)

    @property
    def metadata(self) -> Mapping[str, Any]:
        """Free-form metadata about the schedule."""
        return dict(self._metadata)

    @property
    def environment_vars(self) -> Mapping[str, str]:
        """Environment variables (kept for Dagster compatibility; not applied)."""
        return dict(self._environment_vars)

    @property
    def timezone(self) -> tzinfo:
        """The tzinfo the cron is read in."""
        return self._tz

    def __repr__(self) -> str:
        return (
            f"ScheduleDefinition(name={self._name!r}, cron_schedule={self._cron_schedule!r}, "
            f"job_name={self._job_name!r})"
        )

    # -- tick times -----------------------------------------------------------------------

    def iter_ticks_after(self, after: datetime) -> Iterator[datetime]:
        """Yield every tick time strictly after `after`, in order, forever (lazily).

        Times are aware datetimes in the schedule's timezone. `after` must be aware, else
        `ValueError`. DST transitions follow Dagster's rules (see `dagloom.definitions._cron`).
        """
        return iter_cron_ticks(self._cron_strings, self._tz, after)

    def next_tick_after(self, after: datetime) -> datetime:
        """The first tick time strictly after `after` (aware, in the schedule's timezone)."""
        return next(self.iter_ticks_after(after))

    def tick_times_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Every tick time `t` with `start < t <= end`, in order.

        The half-open window suits a daemon catching up: pass the last tick it handled and
        now. Both bounds must be aware, else `ValueError`.
        """
        if end.tzinfo is None or end.utcoffset() is None:
            raise ValueError(f"tick computation needs a timezone-aware datetime, got {end!r}")
        times: list[datetime] = []
        for tick in self.iter_ticks_after(start):
            if tick > end:
                break
            times.append(tick)
        return times

    # -- evaluation -----------------------------------------------------------------------

    def evaluate_tick(self, context: ScheduleEvaluationContext) -> ScheduleExecutionData:
        """Run the schedule's logic for one tick and return the runs it requests.

        Every request is aimed at this schedule's job and tagged with
        `dagloom/schedule_name` and `dagloom/scheduled_execution_time`. An exception from user
        code becomes `UserCodeError` (raised from it, naming the schedule); a result of the
        wrong shape raises `DefinitionError`. Sync: it runs user code and may block as long
        as that code does.
        """
        results = self._evaluate(context)
        skip_message: str | None = None
        run_requests: list[RunRequest] = []
        if not results or results == [None]:
            skip_message = "Schedule function returned an empty result"
        elif len(results) == 1 and isinstance(results[0], SkipReason):
            skip_message = results[0].skip_message
        else:
            for item in results:
                if isinstance(item, SkipReason):
                    raise DefinitionError(
                        f"schedule {self._name!r} returned both a SkipReason and RunRequests; "
                        "return one SkipReason or one or more RunRequests",
                        name=self._name,
                    )
                if not isinstance(item, RunRequest):
                    raise DefinitionError(
                        f"schedule {self._name!r} returned {item!r} of type "
                        f"{type(item).__name__}; expected RunRequest, SkipReason or a run "
                        "config dict",
                        name=self._name,
                    )
                run_requests.append(item)
            if len(run_requests) > 1 and any(r.run_key is None for r in run_requests):
                raise DefinitionError(
                    f"schedule {self._name!r} returned several RunRequests; each needs a run_key",
                    name=self._name,
                )
        tick_tags = {
            SCHEDULE_NAME_TAG: self._name,
            SCHEDULED_EXECUTION_TIME_TAG: context.scheduled_execution_time.isoformat(),
        }
        resolved = [self._resolve_request(request, tick_tags) for request in run_requests]
        return ScheduleExecutionData(run_requests=resolved, skip_message=skip_message)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Invoke the decorated schedule function directly, as Dagster does, and return its
        raw result (a run config dict is returned as a copy).

        Accepts the context positionally or by its parameter name; builds an empty one when
        the function wants a context and none is given. Other keyword arguments are resources.
        Exceptions from the function propagate unchanged.
        """
        if self._execution_fn is None:
            raise DefinitionError(
                f"schedule {self._name!r} was not built with @schedule, so there is no "
                "function to invoke; use evaluate_tick",
                name=self._name,
            )
        # Direct invocation calls the user's own function, without the decorator's
        # should_execute / tags_fn wrapping, as Dagster does.
        fn = getattr(self._execution_fn, "__wrapped__", self._execution_fn)
        result = invoke_directly(
            fn, args, kwargs, kind="schedule", name=self._name, build_context=build_schedule_context
        )
        return copy.deepcopy(result) if isinstance(result, dict) else result

    # -- internals ------------------------------------------------------------------------

    def _evaluate(self, context: ScheduleEvaluationContext) -> list[Any]:
        """User code's result for this tick, flattened to a list of items."""
        missing = sorted(k for k in self._required_resource_keys if k not in context.resources)
        if missing:
            raise DefinitionError(
                f"schedule {self._name!r} requires resources {missing}, which the context lacks",
                name=self._name,
            )
        with user_code("schedule", self._name):
            if self._execution_fn is not None:
                raw = _call(self._execution_fn, context, self._name)
                return [self._item_from_decorated(item, context) for item in _items_of(raw)]
            skip = _skip_unless_should_execute(self._should_execute, context, self._name)
            if skip is not None:
                return [skip]
            if self._run_config_fn is not None:
                run_config = _call(self._run_config_fn, context, self._name)
            else:
                run_config = copy.deepcopy(self._run_config)
            tags = self._tags
            if self._tags_fn is not None:
                tags = _tags_from_fn(self._tags_fn, context, self._name)
            return [RunRequest(run_key=None, run_config=run_config, tags=tags)]

    def _item_from_decorated(self, item: Any, context: ScheduleEvaluationContext) -> Any:
        """Turn one item a decorated schedule produced into a RunRequest where it is config."""
        if isinstance(item, Mapping):
            return RunRequest(run_key=None, run_config=item, tags=self._tags)
        if isinstance(item, RunRequest) and self._tags:
            return item.with_replaced_attrs(tags={**self._tags, **item.tags})
        return item

    def _resolve_request(self, request: RunRequest, tick_tags: Mapping[str, str]) -> RunRequest:
        if request.job_name is not None and request.job_name != self._job_name:
            raise DefinitionError(
                f"schedule {self._name!r} returned a RunRequest for job {request.job_name!r}; "
                f"it targets {self._job_name!r}",
                name=self._name,
            )
        return request.with_replaced_attrs(
            job_name=self._job_name, tags={**request.tags, **tick_tags}
        )


def schedule(
    cron_schedule: str | Sequence[str],
    *,
    job_name: str | None = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    tags_fn: Callable[[ScheduleEvaluationContext], Mapping[str, str] | None] | None = None,
    metadata: Mapping[str, Any] | None = None,
    should_execute: Callable[[ScheduleEvaluationContext], bool] | None = None,
    environment_vars: Mapping[str, str] | None = None,
    execution_timezone: str | None = None,
    description: str | None = None,
    job: HasName | None = None,
    default_status: DefaultScheduleStatus = DefaultScheduleStatus.STOPPED,
    target: Any = None,
    catch_up: str | None = None,
    required_resource_keys: set[str] | None = None,
) -> Callable[[ScheduleEvaluationFunction], ScheduleDefinition]:
    """Make a schedule from a function `(context) -> ...` (the context parameter is optional).

    The function may return or yield a `RunRequest`, a `SkipReason`, a run config dict (run
    with the decorator's `tags`), several RunRequests (each with a `run_key`), or None (the
    tick is skipped). The schedule's name defaults to the function's name.
    """
    if callable(cron_schedule) and not isinstance(cron_schedule, str):
        raise DefinitionError("@schedule needs a cron_schedule: write @schedule('0 * * * *')")

    def inner(fn: ScheduleEvaluationFunction) -> ScheduleDefinition:
        if not callable(fn):
            raise DefinitionError(f"@schedule decorates a function, got {fn!r}")
        if tags and tags_fn is not None:
            raise DefinitionError(
                f"schedule {name or fn.__name__!r}: give tags or tags_fn, not both"
            )
        execution_fn = fn
        if tags_fn is not None or should_execute is not None:
            execution_fn = _with_tags_fn_and_should_execute(
                fn, name or fn.__name__, tags_fn, should_execute
            )
        definition = ScheduleDefinition(
            name=name or fn.__name__,
            cron_schedule=cron_schedule,
            job_name=job_name,
            tags=tags,
            environment_vars=environment_vars,
            execution_timezone=execution_timezone,
            execution_fn=execution_fn,
            description=description,
            job=job,
            default_status=default_status,
            target=target,
            metadata=metadata,
            catch_up=catch_up,
            required_resource_keys=required_resource_keys,
        )
        definition.__doc__ = fn.__doc__
        definition.__wrapped__ = fn  # type: ignore[attr-defined]  # as functools.wraps sets it
        return definition

    return inner


def _call(fn: Callable[..., Any], context: ScheduleEvaluationContext, name: str) -> Any:
    return call_user_function(fn, context, kind="schedule", name=name)


def _items_of(raw: Any) -> list[Any]:
    """A schedule function's result as a list: a generator's or list's items, else itself."""
    return list(raw) if inspect.isgenerator(raw) or isinstance(raw, list) else [raw]


def _skip_unless_should_execute(
    should_execute: Callable[[ScheduleEvaluationContext], bool] | None,
    context: ScheduleEvaluationContext,
    name: str,
) -> SkipReason | None:
    """The tick's SkipReason when `should_execute` returns false; None to go on."""
    if should_execute is not None and not _call(should_execute, context, name):
        return SkipReason(f"should_execute function for {name} returned false.")
    return None


def _tags_from_fn(
    tags_fn: Callable[[ScheduleEvaluationContext], Mapping[str, str] | None],
    context: ScheduleEvaluationContext,
    name: str,
) -> dict[str, str]:
    return normalize_tags(_call(tags_fn, context, name), owner=f"tags_fn of schedule {name!r}")


def _with_tags_fn_and_should_execute(
    fn: ScheduleEvaluationFunction,
    name: str,
    tags_fn: Callable[[ScheduleEvaluationContext], Mapping[str, str] | None] | None,
    should_execute: Callable[[ScheduleEvaluationContext], bool] | None,
) -> ScheduleEvaluationFunction:
    """Wrap a decorated schedule function with the decorator's `should_execute` / `tags_fn`."""

    def evaluate(context: ScheduleEvaluationContext) -> Iterator[Any]:
        skip = _skip_unless_should_execute(should_execute, context, name)
        if skip is not None:
            yield skip
            return
        items = _items_of(_call(fn, context, name))
        tags = {} if tags_fn is None else _tags_from_fn(tags_fn, context, name)
        for item in items:
            if isinstance(item, Mapping):
                yield RunRequest(run_key=None, run_config=item, tags=tags)
            else:
                yield item

    evaluate.__wrapped__ = fn  # type: ignore[attr-defined]  # keeps direct invocation honest
    return evaluate


def _resolve_schedule_target(
    name: str | None, *, job: HasName | None, job_name: str | None, target: Any
) -> tuple[HasName | None, str | None, Any]:
    """Return (job object or None, job name or None, non-job target or None)."""
    label = f"schedule {name!r}" if name else "a schedule"
    given = check_one_target(label, (("job", job), ("job_name", job_name), ("target", target)))
    if not given:
        raise DefinitionError(f"{label}: give one of job, job_name or target", name=name)
    if job is not None:
        return job, job_name_of(job, label), None
    if job_name is not None:
        if not isinstance(job_name, str):
            raise DefinitionError(f"{label}: job_name must be a string, got {job_name!r}")
        return None, job_name, None
    if is_job_like(target):
        return target, job_name_of(target, label), None
    return None, None, target


def _validate_cron_schedule(cron_schedule: Any, name: str) -> tuple[str, ...]:
    if cron_schedule is None:
        raise DefinitionError(f"schedule {name!r} needs a cron_schedule", name=name)
    strings = [cron_schedule] if isinstance(cron_schedule, str) else cron_schedule
    if not isinstance(strings, Sequence) or not strings:
        raise DefinitionError(
            f"schedule {name!r}: cron_schedule must be a cron string or a non-empty list of "
            f"them, got {cron_schedule!r}",
            name=name,
        )
    for cron in strings:
        problem = cron_problem(cron)
        if problem is not None:
            raise DefinitionError(
                f"found invalid cron schedule {cron!r} for schedule {name!r}: {problem}",
                name=name,
            )
    return tuple(strings)
