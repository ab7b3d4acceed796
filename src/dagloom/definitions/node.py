"""Nodes: one op placed in a job, the binding of each of its inputs, and the checks and
orderings computed over a set of nodes (pure; no composition, no execution)."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from types import MappingProxyType
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


class _OneKey(KeysView[str]):
    __slots__ = ()

    def __iter__(self) -> Iterator[str]:
        return iter((self._mapping.key,))  # type: ignore[attr-defined]


class _OneValue(ValuesView[Binding]):
    __slots__ = ()

    def __iter__(self) -> Iterator[Binding]:
        return iter((self._mapping.binding,))  # type: ignore[attr-defined]


class _OneItem(ItemsView[str, Binding]):
    __slots__ = ()

    def __iter__(self) -> Iterator[tuple[str, Binding]]:
        mapping: OneBinding = self._mapping  # type: ignore[attr-defined]
        return iter(((mapping.key, mapping.binding),))


class OneBinding(Mapping[str, "Binding"]):
    """The inputs of a node with one input: a read-only mapping of its name to its binding.

    Most nodes of a large job have one input; this holds it in 48 bytes, where a dict of one
    item takes 184 (a job of 100,000 such nodes: 13 MB less), and nodes bound to the same
    binding under the same name (a fan-out) share one (see `Composition.invoke`)."""

    __slots__ = ("binding", "key")

    def __init__(self, key: str, binding: Binding) -> None:
        self.key = key
        self.binding = binding

    def __getitem__(self, key: str) -> Binding:
        if key == self.key:
            return self.binding
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self.binding if key == self.key else default

    def __contains__(self, key: object) -> bool:
        return key == self.key

    def __iter__(self) -> Iterator[str]:
        return iter((self.key,))

    def __len__(self) -> int:
        return 1

    def keys(self) -> KeysView[str]:
        return _OneKey(self)

    def values(self) -> ValuesView[Binding]:
        return _OneValue(self)

    def items(self) -> ItemsView[str, Binding]:
        return _OneItem(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return len(other) == 1 and self.key in other and other[self.key] == self.binding
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a dict, which has none

    def __repr__(self) -> str:
        return repr({self.key: self.binding})

    def __reduce__(self) -> tuple[Any, ...]:
        return (OneBinding, (self.key, self.binding))


NO_TAGS: Mapping[str, Any] = MappingProxyType({})
"""The tags of a node given none: one empty mapping shared by all (a job of 100,000 nodes
would otherwise keep 100,000 empty dicts, 6 MB)."""


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


# A frozen dataclass's __init__ sets each field through `object.__setattr__`; composing a
# job makes one Node and one FromOutput per op call, and setting their slots directly is 2x
# faster (1.8 -> 0.9 µs for a Node). Both make exactly what the dataclass __init__ makes.
_new = object.__new__
_set_source_node = FromOutput.__dict__["node"].__set__
_set_source_output = FromOutput.__dict__["output"].__set__
_set_name, _set_op, _set_inputs, _set_tags, _set_retry_policy, _set_after, _set_hooks = (
    Node.__dict__[name].__set__
    for name in ("name", "op", "inputs", "tags", "retry_policy", "after", "hooks")
)


def from_output(node: str, output: str) -> FromOutput:
    """`FromOutput(node, output)`, made faster."""
    made: FromOutput = _new(FromOutput)
    _set_source_node(made, node)
    _set_source_output(made, output)
    return made


def new_node(
    name: str,
    op: OpDefinition,
    inputs: Mapping[str, Binding],
    tags: Mapping[str, Any],
    retry_policy: RetryPolicy | None,
    after: tuple[str, ...],
    hooks: frozenset[Any],
) -> Node:
    """`Node(name, op, inputs, tags, retry_policy, after, hooks)`, made faster."""
    made: Node = _new(Node)
    _set_name(made, name)
    _set_op(made, op)
    _set_inputs(made, inputs)
    _set_tags(made, tags)
    _set_retry_policy(made, retry_policy)
    _set_after(made, after)
    _set_hooks(made, hooks)
    return made


# ---------------------------------------------------------------------------------------
# Validation


def validate_nodes(owner: str, nodes: Mapping[str, Node], *, allow_graph_inputs: bool) -> list[str]:
    """Every binding names an existing node and output; dynamic outputs are only reached
    through map/collect; no cycles. Raises DefinitionError naming the node and input.
    Returns the nodes' names in dependency order (`topological_order`)."""

    def where(node: Node, input_name: str) -> str:  # only built for an error message
        return f"{owner!r}: input {input_name!r} of {node.name!r}"

    def plain(source: FromOutput) -> bool:
        """Whether `source` is a value output of a node in `nodes` (what most are)."""
        upstream = nodes.get(source.node)
        if upstream is not None:
            out = upstream.op.outs.get(source.output)
            return out is not None and not out.is_dynamic
        return False

    for node in nodes.values():
        for input_name, binding in node.inputs.items():
            if type(binding) is FromOutput:  # the common case: checked without `_sources`
                upstream = nodes.get(binding.node)
                if upstream is not None:
                    out = upstream.op.outs.get(binding.output)
                    if out is not None and not out.is_dynamic:
                        continue
            elif type(binding) is FromFanIn and all(map(plain, binding.sources)):
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


def add_child(downstream: dict[str, str | list[str]], parent: str, child: str) -> None:
    """Note `child` below `parent` in `downstream`, which holds the name of a parent's one
    child and a list only for several (a list for every node of a chain took ~64 bytes)."""
    children = downstream.get(parent)
    if children is None:
        downstream[parent] = child
    elif isinstance(children, str):
        downstream[parent] = [children, child]
    else:
        children.append(child)


def topological_order(owner: str, nodes: Mapping[str, Node]) -> list[str]:
    """Nodes in dependency order (stable: declaration order among ready nodes); a cycle
    raises DefinitionError naming the nodes on it."""
    # Kahn's algorithm with a count of unfinished upstream nodes per node (kept only for
    # nodes that wait for some, as are children only for nodes that have some: the name of
    # one, a list of several; a list for every node of a chain took ~64 bytes a node).
    waiting: dict[str, int] = {}
    downstream: dict[str, str | list[str]] = {}
    ready: list[str] = []
    for name, node in nodes.items():
        deps: Sequence[str]
        inputs = node.inputs
        if node.after or len(inputs) > 1:
            deps = upstream_nodes(node)
        elif not inputs:
            ready.append(name)
            continue
        else:  # one input: most often one upstream output, read without `upstream_nodes`
            (binding,) = inputs.values()
            deps = (binding.node,) if type(binding) is FromOutput else upstream_nodes(node)
        count = 0
        for dep in deps:
            if dep in nodes:  # an upstream outside `nodes` orders nothing here
                add_child(downstream, dep, name)
                count += 1
        if count:
            waiting[name] = count
        else:
            ready.append(name)
    for name in ready:  # grows as nodes become ready: each is visited once, in order
        below = downstream.get(name)
        if below is not None:
            for child in (below,) if isinstance(below, str) else below:
                left = waiting[child] - 1
                waiting[child] = left
                if not left:
                    ready.append(child)
    order = ready
    if len(order) != len(nodes):
        stuck = sorted(set(nodes) - set(order))
        raise DefinitionError(f"{owner!r} has a dependency cycle among {stuck}", name=owner)
    return order
