"""@graph_asset and @graph_multi_asset: assets computed by a graph of ops rather than one op.

The body is a @graph body: its parameters are the upstream assets it reads (by name, or as
`ins=` says), and the op outputs it returns are the assets. In an asset job the graph's ops
become steps named `<graph>.<op>`, and the step of the op whose output is an asset records
its materialization.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, overload

from dagloom.definitions.asset import (
    AssetIn,
    AssetOut,
    AssetsDefinition,
    AssetSpec,
    _decorated_key,
    _prefixed,
)
from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.definitions.graph import GraphDefinition, graph
from dagloom.definitions.node import FromOutput
from dagloom.definitions.op import OpDefinition
from dagloom.definitions.outputs import DEFAULT_OUTPUT
from dagloom.errors import DagsterInvalidDefinitionError, DagsterInvalidInvocationError

__all__ = ["GraphAssetsDefinition", "assets_from_node", "graph_asset", "graph_multi_asset"]


class GraphAssetsDefinition(AssetsDefinition):
    """Assets whose values a graph computes: `graph` is the graph, `output_nodes` maps each
    asset output to the (node, output) inside the graph that produces it. `op` is the op of
    the first asset output's node (what `AssetsDefinition` lists it under); the job built
    from it runs every op of the graph."""

    def __init__(
        self,
        *,
        graph_def: GraphDefinition,
        specs_by_output: Mapping[str, AssetSpec],
        keys_by_input: Mapping[str, AssetKey],
        resource_defs: Mapping[str, Any] | None = None,
        partitions_def: Any = None,
    ) -> None:
        output_nodes: dict[str, tuple[str, str]] = {}
        for out_name in specs_by_output:
            binding = graph_def.output_bindings.get(out_name)
            if not isinstance(binding, FromOutput):
                raise DagsterInvalidDefinitionError(
                    f"graph asset {graph_def.name!r}: output {out_name!r} must be returned as "
                    "the output of an op call",
                    name=graph_def.name,
                )
            output_nodes[out_name] = (binding.node, binding.output)
        first_node = next(iter(output_nodes.values()))[0]
        super().__init__(
            op=graph_def.nodes[first_node].op,
            specs_by_output=specs_by_output,
            keys_by_input=keys_by_input,
            resource_defs=resource_defs,
            partitions_def=partitions_def,
        )
        self.graph_def = graph_def
        self.output_nodes = output_nodes

    @property
    def node_def(self) -> Any:
        return self.graph_def

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise DagsterInvalidInvocationError(
            f"graph asset {self.graph_def.name!r} cannot be called directly; materialize it, "
            "or call its ops directly to test them",
            name=self.graph_def.name,
        )


def _input_keys(
    fn: Callable[..., Any],
    name: str,
    ins: Mapping[str, AssetIn] | None,
    key_prefix: str | Sequence[str] | None,
) -> dict[str, AssetKey]:
    params = list(inspect.signature(fn).parameters)
    given = dict(ins or {})
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise DagsterInvalidDefinitionError(
            f"graph asset {name!r}: ins {unknown} match no parameter of {fn.__name__}", name=name
        )
    keys: dict[str, AssetKey] = {}
    for param in params:
        spec = given.get(param) or AssetIn()
        if spec.key is not None:
            keys[param] = AssetKey.from_coercible(spec.key)
        else:
            prefix = spec.key_prefix if spec.key_prefix is not None else key_prefix
            keys[param] = _prefixed(param, prefix)
    return keys


@overload
def graph_asset(compose_fn: Callable[..., Any]) -> GraphAssetsDefinition: ...


@overload
def graph_asset(
    compose_fn: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    ins: Mapping[str, AssetIn] | None = None,
    deps: Iterable[Any] | None = None,
    key_prefix: str | Sequence[str] | None = None,
    key: CoercibleToAssetKey | None = None,
    group_name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    owners: Sequence[str] | None = None,
    kinds: Iterable[str] | None = None,
    code_version: str | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    partitions_def: Any = None,
) -> Callable[[Callable[..., Any]], GraphAssetsDefinition]: ...


def graph_asset(
    compose_fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    ins: Mapping[str, AssetIn] | None = None,
    deps: Iterable[Any] | None = None,
    key_prefix: str | Sequence[str] | None = None,
    key: CoercibleToAssetKey | None = None,
    group_name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    owners: Sequence[str] | None = None,
    kinds: Iterable[str] | None = None,
    code_version: str | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    partitions_def: Any = None,
) -> GraphAssetsDefinition | Callable[[Callable[..., Any]], GraphAssetsDefinition]:
    """Declare one asset computed by a graph: the body calls ops and returns the output that
    is the asset; its parameters read upstream assets by name."""

    def wrap(fn: Callable[..., Any]) -> GraphAssetsDefinition:
        asset_key = _decorated_key("graph asset", fn.__name__, key, name, key_prefix)
        graph_name = asset_key.to_python_identifier()
        graph_def = graph(name=graph_name)(fn)
        keys_by_input = _input_keys(fn, graph_name, ins, key_prefix)
        spec = AssetSpec(
            key=asset_key,
            deps=tuple(deps or ()),
            description=description or inspect.getdoc(fn),
            group_name=group_name or "default",
            metadata=metadata,
            kinds=frozenset(kinds or ()),
            tags=tags,
            owners=tuple(owners or ()),
            code_version=code_version,
        )
        return GraphAssetsDefinition(
            graph_def=graph_def,
            specs_by_output={DEFAULT_OUTPUT: spec},
            keys_by_input=keys_by_input,
            resource_defs=resource_defs,
            partitions_def=partitions_def,
        )

    return wrap(compose_fn) if compose_fn is not None else wrap


def graph_multi_asset(
    *,
    outs: Mapping[str, AssetOut],
    name: str | None = None,
    ins: Mapping[str, AssetIn] | None = None,
    group_name: str | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    partitions_def: Any = None,
) -> Callable[[Callable[..., Any]], GraphAssetsDefinition]:
    """Declare several assets computed by one graph: the body returns a dict (or tuple, in
    `outs` order) of op outputs, one per `AssetOut`."""

    def wrap(fn: Callable[..., Any]) -> GraphAssetsDefinition:
        graph_name = name or fn.__name__
        graph_def = graph(name=graph_name, out=dict(outs))(fn)
        missing = sorted(set(outs) - set(graph_def.output_bindings))
        if missing:
            raise DagsterInvalidDefinitionError(
                f"graph multi-asset {graph_name!r} does not return outputs {missing}",
                name=graph_name,
            )
        specs: dict[str, AssetSpec] = {}
        for out_name, out in outs.items():
            asset_key = (
                AssetKey.from_coercible(out.key)
                if out.key is not None
                else _prefixed(out_name, out.key_prefix)
            )
            specs[out_name] = AssetSpec(
                key=asset_key,
                description=out.description,
                group_name=out.group_name or group_name or "default",
                metadata=out.metadata,
                kinds=frozenset(out.kinds or ()),
                tags=out.tags,
                owners=tuple(out.owners or ()),
                code_version=out.code_version,
            )
        return GraphAssetsDefinition(
            graph_def=graph_def,
            specs_by_output=specs,
            keys_by_input=_input_keys(fn, graph_name, ins, None),
            resource_defs=resource_defs,
            partitions_def=partitions_def,
        )

    return wrap


def assets_from_node(
    node_def: GraphDefinition | OpDefinition,
    *,
    keys_by_input_name: Mapping[str, AssetKey] | None = None,
    keys_by_output_name: Mapping[str, AssetKey] | None = None,
    key_prefix: str | Sequence[str] | None = None,
    group_name: str | None = None,
    group_names_by_output_name: Mapping[str, str | None] | None = None,
    descriptions_by_output_name: Mapping[str, str] | None = None,
    metadata_by_output_name: Mapping[str, Mapping[str, Any] | None] | None = None,
    tags_by_output_name: Mapping[str, Mapping[str, str] | None] | None = None,
    code_versions_by_output_name: Mapping[str, str | None] | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    partitions_def: Any = None,
    can_subset: bool = False,
) -> AssetsDefinition:
    """Assets from an existing graph or op (`AssetsDefinition.from_graph` / `.from_op`).

    An output is the asset keyed by `keys_by_output_name`, else by its name (the node's
    name for a sole `result` output), under `key_prefix`; an input reads the asset keyed by
    `keys_by_input_name`, else by its name. Naming an output or input the node lacks is a
    DagsterInvalidDefinitionError.
    """
    name = node_def.name
    if isinstance(node_def, GraphDefinition):
        outputs = list(node_def.output_bindings)
        inputs = list(node_def.input_names)
    else:
        outputs = list(node_def.outs)
        inputs = [n for n in node_def.ins if n not in node_def.signature.nothing_inputs]
    by_output = dict(keys_by_output_name or {})
    by_input = dict(keys_by_input_name or {})
    for given, known, what in ((by_output, outputs, "outputs"), (by_input, inputs, "inputs")):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise DagsterInvalidDefinitionError(
                f"{name!r}: keys_by_{what[:-1]}_name names {unknown}, which are not among its "
                f"{what} {known}",
                name=name,
            )
    specs: dict[str, AssetSpec] = {}
    for out_name in outputs:
        if out_name in by_output:
            key = AssetKey.from_coercible(by_output[out_name])
        else:
            key = _prefixed(name if out_name == DEFAULT_OUTPUT else out_name, key_prefix)

        def of(mapping: Mapping[str, Any] | None, out: str = out_name) -> Any:
            return (mapping or {}).get(out)

        specs[out_name] = AssetSpec(
            key=key,
            description=of(descriptions_by_output_name),
            group_name=of(group_names_by_output_name) or group_name or "default",
            metadata=of(metadata_by_output_name),
            tags=of(tags_by_output_name),
            code_version=of(code_versions_by_output_name),
        )
    keys_by_input = {
        input_name: AssetKey.from_coercible(by_input.get(input_name, input_name))
        for input_name in inputs
    }
    if isinstance(node_def, GraphDefinition):
        return GraphAssetsDefinition(
            graph_def=node_def,
            specs_by_output=specs,
            keys_by_input=keys_by_input,
            resource_defs=resource_defs,
            partitions_def=partitions_def,
        )
    return AssetsDefinition(
        op=node_def,
        specs_by_output=specs,
        keys_by_input=keys_by_input,
        can_subset=can_subset,
        resource_defs=resource_defs,
        partitions_def=partitions_def,
    )
