"""@job and JobDefinition: a graph of ops with the resources, executor and config to run it."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import TYPE_CHECKING, Any, overload

from dagloom._gc import defers_run, full_collections_deferred
from dagloom.definitions.config import ConfigMapping, RunConfig, coerce_run_config
from dagloom.definitions.executor import ExecutorDefinition, in_process_executor
from dagloom.definitions.graph import compose
from dagloom.definitions.hook import HookDefinition, check_hooks
from dagloom.definitions.logger import LoggerDefinition
from dagloom.definitions.metadata import normalize_metadata
from dagloom.definitions.node import FromGraphInput, Node, validate_nodes
from dagloom.definitions.op import check_name
from dagloom.definitions.partitioned_config import PartitionedConfig
from dagloom.definitions.partitions import PartitionsDefinition
from dagloom.definitions.retry import RetryPolicy
from dagloom.errors import DefinitionError

if TYPE_CHECKING:
    from datetime import datetime

    from dagloom.definitions.asset_key import AssetKey
    from dagloom.definitions.run_request import RunRequest
    from dagloom.execution.plan import ExecutionPlan
    from dagloom.execution.result import ExecuteInProcessResult
    from dagloom.instance import DagloomInstance


def partition_run_request(
    what: str,
    job_name: str,
    partitions_def: PartitionsDefinition | None,
    partitioned_config: PartitionedConfig | None,
    partition_key: str,
    *,
    run_key: str | None,
    tags: Mapping[str, str] | None,
    asset_selection: Sequence[AssetKey] | None,
    run_config: Mapping[str, Any] | RunConfig | None,
    current_time: datetime | None,
    dynamic_partitions_store: Any,
) -> RunRequest:
    """A `RunRequest` of job `job_name` for one of its partitions, as Dagster's
    `run_request_for_partition`: the run config is `run_config`, else the partitioned
    config's for the key; the partitioned config's tags for the key and the
    `dagster/partition` tag are added to `tags`.

    Raises `DagsterInvalidInvocationError` naming `what` when the job is not partitioned or
    its partitions are dynamic ones stored in the instance (use `RunRequest(partition_key=)`:
    the key is then checked when the run is submitted), and `DagsterUnknownPartitionError`
    when the key is not one of its partitions.
    """
    from dagloom.definitions.partitions import DynamicPartitionsDefinition
    from dagloom.definitions.run_request import RunRequest
    from dagloom.errors import DagsterInvalidInvocationError
    from dagloom.execution.partitions import partition_tags

    if partitions_def is None:
        raise DagsterInvalidInvocationError(
            f"{what}: run_request_for_partition needs a partitioned job", name=job_name
        )
    if (
        isinstance(partitions_def, DynamicPartitionsDefinition)
        and partitions_def.name is not None
        and dynamic_partitions_store is None
    ):
        raise DagsterInvalidInvocationError(
            f"{what}: run_request_for_partition does not read the dynamic partitions "
            f"{partitions_def.name!r} from the instance; return "
            "RunRequest(partition_key=...) instead",
            name=job_name,
        )
    partitions_def.validate_partition_key(
        partition_key,
        what=what,
        current_time=current_time,
        dynamic_partitions_store=dynamic_partitions_store,
    )
    merged = dict(tags or {})
    if partitioned_config is not None:
        merged.update(partitioned_config.get_tags_for_partition_key(partition_key))
        if run_config is None:
            run_config = partitioned_config.get_run_config_for_partition_key(partition_key)
    merged.update(partition_tags(partition_key))
    return RunRequest(
        run_key=run_key,
        run_config=run_config,
        tags=merged,
        job_name=job_name,
        asset_selection=asset_selection,
        partition_key=partition_key,
    )


class AssetLayer:
    """Which node outputs are assets, and which node inputs read assets not in the job."""

    __slots__ = ("asset_graph", "asset_keys_by_output", "check_specs_by_node", "source_inputs")

    def __init__(
        self,
        asset_keys_by_output: Mapping[tuple[str, str], AssetKey],
        source_inputs: Mapping[tuple[str, str], AssetKey],
        asset_graph: Any = None,
        check_specs_by_node: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        # node name -> the AssetCheckSpecs whose results the node reports
        self.check_specs_by_node = {k: list(v) for k, v in (check_specs_by_node or {}).items()}
        self.asset_keys_by_output = dict(asset_keys_by_output)
        self.source_inputs = dict(source_inputs)
        # The AssetGraph the job was built from, so `asset_selection=` can subset it.
        self.asset_graph = asset_graph

    @property
    def asset_keys(self) -> list[AssetKey]:
        return list(self.asset_keys_by_output.values())

    @property
    def check_keys(self) -> set[Any]:
        """The AssetCheckKeys of every check the job executes."""
        return {spec.key for specs in self.check_specs_by_node.values() for spec in specs}


_execution_imported = False


def _import_execution() -> None:
    """Import what running a job needs (the executor, the step runner, the event loop's
    backend), once per process, as the first job is made: a job is made to be run, and its
    first run would otherwise wait ~30 ms for these imports, seventy times a warm run."""
    global _execution_imported
    if not _execution_imported:
        _execution_imported = True
        import dagloom.execution.run  # noqa: F401


class JobDefinition:
    """A runnable graph of ops. `execute_in_process()` runs it in this process and returns a
    result; the same object is what code locations serve and run workers execute."""

    def __init__(
        self,
        *,
        name: str,
        nodes: Mapping[str, Node],
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        resource_defs: Mapping[str, Any] | None = None,
        executor_def: ExecutorDefinition | None = None,
        config: Mapping[str, Any] | RunConfig | ConfigMapping | PartitionedConfig | None = None,
        op_retry_policy: RetryPolicy | None = None,
        asset_layer: AssetLayer | None = None,
        graph_outputs: Mapping[tuple[str, str], tuple[str, str]] | None = None,
        graph_config_mappings: Mapping[str, ConfigMapping] | None = None,
        hooks: AbstractSet[HookDefinition] | None = None,
        partitions_def: PartitionsDefinition | None = None,
        input_values: Mapping[str, Any] | None = None,
        logger_defs: Mapping[str, LoggerDefinition] | None = None,
    ) -> None:
        check_name(name, "job")
        # Loggers each run builds from run config `loggers:` (see logger.py).
        self.logger_defs = dict(logger_defs or {})
        for key, value in self.logger_defs.items():
            if not isinstance(value, LoggerDefinition):
                raise DefinitionError(
                    f"job {name!r}: logger_defs[{key!r}] must be a LoggerDefinition (made with "
                    f"@logger), got {type(value).__name__}",
                    name=name,
                )
        nodes, self.top_level_inputs = _split_top_level_inputs(nodes)
        # Values of the job's own inputs (a graph's inputs, made a job); run config
        # `inputs:` and `execute_in_process(input_values=...)` override them.
        self.input_values = dict(input_values or {})
        unknown = sorted(set(self.input_values) - set(self.top_level_inputs))
        if unknown:
            raise DefinitionError(
                f"job {name!r}: input_values {unknown} name no input of the job; its inputs "
                f"are {sorted(self.top_level_inputs)}",
                name=name,
            )
        # A PartitionedConfig makes the job partitioned; its run config comes per partition.
        self.partitioned_config = config if isinstance(config, PartitionedConfig) else None
        if isinstance(config, PartitionedConfig):
            partitions_def = partitions_def or config.partitions_def
            config = None
        self._partitions_def = partitions_def
        self.name = name
        self.nodes = dict(nodes)
        self.description = description
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.run_tags = {str(k): str(v) for k, v in (run_tags or {}).items()}
        # As Dagster keeps it: each value a MetadataValue (a str becomes a text value).
        self.metadata = normalize_metadata(metadata)
        self.resource_defs = dict(resource_defs or {})
        self.executor_def = executor_def or in_process_executor
        # As in Dagster: a job given no executor takes its Definitions' `executor`.
        self.has_specified_executor = executor_def is not None
        # With a ConfigMapping, run config is the mapping's outer config (see run_config.py).
        self.config_mapping = config if isinstance(config, ConfigMapping) else None
        self.default_run_config = (
            {} if isinstance(config, ConfigMapping) else coerce_run_config(config)
        )
        self.op_retry_policy = op_retry_policy
        self.asset_layer = asset_layer
        # (graph node name, graph output) -> (op node, output) for graphs inlined in the job
        self.graph_outputs = dict(graph_outputs or {})
        # graph node name -> ConfigMapping of that graph (see run_config.py)
        self.graph_config_mappings = dict(graph_config_mappings or {})
        # run after every step of the job, besides each node's own (`op.with_hooks`)
        self.hook_defs = check_hooks(hooks, f"job {name!r}")
        self._node_order = validate_nodes(name, self.nodes, allow_graph_inputs=False)
        self._plan: ExecutionPlan | None = None
        _import_execution()

    def with_input_values(self, input_values: Mapping[str, Any]) -> JobDefinition:
        """This job with `input_values` laid over its own; the same job when empty."""
        if not input_values:
            return self
        unknown = sorted(set(input_values) - set(self.top_level_inputs))
        if unknown:
            from dagloom.errors import DagsterInvalidInvocationError

            raise DagsterInvalidInvocationError(
                f"job {self.name!r}: input_values {unknown} name no input of the job; its "
                f"inputs are {sorted(self.top_level_inputs)}",
                name=self.name,
            )
        job = copy.copy(self)
        job.input_values = {**self.input_values, **input_values}
        return job

    @property
    def partitions_def(self) -> PartitionsDefinition | None:
        """The job's partitions: given (`partitions_def=`, a partitioned config), else the
        one definition its partitioned assets share (None when it has none)."""
        if self._partitions_def is not None:
            return self._partitions_def
        layer = self.asset_layer
        if layer is None or layer.asset_graph is None:
            return None
        found = {layer.asset_graph.partitions_def(k) for k in layer.asset_keys} - {None}
        return found.pop() if len(found) == 1 else None

    def partition_run(
        self,
        partition_key: str | None,
        run_config: Mapping[str, Any] | RunConfig | None,
        tags: Mapping[str, str] | None,
        dynamic_partitions_store: Any = None,
    ) -> tuple[Mapping[str, Any] | RunConfig | None, dict[str, str]]:
        """The run config and tags of a run of this job for `partition_key`.

        Raises `DagsterUnknownPartitionError` naming the job when the key is not one of its
        partitions, and `DagsterInvalidInvocationError` when the job is not partitioned.
        """
        from dagloom.errors import DagsterInvalidInvocationError
        from dagloom.execution.partitions import partition_tags

        merged = dict(tags or {})
        if partition_key is None:
            return run_config, merged
        partitions_def = self.partitions_def
        if partitions_def is None:
            raise DagsterInvalidInvocationError(
                f"job {self.name!r} is not partitioned; it takes no partition_key",
                name=self.name,
            )
        partitions_def.validate_partition_key(
            partition_key,
            what=f"job {self.name!r}",
            dynamic_partitions_store=dynamic_partitions_store,
        )
        merged.update(partition_tags(partition_key))
        if self.partitioned_config is not None:
            merged = {**self.partitioned_config.get_tags_for_partition_key(partition_key), **merged}
            if run_config is None:
                run_config = self.partitioned_config.get_run_config_for_partition_key(partition_key)
        return run_config, merged

    def run_request_for_partition(
        self,
        partition_key: str,
        run_key: str | None = None,
        tags: Mapping[str, str] | None = None,
        asset_selection: Sequence[AssetKey] | None = None,
        run_config: Mapping[str, Any] | RunConfig | None = None,
        current_time: datetime | None = None,
        dynamic_partitions_store: Any = None,
    ) -> RunRequest:
        """A `RunRequest` of this job for `partition_key` (see `partition_run_request`)."""
        return partition_run_request(
            f"job {self.name!r}",
            self.name,
            self.partitions_def,
            self.partitioned_config,
            partition_key,
            run_key=run_key,
            tags=tags,
            asset_selection=asset_selection,
            run_config=run_config,
            current_time=current_time,
            dynamic_partitions_store=dynamic_partitions_store,
        )

    @property
    def node_names(self) -> list[str]:
        return list(self.nodes)

    @property
    def required_resource_keys(self) -> set[str]:
        keys: set[str] = set()
        for node in self.nodes.values():
            keys |= node.op.required_resource_keys
            for out in node.op.outs.values():
                keys.add(out.io_manager_key)
            for spec in node.op.ins.values():
                if spec.input_manager_key:
                    keys.add(spec.input_manager_key)
            for hook in node.hooks:
                keys |= hook.required_resource_keys
        for hook in self.hook_defs:
            keys |= hook.required_resource_keys
        return keys

    @property
    def node_order(self) -> list[str]:
        """The nodes' names in dependency order, as validated when the job was made."""
        return list(self._node_order)

    def get_plan(self) -> ExecutionPlan:
        """The compiled execution plan; built on first use and cached."""
        if self._plan is None:
            from dagloom.execution.plan import compile_plan

            with full_collections_deferred(defers_run(len(self.nodes))):
                self._plan = compile_plan(self)
        return self._plan

    def with_resources(self, resource_defs: Mapping[str, Any]) -> JobDefinition:
        """This job with `resource_defs` for the keys it does not define itself (how
        Definitions binds its resources to jobs)."""
        return self.with_replaced_attrs(resource_defs={**resource_defs, **self.resource_defs})

    def with_replaced_attrs(
        self,
        *,
        nodes: Mapping[str, Node] | None = None,
        resource_defs: Mapping[str, Any] | None = None,
        asset_layer: AssetLayer | None = None,
        graph_outputs: Mapping[tuple[str, str], tuple[str, str]] | None = None,
        hooks: AbstractSet[HookDefinition] | None = None,
        logger_defs: Mapping[str, LoggerDefinition] | None = None,
        executor_def: ExecutorDefinition | None = None,
    ) -> JobDefinition:
        """A new job like this one, with the parts given (not None) replaced. A compiled plan
        carries over unless `nodes`, `asset_layer` or `hooks` is replaced: besides those, it
        reads only the name and op retry policy, which never change here."""
        replaced = JobDefinition(
            name=self.name,
            nodes=self.nodes if nodes is None else nodes,
            description=self.description,
            tags=self.tags,
            run_tags=self.run_tags,
            metadata=self.metadata,
            resource_defs=self.resource_defs if resource_defs is None else resource_defs,
            executor_def=(
                executor_def
                if executor_def is not None
                else self.executor_def
                if self.has_specified_executor
                else None
            ),
            config=self.config_mapping or self.default_run_config,
            op_retry_policy=self.op_retry_policy,
            asset_layer=self.asset_layer if asset_layer is None else asset_layer,
            graph_outputs=self.graph_outputs if graph_outputs is None else graph_outputs,
            graph_config_mappings=self.graph_config_mappings,
            hooks=self.hook_defs if hooks is None else hooks,
            partitions_def=self._partitions_def,
            logger_defs=self.logger_defs if logger_defs is None else logger_defs,
        )
        replaced.partitioned_config = self.partitioned_config
        # The job's inputs feed the nodes it still has (its nodes no longer name them).
        kept = {
            name: tuple(pair for pair in pairs if pair[0] in replaced.nodes)
            for name, pairs in self.top_level_inputs.items()
        }
        replaced.top_level_inputs = {name: pairs for name, pairs in kept.items() if pairs}
        replaced.input_values = {
            k: v for k, v in self.input_values.items() if k in replaced.top_level_inputs
        }
        if nodes is None and asset_layer is None and hooks is None:
            replaced._plan = self._plan
        return replaced

    def execute_in_process(
        self,
        run_config: Mapping[str, Any] | RunConfig | None = None,
        instance: DagloomInstance | None = None,
        resources: Mapping[str, Any] | None = None,
        raise_on_error: bool = True,
        op_selection: list[str] | None = None,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        asset_selection: Any = None,
        partition_key: str | None = None,
        input_values: Mapping[str, Any] | None = None,
    ) -> ExecuteInProcessResult:
        """Run this job here and now, blocking until it ends; see `execute_in_process_async`.
        Raises RuntimeError when called from inside a running event loop."""
        from dagloom.execution.run import run_sync_with

        run = self.execute_in_process_async(
            partition_key=partition_key,
            run_config=run_config,
            instance=instance,
            resources=resources,
            raise_on_error=raise_on_error,
            op_selection=op_selection,
            run_id=run_id,
            tags=tags,
            asset_selection=asset_selection,
            input_values=input_values,
        )
        return run_sync_with(run, instance, what=f"{self.name}.execute_in_process()")

    async def execute_in_process_async(
        self,
        run_config: Mapping[str, Any] | RunConfig | None = None,
        instance: DagloomInstance | None = None,
        resources: Mapping[str, Any] | None = None,
        raise_on_error: bool = True,
        op_selection: list[str] | None = None,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        asset_selection: Any = None,
        partition_key: str | None = None,
        input_values: Mapping[str, Any] | None = None,
    ) -> ExecuteInProcessResult:
        """Run this job in the running event loop with the in-process executor.

        `partition_key` runs one partition of a partitioned job (tagged
        `dagster/partition`; a partitioned config gives the run config).

        Run config is validated before the run exists (ConfigError names the key path). A
        step that fails is recorded and its downstream steps skipped; with `raise_on_error`
        the first step error is re-raised once the run has ended and its events are flushed.
        `asset_selection` (asset keys, strings or an AssetSelection) runs only those assets
        of an asset job. `input_values` gives values to the job's own inputs (those of the
        graph it was made from), over those it was made with.
        """
        from dagloom.execution.run import execute_job_in_process

        job = self if asset_selection is None else self.asset_subset(asset_selection)
        if self.logger_defs and not job.logger_defs:
            job = job.with_replaced_attrs(logger_defs=self.logger_defs)
        job = job.with_input_values(input_values or {})
        store = None
        if partition_key is not None and instance is not None:
            from dagloom.definitions.partitions import dynamic_partition_names

            names = dynamic_partition_names(self.partitions_def)
            store = await instance.dynamic_partitions_snapshot(names) if names else None
        run_config, tags = self.partition_run(partition_key, run_config, tags, store)
        return await execute_job_in_process(
            job,
            run_config=run_config,
            instance=instance,
            resources=resources,
            raise_on_error=raise_on_error,
            op_selection=op_selection,
            run_id=run_id,
            tags=tags,
        )

    def asset_subset(self, selection: Any, checks: Collection[Any] | None = None) -> JobDefinition:
        """This asset job reduced to the assets `selection` names (keys, strings, lists of
        either, or an AssetSelection), with its resources, executor and config.

        It executes the checks `checks` names (AssetCheckKeys), by default those the
        selection selects (every check of its assets, or only the checks of
        `AssetSelection.checks(...)`); a subset of checks alone materializes no asset.
        `DagsterInvalidInvocationError` names the job when it has no assets, and the keys
        when the selection names assets or checks the job does not execute.
        """
        from dagloom.definitions.asset_job import build_asset_job
        from dagloom.definitions.asset_key import AssetKey
        from dagloom.definitions.asset_selection import coerce_selection
        from dagloom.errors import DagsterInvalidInvocationError

        layer = self.asset_layer
        if layer is None or layer.asset_graph is None:
            raise DagsterInvalidInvocationError(
                f"job {self.name!r} materializes no assets; asset_selection does not apply",
                name=self.name,
            )
        if isinstance(selection, Sequence) and not isinstance(selection, str):
            # Dagster takes keys here: a list of strings is a list of one-part keys.
            selection = [AssetKey.from_coercible(k) if isinstance(k, str) else k for k in selection]
        chosen = coerce_selection(selection)
        keys = chosen.resolve(layer.asset_graph)
        outside = keys - set(layer.asset_keys)
        if outside:
            raise DagsterInvalidInvocationError(
                f"job {self.name!r}: asset_selection names assets it does not materialize: "
                f"{sorted(k.to_user_string() for k in outside)}",
                name=self.name,
            )
        if checks is None:
            # Those of the selection's checks this job executes.
            selected_checks = chosen.resolve_checks(layer.asset_graph) & layer.check_keys
        else:
            selected_checks = set(checks)
        foreign = selected_checks - layer.check_keys
        if foreign:
            raise DagsterInvalidInvocationError(
                f"job {self.name!r}: asset_check_selection names checks it does not execute: "
                f"{sorted(k.to_user_string() for k in foreign)}",
                name=self.name,
            )
        return build_asset_job(
            self.name,
            layer.asset_graph,
            keys,
            resource_defs=self.resource_defs,
            description=self.description,
            tags=self.tags,
            executor_def=self.executor_def,
            config=self.default_run_config,
            op_retry_policy=self.op_retry_policy,
            checks=selected_checks,
            hooks=self.hook_defs,
            metadata=self.metadata,
        )

    def __repr__(self) -> str:
        return f"<JobDefinition {self.name}>"


@overload
def job(fn: Callable[..., Any]) -> JobDefinition: ...


@overload
def job(
    fn: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    run_tags: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    executor_def: ExecutorDefinition | None = None,
    config: Mapping[str, Any] | RunConfig | ConfigMapping | PartitionedConfig | None = None,
    op_retry_policy: RetryPolicy | None = None,
    hooks: AbstractSet[HookDefinition] | None = None,
    partitions_def: PartitionsDefinition | None = None,
    logger_defs: Mapping[str, LoggerDefinition] | None = None,
) -> Callable[[Callable[..., Any]], JobDefinition]: ...


def job(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    run_tags: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    executor_def: ExecutorDefinition | None = None,
    config: Mapping[str, Any] | RunConfig | ConfigMapping | PartitionedConfig | None = None,
    op_retry_policy: RetryPolicy | None = None,
    hooks: AbstractSet[HookDefinition] | None = None,
    partitions_def: PartitionsDefinition | None = None,
    logger_defs: Mapping[str, LoggerDefinition] | None = None,
) -> JobDefinition | Callable[[Callable[..., Any]], JobDefinition]:
    """Declare a job: the body calls ops to wire them; it runs once, at definition time.
    `hooks` run after every step of the job (success or failure hooks)."""

    def wrap(func: Callable[..., Any]) -> JobDefinition:
        job_name = name or func.__name__
        with full_collections_deferred():
            return _job_of(job_name, func)

    def _job_of(job_name: str, func: Callable[..., Any]) -> JobDefinition:
        # The body's parameters are the job's inputs (run config `inputs:`).
        params = list(inspect.signature(func).parameters)
        composition, _ = compose(job_name, func, params)
        defined = JobDefinition(
            name=job_name,
            nodes=composition.nodes,
            graph_outputs=composition.graph_outputs,
            graph_config_mappings=composition.config_mappings,
            description=description or inspect.getdoc(func),
            tags=tags,
            run_tags=run_tags,
            metadata=metadata,
            resource_defs=resource_defs,
            executor_def=executor_def,
            config=config,
            op_retry_policy=op_retry_policy,
            hooks=hooks,
            partitions_def=partitions_def,
            logger_defs=logger_defs,
        )
        unused = [p for p in params if p not in defined.top_level_inputs]
        if unused:
            raise DefinitionError(
                f"job {job_name!r}: parameters {unused} are passed to no op; remove them or "
                "pass them to the ops that read them",
                name=job_name,
            )
        return defined

    return wrap(fn) if fn is not None else wrap


def _split_top_level_inputs(
    nodes: Mapping[str, Node],
) -> tuple[dict[str, Node], dict[str, tuple[tuple[str, str], ...]]]:
    """The nodes with every input bound to a graph input unbound, and the job's inputs: each
    graph input's name -> the (node, input) pairs it feeds. Run config `inputs:` or the
    job's `input_values` fill those (see run_config.py)."""
    fed: dict[str, list[tuple[str, str]]] = {}
    out: dict[str, Node] = {}
    for name, node in nodes.items():
        unbound = [k for k, b in node.inputs.items() if isinstance(b, FromGraphInput)]
        if unbound:
            for input_name in unbound:
                binding = node.inputs[input_name]
                assert isinstance(binding, FromGraphInput)
                fed.setdefault(binding.name, []).append((name, input_name))
            kept = {k: b for k, b in node.inputs.items() if k not in unbound}
            node = replace(node, inputs=kept)
        out[name] = node
    return out, {name: tuple(pairs) for name, pairs in fed.items()}


__all__ = ["AssetLayer", "JobDefinition", "job"]
