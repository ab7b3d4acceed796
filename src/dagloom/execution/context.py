"""What an op sees while it runs: OpExecutionContext (and AssetExecutionContext), its logger,
and `build_op_context` for unit tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.partitions import (
    MultiPartitionsDefinition,
    PartitionKeyRange,
    PartitionsDefinition,
    TimeWindow,
    TimeWindowPartitionsDefinition,
)
from dagloom.definitions.resources import Resources, ResourceScope, validate_resource_config
from dagloom.errors import DagloomError, DagsterInvalidInvocationError
from dagloom.messages import EventType, LogLevel, RunStatus
from dagloom.messages.rows import EventRow, row

if TYPE_CHECKING:
    from dagloom.definitions.op import OpDefinition
    from dagloom.execution.partitions import RunPartitions
    from dagloom.instance import DagloomInstance
    from dagloom.instance.sync import SyncInstance

_python_logger = logging.getLogger("dagloom")

_LEVELS = {
    logging.DEBUG: LogLevel.DEBUG,
    logging.INFO: LogLevel.INFO,
    logging.WARNING: LogLevel.WARNING,
    logging.ERROR: LogLevel.ERROR,
    logging.CRITICAL: LogLevel.CRITICAL,
}


@dataclass(frozen=True, slots=True)
class RunInfo:
    """`context.run`: the run a step belongs to, as Dagster's `DagsterRun` shows it."""

    run_id: str
    job_name: str
    tags: Mapping[str, str]
    run_config: Mapping[str, Any]

    @property
    def status(self) -> RunStatus:
        """A step only runs while its run is STARTED."""
        return RunStatus.STARTED


class DagloomLogManager:
    """`context.log`: each call records a LOG_MESSAGE event in the run and also goes to the
    `dagloom` Python logger."""

    __slots__ = ("_emit", "_job_name", "_run_id", "_step_key")

    def __init__(
        self, run_id: str, job_name: str, step_key: str, emit: Callable[[EventRow], None] | None
    ) -> None:
        self._run_id = run_id
        self._job_name = job_name
        self._step_key = step_key
        self._emit = emit

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        text = str(msg) % args if args else str(msg)
        if self._emit is not None:
            self._emit(
                row(
                    EventType.LOG_MESSAGE,
                    self._step_key,
                    text,
                    _LEVELS.get(level, LogLevel.INFO),
                    self._job_name,
                )
            )
        if _python_logger.isEnabledFor(level):
            _python_logger.log(
                level,
                "%s",
                text,
                extra={"run_id": self._run_id, "step_key": self._step_key},
                exc_info=kwargs.get("exc_info"),
            )

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    warn = warning

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def critical(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.CRITICAL, msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, exc_info=True, **kwargs)


class OpExecutionContext:
    """The `context` argument of an op: run and step identity, config, resources, logging.

    Created once per step attempt; cheap by design (the logger is built on first use).
    """

    __slots__ = (
        "_asset_keys",
        "_check_specs",
        "_emit",
        "_flush_events",
        "_instance",
        "_log",
        "_logged_events",  # a built context's log_event calls; a step's context leaves it unset
        "_output_metadata",
        "_partitions",
        "_resource_scope",
        "job_name",
        "mapping_key",
        "op_config",
        "op_def",
        "resources",
        "retry_number",
        "run_config",
        "run_id",
        "run_tags",
        "step_key",
    )

    _resource_scope: ResourceScope | None
    _logged_events: list[Any]

    def __init__(
        self,
        *,
        run_id: str,
        job_name: str,
        step_key: str,
        op_def: OpDefinition | None,
        op_config: Any,
        resources: Resources,
        emit: Callable[[EventRow], None] | None,
        retry_number: int = 0,
        mapping_key: str | None = None,
        asset_keys: Mapping[str, AssetKey] | None = None,
        run_config: Mapping[str, Any] | None = None,
        run_tags: Mapping[str, str] | None = None,
        partitions: RunPartitions | None = None,
        instance: DagloomInstance | None = None,
        flush_events: Callable[[], None] | None = None,
        check_specs: Sequence[Any] = (),
    ) -> None:
        self.run_id = run_id
        self.job_name = job_name
        self.step_key = step_key
        self.op_def = op_def
        self.op_config = op_config
        self.resources = resources
        self._emit = emit
        self.retry_number = retry_number
        self.mapping_key = mapping_key
        self._asset_keys = asset_keys
        self.run_config = run_config or {}
        self.run_tags = run_tags or {}
        self._log: DagloomLogManager | None = None
        self._output_metadata: dict[str, dict[str, Any]] | None = None
        self._partitions = partitions
        self._instance = instance
        self._flush_events = flush_events
        self._resource_scope: ResourceScope | None = None
        self._check_specs = check_specs

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Tear down the resources `build_op_context` or `build_asset_context` built (in
        reverse order); calling it twice is safe."""
        if self._resource_scope is not None:
            self._resource_scope.close()

    @property
    def instance(self) -> SyncInstance:
        """The run's instance, called synchronously (`get_latest_materialization_event`,
        `fetch_materializations`, `fetch_observations`, `get_dynamic_partitions`,
        `add_dynamic_partitions`...). Raises DagsterInvalidInvocationError in a run without
        an instance (`execute_in_process()` without `instance=`, `build_op_context`)."""
        from dagloom.instance.sync import SyncInstance

        if self._instance is None:
            raise DagsterInvalidInvocationError(
                f"step {self.step_key!r} of job {self.job_name!r} has no instance: pass one "
                "to execute_in_process(instance=...) or build_op_context(instance=...)"
            )
        return SyncInstance(self._instance, self._flush_events)

    @property
    def log(self) -> DagloomLogManager:
        if self._log is None:
            self._log = DagloomLogManager(self.run_id, self.job_name, self.step_key, self._emit)
        return self._log

    @property
    def op(self) -> OpDefinition | None:
        return self.op_def

    def get_mapping_key(self) -> str | None:
        """The mapping key of this step when it runs for one element of a dynamic output
        (`op[key]`), else None."""
        return self.mapping_key

    @property
    def run(self) -> RunInfo:
        """The run this step belongs to: `run_id`, `job_name`, `tags`, `run_config`."""
        return RunInfo(self.run_id, self.job_name, dict(self.run_tags), dict(self.run_config))

    @property
    def dagster_run(self) -> RunInfo:
        return self.run

    def log_event(self, event: Any) -> None:
        """Record an AssetMaterialization, AssetObservation or ExpectationResult as an event
        of this step (as yielding it would). Anything else raises
        DagsterInvalidInvocationError. Without a run (a context from build_op_context), the
        event is kept for `get_events`."""
        from dagloom.definitions.outputs import (
            AssetMaterialization,
            AssetObservation,
            ExpectationResult,
        )
        from dagloom.execution.events import expectation_row, reported_asset_row

        if isinstance(event, AssetMaterialization | AssetObservation):
            record = reported_asset_row(self.step_key, self.job_name, event)
        elif isinstance(event, ExpectationResult):
            record = expectation_row(self.step_key, self.job_name, event)
        else:
            raise DagsterInvalidInvocationError(
                f"step {self.step_key!r}: context.log_event takes an AssetMaterialization, an "
                f"AssetObservation or an ExpectationResult, got {type(event).__name__}",
                name=self.step_key,
            )
        if self._emit is not None:
            self._emit(record)
        else:
            try:
                self._logged_events.append(event)
            except AttributeError:
                self._logged_events = [event]

    def get_events(self) -> list[Any]:
        """The events given to `log_event` so far, in order, of a context built with
        `build_op_context` / `build_asset_context` (a unit test's). A step's context in a
        run records them as the run's events instead: DagsterInvalidInvocationError."""
        if self._emit is not None:
            raise DagsterInvalidInvocationError(
                f"step {self.step_key!r}: get_events reads the events of a context from "
                "build_op_context; in a run they are the run's events (result.all_events)",
                name=self.step_key,
            )
        return list(getattr(self, "_logged_events", ()))

    @property
    def job_def_name(self) -> str:
        return self.job_name

    @property
    def has_assets_def(self) -> bool:
        return bool(self._asset_keys)

    @property
    def asset_key(self) -> AssetKey:
        """The key of the asset this step materializes (exactly one, else an error)."""
        keys = list((self._asset_keys or {}).values())
        if len(keys) != 1:
            raise DagloomError(
                f"step {self.step_key!r} materializes {len(keys)} assets; use "
                "asset_key_for_output(name)"
            )
        return keys[0]

    @property
    def selected_asset_keys(self) -> set[AssetKey]:
        return set((self._asset_keys or {}).values())

    @property
    def selected_asset_check_keys(self) -> set[Any]:
        """The AssetCheckKeys this run asks the step to compute (a subsettable asset or
        check may be asked for some of its checks only)."""
        return {spec.key for spec in self._check_specs}

    @property
    def selected_output_names(self) -> set[str]:
        """The outputs this run asks the step to produce: for an asset step, those of the
        selected assets (a subset of a multi-asset may select some); otherwise every output."""
        if self._asset_keys:
            return set(self._asset_keys)
        return set(self.op_def.outs) if self.op_def is not None else set()

    def asset_key_for_output(self, output_name: str = "result") -> AssetKey:
        try:
            return (self._asset_keys or {})[output_name]
        except KeyError:
            raise DagloomError(
                f"output {output_name!r} of {self.step_key!r} is not an asset"
            ) from None

    def has_tag(self, key: str) -> bool:
        return key in self.run_tags

    def get_tag(self, key: str) -> str | None:
        return self.run_tags.get(key)

    def add_output_metadata(self, metadata: Mapping[str, Any], output_name: str = "result") -> None:
        """Attach metadata to an output's STEP_OUTPUT and materialization events."""
        if self._output_metadata is None:
            self._output_metadata = {}
        self._output_metadata.setdefault(output_name, {}).update(metadata)

    def add_asset_metadata(
        self,
        metadata: Mapping[str, Any],
        asset_key: AssetKey | str | Sequence[str] | None = None,
        partition_key: str | None = None,
    ) -> None:
        """Attach metadata to the materialization of `asset_key` (may be omitted when the
        step materializes one asset). `partition_key`, when given, must be the run's one
        partition. DagsterInvalidInvocationError names what does not fit."""
        keys = self._asset_keys or {}
        if asset_key is None:
            if len(keys) != 1:
                raise DagsterInvalidInvocationError(
                    f"step {self.step_key!r} materializes {len(keys)} assets; pass asset_key "
                    "to add_asset_metadata",
                    name=self.step_key,
                )
            output_name = next(iter(keys))
        else:
            wanted = AssetKey.from_coercible(asset_key)
            found = [name for name, key in keys.items() if key == wanted]
            if not found:
                raise DagsterInvalidInvocationError(
                    f"step {self.step_key!r} does not materialize asset "
                    f"{wanted.to_user_string()!r}; it materializes "
                    f"{sorted(k.to_user_string() for k in keys.values())}",
                    name=self.step_key,
                )
            output_name = found[0]
        if partition_key is not None and (
            not self.has_partition_key or partition_key != self.partition_key
        ):
            raise DagsterInvalidInvocationError(
                f"step {self.step_key!r}: partition {partition_key!r} is not the partition "
                "this run materializes",
                name=self.step_key,
            )
        self.add_output_metadata(metadata, output_name)

    def get_output_metadata(
        self, output_name: str = "result", mapping_key: str | None = None
    ) -> Mapping[str, Any] | None:
        """The metadata added so far for an output with `add_output_metadata`, or None."""
        return self.output_metadata_for(output_name)

    def output_metadata_for(self, output_name: str) -> dict[str, Any] | None:
        if self._output_metadata is None:
            return None
        return self._output_metadata.get(output_name)

    # -- partitions ---------------------------------------------------------------------

    def _run_partitions(self) -> RunPartitions:
        if self._partitions is None or self._partitions.key_range is None:
            raise DagloomError(f"step {self.step_key!r}: the run is not partitioned")
        return self._partitions

    @property
    def has_partition_key(self) -> bool:
        """Whether the run is for one partition."""
        return self._partitions is not None and self._partitions.is_single

    @property
    def has_partition_key_range(self) -> bool:
        return self._partitions is not None and self._partitions.key_range is not None

    @property
    def partition_key(self) -> str:
        """The run's partition; an error when the run is for a range or none."""
        parts = self._run_partitions()
        key = parts.run_partition_key
        if key is None:
            key_range = self.partition_key_range
            raise DagloomError(
                f"step {self.step_key!r}: the run is for partitions "
                f"{key_range.start}...{key_range.end}; use partition_key_range"
            )
        keys = self._asset_keys_partitions() or parts.job_keys()
        return keys[0] if keys else key

    @property
    def partition_key_range(self) -> PartitionKeyRange:
        key_range = self._run_partitions().key_range
        assert key_range is not None
        return key_range

    def _asset_keys_partitions(self) -> list[str] | None:
        parts = self._run_partitions()
        for key in (self._asset_keys or {}).values():
            keys = parts.keys_for_asset(key)
            if keys is not None:
                return keys
        return None

    @property
    def asset_partition_key_range(self) -> PartitionKeyRange:
        """Dagster's older name for `partition_key_range`."""
        return self.partition_key_range

    @property
    def partition_keys(self) -> list[str]:
        """Every partition key the run covers, in the asset's definition."""
        keys = self._asset_keys_partitions()
        if keys is None:
            keys = self._run_partitions().job_keys()
        if keys is not None:
            return keys
        key_range = self.partition_key_range
        if key_range.start == key_range.end:
            return [key_range.start]
        raise DagloomError(
            f"step {self.step_key!r}: no partitions definition to list "
            f"{key_range.start}...{key_range.end} with"
        )

    @property
    def partition_time_window(self) -> TimeWindow:
        """The time window the run's partitions cover, in its assets' partitions (or, in an
        op job, the job's); an error when those are not time windows."""
        part = self.assets_partitions_def
        if part is None and not self._asset_keys and self._partitions is not None:
            part = self._partitions.job_partitions_def
        return self._time_window(part, self.partition_keys, "the run")

    def _time_window(
        self, part: PartitionsDefinition | None, keys: Sequence[str], what: str
    ) -> TimeWindow:
        """The window from the first of `keys` to the end of the last, in `part` (or its
        time dimension)."""
        time_def = part
        if isinstance(part, MultiPartitionsDefinition) and part.time_window_dimension:
            time_def = part.time_window_dimension.partitions_def
        if not isinstance(time_def, TimeWindowPartitionsDefinition):
            raise DagloomError(f"step {self.step_key!r}: {what} is not partitioned by time windows")
        if isinstance(part, MultiPartitionsDefinition):
            dim = part.time_window_dimension
            assert dim is not None
            keys = [part.get_partition_key_from_str(k).keys_by_dimension[dim.name] for k in keys]
        return TimeWindow(
            time_def.time_window_for_partition_key(keys[0]).start,
            time_def.time_window_for_partition_key(keys[-1]).end,
        )

    @property
    def assets_partitions_def(self) -> PartitionsDefinition | None:
        parts = self._partitions
        for key in (self._asset_keys or {}).values():
            if parts is not None:
                return parts.partitions_def(key)
        return None

    @property
    def asset_partitions_def(self) -> PartitionsDefinition | None:
        return self.assets_partitions_def

    def asset_partitions_def_for_output(self, output_name: str = "result") -> Any:
        key = self.asset_key_for_output(output_name)
        return None if self._partitions is None else self._partitions.partitions_def(key)

    def asset_partition_key_for_output(self, output_name: str = "result") -> str:
        keys = self.asset_partition_keys_for_output(output_name)
        if len(keys) != 1:
            raise DagloomError(
                f"output {output_name!r} of {self.step_key!r} covers {len(keys)} partitions"
            )
        return keys[0]

    def asset_partition_keys_for_output(self, output_name: str = "result") -> list[str]:
        keys = self._run_partitions().keys_for_asset(self.asset_key_for_output(output_name))
        if keys is None:
            raise DagloomError(f"output {output_name!r} of {self.step_key!r} is not partitioned")
        return keys

    def asset_partition_key_range_for_output(
        self, output_name: str = "result"
    ) -> PartitionKeyRange:
        keys = self.asset_partition_keys_for_output(output_name)
        return PartitionKeyRange(keys[0], keys[-1])

    def asset_partitions_time_window_for_output(self, output_name: str = "result") -> TimeWindow:
        """The time window the output's partitions cover."""
        return self._time_window(
            self.asset_partitions_def_for_output(output_name),
            self.asset_partition_keys_for_output(output_name),
            f"output {output_name!r}",
        )

    def asset_partitions_time_window_for_input(self, input_name: str) -> TimeWindow:
        """The time window of the upstream partitions input `input_name` reads."""
        upstream = self._input_asset_key(input_name)
        part = None if self._partitions is None else self._partitions.partitions_def(upstream)
        return self._time_window(
            part, self.asset_partition_keys_for_input(input_name), f"input {input_name!r}"
        )

    def asset_partition_keys_for_input(self, input_name: str) -> list[str]:
        """The upstream partitions input `input_name` reads, through its mapping."""
        upstream = self._input_asset_key(input_name)
        downstream = next(iter((self._asset_keys or {}).values()), None)
        keys = self._run_partitions().keys_for_input(downstream, upstream)
        if keys is None:
            raise DagloomError(f"input {input_name!r} of {self.step_key!r} is not partitioned")
        return keys

    def asset_partition_key_range_for_input(self, input_name: str) -> PartitionKeyRange:
        keys = self.asset_partition_keys_for_input(input_name)
        return PartitionKeyRange(keys[0], keys[-1])

    def asset_partition_key_for_input(self, input_name: str) -> str:
        keys = self.asset_partition_keys_for_input(input_name)
        if len(keys) != 1:
            raise DagloomError(
                f"input {input_name!r} of {self.step_key!r} reads {len(keys)} partitions"
            )
        return keys[0]

    def asset_key_for_input(self, input_name: str) -> AssetKey:
        """The key of the asset an input reads."""
        return self._input_asset_key(input_name)

    def _input_asset_key(self, input_name: str) -> AssetKey:
        spec = None if self.op_def is None else self.op_def.ins.get(input_name)
        key = None if spec is None else spec.asset_key
        if key is None:
            raise DagloomError(f"input {input_name!r} of {self.step_key!r} reads no asset")
        return key

    @property
    def pdb(self) -> Any:
        import pdb

        return pdb


class AssetExecutionContext(OpExecutionContext):
    """The `context` argument of an asset; the same object as an op's, named for assets."""

    __slots__ = ()

    @property
    def op_execution_context(self) -> OpExecutionContext:
        """The op's context of this step: this same object, which answers both."""
        return self


class AssetCheckExecutionContext(OpExecutionContext):
    """The `context` argument of an asset check (`@asset_check`, `@multi_asset_check`): the
    op's context of the step, with the specs of the checks the step computes."""

    __slots__ = ()

    @property
    def op_execution_context(self) -> OpExecutionContext:
        """The op's context of this step: this same object, which answers both."""
        return self

    @property
    def check_specs(self) -> Sequence[Any]:
        """The AssetCheckSpecs of the checks this step computes."""
        return tuple(self._check_specs)


def build_op_context(
    resources: Mapping[str, Any] | None = None,
    op_config: Any = None,
    config: Any = None,
    run_id: str | None = None,
    job_name: str = "__ephemeral__",
    step_key: str = "op",
    run_tags: Mapping[str, str] | None = None,
    partition_key: str | None = None,
    partition_key_range: PartitionKeyRange | None = None,
    instance: DagloomInstance | None = None,
    resources_config: Mapping[str, Any] | None = None,
) -> OpExecutionContext:
    """A context for calling an op function directly in a unit test. Log calls go to the
    Python logger only.

    Resources are built now, as a run builds them (`@resource` functions called,
    configurable resources given their config, EnvVars read, `setup_for_execution` called);
    `resources_config` is shaped as run config's `resources:`. Leaving `with
    build_op_context(...) as context:` tears them down."""
    from dagloom.execution.partitions import partition_tags, run_partitions

    tags = {**(run_tags or {}), **partition_tags(partition_key, partition_key_range)}
    scope = _resource_scope(resources, resources_config, run_id, instance)
    context = OpExecutionContext(
        run_id=run_id or "ephemeral",
        job_name=job_name,
        step_key=step_key,
        op_def=None,
        op_config=op_config if op_config is not None else config,
        resources=scope.resources,
        emit=None,
        run_tags=tags,
        partitions=run_partitions(None, tags),
        instance=instance,
    )
    context._resource_scope = scope
    return context


def _resource_scope(
    resources: Mapping[str, Any] | None,
    resources_config: Mapping[str, Any] | None,
    run_id: str | None,
    instance: DagloomInstance | None,
) -> ResourceScope:
    """`resources` built for a context made outside a run; the scope tears them down."""
    defs = dict(resources or {})
    config = validate_resource_config(defs, resources_config)
    scope = ResourceScope(defs, config, run_id or "ephemeral", instance=instance)
    scope.__enter__()
    return scope


def build_asset_context(
    resources: Mapping[str, Any] | None = None,
    asset_config: Any = None,
    run_id: str | None = None,
    partition_key: str | None = None,
    partition_key_range: PartitionKeyRange | None = None,
    instance: DagloomInstance | None = None,
    resources_config: Mapping[str, Any] | None = None,
) -> AssetExecutionContext:
    """A context for calling an asset function directly in a unit test; `partition_key` or
    `partition_key_range` makes it a partitioned run's. Resources are built as by
    `build_op_context`, and torn down on leaving `with build_asset_context(...)`."""
    from dagloom.execution.partitions import partition_tags, run_partitions

    tags = partition_tags(partition_key, partition_key_range)
    scope = _resource_scope(resources, resources_config, run_id, instance)
    context = AssetExecutionContext(
        run_id=run_id or "ephemeral",
        job_name="__ephemeral__",
        step_key="asset",
        op_def=None,
        op_config=asset_config,
        resources=scope.resources,
        emit=None,
        run_tags=tags,
        partitions=run_partitions(None, tags),
        instance=instance,
    )
    context._resource_scope = scope
    return context


__all__ = [
    "AssetExecutionContext",
    "DagloomLogManager",
    "OpExecutionContext",
    "RunInfo",
    "build_asset_context",
    "build_op_context",
]
