"""Definitions: the one object a code location exposes — its assets, jobs, schedules,
sensors and resources — checked together when it is built."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dagloom.definitions.asset import AssetsDefinition, AssetSpec
from dagloom.definitions.asset_job import (
    IMPLICIT_ASSET_JOB_NAME,
    UnresolvedAssetJobDefinition,
    build_asset_job,
)
from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.definitions.asset_selection import AssetGraph
from dagloom.definitions.executor import ExecutorDefinition
from dagloom.definitions.graph import GraphDefinition
from dagloom.definitions.job import JobDefinition
from dagloom.definitions.partitioned_schedule import UnresolvedPartitionedAssetScheduleDefinition
from dagloom.definitions.schedule import ScheduleDefinition
from dagloom.definitions.sensor import SensorDefinition
from dagloom.errors import DagsterInvalidDefinitionError, DefinitionError

if TYPE_CHECKING:
    from dagloom.definitions.asset_value_loader import AssetValueLoader


def _unique(kind: str, items: Iterable[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name = item.name
        if name in out and out[name] is not item:
            raise DefinitionError(f"two {kind}s are named {name!r}", name=name)
        out[name] = item
    return out


def _target_assets(listed: Sequence[Any], targets: Iterable[Any]) -> list[AssetsDefinition]:
    """The asset definitions among schedule and sensor targets that `listed` lacks (by
    object, then by key), once each."""
    have = {id(a) for a in listed}
    keys = {key for a in listed if isinstance(a, AssetsDefinition) for key in a.keys}
    found: list[AssetsDefinition] = []
    for target in targets:
        items = target if isinstance(target, Sequence) and not isinstance(target, str) else [target]
        for item in items:
            if not isinstance(item, AssetsDefinition) or id(item) in have:
                continue
            if keys & set(item.keys):
                continue  # the same asset, listed in assets= as another object
            have.add(id(item))
            keys |= set(item.keys)
            found.append(item)
    return found


def _check_resources_provided(job: JobDefinition) -> None:
    """DagsterInvalidDefinitionError naming the first resource key a node of `job` needs
    that the job's resources lack (`io_manager` always has a default)."""
    provided = {*job.resource_defs, "io_manager"}
    for hook in job.hook_defs:
        for key in sorted(hook.required_resource_keys - provided):
            raise DagsterInvalidDefinitionError(
                f"resource with key {key!r} required by hook {hook.name!r} of job "
                f"{job.name!r} was not provided; provided: {sorted(provided)}",
                name=job.name,
            )
    for node in job.nodes.values():
        op = node.op
        needed = set(op.required_resource_keys)
        needed.update(out.io_manager_key for out in op.outs.values())
        needed.update(spec.input_manager_key for spec in op.ins.values() if spec.input_manager_key)
        for hook in node.hooks:
            needed |= hook.required_resource_keys
        for key in sorted(needed - provided):
            raise DagsterInvalidDefinitionError(
                f"resource with key {key!r} required by op {op.name!r} of job {job.name!r} "
                f"was not provided; provided: {sorted(provided)}",
                name=op.name,
            )


class Definitions:
    """Everything one code location defines. Building it resolves asset jobs, binds
    resources to jobs, and checks that names are unique and every target exists; errors
    are DefinitionErrors naming the definition at fault."""

    def __init__(
        self,
        assets: Iterable[AssetsDefinition | AssetSpec] | None = None,
        jobs: Iterable[JobDefinition | UnresolvedAssetJobDefinition | GraphDefinition]
        | None = None,
        schedules: Iterable[ScheduleDefinition | UnresolvedPartitionedAssetScheduleDefinition]
        | None = None,
        sensors: Iterable[SensorDefinition] | None = None,
        resources: Mapping[str, Any] | None = None,
        executor: ExecutorDefinition | None = None,
        asset_checks: Iterable[Any] | None = None,
        loggers: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        from dagloom.definitions.observable import flatten_external

        # A multi_observable_source_asset stands for one observable SourceAsset per asset.
        self.assets = flatten_external(assets or ())
        given_schedules = list(schedules or ())
        self._given_schedules = given_schedules
        self.sensors = list(sensors or ())
        # As in Dagster, assets a schedule or sensor targets (`target=[asset, ...]`) belong
        # to the definitions without being listed in `assets=`.
        self.assets += _target_assets(
            self.assets,
            [getattr(s, "target", None) for s in [*given_schedules, *self.sensors]],
        )
        self.resources = dict(resources or {})
        self.executor = executor
        self.metadata = dict(metadata or {})
        self.loggers = dict(loggers or {})
        for item in self.assets:
            if not isinstance(item, AssetsDefinition | AssetSpec):
                raise DefinitionError(
                    f"Definitions(assets=...) got {item!r}; expected @asset, @multi_asset, "
                    "AssetSpec or observable source asset definitions"
                )
        self.asset_checks = list(asset_checks or ())
        self.asset_graph = AssetGraph(
            (a for a in self.assets if isinstance(a, AssetsDefinition)),
            [a for a in self.assets if isinstance(a, AssetSpec)],
            checks=self.asset_checks,
        )
        _unique("schedule", given_schedules)
        self._sensors = _unique("sensor", self.sensors)

        # A graph given as a job is made one with the defaults, as Dagster coerces it.
        declared = [
            item.coerce_to_job() if isinstance(item, GraphDefinition) else item
            for item in jobs or ()
        ]
        for job_item in declared:
            if not isinstance(job_item, JobDefinition | UnresolvedAssetJobDefinition):
                raise DefinitionError(
                    f"Definitions(jobs=...) got {job_item!r}; expected @job, a @graph or "
                    "define_asset_job"
                )
        targets: list[Any] = list(declared)
        for given in given_schedules:
            if given.has_job:
                targets.append(given.job)
        for sensor in self.sensors:
            if sensor.has_jobs:
                targets.extend(sensor.jobs)
        raw = _unique("job", targets)
        self._jobs: dict[str, JobDefinition] = {}
        for name, item in raw.items():
            self._jobs[name] = self._resolve_job(item)
        self.jobs = declared
        # A schedule of an asset job that takes its assets' partitions is built now that
        # the job is resolved.
        self.schedules: list[ScheduleDefinition] = [
            s.resolve(self._jobs[s.job_name])
            if isinstance(s, UnresolvedPartitionedAssetScheduleDefinition)
            else s
            for s in given_schedules
        ]
        self._schedules = _unique("schedule", self.schedules)
        for schedule in self.schedules:
            if schedule.job_name not in self._jobs:
                raise DefinitionError(
                    f"schedule {schedule.name!r} targets job {schedule.job_name!r}, which is "
                    f"not defined; jobs are {sorted(self._jobs)}",
                    name=schedule.name,
                )
        for sensor in self.sensors:
            for job_name in sensor.job_names:
                if job_name not in self._jobs:
                    raise DefinitionError(
                        f"sensor {sensor.name!r} targets job {job_name!r}, which is not "
                        f"defined; jobs are {sorted(self._jobs)}",
                        name=sensor.name,
                    )
        for job in self._jobs.values():
            missing = sorted(job.required_resource_keys - set(job.resource_defs) - {"io_manager"})
            if missing:
                raise DefinitionError(
                    f"job {job.name!r} needs resources {missing}, which are not provided",
                    name=job.name,
                )

    def _resolve_job(self, item: JobDefinition | UnresolvedAssetJobDefinition) -> JobDefinition:
        if isinstance(item, UnresolvedAssetJobDefinition):
            job = item.resolve(self.asset_graph, self.resources, self.executor)
        elif self.resources:
            job = item.with_resources(self.resources)
        else:
            job = item
        if self.loggers and not job.logger_defs:
            # As in Dagster: the Definitions' loggers are those of each job that has none.
            job = job.with_replaced_attrs(logger_defs=self.loggers)
        if self.executor is not None and not job.has_specified_executor:
            job = job.with_replaced_attrs(executor_def=self.executor)
        return job

    @staticmethod
    def validate_loadable(defs: Definitions) -> None:
        """Raise what loading `defs` in a code location would raise. Construction already
        checks the asset graph, checks, jobs and schedule and sensor targets; this also
        refuses what is not a Definitions, and a job whose op, IO manager, input manager or
        hook needs a resource key that neither the job nor `defs` provides
        (DagsterInvalidDefinitionError naming the key, the op and the job)."""
        if not isinstance(defs, Definitions):
            raise DefinitionError(f"validate_loadable takes Definitions, got {defs!r}")
        jobs = defs.get_all_job_defs()
        if defs.asset_graph.keys and not defs.has_job(IMPLICIT_ASSET_JOB_NAME):
            jobs.append(defs.get_implicit_global_asset_job_def())
        for job in jobs:
            _check_resources_provided(job)

    # -- lookups ----------------------------------------------------------------------------

    def get_job_def(self, name: str) -> JobDefinition:
        """The job named `name` (asset jobs resolved, resources bound)."""
        if name == IMPLICIT_ASSET_JOB_NAME and name not in self._jobs:
            return self.get_implicit_global_asset_job_def()
        try:
            return self._jobs[name]
        except KeyError:
            raise DefinitionError(
                f"no job named {name!r}; jobs are {sorted(self._jobs)}", name=name
            ) from None

    def has_job(self, name: str) -> bool:
        return name in self._jobs

    def get_all_job_defs(self) -> list[JobDefinition]:
        return list(self._jobs.values())

    @property
    def job_names(self) -> list[str]:
        return list(self._jobs)

    def get_schedule_def(self, name: str) -> ScheduleDefinition:
        try:
            return self._schedules[name]  # type: ignore[no-any-return]
        except KeyError:
            raise DefinitionError(
                f"no schedule named {name!r}; schedules are {sorted(self._schedules)}", name=name
            ) from None

    def get_sensor_def(self, name: str) -> SensorDefinition:
        try:
            return self._sensors[name]  # type: ignore[no-any-return]
        except KeyError:
            raise DefinitionError(
                f"no sensor named {name!r}; sensors are {sorted(self._sensors)}", name=name
            ) from None

    def get_assets_def(self, key: CoercibleToAssetKey) -> AssetsDefinition:
        asset_key = AssetKey.from_coercible(key)
        try:
            return self.asset_graph.by_key[asset_key]
        except KeyError:
            raise DefinitionError(
                f"no asset {asset_key.to_user_string()!r}", name=asset_key.to_user_string()
            ) from None

    def get_asset_def(self, key: CoercibleToAssetKey) -> AssetsDefinition:
        """The assets definition that produces `key` (same as `get_assets_def`)."""
        return self.get_assets_def(key)

    # Dagster's newer names for the same lookups.
    resolve_job_def = get_job_def
    resolve_assets_def = get_assets_def
    resolve_schedule_def = get_schedule_def
    resolve_sensor_def = get_sensor_def

    def resolve_all_job_defs(self) -> list[JobDefinition]:
        """Every job, asset jobs resolved and resources bound."""
        return self.get_all_job_defs()

    def resolve_asset_graph(self) -> AssetGraph:
        return self.asset_graph

    def resolve_implicit_global_asset_job_def(self) -> JobDefinition:
        return self.get_implicit_global_asset_job_def()

    def load_asset_value(
        self,
        asset_key: CoercibleToAssetKey,
        *,
        python_type: type | None = None,
        partition_key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        resource_config: Mapping[str, Any] | None = None,
        instance: Any = None,
    ) -> Any:
        """The stored value of asset `asset_key`, loaded as `AssetValueLoader` loads it,
        with this location's resources built for the call and torn down after it."""
        with self.get_asset_value_loader(instance) as loader:
            return loader.load_asset_value(
                asset_key,
                python_type=python_type,
                partition_key=partition_key,
                metadata=metadata,
                resource_config=resource_config,
            )

    def get_asset_value_loader(self, instance: Any = None) -> AssetValueLoader:
        """A loader of several assets' values that builds this location's resources once:
        `with defs.get_asset_value_loader() as loader: loader.load_asset_value("a")`."""
        from dagloom.definitions.asset_value_loader import AssetValueLoader

        return AssetValueLoader(self, instance)

    def get_implicit_global_asset_job_def(self) -> JobDefinition:
        """A job that can materialize any selection of this location's assets."""
        return build_asset_job(
            IMPLICIT_ASSET_JOB_NAME,
            self.asset_graph,
            resource_defs=self.resources,
            executor_def=self.executor,
        )

    def get_asset_job(
        self,
        selection: set[AssetKey],
        name: str = IMPLICIT_ASSET_JOB_NAME,
        checks: set[Any] | None = None,
    ) -> JobDefinition:
        """A job materializing exactly `selection` (assets outside it are loaded), executing
        the checks `checks` names (AssetCheckKeys; by default every check of `selection`)."""
        return build_asset_job(
            name,
            self.asset_graph,
            selection,
            resource_defs=self.resources,
            executor_def=self.executor,
            checks=checks,
        )

    @staticmethod
    def merge(*defs: Definitions) -> Definitions:
        """One Definitions holding everything in `defs`; a name defined twice is an error."""
        resources: dict[str, Any] = {}
        for d in defs:
            for key, value in d.resources.items():
                if key in resources and resources[key] is not value:
                    raise DefinitionError(f"resource {key!r} is defined twice", name=key)
                resources[key] = value
        executors = {id(d.executor): d.executor for d in defs if d.executor is not None}
        if len(executors) > 1:
            raise DefinitionError("merged Definitions define different executors")
        return Definitions(
            assets=[a for d in defs for a in d.assets],
            jobs=[j for d in defs for j in d.jobs],
            schedules=[s for d in defs for s in d._given_schedules],
            sensors=[s for d in defs for s in d.sensors],
            resources=resources,
            executor=next(iter(executors.values()), None),
        )


def definitions_decorator(fn: Callable[[], Definitions]) -> Definitions:
    """`@definitions`: the Definitions a no-argument function returns, as a module global.

    The function is called once, when the decorator is applied (so a code location that
    imports the module finds the result like any `Definitions` global). A function that
    takes parameters, or returns something else, raises DagsterInvalidDefinitionError.
    """
    import inspect

    name = getattr(fn, "__name__", repr(fn))
    if not callable(fn) or inspect.signature(fn).parameters:
        raise DagsterInvalidDefinitionError(
            f"@definitions decorates a function of no arguments; {name!r} is not one", name=name
        )
    produced = fn()
    if not isinstance(produced, Definitions):
        raise DagsterInvalidDefinitionError(
            f"@definitions function {name!r} returned {type(produced).__name__}, not Definitions",
            name=name,
        )
    return produced


__all__ = ["Definitions", "definitions_decorator"]
