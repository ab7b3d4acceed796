"""Turning assets into jobs: define_asset_job, and materialize() for running them directly."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dagloom.definitions.asset import AssetsDefinition, AssetSpec
from dagloom.definitions.asset_checks import AssetChecksDefinition
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.asset_selection import AssetGraph, AssetSelection, coerce_selection
from dagloom.definitions.config import RunConfig
from dagloom.definitions.executor import ExecutorDefinition
from dagloom.definitions.graph import rebase_binding
from dagloom.definitions.graph_asset import GraphAssetsDefinition
from dagloom.definitions.job import AssetLayer, JobDefinition, partition_run_request
from dagloom.definitions.node import Binding, FromGraphInput, FromOutput, Node
from dagloom.definitions.op import check_name
from dagloom.definitions.partitioned_config import PartitionedConfig
from dagloom.definitions.partitions import PartitionsDefinition
from dagloom.definitions.retry import RetryPolicy
from dagloom.errors import (
    DagsterInvalidDefinitionError,
    DagsterInvalidInvocationError,
    DefinitionError,
)

if TYPE_CHECKING:
    from datetime import datetime

    from dagloom.definitions.run_request import RunRequest
    from dagloom.execution.result import ExecuteInProcessResult
    from dagloom.instance import DagloomInstance

IMPLICIT_ASSET_JOB_NAME = "__ASSET_JOB"


def build_asset_job(
    name: str,
    assets: Iterable[AssetsDefinition] | AssetGraph,
    selection: set[AssetKey] | None = None,
    *,
    resource_defs: Mapping[str, Any] | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    executor_def: ExecutorDefinition | None = None,
    config: Mapping[str, Any] | RunConfig | None = None,
    op_retry_policy: RetryPolicy | None = None,
    partitions_def: Any = None,
    checks: set[Any] | None = None,
    hooks: AbstractSet[Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> JobDefinition:
    """A job with one node per assets definition that has a selected key, and one per
    selected check (`checks`: AssetCheckKeys; default: every check of the selected assets).
    Inputs from assets outside the selection are loaded through their IO managers.

    Its selected partitioned assets must share one partitions definition (and match
    `partitions_def` when given): a run is for one partition (or range) of all of them.
    """
    graph = assets if isinstance(assets, AssetGraph) else AssetGraph(assets)
    chosen = graph.keys if selection is None else set(selection)
    included: list[AssetsDefinition] = []
    for assets_def in graph.assets_defs:
        if any(key in chosen for key in assets_def.keys_by_output.values()):
            included.append(assets_def)
    produced: dict[AssetKey, tuple[str, str]] = {}
    for assets_def in included:
        for out_name, key in _materialized(assets_def, chosen):
            if isinstance(assets_def, GraphAssetsDefinition):
                node, output = assets_def.output_nodes[out_name]
                produced[key] = (f"{assets_def.graph_def.name}.{node}", output)
            else:
                produced[key] = (assets_def.op.name, out_name)
    nodes: dict[str, Node] = {}
    outputs: dict[tuple[str, str], AssetKey] = {}
    sources: dict[tuple[str, str], AssetKey] = {}
    merged_resources: dict[str, Any] = {}
    graph_outputs: dict[tuple[str, str], tuple[str, str]] = {}
    for assets_def in included:
        merged_resources.update(assets_def.resource_defs)
        if isinstance(assets_def, GraphAssetsDefinition):
            _add_graph_asset(assets_def, produced, nodes, outputs, sources, graph_outputs)
            continue
        op = assets_def.op
        inputs: dict[str, Any] = {}
        for input_name, key in assets_def.keys_by_input.items():
            if key in produced and produced[key][0] != op.name:
                inputs[input_name] = FromOutput(*produced[key])
            elif key in produced:
                # a self-dependency (earlier partitions of this asset): read what is stored
                sources[(op.name, input_name)] = key
            elif op.ins[input_name].has_default:
                continue
            else:
                sources[(op.name, input_name)] = key
        after = tuple(
            dict.fromkeys(
                produced[dep][0]
                for spec in assets_def.specs_by_output.values()
                for dep in spec.dep_keys
                if dep in produced and produced[dep][0] != op.name
            )
        )
        nodes[op.name] = Node(op.name, op, inputs, after=after)
        for out_name, key in _materialized(assets_def, chosen):
            outputs[(op.name, out_name)] = key
    if checks is not None:
        selected_checks = checks
    elif selection is None:  # the whole graph: its checks of external assets too
        selected_checks = graph.check_keys_for(chosen | set(graph.external_specs))
    else:
        selected_checks = graph.check_keys_for(chosen)
    check_specs = _add_checks(graph, produced, nodes, sources, selected_checks)
    # A run of checks is for a partition of the assets they check, as a run of the assets is.
    partitioned_keys = set(outputs.values()) | {k.asset_key for k in selected_checks}
    return JobDefinition(
        name=name,
        nodes=nodes,
        description=description,
        tags=tags,
        resource_defs={**merged_resources, **dict(resource_defs or {})},
        executor_def=executor_def,
        config=config,
        op_retry_policy=op_retry_policy,
        asset_layer=AssetLayer(outputs, sources, graph, check_specs),
        graph_outputs=graph_outputs,
        partitions_def=_job_partitions(name, graph, partitioned_keys, partitions_def),
        hooks=hooks,
        metadata=metadata,
    )


def _add_checks(
    graph: AssetGraph,
    produced: Mapping[AssetKey, tuple[str, str]],
    nodes: dict[str, Node],
    sources: dict[tuple[str, str], AssetKey],
    selected: set[Any],
) -> dict[str, list[Any]]:
    """Add a node for each check of the assets the job materializes, and make the nodes
    reading an asset wait for its blocking checks (a failed one skips them). Returns node
    name -> the check specs its results report (asset nodes with `check_specs` included)."""
    specs_by_node: dict[str, list[Any]] = {}
    for assets_def in graph.assets_defs:
        if assets_def.check_specs and assets_def.op.name in nodes:
            # a subsettable op computes only the selected checks (its context's
            # `selected_asset_check_keys`); any other computes all of them
            specs = [
                s for s in assets_def.check_specs if s.key in selected or not assets_def.can_subset
            ]
            if specs:
                specs_by_node[assets_def.op.name] = specs
    blocking: dict[AssetKey, list[str]] = {}
    for checks_def in graph.checks_defs:
        if not any(spec.key in selected for spec in checks_def.specs):
            continue
        op = checks_def.op
        inputs: dict[str, Any] = {}
        for input_name, key in checks_def.keys_by_input.items():
            if key in produced:
                inputs[input_name] = FromOutput(*produced[key])
            else:
                sources[(op.name, input_name)] = key
        after = tuple(
            dict.fromkeys(
                produced[spec.asset_key][0]
                for spec in checks_def.specs
                if spec.asset_key in produced
                and produced[spec.asset_key][0] not in {b.node for b in inputs.values()}
            )
        )
        nodes[op.name] = Node(op.name, op, inputs, after=after)
        specs_by_node[op.name] = [
            s for s in checks_def.specs if s.key in selected or not checks_def.can_subset
        ]
        for spec in checks_def.specs:
            if spec.blocking:
                blocking.setdefault(spec.asset_key, []).append(op.name)
    if blocking:
        for assets_def in graph.assets_defs:
            node = nodes.get(assets_def.op.name)
            if node is None:
                continue
            waits = [
                check
                for key in assets_def.dependency_keys
                for check in blocking.get(key, ())
                if check != node.name
            ]
            if waits:
                nodes[node.name] = replace(node, after=tuple(dict.fromkeys([*node.after, *waits])))
    return specs_by_node


def _job_partitions(
    name: str, graph: AssetGraph, keys: set[AssetKey], given: Any
) -> PartitionsDefinition | None:
    """The one partitions definition the job's partitioned assets share (or `given`).
    Raises DagsterInvalidDefinitionError naming the job and the assets when they differ."""
    found: dict[PartitionsDefinition, list[str]] = {}
    for key in sorted(keys, key=lambda k: k.to_user_string()):
        part = graph.partitions_def(key)
        if part is not None:
            found.setdefault(part, []).append(key.to_user_string())
    if given is not None:
        found.setdefault(given, [])
    if len(found) > 1:
        listed = "; ".join(f"{assets or 'the job'}: {part}" for part, assets in found.items())
        raise DagsterInvalidDefinitionError(
            f"asset job {name!r}: its assets have different partitions definitions ({listed}); "
            "select assets that share one",
            name=name,
        )
    return given if given is not None else next(iter(found), None)


def _add_graph_asset(
    assets_def: GraphAssetsDefinition,
    produced: Mapping[AssetKey, tuple[str, str]],
    nodes: dict[str, Node],
    outputs: dict[tuple[str, str], AssetKey],
    sources: dict[tuple[str, str], AssetKey],
    graph_outputs: dict[tuple[str, str], tuple[str, str]],
) -> None:
    """Add a graph asset's ops as `<graph>.<op>` nodes: a graph input reads the node that
    produces its asset in this job, or else the asset through its IO manager. Each asset
    output is also recorded as an output of the graph node (`output_for_node(<graph>)`)."""
    graph_def = assets_def.graph_def
    prefix = graph_def.name
    after = tuple(
        dict.fromkeys(
            produced[dep][0]
            for spec in assets_def.specs_by_output.values()
            for dep in spec.dep_keys
            if dep in produced and not produced[dep][0].startswith(f"{prefix}.")
        )
    )
    for node in graph_def.nodes.values():
        name = f"{prefix}.{node.name}"
        inputs: dict[str, Binding] = {}
        for input_name, binding in node.inputs.items():
            if isinstance(binding, FromGraphInput):
                key = assets_def.keys_by_input[binding.name]
                if key in produced:
                    inputs[input_name] = FromOutput(*produced[key])
                else:
                    sources[(name, input_name)] = key
            else:
                inputs[input_name] = rebase_binding(binding, prefix, {})
        nodes[name] = replace(node, name=name, inputs=inputs, after=(*node.after, *after))
    for out_name, key in assets_def.keys_by_output.items():
        outputs[produced[key]] = key
        graph_outputs[(prefix, out_name)] = produced[key]


def _materialized(
    assets_def: AssetsDefinition, chosen: set[AssetKey]
) -> list[tuple[str, AssetKey]]:
    """The (output, key) pairs a job materializes of `assets_def`: all of them, or only the
    chosen ones when the definition can be subset (`can_subset=True`)."""
    pairs = list(assets_def.keys_by_output.items())
    if assets_def.can_subset:
        return [(name, key) for name, key in pairs if key in chosen]
    return pairs


class UnresolvedAssetJobDefinition:
    """An asset job before the assets it selects are known; Definitions resolves it."""

    def __init__(
        self,
        name: str,
        selection: Any,
        *,
        config: Mapping[str, Any] | RunConfig | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_tags: Mapping[str, Any] | None = None,
        executor_def: ExecutorDefinition | None = None,
        op_retry_policy: RetryPolicy | None = None,
        partitions_def: Any = None,
        hooks: AbstractSet[Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        check_name(name, "job")
        self.name = name
        self.partitions_def = partitions_def
        self.hooks = frozenset(hooks or ())  # success/failure hooks run after each step
        self.metadata = dict(metadata or {})
        self.selection = coerce_selection(selection)
        self.config = config
        self.description = description
        self.tags = dict(tags or {})
        self.run_tags = dict(run_tags or {})
        self.executor_def = executor_def
        self.op_retry_policy = op_retry_policy

    def resolve(
        self,
        assets: Iterable[AssetsDefinition] | AssetGraph,
        resource_defs: Mapping[str, Any] | None = None,
        default_executor_def: ExecutorDefinition | None = None,
    ) -> JobDefinition:
        graph = assets if isinstance(assets, AssetGraph) else AssetGraph(assets)
        observed = _observable_selection(self.selection, graph)
        if observed is not None:
            from dagloom.definitions.observable import build_observation_job

            return build_observation_job(
                self.name,
                observed,
                resource_defs=resource_defs,
                tags={**self.tags, **self.run_tags},
                description=self.description,
                executor_def=self.executor_def or default_executor_def,
            )
        keys = self.selection.resolve(graph)
        checks = self.selection.resolve_checks(graph)
        if not keys and not checks:
            raise DefinitionError(f"asset job {self.name!r} selects no assets", name=self.name)
        return build_asset_job(
            self.name,
            graph,
            keys,
            resource_defs=resource_defs,
            description=self.description,
            tags={**self.tags, **self.run_tags},
            executor_def=self.executor_def or default_executor_def,
            config=self.config,
            op_retry_policy=self.op_retry_policy,
            partitions_def=self.partitions_def,
            checks=checks,
            hooks=self.hooks,
            metadata=self.metadata,
        )

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
        """A `RunRequest` of this job for `partition_key`, checked against its
        `partitions_def` (see `partition_run_request`); a job declared without one takes
        its assets' partitions, known once resolved: resolve it, or return
        `RunRequest(partition_key=...)`."""
        partitioned = self.config if isinstance(self.config, PartitionedConfig) else None
        partitions_def = self.partitions_def
        if partitions_def is None and partitioned is not None:
            partitions_def = partitioned.partitions_def
        if partitions_def is None:
            raise DagsterInvalidInvocationError(
                f"asset job {self.name!r}: run_request_for_partition needs the job's "
                "partitions, and it was declared without partitions_def (its assets' "
                "partitions are known only once Definitions resolves it); give "
                "define_asset_job(partitions_def=...) or return RunRequest(partition_key=...)",
                name=self.name,
            )
        return partition_run_request(
            f"asset job {self.name!r}",
            self.name,
            partitions_def,
            partitioned,
            partition_key,
            run_key=run_key,
            tags=tags,
            asset_selection=asset_selection,
            run_config=run_config,
            current_time=current_time,
            dynamic_partitions_store=dynamic_partitions_store,
        )

    def __repr__(self) -> str:
        return f"<UnresolvedAssetJobDefinition {self.name}>"


def _observable_selection(selection: AssetSelection, graph: AssetGraph) -> list[Any] | None:
    """The observable source assets a selection of keys names, when it names only those
    (the job observes them); None for any other selection."""
    keys = getattr(selection, "selected", None)
    if not isinstance(keys, tuple) or not keys:
        return None
    specs = [graph.external_specs.get(k) for k in keys]
    if all(getattr(spec, "observe_fn", None) is not None for spec in specs):
        return specs
    return None


def define_asset_job(
    name: str,
    selection: Any = None,
    config: Mapping[str, Any] | RunConfig | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    run_tags: Mapping[str, Any] | None = None,
    executor_def: ExecutorDefinition | None = None,
    op_retry_policy: RetryPolicy | None = None,
    partitions_def: Any = None,
    hooks: AbstractSet[Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> UnresolvedAssetJobDefinition:
    """Declare a job that materializes the selected assets (all of them by default);
    `partitions_def` names its partitions (by default, those its assets share); `hooks`
    run after each of its steps."""
    return UnresolvedAssetJobDefinition(
        name,
        selection if selection is not None else AssetSelection.all(),
        config=config,
        description=description,
        tags=tags,
        run_tags=run_tags,
        executor_def=executor_def,
        op_retry_policy=op_retry_policy,
        partitions_def=partitions_def,
        hooks=hooks,
        metadata=metadata,
    )


def _split_assets(assets: Sequence[Any]) -> list[AssetsDefinition]:
    from dagloom.definitions.observable import flatten_external

    out: list[AssetsDefinition] = []
    for item in flatten_external(assets):
        if isinstance(item, AssetsDefinition):
            out.append(item)
        elif isinstance(item, AssetChecksDefinition):
            continue  # see _split_checks
        elif isinstance(item, AssetSpec):
            continue  # an external asset: read through its IO manager, never computed here
        else:
            raise DefinitionError(f"materialize() takes assets, got {item!r}")
    return out


def _flat(assets: Sequence[Any]) -> list[Any]:
    from dagloom.definitions.observable import flatten_external

    return flatten_external(assets)


async def materialize_async(
    assets: Sequence[Any],
    run_config: Mapping[str, Any] | RunConfig | None = None,
    instance: DagloomInstance | None = None,
    resources: Mapping[str, Any] | None = None,
    raise_on_error: bool = True,
    tags: Mapping[str, str] | None = None,
    selection: Any = None,
    *,
    in_memory: bool = False,
    partition_key: str | None = None,
) -> ExecuteInProcessResult:
    """Materialize `assets` (or the `selection` of them) in the running event loop, for
    `partition_key` of the partitioned ones when given."""
    from dagloom.definitions.io_manager import FilesystemIOManager, InMemoryIOManager

    assets_defs = _split_assets(assets)
    graph = AssetGraph(
        assets_defs,
        [item for item in _flat(assets) if isinstance(item, AssetSpec)],
        checks=[c for c in assets if isinstance(c, AssetChecksDefinition)],
    )
    chosen = coerce_selection(selection) if selection is not None else None
    keys = chosen.resolve(graph) if chosen is not None else None
    checks = chosen.resolve_checks(graph) if chosen is not None else None
    given = dict(resources or {})
    if in_memory:
        given["io_manager"] = InMemoryIOManager()
    else:
        given.setdefault("io_manager", FilesystemIOManager())
    job = build_asset_job(IMPLICIT_ASSET_JOB_NAME, graph, keys, resource_defs=given, checks=checks)
    return await job.execute_in_process_async(
        run_config=run_config,
        instance=instance,
        raise_on_error=raise_on_error,
        tags=tags,
        partition_key=partition_key,
    )


def materialize(
    assets: Sequence[Any],
    run_config: Mapping[str, Any] | RunConfig | None = None,
    instance: DagloomInstance | None = None,
    resources: Mapping[str, Any] | None = None,
    raise_on_error: bool = True,
    tags: Mapping[str, str] | None = None,
    selection: Any = None,
    partition_key: str | None = None,
) -> ExecuteInProcessResult:
    """Materialize assets in this process, storing values with the filesystem IO manager
    (`$DAGLOOM_HOME/storage`) unless `resources` gives an `io_manager`; `partition_key`
    materializes that partition of the partitioned assets."""
    from dagloom.execution.run import run_sync_with

    run = materialize_async(
        assets,
        run_config,
        instance,
        resources,
        raise_on_error,
        tags,
        selection,
        partition_key=partition_key,
    )
    return run_sync_with(run, instance, what="materialize()")


def materialize_to_memory(
    assets: Sequence[Any],
    run_config: Mapping[str, Any] | RunConfig | None = None,
    instance: DagloomInstance | None = None,
    resources: Mapping[str, Any] | None = None,
    raise_on_error: bool = True,
    tags: Mapping[str, str] | None = None,
    selection: Any = None,
    partition_key: str | None = None,
) -> ExecuteInProcessResult:
    """Materialize assets in this process, keeping every value in memory."""
    from dagloom.execution.run import run_sync_with

    run = materialize_async(
        assets,
        run_config,
        instance,
        resources,
        raise_on_error,
        tags,
        selection,
        in_memory=True,
        partition_key=partition_key,
    )
    return run_sync_with(run, instance, what="materialize_to_memory()")


__all__ = [
    "UnresolvedAssetJobDefinition",
    "build_asset_job",
    "define_asset_job",
    "materialize",
    "materialize_async",
    "materialize_to_memory",
]
