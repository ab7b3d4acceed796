"""Nodes: one op placed in a job, the binding of each of its inputs, and the checks and
orderings computed over a set of nodes (pure; no composition, no execution)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagloom.definitions.op import OpDefinition
from dagloom.definitions.outputs import DEFAULT_OUTPUT
from dagloom.definitions.retry import RetryPolicy
from dagloom.errors import DefinitionError

# ---------------------------------------------------------------------------------------
# Bindings: where a node input gets its value.


@dataclass(frozen=True, slots=True)
class FromOutput:
    """The value of one output of another node (one element, if that node is mapped)."""

    node: str
    output: str = DEFAULT_OUTPUT


@dataclass(frozen=True, slots=True)
class FromFanIn:
    """A list of values, one per source, in order."""

    sources: tuple[FromOutput, ...]


@dataclass(frozen=True, slots=True)
class FromDynamicElement:
    """One element of a dynamic output; makes the receiving node mapped."""

    node: str
    output: str


@dataclass(frozen=True, slots=True)
class FromCollect:
    """Every element of a dynamic output, or every instance of a mapped node's output, as a
    list ordered by mapping key position."""

    node: str
    output: str


@dataclass(frozen=True, slots=True)
class FromGraphInput:
    """A graph's own input; replaced by the caller's binding when the graph is inlined."""

    name: str


Binding = FromOutput | FromFanIn | FromDynamicElement | FromCollect | FromGraphInput


@dataclass(frozen=True, slots=True)
class Node:
    """One op in a job: its unique name, definition, and the binding of each input."""

    name: str
    op: OpDefinition
    inputs: Mapping[str, Binding]
    tags: Mapping[str, Any] = field(default_factory=dict)
    retry_policy: RetryPolicy | None = None
    after: tuple[str, ...] = ()  # nodes that must finish first, passing no data
    hooks: frozenset[Any] = frozenset()  # HookDefinitions run after this node's steps


# ---------------------------------------------------------------------------------------
# Validation


def validate_nodes(owner: str, nodes: Mapping[str, Node], *, allow_graph_inputs: bool) -> list[str]:
    """Every binding names an existing node and output; dynamic outputs are only reached
    through map/collect; no cycles. Raises DefinitionError naming the node and input.
    Returns the nodes' names in dependency order (`topological_order`)."""

    def where(node: Node, input_name: str) -> str:  # only built for an error message
        return f"{owner!r}: input {input_name!r} of {node.name!r}"

    for node in nodes.values():
        for input_name, binding in node.inputs.items():
            if type(binding) is FromOutput:  # the common case: checked without `_sources`
                upstream = nodes.get(binding.node)
                if upstream is not None:
                    out = upstream.op.outs.get(binding.output)
                    if out is not None and not out.is_dynamic:
                        continue
            for source_node, output, mode in _sources(binding):
                if source_node is None:
                    if not allow_graph_inputs:
                        raise DefinitionError(
                            f"{where(node, input_name)} refers to a graph input", name=owner
                        )
                    continue
                upstream = nodes.get(source_node)
                if upstream is None:
                    raise DefinitionError(
                        f"{where(node, input_name)} depends on unknown node {source_node!r}",
                        name=owner,
                    )
                out = upstream.op.outs.get(output)
                if out is None:
                    raise DefinitionError(
                        f"{where(node, input_name)} depends on output {output!r} of "
                        f"{source_node!r}, which has outputs {sorted(upstream.op.outs)}",
                        name=owner,
                    )
                if out.is_dynamic and mode == "value":
                    raise DefinitionError(
                        f"{where(node, input_name)}: dynamic output {source_node}.{output} "
                        "must be used through .map(fn) or .collect()",
                        name=owner,
                    )
    return topological_order(owner, nodes)  # raises on a cycle


def _sources(binding: Binding) -> list[tuple[str | None, str, str]]:
    if isinstance(binding, FromOutput):
        return [(binding.node, binding.output, "value")]
    if isinstance(binding, FromFanIn):
        return [(s.node, s.output, "value") for s in binding.sources]
    if isinstance(binding, FromDynamicElement):
        return [(binding.node, binding.output, "element")]
    if isinstance(binding, FromCollect):
        return [(binding.node, binding.output, "collect")]
    return [(None, binding.name, "graph")]


def upstream_nodes(node: Node) -> list[str]:
    """Names of the nodes `node` reads from, in binding order, without repeats."""
    seen: dict[str, None] = {}
    for binding in node.inputs.values():
        if type(binding) is FromOutput:  # the common case, without `_sources`' list
            seen[binding.node] = None
            continue
        for source, _, _ in _sources(binding):
            if source is not None:
                seen[source] = None
    for name in node.after:
        seen[name] = None
    return list(seen)


def topological_order(owner: str, nodes: Mapping[str, Node]) -> list[str]:
    """Nodes in dependency order (stable: declaration order among ready nodes); a cycle
    raises DefinitionError naming the nodes on it."""
    # Kahn's algorithm with a count of unfinished upstream nodes per node.
    waiting: dict[str, int] = {}
    downstream: dict[str, list[str]] = {name: [] for name in nodes}
    ready: list[str] = []
    for name, node in nodes.items():
        count = 0
        for dep in upstream_nodes(node):
            children = downstream.get(dep)
            if children is not None:  # an upstream outside `nodes` orders nothing here
                children.append(name)
                count += 1
        waiting[name] = count
        if not count:
            ready.append(name)
    index = 0
    while index < len(ready):
        name = ready[index]
        index += 1
        for child in downstream[name]:
            left = waiting[child] - 1
            waiting[child] = left
            if not left:
                ready.append(child)
    order = ready
    if len(order) != len(nodes):
        stuck = sorted(set(nodes) - set(order))
        raise DefinitionError(f"{owner!r} has a dependency cycle among {stuck}", name=owner)
    return order
