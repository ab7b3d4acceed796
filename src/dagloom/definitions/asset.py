"""@asset and @multi_asset: ops that materialize named, persistent data.

An asset's parameters name the assets it reads (`def b(a)` reads asset `a`); `deps=` names
assets it only runs after. Each AssetsDefinition wraps one op whose outputs are the assets.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.definitions.automation_condition import check_automation_condition
from dagloom.definitions.backfill_policy import BackfillPolicy
from dagloom.definitions.op import OpDefinition
from dagloom.definitions.outputs import DEFAULT_OUTPUT, In, Out
from dagloom.definitions.partition_mapping import PartitionMapping
from dagloom.definitions.partitions import PartitionsDefinition
from dagloom.definitions.retry import RetryPolicy
from dagloom.errors import DagsterInvalidDefinitionError, DefinitionError


@dataclass(frozen=True, slots=True)
class AssetIn:
    """How an asset parameter maps to an upstream asset."""

    key: CoercibleToAssetKey | None = None
    metadata: Mapping[str, Any] | None = None
    key_prefix: str | Sequence[str] | None = None
    input_manager_key: str | None = None
    dagster_type: Any = None
    partition_mapping: Any = None  # a PartitionMapping


@dataclass(frozen=True, slots=True)
class AssetDep:
    """A dependency on an asset whose value is not passed in (`deps=[AssetDep("a")]`)."""

    asset: Any  # CoercibleToAssetKey or AssetsDefinition
    partition_mapping: Any = None

    @property
    def asset_key(self) -> AssetKey:
        return _dep_key(self.asset)


@dataclass(frozen=True, slots=True)
class AssetOut:
    """One output of a @multi_asset and the asset it materializes."""

    key: CoercibleToAssetKey | None = None
    key_prefix: str | Sequence[str] | None = None
    description: str | None = None
    is_required: bool = True
    io_manager_key: str | None = None
    metadata: Mapping[str, Any] | None = None
    group_name: str | None = None
    code_version: str | None = None
    kinds: Iterable[str] | None = None
    tags: Mapping[str, str] | None = None
    owners: Sequence[str] | None = None
    dagster_type: Any = None
    automation_condition: Any = None  # an AutomationCondition


@dataclass(frozen=True, slots=True)
class AssetSpec:
    """What an asset is, without how to compute it."""

    key: AssetKey
    deps: tuple[AssetDep, ...] = ()
    description: str | None = None
    group_name: str = "default"
    metadata: Mapping[str, Any] | None = None
    kinds: frozenset[str] = frozenset()
    tags: Mapping[str, str] | None = None
    owners: tuple[str, ...] = ()
    code_version: str | None = None
    io_manager_key: str | None = None
    automation_condition: Any = None  # an AutomationCondition: when automation requests it
    skippable: bool = False  # in a multi_asset: the function may not yield it
    partitions_def: PartitionsDefinition | None = None

    def __post_init__(self) -> None:
        # Dagster takes a key as a string, a list of strings or an AssetKey everywhere, and
        # deps as keys, specs, assets or AssetDeps; the record holds one AssetDep (naming an
        # AssetKey) per upstream asset.
        object.__setattr__(self, "key", AssetKey.from_coercible(self.key))
        object.__setattr__(self, "deps", _merged_deps(self.deps or ()))
        object.__setattr__(self, "kinds", frozenset(self.kinds or ()))
        object.__setattr__(self, "owners", tuple(self.owners or ()))
        if self.group_name is None:
            object.__setattr__(self, "group_name", "default")
        check_automation_condition(
            self.automation_condition, f"asset {self.key.to_user_string()!r}"
        )

    def replace_attributes(self, **changes: Any) -> AssetSpec:
        """This spec with the given attributes replaced (`key`, `deps`, `description`,
        `group_name`, `metadata`, `kinds`, `tags`, `owners`, `code_version`...)."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise DagsterInvalidDefinitionError(
                f"AssetSpec {self.key.to_user_string()!r}: no attributes {sorted(unknown)}",
                name=self.key.to_user_string(),
            )
        return dataclasses.replace(self, **changes)

    def merge_attributes(
        self,
        *,
        deps: Iterable[Any] = (),
        metadata: Mapping[str, Any] | None = None,
        owners: Iterable[str] = (),
        tags: Mapping[str, str] | None = None,
        kinds: Iterable[str] = (),
    ) -> AssetSpec:
        """This spec with `deps`, `owners` and `kinds` added and `metadata` and `tags`
        merged over its own."""
        return dataclasses.replace(
            self,
            deps=_merged_deps([*self.deps, *deps]),
            metadata={**(self.metadata or {}), **(metadata or {})},
            owners=tuple(dict.fromkeys([*self.owners, *owners])),
            tags={**(self.tags or {}), **(tags or {})},
            kinds=self.kinds | frozenset(kinds),
        )

    @property
    def dep_keys(self) -> tuple[AssetKey, ...]:
        """The keys of the assets this one depends on, in order."""
        return tuple(dep.asset_key for dep in self.deps)

    def with_io_manager_key(self, io_manager_key: str) -> AssetSpec:
        """This spec stored and loaded by the IO manager `io_manager_key`."""
        return dataclasses.replace(self, io_manager_key=io_manager_key)


@dataclass(frozen=True, slots=True, init=False)
class SourceAsset(AssetSpec):
    """An asset made outside this code location, as older Dagster code declares one:
    `SourceAsset(key="raw_orders", io_manager_key="warehouse")`. It is an `AssetSpec`
    with Dagster's SourceAsset argument order; assets depending on it by parameter name
    load its value through its IO manager.

    With `observe_fn` (see `observable_source_asset`) it is observable: a run selecting it
    calls the function, which returns the asset's current `DataVersion` (or an
    `ObserveResult`), recorded as an ASSET_OBSERVATION event."""

    observe_fn: Callable[..., Any] | None = None
    required_resource_keys: frozenset[str] = frozenset()
    resource_defs: Mapping[str, Any] | None = None
    partitions_def: PartitionsDefinition | None = None
    auto_observe_interval_minutes: float | None = None
    """How often the observation function should run, for whatever observes on a schedule."""
    op_tags: Mapping[str, Any] | None = None

    def __init__(
        self,
        key: CoercibleToAssetKey,
        metadata: Mapping[str, Any] | None = None,
        io_manager_key: str | None = None,
        description: str | None = None,
        partitions_def: PartitionsDefinition | None = None,
        group_name: str | None = None,
        resource_defs: Mapping[str, Any] | None = None,
        observe_fn: Callable[..., Any] | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        owners: Sequence[str] | None = None,
        kinds: Iterable[str] | None = None,
        required_resource_keys: Iterable[str] | None = None,
        auto_observe_interval_minutes: float | None = None,
        op_tags: Mapping[str, Any] | None = None,
        **spec_fields: Any,
    ) -> None:
        # Further AssetSpec fields (deps, code_version) come by name, as `replace` passes them.
        AssetSpec.__init__(
            self,
            key=key,  # type: ignore[arg-type]
            description=description,
            group_name=group_name or "default",
            metadata=metadata,
            kinds=kinds or frozenset(),  # type: ignore[arg-type]
            tags=tags,
            owners=tuple(owners or ()),
            io_manager_key=io_manager_key,
            **spec_fields,
        )
        if observe_fn is not None and not callable(observe_fn):
            raise DagsterInvalidDefinitionError(
                f"source asset {self.key.to_user_string()!r}: observe_fn must be a function, "
                f"got {observe_fn!r}",
                name=self.key.to_user_string(),
            )
        object.__setattr__(self, "observe_fn", observe_fn)
        object.__setattr__(self, "required_resource_keys", frozenset(required_resource_keys or ()))
        object.__setattr__(self, "resource_defs", dict(resource_defs or {}))
        object.__setattr__(self, "partitions_def", partitions_def)
        object.__setattr__(self, "auto_observe_interval_minutes", auto_observe_interval_minutes)
        object.__setattr__(self, "op_tags", dict(op_tags or {}))

    @property
    def is_observable(self) -> bool:
        return self.observe_fn is not None


def _dep_key(value: Any) -> AssetKey:
    if isinstance(value, AssetsDefinition):
        return value.key
    if isinstance(value, AssetSpec):
        return value.key
    if isinstance(value, AssetDep):
        return value.asset_key
    return AssetKey.from_coercible(value)


def _merged_deps(deps: Iterable[Any]) -> tuple[AssetDep, ...]:
    """One AssetDep naming an AssetKey per upstream asset of `deps` (keys, specs, assets or
    AssetDeps), first mention first; a later mention's partition mapping fills in one the
    first lacked."""
    merged: dict[AssetKey, AssetDep] = {}
    for dep in deps:
        key = _dep_key(dep)
        mapping = dep.partition_mapping if isinstance(dep, AssetDep) else None
        seen = merged.get(key)
        if seen is None or (seen.partition_mapping is None and mapping is not None):
            merged[key] = AssetDep(key, partition_mapping=mapping)
    return tuple(merged.values())


def _prefixed(name: str, prefix: str | Sequence[str] | None) -> AssetKey:
    if prefix is None:
        return AssetKey(name)
    head = [prefix] if isinstance(prefix, str) else list(prefix)
    return AssetKey([*head, name])


def _decorated_key(
    what: str,
    fn_name: str,
    key: CoercibleToAssetKey | None,
    name: str | None,
    key_prefix: str | Sequence[str] | None,
) -> AssetKey:
    """The key of the asset a decorator (`what`: "asset", "graph asset") declares on
    `fn_name`: `key`, else `name` (default: the function's name) under `key_prefix`.

    Raises `DagsterInvalidDefinitionError` when `key` comes with `name` or `key_prefix`.
    """
    if key is not None and (name is not None or key_prefix is not None):
        raise DagsterInvalidDefinitionError(
            f"{what} {fn_name!r}: give key, or name/key_prefix, not both", name=fn_name
        )
    if key is not None:
        return AssetKey.from_coercible(key)
    return _prefixed(name or fn_name, key_prefix)


class AssetsDefinition:
    """One op and the assets its outputs materialize."""

    def __init__(
        self,
        *,
        op: OpDefinition,
        specs_by_output: Mapping[str, AssetSpec],
        keys_by_input: Mapping[str, AssetKey],
        can_subset: bool = False,
        resource_defs: Mapping[str, Any] | None = None,
        partitions_def: PartitionsDefinition | None = None,
        partition_mappings: Mapping[AssetKey, PartitionMapping] | None = None,
        backfill_policy: BackfillPolicy | None = None,
        check_specs: Sequence[Any] | None = None,
    ) -> None:
        self.op = op
        self.check_specs = list(check_specs or ())  # AssetCheckSpecs its function reports
        self.backfill_policy = backfill_policy
        self.partitions_def = partitions_def
        # Upstream key -> how this asset's partitions read it (absent: the default mapping).
        self.partition_mappings = dict(partition_mappings or {})
        self.specs_by_output = dict(specs_by_output)
        self.keys_by_output = {name: spec.key for name, spec in self.specs_by_output.items()}
        self.keys_by_input = dict(keys_by_input)
        self.can_subset = can_subset
        self.resource_defs = dict(resource_defs or {})
        self.deps_by_key: dict[AssetKey, tuple[AssetKey, ...]] = {}
        for spec in self.specs_by_output.values():
            merged = dict.fromkeys([*self.keys_by_input.values(), *spec.dep_keys])
            self.deps_by_key[spec.key] = tuple(merged)

    @staticmethod
    def from_graph(graph_def: Any, **kwargs: Any) -> AssetsDefinition:
        """Assets computed by an existing @graph: each graph output is an asset, each graph
        input reads one. Takes `keys_by_input_name`, `keys_by_output_name`, `key_prefix`,
        `group_name`, `group_names_by_output_name`, `descriptions_by_output_name`,
        `metadata_by_output_name`, `tags_by_output_name`, `code_versions_by_output_name`,
        `resource_defs` and `partitions_def`, as Dagster's does."""
        from dagloom.definitions.graph import GraphDefinition
        from dagloom.definitions.graph_asset import assets_from_node

        if not isinstance(graph_def, GraphDefinition):
            raise DagsterInvalidDefinitionError(
                f"AssetsDefinition.from_graph takes a GraphDefinition, got "
                f"{type(graph_def).__name__}; use from_op for an op"
            )
        return assets_from_node(graph_def, **kwargs)

    @staticmethod
    def from_op(op_def: OpDefinition, **kwargs: Any) -> AssetsDefinition:
        """Assets computed by an existing @op: each output is an asset, each input reads
        one; takes the keyword arguments of `from_graph`, and `can_subset`."""
        from dagloom.definitions.graph_asset import assets_from_node

        if not isinstance(op_def, OpDefinition):
            raise DagsterInvalidDefinitionError(
                f"AssetsDefinition.from_op takes an OpDefinition, got {type(op_def).__name__}"
            )
        return assets_from_node(op_def, **kwargs)

    @property
    def key(self) -> AssetKey:
        if len(self.keys_by_output) != 1:
            raise DefinitionError(
                f"{self.op.name!r} defines {len(self.keys_by_output)} assets; use .keys",
                name=self.op.name,
            )
        return next(iter(self.keys_by_output.values()))

    @property
    def keys(self) -> set[AssetKey]:
        return set(self.keys_by_output.values())

    @property
    def node_def(self) -> OpDefinition:
        return self.op

    @property
    def specs(self) -> list[AssetSpec]:
        return list(self.specs_by_output.values())

    @property
    def specs_by_key(self) -> dict[AssetKey, AssetSpec]:
        return {spec.key: spec for spec in self.specs_by_output.values()}

    @property
    def dependency_keys(self) -> set[AssetKey]:
        return {k for deps in self.deps_by_key.values() for k in deps}

    @property
    def group_names_by_key(self) -> dict[AssetKey, str]:
        return {spec.key: spec.group_name for spec in self.specs_by_output.values()}

    @property
    def descriptions_by_key(self) -> dict[AssetKey, str | None]:
        return {spec.key: spec.description for spec in self.specs_by_output.values()}

    @property
    def metadata_by_key(self) -> dict[AssetKey, Mapping[str, Any]]:
        return {spec.key: dict(spec.metadata or {}) for spec in self.specs_by_output.values()}

    @property
    def tags_by_key(self) -> dict[AssetKey, Mapping[str, str]]:
        return {spec.key: dict(spec.tags or {}) for spec in self.specs_by_output.values()}

    @property
    def owners_by_key(self) -> dict[AssetKey, Sequence[str]]:
        return {spec.key: list(spec.owners) for spec in self.specs_by_output.values()}

    @property
    def code_versions_by_key(self) -> dict[AssetKey, str | None]:
        return {spec.key: spec.code_version for spec in self.specs_by_output.values()}

    @property
    def asset_deps(self) -> dict[AssetKey, set[AssetKey]]:
        """Each asset's upstream asset keys."""
        return {key: set(deps) for key, deps in self.deps_by_key.items()}

    def spec_for(self, key: AssetKey) -> AssetSpec:
        for spec in self.specs_by_output.values():
            if spec.key == key:
                return spec
        raise DefinitionError(f"{self.op.name!r} does not define asset {key}", name=self.op.name)

    def get_asset_spec(self, key: CoercibleToAssetKey | None = None) -> AssetSpec:
        """The spec of asset `key` (a string, list or AssetKey); of the only asset when
        `key` is omitted."""
        if key is None:
            return self.spec_for(self.key)
        return self.spec_for(AssetKey.from_coercible(key))

    def with_resources(self, resource_defs: Mapping[str, Any]) -> AssetsDefinition:
        """This definition with `resource_defs` for the keys it does not bind itself."""
        return AssetsDefinition(
            op=self.op,
            specs_by_output=self.specs_by_output,
            keys_by_input=self.keys_by_input,
            can_subset=self.can_subset,
            resource_defs={**resource_defs, **self.resource_defs},
            partitions_def=self.partitions_def,
            partition_mappings=self.partition_mappings,
            backfill_policy=self.backfill_policy,
            check_specs=self.check_specs,
        )

    def map_asset_specs(self, func: Callable[[AssetSpec], AssetSpec]) -> AssetsDefinition:
        """This definition with each asset's spec replaced by `func(spec)` (tags, metadata,
        owners, deps, group...). DagsterInvalidDefinitionError names an asset whose key
        `func` changes, or that `func` does not return an AssetSpec for."""
        specs: dict[str, AssetSpec] = {}
        for out_name, spec in self.specs_by_output.items():
            mapped = func(spec)
            where = f"map_asset_specs on asset {spec.key.to_user_string()!r}"
            if not isinstance(mapped, AssetSpec):
                raise DagsterInvalidDefinitionError(
                    f"{where}: the function returned {type(mapped).__name__}, not an AssetSpec",
                    name=spec.key.to_user_string(),
                )
            if mapped.key != spec.key:
                raise DagsterInvalidDefinitionError(
                    f"{where}: the function changed its key to "
                    f"{mapped.key.to_user_string()!r}; an asset computed by a function keeps "
                    "its key",
                    name=spec.key.to_user_string(),
                )
            specs[out_name] = mapped
        result = AssetsDefinition(
            op=self.op,
            specs_by_output=specs,
            keys_by_input=self.keys_by_input,
            can_subset=self.can_subset,
            resource_defs=self.resource_defs,
            partitions_def=self.partitions_def,
            partition_mappings=self.partition_mappings,
            backfill_policy=self.backfill_policy,
            check_specs=self.check_specs,
        )
        for out_name, spec in self.specs_by_output.items():
            if specs[out_name].deps == spec.deps:
                # Keep deps narrowed by internal_asset_deps when func left them alone.
                result.deps_by_key[spec.key] = self.deps_by_key[spec.key]
        return result

    def get_partition_mapping(self, upstream: CoercibleToAssetKey) -> PartitionMapping | None:
        """The mapping given for `upstream` (AssetIn or AssetDep), if any."""
        return self.partition_mappings.get(AssetKey.from_coercible(upstream))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the asset's function directly (for unit tests)."""
        return self.op(*args, **kwargs)

    def __repr__(self) -> str:
        keys = ", ".join(k.to_user_string() for k in self.keys_by_output.values())
        return f"<AssetsDefinition {keys}>"


def _asset_inputs(
    fn: Callable[..., Any],
    name: str,
    ins: Mapping[str, AssetIn] | None,
    key_prefix: str | Sequence[str] | None,
) -> tuple[dict[str, In], dict[str, AssetKey]]:
    """Map the function's data parameters to upstream asset keys."""
    from dagloom.definitions.op import analyse_compute_fn

    signature, _, _ = analyse_compute_fn(fn, name=name, explicit_ins=None)
    given = dict(ins or {})
    op_ins: dict[str, In] = {}
    keys: dict[str, AssetKey] = {}
    for input_name in signature.input_names:
        spec = given.pop(input_name, None) or AssetIn()
        if spec.key is not None:
            key = AssetKey.from_coercible(spec.key)
        else:
            key = _prefixed(
                input_name, spec.key_prefix if spec.key_prefix is not None else key_prefix
            )
        keys[input_name] = key
        # A parameter's default fills in when OpDefinition analyses the function.
        op_ins[input_name] = In(
            dagster_type=spec.dagster_type,
            metadata=spec.metadata,
            asset_key=key,
            input_manager_key=spec.input_manager_key,
        )
    if given:
        raise DefinitionError(
            f"asset {name!r}: ins {sorted(given)} match no parameter of {fn.__name__}",
            name=name,
        )
    return op_ins, keys


def _partition_mappings(
    ins: Mapping[str, AssetIn] | None,
    keys_by_input: Mapping[str, AssetKey],
    deps: Iterable[Any] | None,
) -> dict[AssetKey, PartitionMapping]:
    """Upstream key -> the PartitionMapping its AssetIn or AssetDep names."""
    out: dict[AssetKey, PartitionMapping] = {}
    for input_name, spec in (ins or {}).items():
        if spec.partition_mapping is not None and input_name in keys_by_input:
            out[keys_by_input[input_name]] = spec.partition_mapping
    for dep in deps or ():
        if isinstance(dep, AssetDep) and dep.partition_mapping is not None:
            out[dep.asset_key] = dep.partition_mapping
    return out


def _checked_specs(
    check_specs: Sequence[Any] | None, specs_by_output: Mapping[str, AssetSpec]
) -> list[Any]:
    """`check_specs`, each checking one of these assets (else DagsterInvalidDefinitionError
    naming the check and the asset)."""
    keys = {spec.key for spec in specs_by_output.values()}
    for check in check_specs or ():
        if check.asset_key not in keys:
            raise DagsterInvalidDefinitionError(
                f"check spec {check.name!r} checks asset "
                f"{check.asset_key.to_user_string()!r}, which this definition does not "
                f"materialize ({sorted(k.to_user_string() for k in keys)})",
                name=check.name,
            )
    return list(check_specs or ())


def _kinds(kinds: Iterable[str] | None, compute_kind: str | None) -> frozenset[str]:
    out = set(kinds or ())
    if compute_kind:
        out.add(compute_kind)
    return frozenset(out)


@overload
def asset(fn: Callable[..., Any]) -> AssetsDefinition: ...


@overload
def asset(
    fn: None = None,
    *,
    name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
    key: CoercibleToAssetKey | None = None,
    ins: Mapping[str, AssetIn] | None = None,
    deps: Iterable[Any] | None = None,
    group_name: str | None = None,
    description: str | None = None,
    kinds: Iterable[str] | None = None,
    compute_kind: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    owners: Sequence[str] | None = None,
    config_schema: Any = None,
    required_resource_keys: Sequence[str] | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    io_manager_key: str | None = None,
    retry_policy: RetryPolicy | None = None,
    code_version: str | None = None,
    op_tags: Mapping[str, Any] | None = None,
    dagster_type: Any = None,
    output_required: bool = True,
    partitions_def: PartitionsDefinition | None = None,
    backfill_policy: BackfillPolicy | None = None,
    check_specs: Sequence[Any] | None = None,
    automation_condition: Any = None,
) -> Callable[[Callable[..., Any]], AssetsDefinition]: ...


def asset(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
    key: CoercibleToAssetKey | None = None,
    ins: Mapping[str, AssetIn] | None = None,
    deps: Iterable[Any] | None = None,
    group_name: str | None = None,
    description: str | None = None,
    kinds: Iterable[str] | None = None,
    compute_kind: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    owners: Sequence[str] | None = None,
    config_schema: Any = None,
    required_resource_keys: Sequence[str] | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    io_manager_key: str | None = None,
    retry_policy: RetryPolicy | None = None,
    code_version: str | None = None,
    op_tags: Mapping[str, Any] | None = None,
    dagster_type: Any = None,
    output_required: bool = True,
    partitions_def: PartitionsDefinition | None = None,
    backfill_policy: BackfillPolicy | None = None,
    check_specs: Sequence[Any] | None = None,
    automation_condition: Any = None,
) -> AssetsDefinition | Callable[[Callable[..., Any]], AssetsDefinition]:
    """Declare an asset computed by a function; parameters read upstream assets by name.
    With `output_required=False` the function may yield no Output: the asset is then not
    materialized and the assets downstream of it are skipped."""

    def wrap(func: Callable[..., Any]) -> AssetsDefinition:
        asset_key = _decorated_key("asset", func.__name__, key, name, key_prefix)
        op_name = asset_key.to_python_identifier()
        op_ins, keys_by_input = _asset_inputs(func, op_name, ins, key_prefix)
        dep_keys = tuple(_dep_key(d) for d in (deps or ()))
        clash = set(dep_keys) & set(keys_by_input.values())
        if clash:
            raise DefinitionError(
                f"asset {asset_key.to_user_string()!r}: {sorted(str(k) for k in clash)} given "
                "both as a parameter and in deps",
                name=op_name,
            )
        out = Out(
            dagster_type=dagster_type,
            description=description,
            is_required=output_required,
            io_manager_key=io_manager_key or "io_manager",
            metadata=metadata,
            code_version=code_version,
        )
        op = OpDefinition(
            func,
            name=op_name,
            ins=op_ins,
            out={DEFAULT_OUTPUT: out},
            description=description,
            tags=op_tags,
            config_schema=config_schema,
            required_resource_keys=required_resource_keys,
            retry_policy=retry_policy,
            code_version=code_version,
        )
        spec = AssetSpec(
            key=asset_key,
            deps=tuple(deps or ()),
            description=description or inspect.getdoc(func),
            group_name=group_name or "default",
            metadata=metadata,
            kinds=_kinds(kinds, compute_kind),
            tags=tags,
            owners=tuple(owners or ()),
            code_version=code_version,
            automation_condition=automation_condition,
        )
        return AssetsDefinition(
            op=op,
            specs_by_output={DEFAULT_OUTPUT: spec},
            keys_by_input=keys_by_input,
            resource_defs=resource_defs,
            partitions_def=partitions_def,
            partition_mappings=_partition_mappings(ins, keys_by_input, deps),
            backfill_policy=backfill_policy,
            check_specs=_checked_specs(check_specs, {DEFAULT_OUTPUT: spec}),
        )

    return wrap(fn) if fn is not None else wrap


def multi_asset(
    *,
    outs: Mapping[str, AssetOut] | None = None,
    specs: Sequence[AssetSpec] | None = None,
    name: str | None = None,
    ins: Mapping[str, AssetIn] | None = None,
    deps: Iterable[Any] | None = None,
    description: str | None = None,
    group_name: str | None = None,
    can_subset: bool = False,
    config_schema: Any = None,
    required_resource_keys: Sequence[str] | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    retry_policy: RetryPolicy | None = None,
    op_tags: Mapping[str, Any] | None = None,
    compute_kind: str | None = None,
    internal_asset_deps: Mapping[str, set[AssetKey]] | None = None,
    partitions_def: PartitionsDefinition | None = None,
    backfill_policy: BackfillPolicy | None = None,
    check_specs: Sequence[Any] | None = None,
    automation_condition: Any = None,
) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """Declare several assets computed by one function, one per AssetOut (or AssetSpec).

    `internal_asset_deps` maps an output name to the asset keys that asset alone depends
    on (by default each depends on every input and dep). With `can_subset=True` a run may
    select some of the assets: `context.selected_output_names` says which to yield, the
    others are neither required nor recorded as materialized.
    """

    def wrap(func: Callable[..., Any]) -> AssetsDefinition:
        op_name = name or func.__name__
        if not outs and not specs:
            raise DefinitionError(f"multi_asset {op_name!r} needs outs= or specs=", name=op_name)
        op_ins, keys_by_input = _asset_inputs(func, op_name, ins, None)
        op_outs: dict[str, Out] = {}
        specs_by_output: dict[str, AssetSpec] = {}
        for out_name, asset_out in (outs or {}).items():
            key = (
                AssetKey.from_coercible(asset_out.key)
                if asset_out.key is not None
                else _prefixed(out_name, asset_out.key_prefix)
            )
            op_outs[out_name] = Out(
                dagster_type=asset_out.dagster_type,
                description=asset_out.description,
                is_required=asset_out.is_required,
                io_manager_key=asset_out.io_manager_key or "io_manager",
                metadata=asset_out.metadata,
                code_version=asset_out.code_version,
            )
            specs_by_output[out_name] = AssetSpec(
                key=key,
                deps=tuple(deps or ()),
                description=asset_out.description,
                group_name=asset_out.group_name or group_name or "default",
                metadata=asset_out.metadata,
                kinds=_kinds(asset_out.kinds, compute_kind),
                tags=asset_out.tags,
                owners=tuple(asset_out.owners or ()),
                code_version=asset_out.code_version,
                automation_condition=asset_out.automation_condition or automation_condition,
            )
        for spec in specs or ():
            out_name = spec.key.to_python_identifier()
            op_outs[out_name] = Out(
                io_manager_key=spec.io_manager_key or "io_manager",
                metadata=spec.metadata,
                is_required=not spec.skippable,
            )
            specs_by_output[out_name] = AssetSpec(
                key=spec.key,
                deps=_merged_deps([*spec.deps, *(deps or ())]),
                description=spec.description,
                group_name=spec.group_name
                if spec.group_name != "default"
                else (group_name or "default"),
                metadata=spec.metadata,
                kinds=spec.kinds,
                tags=spec.tags,
                owners=spec.owners,
                code_version=spec.code_version,
                io_manager_key=spec.io_manager_key,
                automation_condition=spec.automation_condition or automation_condition,
                skippable=spec.skippable,
                partitions_def=spec.partitions_def,
            )
        op = OpDefinition(
            func,
            name=op_name,
            ins=op_ins,
            out=op_outs,
            description=description,
            tags=op_tags,
            config_schema=config_schema,
            required_resource_keys=required_resource_keys,
            retry_policy=retry_policy,
        )
        assets_def = AssetsDefinition(
            op=op,
            specs_by_output=specs_by_output,
            keys_by_input=keys_by_input,
            can_subset=can_subset,
            resource_defs=resource_defs,
            partitions_def=_specs_partitions_def(op_name, partitions_def, specs or ()),
            partition_mappings=_partition_mappings(
                ins, keys_by_input, [d for spec in specs_by_output.values() for d in spec.deps]
            ),
            backfill_policy=backfill_policy,
            check_specs=_checked_specs(check_specs, specs_by_output),
        )
        for out_name, upstream in (internal_asset_deps or {}).items():
            if out_name not in specs_by_output:
                raise DagsterInvalidDefinitionError(
                    f"multi_asset {op_name!r}: internal_asset_deps names output {out_name!r}, "
                    f"which is not among its outputs {sorted(specs_by_output)}",
                    name=op_name,
                )
            key = specs_by_output[out_name].key
            assets_def.deps_by_key[key] = tuple(AssetKey.from_coercible(k) for k in upstream)
        return assets_def

    return wrap


def _specs_partitions_def(
    op_name: str, given: PartitionsDefinition | None, specs: Sequence[AssetSpec]
) -> PartitionsDefinition | None:
    """A multi_asset's partitions: `partitions_def=`, else its specs' (which must agree);
    DagsterInvalidDefinitionError names the multi_asset when they differ."""
    found: list[PartitionsDefinition] = []
    for spec in specs:
        if spec.partitions_def is not None and spec.partitions_def not in found:
            found.append(spec.partitions_def)
    if len(found) > 1 or (given is not None and found and found[0] != given):
        raise DagsterInvalidDefinitionError(
            f"multi_asset {op_name!r}: its AssetSpecs' partitions_def differ from each other "
            "or from its partitions_def; the assets of one function share one",
            name=op_name,
        )
    return given if given is not None else (found[0] if found else None)


def map_asset_specs(
    func: Callable[[AssetSpec], AssetSpec], iterable: Iterable[AssetsDefinition | AssetSpec]
) -> list[AssetsDefinition | AssetSpec]:
    """Each AssetSpec replaced by `func(spec)`, and each AssetsDefinition by one whose
    assets' specs are (see `AssetsDefinition.map_asset_specs`), in order:
    `map_asset_specs(lambda spec: spec.merge_attributes(tags={"team": "x"}), assets)`."""
    out: list[AssetsDefinition | AssetSpec] = []
    for item in iterable:
        if isinstance(item, AssetsDefinition):
            out.append(item.map_asset_specs(func))
        elif isinstance(item, AssetSpec):
            out.append(func(item))
        else:
            raise DagsterInvalidDefinitionError(
                f"map_asset_specs maps AssetsDefinitions and AssetSpecs, got {item!r}"
            )
    return out


def with_resources(
    definitions: Iterable[AssetsDefinition],
    resource_defs: Mapping[str, Any],
    resource_config_by_key: Mapping[str, Any] | None = None,
) -> list[AssetsDefinition]:
    """Copies of `definitions` bound to `resource_defs` (keys they bind themselves win).

    `resource_config_by_key` fixes resources' config, shaped as run config's `resources:`
    section (`{"db": {"config": {...}}}`); a key it names that `resource_defs` lacks raises
    `DagsterInvalidDefinitionError` naming it.
    """
    from dagloom.definitions.resources import ConfigurableResourceFactory, ResourceDefinition

    bound = dict(resource_defs)
    for key, entry in (resource_config_by_key or {}).items():
        if key not in bound:
            raise DagsterInvalidDefinitionError(
                f"with_resources: resource_config_by_key names {key!r}, which is not among "
                f"the resources {sorted(bound)}",
                name=key,
            )
        config = dict(entry.get("config") or {}) if isinstance(entry, Mapping) else {}
        value = bound[key]
        if isinstance(value, ResourceDefinition):
            bound[key] = value.configured(config)
        elif isinstance(value, ConfigurableResourceFactory):
            bound[key] = value.model_copy(update=config)
    return [d.with_resources(bound) for d in definitions]


__all__ = [
    "AssetDep",
    "AssetIn",
    "AssetOut",
    "AssetSpec",
    "AssetsDefinition",
    "asset",
    "map_asset_specs",
    "multi_asset",
    "with_resources",
]
