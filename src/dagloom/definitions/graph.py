"""@graph and GraphDefinition: ops wired together, flattened into named nodes.

A @job or @graph body runs once at definition time inside a Composition: each op call records
a node and returns handles to its outputs. Nested graphs are inlined with their node names
prefixed (`outer.inner_op`), so a job holds one flat list of nodes, which is what the plan
compiler wants.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, overload

from dagloom._gc import full_collections_deferred
from dagloom.definitions.config import ConfigMapping
from dagloom.definitions.node import (
    NO_TAGS,
    Binding,
    FromCollect,
    FromDynamicElement,
    FromFanIn,
    FromGraphInput,
    FromOutput,
    Node,
    OneBinding,
    from_output,
    new_node,
    validate_nodes,
)
from dagloom.definitions.op import COMPOSITION, OpDefinition, PendingNodeInvocation, check_name
from dagloom.definitions.outputs import DEFAULT_OUTPUT, Out
from dagloom.definitions.retry import RetryPolicy
from dagloom.errors import DagsterInvalidDefinitionError, DefinitionError

# ---------------------------------------------------------------------------------------
# Handles returned by calls inside a composition.


class InvokedOutput:
    """An output of a node called in a composition body; pass it to another op call."""

    __slots__ = ("binding", "node", "output")

    def __init__(self, node: str, output: str) -> None:
        self.node = node
        self.output = output
        # The FromOutput of every input this handle is passed to, made at the first: a
        # fan-out passes one handle to many calls.
        self.binding: FromOutput | None = None

    def collect(self) -> CollectedOutput:
        """All instances of this output of a mapped node, as one list input."""
        return CollectedOutput(self.node, self.output)

    def map(self, fn: Callable[[Any], Any]) -> Any:
        raise DefinitionError(
            f"output {self.output!r} of {self.node!r} is not dynamic; only a DynamicOut "
            "can be mapped",
            name=self.node,
        )

    def __iter__(self) -> Iterator[Any]:
        raise DefinitionError(
            f"output of {self.node!r} cannot be unpacked: the op has a single output; declare "
            "out={...} with several Outs to return several values",
            name=self.node,
        )

    def __repr__(self) -> str:
        return f"InvokedOutput({self.node}.{self.output})"


class InvokedDynamicOutput:
    """A DynamicOut of a node called in a composition body: `.map(fn)` or `.collect()`."""

    __slots__ = ("node", "output")

    def __init__(self, node: str, output: str) -> None:
        self.node = node
        self.output = output

    def map(self, fn: Callable[[Any], Any]) -> Any:
        """Call `fn` once with a handle standing for each element; ops it calls run once per
        element. Returns what `fn` returns, an op output becoming a mapped output that can be
        mapped again (`.map(a).map(b)`) or collected."""
        return _as_mapped(fn(_ElementHandle(self.node, self.output)))

    def collect(self) -> CollectedOutput:
        return CollectedOutput(self.node, self.output)

    def __repr__(self) -> str:
        return f"InvokedDynamicOutput({self.node}.{self.output})"


class MappedOutput(InvokedOutput):
    """An output of an op mapped over a dynamic output: one value per mapping key. It can be
    mapped again (each call runs once per key, like the first) or collected as a list."""

    __slots__ = ()

    def map(self, fn: Callable[[Any], Any]) -> Any:
        return _as_mapped(fn(InvokedOutput(self.node, self.output)))

    def __repr__(self) -> str:
        return f"MappedOutput({self.node}.{self.output})"


def _as_mapped(returned: Any) -> Any:
    """What a `.map(fn)` returns: the op outputs in what `fn` returned, as MappedOutputs."""
    if type(returned) is InvokedOutput:
        return MappedOutput(returned.node, returned.output)
    if isinstance(returned, tuple) and hasattr(returned, "_fields"):
        return type(returned)(*(_as_mapped(item) for item in returned))
    return returned


class _ElementHandle:
    __slots__ = ("node", "output")

    def __init__(self, node: str, output: str) -> None:
        self.node = node
        self.output = output


class CollectedOutput:
    __slots__ = ("node", "output")

    def __init__(self, node: str, output: str) -> None:
        self.node = node
        self.output = output


class GraphInputHandle:
    """A graph body's parameter: stands for the graph's input until the graph is called."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _binding_of(value: Any, where: str) -> Binding:
    if isinstance(value, InvokedOutput):
        return FromOutput(value.node, value.output)
    if isinstance(value, _ElementHandle):
        return FromDynamicElement(value.node, value.output)
    if isinstance(value, CollectedOutput):
        return FromCollect(value.node, value.output)
    if isinstance(value, GraphInputHandle):
        return FromGraphInput(value.name)
    if isinstance(value, InvokedDynamicOutput):
        raise DefinitionError(
            f"{where}: a dynamic output must be used through .map(fn) or .collect()"
        )
    if isinstance(value, list | tuple) and value:
        sources: list[FromOutput] = []
        for item in value:
            if not isinstance(item, InvokedOutput):
                raise DefinitionError(
                    f"{where}: a fan-in list may only hold outputs of op calls, got {item!r}"
                )
            sources.append(from_output(item.node, item.output))
        return FromFanIn(tuple(sources))
    raise DefinitionError(
        f"{where}: got {value!r}; inside a @job or @graph body an op input must be the output "
        "of another op call (values come from run config or defaults)"
    )


# ---------------------------------------------------------------------------------------
# Composition


_COMPOSITION = COMPOSITION


def current_composition() -> Composition | None:
    return _COMPOSITION.get()


class Composition:
    """Records the nodes a @job or @graph body calls. Not reentrant across threads."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.nodes: dict[str, Node] = {}
        # (graph node name, graph output) -> (op node, output), for every inlined graph
        self.graph_outputs: dict[tuple[str, str], tuple[str, str]] = {}
        # graph node name -> its ConfigMapping, for every inlined graph that has one
        self.config_mappings: dict[str, ConfigMapping] = {}
        self._uses: dict[str, int] = {}
        # The inputs of the last node made with one input: the next node bound the same way
        # (the nodes of a fan-out) shares them.
        self._last_one: OneBinding | None = None

    def _unique_name(self, base: str, explicit: bool) -> str:
        if explicit:
            if base in self.nodes or base in self._uses:
                raise DefinitionError(
                    f"{self.owner!r}: two nodes are named {base!r}; give one another alias",
                    name=self.owner,
                )
            self._uses[base] = 1
            return base
        count = self._uses.get(base, 0) + 1
        self._uses[base] = count
        name = base if count == 1 else f"{base}_{count}"
        while name in self.nodes:
            count += 1
            self._uses[base] = count
            name = f"{base}_{count}"
        return name

    def invoke(
        self,
        definition: Any,
        alias: str | None,
        tags: Mapping[str, Any] | None,
        retry_policy: RetryPolicy | None,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        *,
        hooks: frozenset[Any] = frozenset(),
    ) -> Any:
        if type(definition) is not OpDefinition:
            name = self._unique_name(alias or definition.name, alias is not None)
            if isinstance(definition, GraphDefinition):
                bound = _bind_args(definition.name, list(definition.input_names), args, kwargs)
                return definition.inline_into(self, name, bound, hooks=hooks)
        elif alias is not None:
            # An op under an alias (the common case of large jobs): its node holds the name,
            # so `nodes` alone tells a repeat (`_uses` only matters for a graph's name, which
            # names no node, and for the counts of names made without an alias).
            if alias in self.nodes or alias in self._uses:
                self._unique_name(alias, True)  # raises, naming both
            name = alias
        else:
            name = self._unique_name(definition.name, False)
        op: OpDefinition = definition
        sig = op.signature
        names = [*sig.input_names, *sig.nothing_inputs] if sig.nothing_inputs else sig.input_names
        node_inputs: Mapping[str, Binding]
        if len(args) == 1 and not kwargs and names and type(args[0]) is InvokedOutput:
            # One upstream output passed to the first input (a chain's, a fan-out's node)
            node_inputs = self._one_binding(names[0], args[0])
        else:
            inputs: dict[str, Binding] = {}
            if kwargs or len(args) > len(names):
                pairs: Iterable[tuple[str, Any]] = _bind_args(op.name, names, args, kwargs).items()
            else:
                pairs = zip(names, args, strict=False)
            for key, value in pairs:
                if type(value) is InvokedOutput:  # the common case, without building `where`
                    inputs[key] = self._binding(value)
                else:
                    inputs[key] = _binding_of(value, f"{self.owner}: input {key!r} of {name!r}")
            node_inputs = inputs
            if len(inputs) == 1:
                ((only_name, only),) = inputs.items()
                node_inputs = self._one(only_name, only)
        self.nodes[name] = new_node(
            name, op, node_inputs, dict(tags) if tags else NO_TAGS, retry_policy, (), hooks
        )
        outs = op.outs
        if len(outs) == 1:
            for out_name, out in outs.items():
                if out.is_dynamic:
                    return InvokedDynamicOutput(name, out_name)
                return InvokedOutput(name, out_name)
        handles = [_output_handle(name, out_name, out) for out_name, out in outs.items()]
        return _pack_handles(op.name, outs, handles)

    @staticmethod
    def _binding(value: InvokedOutput) -> Binding:
        binding = value.binding
        if binding is None:
            binding = value.binding = from_output(value.node, value.output)
        return binding

    def _one_binding(self, input_name: str, value: InvokedOutput) -> OneBinding:
        binding = value.binding
        if binding is None:
            binding = value.binding = from_output(value.node, value.output)
        return self._one(input_name, binding)

    def _one(self, input_name: str, binding: Binding) -> OneBinding:
        """The inputs of a node with the one input `input_name` bound to `binding`: those of
        the node made before it when equal (the nodes of a fan-out share them)."""
        last = self._last_one
        if last is not None and last.binding is binding and last.key == input_name:
            return last
        made = self._last_one = OneBinding(input_name, binding)
        return made

    def add_node(self, node: Node) -> None:
        if node.name in self.nodes:
            raise DefinitionError(
                f"{self.owner!r}: two nodes are named {node.name!r}", name=self.owner
            )
        self.nodes[node.name] = node


def _bind_args(
    name: str, input_names: Sequence[str], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    if len(args) > len(input_names):
        raise DefinitionError(
            f"{name!r} takes {len(input_names)} inputs ({list(input_names)}) but was called "
            f"with {len(args)} positional arguments",
            name=name,
        )
    bound = dict(zip(input_names, args, strict=False))
    for key, value in kwargs.items():
        if key not in input_names:
            raise DefinitionError(
                f"{name!r} has no input named {key!r}; its inputs are {list(input_names)}",
                name=name,
            )
        if key in bound:
            raise DefinitionError(f"{name!r}: input {key!r} given twice", name=name)
        bound[key] = value
    return bound


def _output_handle(node: str, output: str, out: Out) -> InvokedOutput | InvokedDynamicOutput:
    """The handle a composition body gets for `output` of `node`, declared as `out`."""
    return InvokedDynamicOutput(node, output) if out.is_dynamic else InvokedOutput(node, output)


def _pack_handles(owner: str, names: Iterable[str], handles: Sequence[Any]) -> Any:
    """What a call returns: None for no outputs, the handle for one, else a NamedTuple
    `<owner>_outputs` of the handles under their output `names`."""
    if not handles:
        return None
    if len(handles) == 1:
        return handles[0]
    tuple_type = NamedTuple(  # type: ignore[misc]
        f"{owner}_outputs", [(name, Any) for name in names]
    )
    return tuple_type(*handles)


# ---------------------------------------------------------------------------------------
# Graphs


class GraphDefinition:
    """Ops wired together; reusable inside jobs and other graphs, or turned into a job."""

    def __init__(
        self,
        name: str,
        nodes: Mapping[str, Node] | None = None,
        *,
        node_defs: Sequence[OpDefinition] | None = None,
        dependencies: Mapping[Any, Mapping[str, Any]] | None = None,
        input_names: Sequence[str] = (),
        output_bindings: Mapping[str, Binding] | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        graph_outputs: Mapping[tuple[str, str], tuple[str, str]] | None = None,
        config: ConfigMapping | None = None,
        config_mappings: Mapping[str, ConfigMapping] | None = None,
    ) -> None:
        check_name(name, "graph")
        if node_defs is not None:
            # Dagster's explicit form: `GraphDefinition(name=..., node_defs=[...],
            # dependencies={"b": {"x": DependencyDefinition("a")}})`.
            if nodes is not None:
                raise DefinitionError(
                    f"graph {name!r}: give node_defs with dependencies, or nodes, not both",
                    name=name,
                )
            nodes = _nodes_from_dependencies(name, node_defs, dependencies)
        elif nodes is None:
            raise DefinitionError(f"graph {name!r}: node_defs is required", name=name)
        self.name = name
        self.nodes = dict(nodes)
        self.input_names = tuple(input_names)
        self.output_bindings = dict(output_bindings or {})
        self.graph_outputs = dict(graph_outputs or {})  # of graphs nested in this one
        # `ops: {<this graph>: {config: ...}}` is mapped to its nodes' config through this
        self.config_mapping = config
        self.config_mappings = dict(config_mappings or {})  # of graphs nested in this one
        self.description = description
        self.tags = dict(tags or {})
        validate_nodes(name, self.nodes, allow_graph_inputs=True)

    @staticmethod
    def from_dependencies(
        name: str,
        node_defs: Sequence[OpDefinition],
        dependencies: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> GraphDefinition:
        """Build a graph the explicit way:
        `dependencies={"b": {"x": DependencyDefinition("a")}}`."""
        return GraphDefinition(
            name,
            node_defs=node_defs,
            dependencies=dependencies,
            description=description,
            tags=tags,
        )

    def inline_into(
        self,
        parent: Composition,
        prefix: str,
        bound: Mapping[str, Any],
        *,
        hooks: frozenset[Any] = frozenset(),
    ) -> Any:
        """Copy this graph's nodes into `parent` under `prefix.`, each with `hooks` added;
        return its output handles."""
        where = f"{parent.owner}: graph {prefix!r}"
        args = {key: _binding_of(value, f"{where} input {key!r}") for key, value in bound.items()}
        missing = [n for n in self.input_names if n not in args]
        if missing:
            raise DefinitionError(f"{where} is missing inputs {missing}", name=self.name)
        for node in self.nodes.values():
            inputs = {k: rebase_binding(b, prefix, args) for k, b in node.inputs.items()}
            parent.add_node(
                replace(node, name=f"{prefix}.{node.name}", inputs=inputs, hooks=node.hooks | hooks)
            )
        for (inner, out_name), (node_name, output) in self.graph_outputs.items():
            parent.graph_outputs[(f"{prefix}.{inner}", out_name)] = (
                f"{prefix}.{node_name}",
                output,
            )
        if self.config_mapping is not None:
            parent.config_mappings[prefix] = self.config_mapping
        for inner, mapping in self.config_mappings.items():
            parent.config_mappings[f"{prefix}.{inner}"] = mapping
        handles: list[Any] = []
        for out_name, binding in self.output_bindings.items():
            rebased = rebase_binding(binding, prefix, args)
            if isinstance(rebased, FromOutput):
                parent.graph_outputs[(prefix, out_name)] = (rebased.node, rebased.output)
                out = parent.nodes[rebased.node].op.outs[rebased.output]
                handles.append(_output_handle(rebased.node, rebased.output, out))
            elif isinstance(rebased, FromCollect):
                handles.append(CollectedOutput(rebased.node, rebased.output))
            else:
                raise DefinitionError(f"{where}: unsupported graph output", name=self.name)
        return _pack_handles(self.name, list(self.output_bindings), handles)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        composition = current_composition()
        if composition is None:
            raise DefinitionError(
                f"graph {self.name!r} can only be called inside a @job or @graph body; use "
                f"{self.name}.to_job() to run it",
                name=self.name,
            )
        return composition.invoke(self, None, None, None, args, kwargs)

    def alias(self, name: str) -> PendingNodeInvocation:
        return PendingNodeInvocation(self, alias=name)

    def with_hooks(self, hook_defs: AbstractSet[Any]) -> PendingNodeInvocation:
        """This graph with `hook_defs` run after each of its ops' steps, to call in a body."""
        return PendingNodeInvocation(self, hooks=hook_defs)

    def to_job(self, name: str | None = None, **kwargs: Any) -> Any:
        """A job that runs this graph; takes @job's keyword arguments."""
        from dagloom.definitions.job import JobDefinition

        return JobDefinition(
            name=name or self.name,
            nodes=self.nodes,
            graph_outputs=self.graph_outputs,
            graph_config_mappings=self.config_mappings,
            description=kwargs.pop("description", self.description),
            tags={**self.tags, **dict(kwargs.pop("tags", None) or {})},
            **kwargs,
        )

    def coerce_to_job(self) -> Any:
        """This graph as a job with the defaults (`to_job()`), as Definitions takes a graph
        among its jobs; a DefinitionError naming the graph when that cannot be made."""
        try:
            return self.to_job()
        except DefinitionError as exc:
            raise DefinitionError(
                f"graph {self.name!r} cannot be made a job with the defaults ({exc}); call "
                "to_job with what it needs",
                name=self.name,
            ) from exc

    def execute_in_process(self, **kwargs: Any) -> Any:
        return self.to_job().execute_in_process(**kwargs)

    def __repr__(self) -> str:
        return f"<GraphDefinition {self.name}>"


def rebase_binding(binding: Binding, prefix: str, args: Mapping[str, Binding]) -> Binding:
    """`binding` of a node of a graph inlined under `prefix`: node names prefixed, graph
    inputs replaced by their `args`."""
    if isinstance(binding, FromGraphInput):
        return args[binding.name]
    if isinstance(binding, FromOutput):
        return FromOutput(f"{prefix}.{binding.node}", binding.output)
    if isinstance(binding, FromFanIn):
        return FromFanIn(tuple(FromOutput(f"{prefix}.{s.node}", s.output) for s in binding.sources))
    if isinstance(binding, FromDynamicElement):
        return FromDynamicElement(f"{prefix}.{binding.node}", binding.output)
    return FromCollect(f"{prefix}.{binding.node}", binding.output)


@dataclass(frozen=True, slots=True)
class GraphIn:
    """Describes an input of a @graph (`ins={"x": GraphIn(description=...)}`); the graph's
    parameters are its inputs, so this only documents them."""

    description: str | None = None


@dataclass(frozen=True, slots=True)
class GraphOut:
    """Describes an output of a @graph (`out={"a": GraphOut(), "b": GraphOut()}`); what the
    body returns, in this order or by these names, fills the outputs."""

    description: str | None = None


def _nodes_from_dependencies(
    name: str,
    node_defs: Sequence[OpDefinition],
    dependencies: Mapping[Any, Mapping[str, Any]] | None,
) -> dict[str, Node]:
    """The nodes of graph `name` given as Dagster's `node_defs` and `dependencies`: each
    input's DependencyDefinition (or MultiDependencyDefinition), keyed by node name or by a
    NodeInvocation that aliases a definition."""
    defs = {d.name: d for d in node_defs}
    nodes: dict[str, Node] = {}
    deps = dict(dependencies or {})
    named: dict[str, tuple[OpDefinition, Mapping[str, Any]]] = {}
    for key, value in deps.items():
        base = key.name if isinstance(key, NodeInvocation) else key
        if base not in defs:
            raise DefinitionError(
                f"graph {name!r}: dependencies name {base!r}, which is not among the "
                f"node_defs {sorted(defs)}",
                name=name,
            )
        node_name = (key.alias or key.name) if isinstance(key, NodeInvocation) else key
        named[node_name] = (defs[base], value)
    for d in node_defs:
        if not any(op is d for op, _ in named.values()):
            named[d.name] = (d, {})
    for node_name, (op_def, input_deps) in named.items():
        inputs: dict[str, Binding] = {}
        for input_name, dep in input_deps.items():
            if input_name not in op_def.ins:
                raise DefinitionError(
                    f"graph {name!r}: {node_name!r} has no input {input_name!r}", name=name
                )
            if isinstance(dep, DependencyDefinition):
                inputs[input_name] = FromOutput(dep.node, dep.output)
            elif isinstance(dep, MultiDependencyDefinition):
                inputs[input_name] = FromFanIn(
                    tuple(FromOutput(d.node, d.output) for d in dep.dependencies)
                )
            else:
                raise DefinitionError(
                    f"graph {name!r}: dependency of {node_name}.{input_name} must be a "
                    "DependencyDefinition or MultiDependencyDefinition",
                    name=name,
                )
        nodes[node_name] = Node(node_name, op_def, inputs)
    return nodes


@dataclass(frozen=True, slots=True)
class DependencyDefinition:
    """`dependencies=` entry: the input comes from `node`'s `output`."""

    node: str
    output: str = DEFAULT_OUTPUT


@dataclass(frozen=True, slots=True)
class MultiDependencyDefinition:
    """`dependencies=` entry: the input is a list fanned in from several outputs."""

    dependencies: Sequence[DependencyDefinition]


@dataclass(frozen=True, slots=True)
class NodeInvocation:
    """`dependencies=` key that uses an op under an alias."""

    name: str
    alias: str | None = None


def compose(
    owner: str, fn: Callable[..., Any], input_names: Sequence[str]
) -> tuple[Composition, Any]:
    """Run a @job/@graph body in a fresh Composition; return it and the body's return value."""
    composition = Composition(owner)
    token = _COMPOSITION.set(composition)
    try:
        # A body wiring many ops keeps every node it makes: full collections would rescan them.
        with full_collections_deferred():
            returned = fn(*(GraphInputHandle(n) for n in input_names))
    finally:
        _COMPOSITION.reset(token)
    return composition, returned


def _output_bindings(name: str, returned: Any, out: Any) -> dict[str, Binding]:
    if returned is None:
        return {}
    if isinstance(returned, InvokedOutput | InvokedDynamicOutput):
        return {DEFAULT_OUTPUT: FromOutput(returned.node, returned.output)}
    if isinstance(returned, CollectedOutput):
        return {DEFAULT_OUTPUT: FromCollect(returned.node, returned.output)}
    if isinstance(returned, Mapping):
        result: dict[str, Binding] = {}
        for key, value in returned.items():
            result[key] = _binding_of(value, f"graph {name!r} output {key!r}")
        return result
    if isinstance(returned, tuple) and hasattr(returned, "_fields"):
        return {
            key: _binding_of(value, f"graph {name!r} output {key!r}")
            for key, value in zip(returned._fields, returned, strict=True)
        }
    if isinstance(returned, tuple) and isinstance(out, Mapping):
        return {
            key: _binding_of(value, f"graph {name!r} output {key!r}")
            for key, value in zip(out, returned, strict=True)
        }
    raise DefinitionError(
        f"graph {name!r} returned {returned!r}; return an op output, a dict of them, or None",
        name=name,
    )


@overload
def graph(fn: Callable[..., Any]) -> GraphDefinition: ...


@overload
def graph(
    fn: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    out: Any = None,
    config: ConfigMapping | None = None,
    ins: Mapping[str, GraphIn] | None = None,
) -> Callable[[Callable[..., Any]], GraphDefinition]: ...


def graph(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    out: Any = None,
    config: ConfigMapping | None = None,
    ins: Mapping[str, GraphIn] | None = None,
) -> GraphDefinition | Callable[[Callable[..., Any]], GraphDefinition]:
    """Declare a graph: the body calls ops (and graphs); its parameters are graph inputs and
    what it returns are graph outputs. `ins` (GraphIn) and `out` (GraphOut) describe them;
    an `ins` key that is not a parameter raises DagsterInvalidDefinitionError."""

    def wrap(func: Callable[..., Any]) -> GraphDefinition:
        graph_name = name or func.__name__
        input_names = list(inspect.signature(func).parameters)
        unknown = sorted(set(ins or ()) - set(input_names))
        if unknown:
            raise DagsterInvalidDefinitionError(
                f"graph {graph_name!r}: ins {unknown} do not match any parameter of "
                f"{func.__name__}",
                name=graph_name,
            )
        composition, returned = compose(graph_name, func, input_names)
        return GraphDefinition(
            graph_name,
            composition.nodes,
            graph_outputs=composition.graph_outputs,
            input_names=input_names,
            output_bindings=_output_bindings(graph_name, returned, out),
            description=description or inspect.getdoc(func),
            tags=tags,
            config=config,
            config_mappings=composition.config_mappings,
        )

    return wrap(fn) if fn is not None else wrap


__all__ = [
    "DependencyDefinition",
    "GraphDefinition",
    "GraphIn",
    "GraphOut",
    "MultiDependencyDefinition",
    "Node",
    "NodeInvocation",
    "graph",
]
