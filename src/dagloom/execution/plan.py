"""The execution plan: a job compiled once into steps with dependency counts and successors.

Pure and synchronous. Nodes downstream of a DynamicOut are *mapped*: they become step
templates, expanded into one step per mapping key (`node[key]`) when the dynamic output's
step finishes. A node that `.collect()`s waits for the dynamic source and then for every
expanded instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dagloom.definitions.node import (
    Binding,
    FromCollect,
    FromDynamicElement,
    FromFanIn,
    FromOutput,
    Node,
    add_child,
)
from dagloom.errors import DefinitionError

if TYPE_CHECKING:
    from dagloom.definitions.asset_key import AssetKey
    from dagloom.definitions.hook import HookDefinition
    from dagloom.definitions.job import JobDefinition
    from dagloom.definitions.retry import RetryPolicy

# How a step input gets its value.
FROM_OUTPUT = 0  # one upstream output (same mapping key when both are mapped)
FROM_FAN_IN = 1  # a list of upstream outputs
FROM_ELEMENT = 2  # one element of a dynamic output
FROM_COLLECT = 3  # every element / mapped instance, as a list
FROM_ASSET = 4  # an asset outside the job, loaded by its IO manager
FROM_DEFAULT = 5  # the input's default value
FROM_CONFIG = 6  # `ops.<node>.inputs.<name>` in run config
FROM_MANAGER = 7  # no upstream: loaded by its `In(input_manager_key=...)` input manager

Scope = tuple[str, str]  # (node, output) of the DynamicOut a mapped node hangs from


NO_SOURCE = ("", "")
"""The `source` of a StepInput that reads no one output."""


@dataclass(frozen=True, slots=True)
class StepInput:
    """One input of a step: its name, how it gets its value (`kind`) and from where."""

    name: str
    kind: int
    # The (node, output) read by a FROM_OUTPUT, FROM_ELEMENT or FROM_COLLECT input (held
    # here rather than in a tuple of one: 48 bytes a step less in a chain); NO_SOURCE else
    source: tuple[str, str] = NO_SOURCE
    fan_in: tuple[tuple[str, str], ...] = ()  # the (node, output) pairs of a FROM_FAN_IN
    asset_key: AssetKey | None = None
    manager_key: str = "io_manager"
    default: Any = None

    @property
    def sources(self) -> tuple[tuple[str, str], ...]:
        """The (node, output) pairs the input reads, in order."""
        source = self.source
        return self.fan_in if source is NO_SOURCE else (source,)


@dataclass(frozen=True, slots=True)
class StepFacts:
    """What the steps of one op have alike when their nodes have the same retry policy,
    hooks, scope, asset keys (none, in an op job) and plainness: one for all of them (~60
    bytes a step of a large job's steps of one op)."""

    is_async: bool
    scope: Scope | None = None  # set for mapped nodes
    asset_keys: dict[str, AssetKey] = field(default_factory=dict)  # output -> asset key
    plain: bool = False  # every input is one upstream output (FROM_OUTPUT)
    retry_policy: RetryPolicy | None = None
    hooks: tuple[HookDefinition, ...] = ()  # the node's and the job's, by name
    # What the step runner would otherwise work out on every attempt (see `_facts`).
    sole_output: str | None = None  # the op's only output, when it is not dynamic
    required_outputs: tuple[str, ...] = ()  # required outputs that are not dynamic
    # STEP_OUTPUT's and HANDLED_OUTPUT's messages of the sole output
    sole_output_messages: tuple[str, str] = ("", "")


@dataclass(frozen=True, slots=True)
class StepTemplate:
    """One node compiled: what it reads, what it writes, whom it waits for."""

    node: Node
    inputs: tuple[StepInput, ...]
    upstream: tuple[str, ...]  # static steps (or dynamic sources) it waits for
    downstream: tuple[str, ...]  # static steps waiting for it
    facts: StepFacts
    # (node, sole output): the key of its output in a run's state, the same tuple the plain
    # reads of its downstream steps hold
    sole_output_key: tuple[str, str] | None = None

    @property
    def key(self) -> str:
        return self.node.name

    @property
    def scope(self) -> Scope | None:
        return self.facts.scope

    @property
    def asset_keys(self) -> dict[str, AssetKey]:
        return self.facts.asset_keys

    @property
    def plain_reads(self) -> tuple[StepInput, ...] | None:
        """With every input one upstream output (FROM_OUTPUT): the inputs, each read from the
        (node, output) of its `source`; None otherwise."""
        return self.inputs if self.facts.plain else None

    @property
    def is_async(self) -> bool:
        return self.facts.is_async

    @property
    def retry_policy(self) -> RetryPolicy | None:
        return self.facts.retry_policy

    @property
    def hooks(self) -> tuple[HookDefinition, ...]:
        return self.facts.hooks

    @property
    def sole_output(self) -> str | None:
        return self.facts.sole_output

    @property
    def required_outputs(self) -> tuple[str, ...]:
        return self.facts.required_outputs

    @property
    def sole_output_messages(self) -> tuple[str, str]:
        return self.facts.sole_output_messages


@dataclass(frozen=True, slots=True)
class DynamicScope:
    """Everything hanging from one DynamicOut: mapped templates in order, and collectors."""

    templates: tuple[str, ...]
    collectors: tuple[tuple[str, str], ...]  # (collector node, collected node)


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    job_name: str
    steps: dict[str, StepTemplate]  # every node, in topological order
    static_keys: Sequence[str]  # nodes that are steps from the start
    scopes: dict[Scope, DynamicScope]
    roots: tuple[str, ...]

    def dep_count(self, step_key: str) -> int:
        """How many steps the static step `step_key` waits for (its upstream)."""
        return len(self.steps[step_key].upstream)

    def template(self, step_key: str) -> StepTemplate:
        """The template of a step key, `node` or `node[mapping_key]`."""
        return self.steps[split_step_key(step_key)[0]]


def split_step_key(step_key: str) -> tuple[str, str | None]:
    """`node[mapping_key]` as (node, mapping_key); a plain `node` as (node, None)."""
    bracket = step_key.find("[")
    if bracket < 0:
        return step_key, None
    return step_key[:bracket], step_key[bracket + 1 : -1]


def _scope_of(node: Node, scopes: dict[str, Scope | None], nodes: dict[str, Node]) -> Scope | None:
    found: Scope | None = None

    def merge(scope: Scope | None, input_name: str) -> None:
        nonlocal found
        if scope is None:
            return
        if found is not None and found != scope:
            raise DefinitionError(
                f"node {node.name!r} input {input_name!r} mixes elements of two dynamic outputs "
                f"({found[0]}.{found[1]} and {scope[0]}.{scope[1]})",
                name=node.name,
            )
        found = scope

    for input_name, binding in node.inputs.items():
        if isinstance(binding, FromDynamicElement):
            merge((binding.node, binding.output), input_name)
        elif isinstance(binding, FromOutput):
            merge(scopes.get(binding.node), input_name)
        elif isinstance(binding, FromFanIn):
            for source in binding.sources:
                if scopes.get(source.node) is not None:
                    raise DefinitionError(
                        f"node {node.name!r} input {input_name!r}: fan-in of a mapped output; "
                        "use .collect()",
                        name=node.name,
                    )
        elif isinstance(binding, FromCollect):
            source_op = nodes[binding.node].op
            if scopes.get(binding.node) is None and not source_op.outs[binding.output].is_dynamic:
                raise DefinitionError(
                    f"node {node.name!r} input {input_name!r} collects {binding.node!r}, which "
                    "is neither dynamic nor mapped",
                    name=node.name,
                )
            inner = scopes.get(binding.node)
            if inner is not None and scopes.get(inner[0]) is not None:
                raise DefinitionError(
                    f"node {node.name!r}: nested dynamic outputs are not supported",
                    name=node.name,
                )
    return found


def _collect_scope(binding: FromCollect, scopes: dict[str, Scope | None]) -> Scope:
    inner = scopes.get(binding.node)
    return inner if inner is not None else (binding.node, binding.output)


# The asset keys of the steps of nodes that produce no asset (most, in an op job): one empty
# dict for all of them, which nothing writes to once the plan is made.
_NO_ASSET_KEYS: dict[str, AssetKey] = {}


class _Recent:
    """Shares equal values made close together in a plan: the upstream and downstream
    tuples of a chain's or a fan-out's steps (48 bytes each), the inputs of a fan-out's steps
    (~230 bytes each). Only the last ~`WINDOW` to ~2x`WINDOW` distinct values are looked up,
    so what it holds while a plan is compiled stays small (a dict of every value took ~50
    bytes a step at the compile's peak)."""

    __slots__ = ("older", "recent")
    WINDOW = 256

    def __init__(self) -> None:
        self.recent: dict[Any, Any] = {}
        self.older: dict[Any, Any] = {}

    def one_of(self, value: Any) -> Any:
        """`value`, or an equal value given lately (then given back instead)."""
        recent = self.recent
        try:
            found = recent.get(value)
        except TypeError:  # a default value that cannot be hashed: not shared
            return value
        if found is not None:
            return found
        found = self.older.get(value, value)
        if len(recent) >= self.WINDOW:
            self.older = recent
            self.recent = recent = {}
        recent[found] = found
        return found


def _is_asset_out(node: Node, output_name: str, job: JobDefinition) -> bool:
    """Whether `output_name` of `node` is an asset's output (of the multi-asset whose op the
    node runs), so a run that leaves that asset out does not require it."""
    layer = job.asset_layer
    graph = None if layer is None else layer.asset_graph
    if graph is None:
        return False
    return any(d.op is node.op and output_name in d.specs_by_output for d in graph.assets_defs)


def _facts(
    node: Node,
    job: JobDefinition,
    scope: Scope | None,
    asset_keys: dict[str, AssetKey],
    plain: bool,
) -> StepFacts:
    """The StepFacts of `node`'s steps: whether its op is async, its retry policy and hooks,
    and what a step runner reads instead of working it out per attempt: the sole output,
    the required outputs and the messages of the sole output's events. Messages naming the
    step itself are made as its events are (or when read, see `RowLog`): a plan holding
    them would keep ~230 bytes a step."""
    op = node.op
    outs = op.outs
    sole: str | None = None
    sole_messages = ("", "")
    required: list[str] = []
    for out_name, out_def in outs.items():
        if out_def.is_required and not out_def.is_dynamic:
            required.append(out_name)
    if asset_keys and len(asset_keys) < len(outs):
        # a subset of a multi-asset: only the selected assets' outputs are asked for
        required = [o for o in required if o in asset_keys or not _is_asset_out(node, o, job)]
    if len(outs) == 1:
        out_name, out_def = next(iter(outs.items()))
        if not out_def.is_dynamic:
            sole = out_name
            manager = out_def.io_manager_key
            sole_messages = (
                f'Yielded output "{out_name}".',
                f'Handled output "{out_name}" using IO manager "{manager}"',
            )
    return StepFacts(
        is_async=op.is_async,
        scope=scope,
        asset_keys=asset_keys,
        plain=plain,
        retry_policy=node.retry_policy or op.retry_policy or job.op_retry_policy,
        hooks=tuple(sorted(node.hooks | job.hook_defs, key=lambda hook: hook.name)),
        sole_output=sole,
        required_outputs=_REQUIRED_RESULT if required == ["result"] else tuple(required),
        sole_output_messages=sole_messages,
    )


_REQUIRED_RESULT = ("result",)  # the required outputs of most ops, shared


def _read_of(upstream: StepTemplate | None, node: str, output: str) -> tuple[str, str]:
    """The (node, output) an input reads: the upstream step's key of its sole output when
    that is the output read (steps are compiled upstream first), else a new pair."""
    if upstream is not None:
        key = upstream.sole_output_key
        if key is not None and key[1] == output:
            return key
    return (node, output)


def compile_plan(job: JobDefinition) -> ExecutionPlan:
    """Compile `job` into an ExecutionPlan. Raises DefinitionError for shapes it cannot run."""
    nodes = job.nodes
    order = job.node_order  # validated (and ordered) when the job was made
    layer = job.asset_layer
    # Only the nodes that are mapped: most jobs have none (and `.get` is None for the rest).
    scopes: dict[str, Scope | None] = {}
    for name in order:
        scope = _scope_of(nodes[name], scopes, nodes)
        if scope is not None:
            scopes[name] = scope

    # Each node's upstream as the tuple its template keeps, equal ones shared; and the
    # downstream nodes of those that have some: the name of one, a list of several. (Lists
    # of every node's upstream and downstream took ~150 bytes a step at the compile's peak.)
    recent = _Recent()
    upstream: dict[str, tuple[str, ...]] = {}
    downstream: dict[str, str | list[str]] = {}
    for name in order:
        node = nodes[name]
        waits: dict[str, None] = {}
        for binding in node.inputs.values():
            if isinstance(binding, FromOutput | FromDynamicElement):
                src = binding.node
                waits[src] = None
            elif isinstance(binding, FromFanIn):
                for source in binding.sources:
                    waits[source.node] = None
            elif isinstance(binding, FromCollect):
                waits[_collect_scope(binding, scopes)[0]] = None
        for dep in node.after:
            waits[dep] = None
        ups = upstream[name] = recent.one_of(tuple(waits))
        for dep in ups:
            add_child(downstream, dep, name)

    steps: dict[str, StepTemplate] = {}
    same_facts: dict[tuple[Any, ...], StepFacts] = {}
    for name in order:
        node = nodes[name]
        op = node.op
        inputs: list[StepInput] = []
        for input_name, spec in op.ins.items():
            if input_name in op.signature.nothing_inputs:
                continue  # orders the step (see `upstream`), carries no value
            bound: Binding | None = node.inputs.get(input_name)
            manager = spec.input_manager_key or "io_manager"
            if isinstance(bound, FromOutput):
                kind = FROM_OUTPUT
                # The upstream step's key of its sole output, when that is what it reads
                # (steps are compiled upstream first).
                read = _read_of(steps.get(bound.node), bound.node, bound.output)
                fan_in: tuple[tuple[str, str], ...] = ()
            elif isinstance(bound, FromFanIn):
                kind = FROM_FAN_IN
                # Each upstream step's key of its sole output where that is what is read,
                # as for FromOutput: a fan-in of N outputs makes no N new pairs.
                read = NO_SOURCE
                fan_in = tuple(_read_of(steps.get(s.node), s.node, s.output) for s in bound.sources)
            elif isinstance(bound, FromDynamicElement):
                kind = FROM_ELEMENT
                read, fan_in = (bound.node, bound.output), ()
            elif isinstance(bound, FromCollect):
                kind = FROM_COLLECT
                read, fan_in = (bound.node, bound.output), ()
            elif layer is not None and (name, input_name) in layer.source_inputs:
                source_key = layer.source_inputs[(name, input_name)]
                if not spec.input_manager_key and layer.asset_graph is not None:
                    # Read through the IO manager that stores the asset, as Dagster does.
                    manager = layer.asset_graph.io_manager_key_of(source_key)
                inputs.append(
                    StepInput(input_name, FROM_ASSET, asset_key=source_key, manager_key=manager)
                )
                continue
            elif spec.input_manager_key:
                inputs.append(StepInput(input_name, FROM_MANAGER, manager_key=manager))
                continue
            elif spec.has_default:
                inputs.append(StepInput(input_name, FROM_DEFAULT, default=spec.default_value))
                continue
            else:
                inputs.append(StepInput(input_name, FROM_CONFIG))
                continue
            if not spec.input_manager_key:
                # Dagster's rule: an input loads through the IO manager that stored it.
                first_node, first_output = read if read is not NO_SOURCE else fan_in[0]
                manager = nodes[first_node].op.outs[first_output].io_manager_key
            inputs.append(StepInput(input_name, kind, read, fan_in, manager_key=manager))
        asset_keys = _NO_ASSET_KEYS
        if layer is not None:
            for out_name in op.outs:
                key = layer.asset_keys_by_output.get((name, out_name))
                if key is not None:
                    if asset_keys is _NO_ASSET_KEYS:
                        asset_keys = {}
                    asset_keys[out_name] = key
        step_inputs = recent.one_of(tuple(inputs))
        scope = scopes.get(name)
        plain = all(spec.kind == FROM_OUTPUT for spec in step_inputs)
        # Shared by the steps of one op alike in all else (see StepFacts).
        facts_key = (id(op), id(node.retry_policy), node.hooks, scope, id(asset_keys), plain)
        facts = same_facts.get(facts_key)
        if facts is None:
            facts = same_facts[facts_key] = _facts(node, job, scope, asset_keys, plain)
        # Let go of each list here: the next templates reuse its memory.
        waiting = downstream.pop(name, None)
        below = (waiting,) if isinstance(waiting, str) else waiting
        steps[name] = StepTemplate(
            node=node,
            inputs=step_inputs,
            # (again: an equal downstream tuple made since, a chain's, is kept instead)
            upstream=recent.one_of(upstream.pop(name)),
            downstream=recent.one_of(tuple(d for d in below if d not in scopes)) if below else (),
            facts=facts,
            sole_output_key=(name, facts.sole_output) if facts.sole_output is not None else None,
        )

    dynamic: dict[Scope, tuple[list[str], list[tuple[str, str]]]] = {}
    for name in order:
        scope = scopes.get(name)
        if scope is not None:
            dynamic.setdefault(scope, ([], []))[0].append(name)
        for binding in nodes[name].inputs.values():
            if isinstance(binding, FromCollect):
                collect_scope = _collect_scope(binding, scopes)
                dynamic.setdefault(collect_scope, ([], []))[1].append((name, binding.node))
    for (source_node, _), (templates, _collectors) in dynamic.items():
        for template in templates:
            for dep in steps[template].upstream:
                # A static node (`dynamic_values().map(lambda v: add(v, one()))`) is waited
                # for by every mapped step (see the executor's `expand`); a node mapped
                # from another DynamicOut has no one step to wait for.
                if dep in scopes and scopes[dep] != scopes[template]:
                    raise DefinitionError(
                        f"mapped node {template!r} depends on {dep!r}, mapped from another "
                        f"DynamicOut than {source_node!r}; collect {dep!r} first",
                        name=template,
                    )

    # (the job's own list of its nodes, when none is mapped: 8 bytes a step less)
    static_keys = tuple(name for name in order if name not in scopes) if scopes else order
    return ExecutionPlan(
        job_name=job.name,
        steps=steps,
        static_keys=static_keys,
        scopes={scope: DynamicScope(tuple(t), tuple(c)) for scope, (t, c) in dynamic.items()},
        roots=tuple(name for name in static_keys if not steps[name].upstream),
    )


def select_nodes(job: JobDefinition, selection: list[str]) -> set[str]:
    """Resolve an op selection (`name`, `*name`, `name*`, `+name`, `name+`) to node names."""
    from dagloom.definitions.node import upstream_nodes

    nodes = job.nodes
    ups = {name: set(upstream_nodes(node)) for name, node in nodes.items()}
    downs: dict[str, set[str]] = {name: set() for name in nodes}
    for name, deps in ups.items():
        for dep in deps:
            downs[dep].add(name)

    def walk(start: str, edges: dict[str, set[str]], depth: int | None) -> set[str]:
        seen = {start}
        frontier = {start}
        level = 0
        while frontier and (depth is None or level < depth):
            frontier = {n for f in frontier for n in edges[f]} - seen
            seen |= frontier
            level += 1
        return seen

    chosen: set[str] = set()
    for clause in selection:
        text = clause.strip()
        up_depth: int | None = 0
        down_depth: int | None = 0
        if text.startswith("*"):
            up_depth, text = None, text[1:]
        else:
            plus = len(text) - len(text.lstrip("+"))
            up_depth, text = plus, text[plus:]
        if text.endswith("*"):
            down_depth, text = None, text[:-1]
        else:
            plus = len(text) - len(text.rstrip("+"))
            down_depth, text = plus, text[: len(text) - plus]
        if text not in nodes:
            from dagloom.errors import DagloomInvalidSelectionError

            raise DagloomInvalidSelectionError(
                f"op selection {clause!r}: job {job.name!r} has no op {text!r}; ops are "
                f"{sorted(nodes)}",
                name=job.name,
            )
        chosen |= walk(text, ups, up_depth) | walk(text, downs, down_depth)
    return chosen
