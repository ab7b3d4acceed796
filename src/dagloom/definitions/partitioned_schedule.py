"""`build_schedule_from_partitioned_job`: a schedule that runs a partitioned job's partitions.

For a time-partitioned job, each tick of the partitions' own cadence (or a cadence given
here) runs the latest partition that has ended by the tick: the daily tick at midnight of
the 2nd runs the 1st. A job partitioned by time and another dimension runs, per tick, that
window's partition for every key of the other dimension. Because the partition comes from
the tick's scheduled time, ticks the scheduler catches up on (after downtime) run exactly the
partitions they missed. For any other partitions, each tick (of `cron_schedule`, required)
runs every partition.

An asset job declared without `partitions_def` takes its assets' partitions, which are known
only once `Definitions` resolves the job: its schedule is then an
`UnresolvedPartitionedAssetScheduleDefinition` that `Definitions` resolves alongside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dagloom.definitions.asset_job import UnresolvedAssetJobDefinition
from dagloom.definitions.partitions import (
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    TimeWindowPartitionsDefinition,
)
from dagloom.definitions.run_request import RunRequest, SkipReason
from dagloom.definitions.schedule import (
    DefaultScheduleStatus,
    ScheduleDefinition,
    ScheduleEvaluationContext,
)
from dagloom.errors import DagsterInvalidDefinitionError


def partition_for_tick(
    partitions_def: TimeWindowPartitionsDefinition, tick: datetime
) -> str | None:
    """The key of the last window that has ended at `tick` (plus the definition's
    `end_offset` windows), or None when none has yet."""
    keys = partitions_def.get_partition_keys(current_time=tick)
    return keys[-1] if keys else None


def _cron_for(
    partitions_def: TimeWindowPartitionsDefinition,
    minute_of_hour: int | None,
    hour_of_day: int | None,
    day_of_week: int | None,
    day_of_month: int | None,
) -> str:
    """The partitions' cron with the given fields replaced (the tick may come later in the
    period than the partition boundary, as in Dagster)."""
    return partitions_def.get_cron_schedule(minute_of_hour, hour_of_day, day_of_week, day_of_month)


def _partitions_def_of(job: Any) -> PartitionsDefinition:
    partitions_def = getattr(job, "partitions_def", None)
    name = getattr(job, "name", repr(job))
    if not isinstance(partitions_def, PartitionsDefinition):
        raise DagsterInvalidDefinitionError(
            f"build_schedule_from_partitioned_job: job {name!r} has no partitions definition "
            "(an asset job needs define_asset_job(partitions_def=...))",
            name=name,
        )
    return partitions_def


@dataclass(frozen=True, slots=True)
class UnresolvedPartitionedAssetScheduleDefinition:
    """A schedule built from an asset job whose partitions come from its assets: `resolve`
    builds the schedule once the job is resolved (`Definitions` does this)."""

    name: str
    job: UnresolvedAssetJobDefinition
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_job(self) -> bool:
        return True

    @property
    def job_name(self) -> str:
        return self.job.name

    def resolve(self, resolved_job: Any) -> ScheduleDefinition:
        """The schedule for `resolved_job` (this job, resolved). Raises
        `DagsterInvalidDefinitionError` naming the schedule when the job's assets are not
        partitioned."""
        if not isinstance(getattr(resolved_job, "partitions_def", None), PartitionsDefinition):
            raise DagsterInvalidDefinitionError(
                f"schedule {self.name!r}: build_schedule_from_partitioned_job needs a "
                f"partitioned job, but the assets of job {self.job.name!r} are not partitioned",
                name=self.name,
            )
        schedule = build_schedule_from_partitioned_job(resolved_job, name=self.name, **self.options)
        assert isinstance(schedule, ScheduleDefinition)  # the job is resolved
        return schedule


def build_schedule_from_partitioned_job(
    job: Any,
    description: str | None = None,
    name: str | None = None,
    minute_of_hour: int | None = None,
    hour_of_day: int | None = None,
    day_of_week: int | None = None,
    day_of_month: int | None = None,
    default_status: DefaultScheduleStatus = DefaultScheduleStatus.STOPPED,
    tags: Mapping[str, str] | None = None,
    cron_schedule: str | None = None,
    execution_timezone: str | None = None,
) -> ScheduleDefinition | UnresolvedPartitionedAssetScheduleDefinition:
    """A schedule running `job`'s partitions (see the module docstring): a
    `ScheduleDefinition`, or for an asset job that takes its assets' partitions an
    `UnresolvedPartitionedAssetScheduleDefinition` that `Definitions` resolves. Raises
    `DagsterInvalidDefinitionError` naming the job when it is not partitioned, or when a
    job not partitioned by time gets no `cron_schedule`."""
    if isinstance(job, UnresolvedAssetJobDefinition) and job.partitions_def is None:
        return UnresolvedPartitionedAssetScheduleDefinition(
            name=name or f"{job.name}_schedule",
            job=job,
            options={
                "description": description,
                "minute_of_hour": minute_of_hour,
                "hour_of_day": hour_of_day,
                "day_of_week": day_of_week,
                "day_of_month": day_of_month,
                "default_status": default_status,
                "tags": tags,
                "cron_schedule": cron_schedule,
                "execution_timezone": execution_timezone,
            },
        )
    partitions_def = _partitions_def_of(job)
    partitioned_config = getattr(job, "partitioned_config", None)
    job_name = job.name

    def request_for(key: str) -> RunRequest:
        run_config: dict[str, Any] = {}
        extra: dict[str, str] = {}
        if partitioned_config is not None:
            run_config = partitioned_config.get_run_config_for_partition_key(key)
            extra = partitioned_config.get_tags_for_partition_key(key)
        return RunRequest(
            run_key=key,
            run_config=run_config,
            tags={**extra, **dict(tags or {})},
            partition_key=key,
        )

    if (
        isinstance(partitions_def, MultiPartitionsDefinition)
        and partitions_def.time_window_dimension is not None
        and cron_schedule is None
    ):
        return _multi_time_schedule(
            job,
            partitions_def,
            request_for,
            name=name,
            minute_of_hour=minute_of_hour,
            hour_of_day=hour_of_day,
            day_of_week=day_of_week,
            day_of_month=day_of_month,
            description=description,
            default_status=default_status,
            execution_timezone=execution_timezone,
        )

    if isinstance(partitions_def, TimeWindowPartitionsDefinition):
        time_def = partitions_def
        cron = cron_schedule or _cron_for(
            time_def, minute_of_hour, hour_of_day, day_of_week, day_of_month
        )
        timezone = execution_timezone or time_def.timezone

        def latest_partition(context: ScheduleEvaluationContext) -> Any:
            # A tick shifted later in the period (hour_of_day=...) still runs the last
            # window that had ended by then.
            tick = context.scheduled_execution_time
            key = partition_for_tick(time_def, tick)
            if key is None:
                return SkipReason(f"no partition of job {job_name!r} has ended by {tick}")
            return request_for(key)

        return ScheduleDefinition(
            name=name or f"{job_name}_schedule",
            cron_schedule=cron,
            job=job,
            execution_fn=latest_partition,
            execution_timezone=timezone,
            description=description,
            default_status=default_status,
        )

    if cron_schedule is None:
        raise DagsterInvalidDefinitionError(
            f"build_schedule_from_partitioned_job: job {job_name!r} is not partitioned by time; "
            "give cron_schedule=",
            name=job_name,
        )

    def every_partition(context: ScheduleEvaluationContext) -> Any:
        # Keys stored in the instance (DynamicPartitionsDefinition(name=)) are not readable
        # here: such a definition raises, and the tick fails naming it.
        keys = partitions_def.get_partition_keys(current_time=context.scheduled_execution_time)
        return [request_for(k) for k in keys] or SkipReason(f"job {job_name!r} has no partitions")

    return ScheduleDefinition(
        name=name or f"{job_name}_schedule",
        cron_schedule=cron_schedule,
        job=job,
        execution_fn=every_partition,
        execution_timezone=execution_timezone,
        description=description,
        default_status=default_status,
    )


def _multi_time_schedule(
    job: Any,
    partitions_def: MultiPartitionsDefinition,
    request_for: Any,
    *,
    name: str | None,
    minute_of_hour: int | None,
    hour_of_day: int | None,
    day_of_week: int | None,
    day_of_month: int | None,
    description: str | None,
    default_status: DefaultScheduleStatus,
    execution_timezone: str | None,
) -> ScheduleDefinition:
    """The schedule of a job partitioned by time and another dimension: each tick of the
    time dimension's cadence runs every partition of the latest window that has ended, one
    run per key of the other dimension."""
    time_dim = partitions_def.time_window_dimension
    assert time_dim is not None
    time_def = time_dim.partitions_def
    assert isinstance(time_def, TimeWindowPartitionsDefinition)
    other = next(d for d in partitions_def.partitions_defs if d.name != time_dim.name)
    job_name = job.name

    def latest_window(context: ScheduleEvaluationContext) -> Any:
        tick = context.scheduled_execution_time
        key = partition_for_tick(time_def, tick)
        if key is None:
            return SkipReason(f"no partition of job {job_name!r} has ended by {tick}")
        others = other.partitions_def.get_partition_keys(
            current_time=tick, dynamic_partitions_store=context.instance
        )
        requests = [
            request_for(MultiPartitionKey({time_dim.name: key, other.name: o})) for o in others
        ]
        return requests or SkipReason(f"dimension {other.name!r} of job {job_name!r} is empty")

    return ScheduleDefinition(
        name=name or f"{job_name}_schedule",
        cron_schedule=_cron_for(time_def, minute_of_hour, hour_of_day, day_of_week, day_of_month),
        job=job,
        execution_fn=latest_window,
        execution_timezone=execution_timezone or time_def.timezone,
        description=description,
        default_status=default_status,
    )


__all__ = [
    "UnresolvedPartitionedAssetScheduleDefinition",
    "build_schedule_from_partitioned_job",
    "partition_for_tick",
]
