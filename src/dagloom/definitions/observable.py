"""Observable external assets: `observable_source_asset`, `multi_observable_source_asset`,
`external_assets_from_specs`, and the jobs that observe them.

An observation function reports what an external asset is now (its `DataVersion`, or an
`ObserveResult` with metadata); a run of an observation job records each as an
ASSET_OBSERVATION event tagged `dagster/data_version`, which staleness then compares with the
versions downstream materializations read.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from dagloom.definitions.asset import AssetSpec, SourceAsset, _prefixed
from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.definitions.data_version import (
    DataVersion,
    DataVersionsByPartition,
    ObserveResult,
    observation_tags,
)
from dagloom.definitions.node import Node
from dagloom.definitions.op import OpDefinition
from dagloom.definitions.outputs import AssetObservation
from dagloom.definitions.partitions import PartitionsDefinition
from dagloom.errors import DagloomError, DagsterInvalidDefinitionError, DefinitionError

if TYPE_CHECKING:
    from dagloom.definitions.job import JobDefinition
    from dagloom.execution.result import ExecuteInProcessResult
    from dagloom.instance import DagloomInstance


class MultiObservableSourceAsset:
    """Several external assets observed by one function (`multi_observable_source_asset`);
    in `Definitions(assets=[...])` it stands for one observable `SourceAsset` per spec."""

    def __init__(
        self,
        name: str,
        observe_fn: Callable[..., Any],
        specs: Sequence[AssetSpec],
        *,
        required_resource_keys: Iterable[str] = (),
        resource_defs: Mapping[str, Any] | None = None,
        partitions_def: PartitionsDefinition | None = None,
        group_name: str | None = None,
    ) -> None:
        if not specs:
            raise DagsterInvalidDefinitionError(
                f"multi_observable_source_asset {name!r}: give at least one AssetSpec",
                name=name,
            )
        self.name = name
        self.observe_fn = observe_fn
        observer = _SharedObserver(name, observe_fn, [spec.key for spec in specs])
        self.source_assets = [
            SourceAsset(
                spec.key,
                metadata=spec.metadata,
                io_manager_key=spec.io_manager_key,
                description=spec.description,
                partitions_def=partitions_def,
                group_name=group_name or spec.group_name,
                resource_defs=resource_defs,
                observe_fn=observer,
                tags=spec.tags,
                owners=spec.owners,
                kinds=spec.kinds,
                required_resource_keys=required_resource_keys,
                deps=spec.deps,
                code_version=spec.code_version,
            )
            for spec in specs
        ]

    @property
    def keys(self) -> set[AssetKey]:
        return {source.key for source in self.source_assets}

    @property
    def specs(self) -> list[SourceAsset]:
        return list(self.source_assets)

    def __repr__(self) -> str:
        return f"<MultiObservableSourceAsset {self.name}>"


class _SharedObserver:
    """The observation function of a multi-asset observation: one object shared by its
    assets, so an observation job calls the function once for all of them."""

    def __init__(self, name: str, fn: Callable[..., Any], keys: Sequence[AssetKey]) -> None:
        self.name = name
        self.fn = fn
        self.keys = tuple(keys)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


@overload
def observable_source_asset(fn: Callable[..., Any]) -> SourceAsset: ...


@overload
def observable_source_asset(
    fn: None = None,
    *,
    key: CoercibleToAssetKey | None = None,
    name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    io_manager_key: str | None = None,
    description: str | None = None,
    group_name: str | None = None,
    required_resource_keys: Iterable[str] | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    partitions_def: PartitionsDefinition | None = None,
    tags: Mapping[str, str] | None = None,
    owners: Sequence[str] | None = None,
    kinds: Iterable[str] | None = None,
    deps: Iterable[Any] | None = None,
    auto_observe_interval_minutes: float | None = None,
    op_tags: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], SourceAsset]: ...


def observable_source_asset(
    fn: Callable[..., Any] | None = None,
    *,
    key: CoercibleToAssetKey | None = None,
    name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    io_manager_key: str | None = None,
    description: str | None = None,
    group_name: str | None = None,
    required_resource_keys: Iterable[str] | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    partitions_def: PartitionsDefinition | None = None,
    tags: Mapping[str, str] | None = None,
    owners: Sequence[str] | None = None,
    kinds: Iterable[str] | None = None,
    deps: Iterable[Any] | None = None,
    auto_observe_interval_minutes: float | None = None,
    op_tags: Mapping[str, Any] | None = None,
) -> SourceAsset | Callable[[Callable[..., Any]], SourceAsset]:
    """Declare an external asset whose function observes it: the function (taking an
    optional `context` and resources) returns its current `DataVersion`, an `ObserveResult`,
    or, partitioned, a `DataVersionsByPartition`."""

    def wrap(func: Callable[..., Any]) -> SourceAsset:
        if key is not None and (name is not None or key_prefix is not None):
            raise DagsterInvalidDefinitionError(
                f"observable source asset {func.__name__!r}: give key, or name/key_prefix, "
                "not both",
                name=func.__name__,
            )
        asset_key = (
            AssetKey.from_coercible(key)
            if key is not None
            else _prefixed(name or func.__name__, key_prefix)
        )
        return SourceAsset(
            asset_key,
            metadata=metadata,
            io_manager_key=io_manager_key,
            description=description or inspect.getdoc(func),
            partitions_def=partitions_def,
            group_name=group_name,
            resource_defs=resource_defs,
            observe_fn=func,
            tags=tags,
            owners=owners,
            kinds=kinds,
            required_resource_keys=required_resource_keys,
            deps=tuple(deps or ()),
            auto_observe_interval_minutes=auto_observe_interval_minutes,
            op_tags=op_tags,
        )

    return wrap(fn) if fn is not None else wrap


def multi_observable_source_asset(
    *,
    specs: Sequence[AssetSpec],
    name: str | None = None,
    description: str | None = None,
    group_name: str | None = None,
    can_subset: bool = False,
    required_resource_keys: Iterable[str] | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    partitions_def: PartitionsDefinition | None = None,
) -> Callable[[Callable[..., Any]], MultiObservableSourceAsset]:
    """Declare several external assets observed by one function, which yields (or returns)
    one `ObserveResult` per asset, each naming its `asset_key`."""

    def wrap(func: Callable[..., Any]) -> MultiObservableSourceAsset:
        return MultiObservableSourceAsset(
            name or func.__name__,
            func,
            specs,
            required_resource_keys=required_resource_keys or (),
            resource_defs=resource_defs,
            partitions_def=partitions_def,
            group_name=group_name,
        )

    return wrap


def external_assets_from_specs(specs: Sequence[AssetSpec]) -> list[AssetSpec]:
    """The external assets `specs` declare: shown in lineage and readable by downstream
    assets, never materialized here; their materializations are reported from outside
    (`dagloom asset report-materialization KEY`)."""
    out: list[AssetSpec] = []
    for spec in specs:
        if not isinstance(spec, AssetSpec):
            raise DefinitionError(
                f"external_assets_from_specs takes AssetSpecs, got {type(spec).__name__} {spec!r}"
            )
        out.append(spec)
    return out


def flatten_external(items: Iterable[Any]) -> list[Any]:
    """`items` with each MultiObservableSourceAsset replaced by its SourceAssets."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, MultiObservableSourceAsset):
            out.extend(item.source_assets)
        else:
            out.append(item)
    return out


# -- observation jobs -------------------------------------------------------------------------


def observations_of(
    key: AssetKey, keys: Sequence[AssetKey], result: Any, where: str
) -> Iterator[AssetObservation]:
    """The observations an observation function's `result` reports (`keys`: the assets it
    observes; a single-asset function need not name its key). Raises DagloomError naming the
    function for anything else."""
    if result is None:
        raise DagloomError(
            f"observation function {where!r} returned None; return a DataVersion, an "
            "ObserveResult or a DataVersionsByPartition"
        )
    if isinstance(result, DataVersion | str | DataVersionsByPartition) and len(keys) > 1:
        raise DagloomError(
            f"observation function {where!r} observes {len(keys)} assets; return one "
            "ObserveResult per asset, each naming its asset_key"
        )
    if isinstance(result, DataVersion | str):
        yield AssetObservation(key, tags=observation_tags(result))
    elif isinstance(result, DataVersionsByPartition):
        for partition, version in result.items():
            yield AssetObservation(key, partition=partition, tags=observation_tags(version))
    elif isinstance(result, ObserveResult):
        target = result.asset_key or key
        if result.asset_key is None and len(keys) > 1:
            raise DagloomError(
                f"observation function {where!r} observes {len(keys)} assets; each "
                "ObserveResult must name its asset_key"
            )
        if target not in keys:
            raise DagloomError(
                f"observation function {where!r} returned an ObserveResult for "
                f"{target.to_user_string()!r}, which it does not observe "
                f"({sorted(k.to_user_string() for k in keys)})"
            )
        yield AssetObservation(
            target,
            metadata=result.metadata,
            tags=observation_tags(result.data_version, result.tags),
        )
    elif isinstance(result, AssetObservation):
        yield result
    elif isinstance(result, Iterable) and not isinstance(result, bytes | Mapping):
        for item in result:
            yield from observations_of(key, keys, item, where)
    else:
        raise DagloomError(
            f"observation function {where!r} returned {type(result).__name__}; return a "
            "DataVersion, an ObserveResult or a DataVersionsByPartition"
        )


def _observer_op(name: str, source: SourceAsset) -> OpDefinition:
    """An op with no outputs that calls the observation function of `source` (and of the
    assets observed with it) and records what it reports."""
    observe_fn = source.observe_fn
    assert observe_fn is not None
    keys: Sequence[AssetKey] = (
        observe_fn.keys if isinstance(observe_fn, _SharedObserver) else (source.key,)
    )
    user_fn: Callable[..., Any] = (
        observe_fn.fn if isinstance(observe_fn, _SharedObserver) else observe_fn
    )
    where = getattr(observe_fn, "name", None) or source.key.to_user_string()

    if inspect.iscoroutinefunction(user_fn):

        async def observe_async(*args: Any, **kwargs: Any) -> Any:
            for observation in observations_of(
                source.key, keys, await user_fn(*args, **kwargs), where
            ):
                yield observation

        compute: Callable[..., Any] = functools.wraps(user_fn)(observe_async)
    else:

        def observe(*args: Any, **kwargs: Any) -> Iterator[AssetObservation]:
            yield from observations_of(source.key, keys, user_fn(*args, **kwargs), where)

        compute = functools.wraps(user_fn)(observe)
    return OpDefinition(
        compute,
        name=name,
        out={},
        tags=source.op_tags,
        description=source.description,
        required_resource_keys=sorted(source.required_resource_keys),
    )


def _op_name(key: AssetKey) -> str:
    """The observing op's name: the key's parts joined by `__`, any character an op name
    cannot hold (asset keys may hold `-` and `.`) replaced by `_`."""
    joined = "__".join(key.path)
    return "__observe_" + "".join(c if c.isalnum() or c == "_" else "_" for c in joined)


def build_observation_job(
    name: str,
    sources: Iterable[SourceAsset],
    *,
    resource_defs: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    executor_def: Any = None,
) -> JobDefinition:
    """A job that observes `sources` (observable SourceAssets): one op per observation
    function, so assets observed together are observed once."""
    from dagloom.definitions.job import JobDefinition

    nodes: dict[str, Node] = {}
    seen: set[int] = set()
    merged: dict[str, Any] = {}
    for source in sources:
        if source.observe_fn is None:
            raise DefinitionError(
                f"asset {source.key.to_user_string()!r} is external and has no observation "
                "function; report its events instead (dagloom asset report-observation)",
                name=source.key.to_user_string(),
            )
        if id(source.observe_fn) in seen:
            continue
        seen.add(id(source.observe_fn))
        merged.update(source.resource_defs or {})
        op_name = (
            f"__observe_{source.observe_fn.name}"
            if isinstance(source.observe_fn, _SharedObserver)
            else _op_name(source.key)
        )
        if op_name in nodes:  # two keys that differ only in replaced characters
            op_name = f"{op_name}_{len(nodes)}"
        nodes[op_name] = Node(op_name, _observer_op(op_name, source), {})
    if not nodes:
        raise DefinitionError(f"observation job {name!r} observes no assets", name=name)
    return JobDefinition(
        name=name,
        nodes=nodes,
        description=description,
        tags=tags,
        resource_defs={**merged, **dict(resource_defs or {})},
        executor_def=executor_def,
    )


def observe(
    assets: Sequence[Any],
    run_config: Mapping[str, Any] | None = None,
    instance: DagloomInstance | None = None,
    resources: Mapping[str, Any] | None = None,
    partition_key: str | None = None,
    raise_on_error: bool = True,
    tags: Mapping[str, str] | None = None,
) -> ExecuteInProcessResult:
    """Run the observation functions of `assets` (observable source assets) in this process
    and record their observations; as Dagster's `observe`."""
    sources = [a for a in flatten_external(assets) if isinstance(a, SourceAsset)]
    job = build_observation_job("__ASSET_OBSERVATION_JOB", sources, resource_defs=resources)
    return job.execute_in_process(
        run_config=run_config,
        instance=instance,
        raise_on_error=raise_on_error,
        tags={**(tags or {}), **({"dagster/partition": partition_key} if partition_key else {})},
    )


__all__ = [
    "MultiObservableSourceAsset",
    "build_observation_job",
    "external_assets_from_specs",
    "multi_observable_source_asset",
    "observable_source_asset",
    "observations_of",
    "observe",
]
