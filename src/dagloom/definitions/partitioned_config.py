"""Partitioned config: a job's run config computed from the partition it runs for.

`@job(config=daily_partitioned_config(start_date=...)(fn))` makes the job partitioned by
the decorator's definition; a run for partition `k` gets `fn(window start, window end)` (time
windows) or `fn(k)` as its run config, under whatever config the run gives itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from dagloom.definitions.partitions import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)


class PartitionedConfig:
    """A partitions definition and how to turn one of its keys into run config."""

    def __init__(
        self,
        partitions_def: PartitionsDefinition,
        run_config_for_partition_fn: Callable[[str], Mapping[str, Any]] | None = None,
        decorated_fn: Callable[..., Any] | None = None,
        tags_for_partition_fn: Callable[[str], Mapping[str, str]] | None = None,
        run_config_for_partition_key_fn: Callable[[str], Mapping[str, Any]] | None = None,
        tags_for_partition_key_fn: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
        self.partitions_def = partitions_def
        self._config_fn = run_config_for_partition_key_fn or run_config_for_partition_fn
        self._tags_fn = tags_for_partition_key_fn or tags_for_partition_fn
        self.decorated_fn = decorated_fn

    def get_partition_keys(self, current_time: datetime | None = None) -> list[str]:
        """The keys of its partitions definition, in order, as of `current_time` (default:
        now)."""
        return self.partitions_def.get_partition_keys(current_time)

    def get_run_config_for_partition_key(self, partition_key: str) -> dict[str, Any]:
        return dict(self._config_fn(partition_key)) if self._config_fn is not None else {}

    def get_tags_for_partition_key(self, partition_key: str) -> dict[str, str]:
        if self._tags_fn is None:
            return {}
        return {str(k): str(v) for k, v in self._tags_fn(partition_key).items()}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the decorated function (for unit tests)."""
        if self.decorated_fn is None:
            raise TypeError("this PartitionedConfig was not built by a decorator")
        return self.decorated_fn(*args, **kwargs)


def partitioned_config(
    partitions_def: PartitionsDefinition,
    tags_for_partition_key_fn: Callable[[str], Mapping[str, str]] | None = None,
) -> Callable[[Callable[[str], Mapping[str, Any]]], PartitionedConfig]:
    """Decorate `fn(partition_key) -> run config` over any partitions definition."""
    if not isinstance(partitions_def, PartitionsDefinition):
        raise TypeError(
            f"partitioned_config takes a PartitionsDefinition, not {type(partitions_def).__name__}"
        )

    def wrap(fn: Callable[[str], Mapping[str, Any]]) -> PartitionedConfig:
        return PartitionedConfig(
            partitions_def,
            run_config_for_partition_key_fn=fn,
            decorated_fn=fn,
            tags_for_partition_key_fn=tags_for_partition_key_fn,
        )

    return wrap


def static_partitioned_config(
    partition_keys: list[str],
    tags_for_partition_fn: Callable[[str], Mapping[str, str]] | None = None,
) -> Callable[[Callable[[str], Mapping[str, Any]]], PartitionedConfig]:
    """Decorate `fn(partition_key) -> run config` over a static list of keys."""

    def wrap(fn: Callable[[str], Mapping[str, Any]]) -> PartitionedConfig:
        return PartitionedConfig(
            StaticPartitionsDefinition(partition_keys),
            run_config_for_partition_key_fn=fn,
            decorated_fn=fn,
            tags_for_partition_key_fn=tags_for_partition_fn,
        )

    return wrap


def dynamic_partitioned_config(
    partition_fn: Callable[[datetime | None], list[str]],
    tags_for_partition_fn: Callable[[str], Mapping[str, str]] | None = None,
) -> Callable[[Callable[[str], Mapping[str, Any]]], PartitionedConfig]:
    """Decorate `fn(partition_key) -> run config` over keys `partition_fn` computes."""
    from dagloom.definitions.partitions import DynamicPartitionsDefinition

    def wrap(fn: Callable[[str], Mapping[str, Any]]) -> PartitionedConfig:
        return PartitionedConfig(
            DynamicPartitionsDefinition(partition_fn=partition_fn),
            run_config_for_partition_key_fn=fn,
            decorated_fn=fn,
            tags_for_partition_key_fn=tags_for_partition_fn,
        )

    return wrap


def _time_window_config(
    partitions_def: TimeWindowPartitionsDefinition,
    fn: Callable[[datetime, datetime], Mapping[str, Any]],
    tags_fn: Callable[[datetime, datetime], Mapping[str, str]] | None,
) -> PartitionedConfig:
    def config_for_key(key: str) -> Mapping[str, Any]:
        window = partitions_def.time_window_for_partition_key(key)
        return fn(window.start, window.end)

    def tags_for_key(key: str) -> Mapping[str, str]:
        assert tags_fn is not None
        window = partitions_def.time_window_for_partition_key(key)
        return tags_fn(window.start, window.end)

    return PartitionedConfig(
        partitions_def,
        run_config_for_partition_key_fn=config_for_key,
        decorated_fn=fn,
        tags_for_partition_key_fn=tags_for_key if tags_fn is not None else None,
    )


def _time_decorator(
    factory: Callable[..., TimeWindowPartitionsDefinition],
) -> Callable[..., Callable[[Callable[..., Mapping[str, Any]]], PartitionedConfig]]:
    def decorator(
        start_date: str | datetime,
        *args: Any,
        tags_for_partition_fn: Callable[[datetime, datetime], Mapping[str, str]] | None = None,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Mapping[str, Any]]], PartitionedConfig]:
        partitions_def = factory(start_date, *args, **kwargs)

        def wrap(fn: Callable[[datetime, datetime], Mapping[str, Any]]) -> PartitionedConfig:
            return _time_window_config(partitions_def, fn, tags_for_partition_fn)

        return wrap

    return decorator


daily_partitioned_config = _time_decorator(DailyPartitionsDefinition)
daily_partitioned_config.__doc__ = "Decorate `fn(start, end) -> run config`, one run per day."
hourly_partitioned_config = _time_decorator(HourlyPartitionsDefinition)
hourly_partitioned_config.__doc__ = "Decorate `fn(start, end) -> run config`, one run per hour."
weekly_partitioned_config = _time_decorator(WeeklyPartitionsDefinition)
weekly_partitioned_config.__doc__ = "Decorate `fn(start, end) -> run config`, one run per week."
monthly_partitioned_config = _time_decorator(MonthlyPartitionsDefinition)
monthly_partitioned_config.__doc__ = "Decorate `fn(start, end) -> run config`, one run per month."


__all__ = [
    "PartitionedConfig",
    "daily_partitioned_config",
    "dynamic_partitioned_config",
    "hourly_partitioned_config",
    "monthly_partitioned_config",
    "partitioned_config",
    "static_partitioned_config",
    "weekly_partitioned_config",
]
