"""One step attempt: load its inputs, call its op inside the user-code boundary, store its
outputs, and record each of these as events. `StepRunner` is what every executor drives."""

from __future__ import annotations

import dataclasses
import inspect
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from time import perf_counter, time
from types import GeneratorType
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.lowlevel
import anyio.to_thread

from dagloom._counters import PENDING_LIMIT, PROCESS
from dagloom.definitions.asset_checks import AssetCheckResult, AssetCheckSeverity
from dagloom.definitions.dagster_type import TypeCheckContext, check_value
from dagloom.definitions.dagster_type_loader import DagsterTypeLoaderContext, input_loader
from dagloom.definitions.data_version import materialization_tags
from dagloom.definitions.hook import HookContext
from dagloom.definitions.io_manager import (
    InMemoryIOManager,
    InputContext,
    IOManager,
    OutputContext,
)
from dagloom.definitions.metadata import to_metadata_messages
from dagloom.definitions.op import OpDefinition
from dagloom.definitions.outputs import (
    DATA_VERSION_TAG,
    DEFAULT_OUTPUT,
    NO_VALUE,
    AssetMaterialization,
    AssetObservation,
    DynamicOutput,
    ExpectationResult,
    MaterializeResult,
    Output,
)
from dagloom.definitions.resources import Resources
from dagloom.errors import DagloomError, Failure, RetryRequested
from dagloom.execution.boundary import describe_user_error, is_cancellation, user_code
from dagloom.execution.context import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    DagloomLogManager,
    OpExecutionContext,
)
from dagloom.execution.events import (
    check_evaluation_row,
    error_info,
    expectation_row,
    match_check_spec,
    materialization_row,
    observation_row,
)
from dagloom.execution.partitions import RunPartitions
from dagloom.execution.plan import (
    FROM_ASSET,
    FROM_COLLECT,
    FROM_CONFIG,
    FROM_DEFAULT,
    FROM_ELEMENT,
    FROM_FAN_IN,
    FROM_MANAGER,
    FROM_OUTPUT,
    ExecutionPlan,
    StepInput,
    StepTemplate,
    split_step_key,
)
from dagloom.execution.step_log import CURRENT_STEP
from dagloom.messages import (
    EventType,
    LoadedInputData,
    LogLevel,
    StepFailureData,
    StepRetryData,
    StepSkippedData,
)
from dagloom.messages.rows import (
    HANDLED_OUTPUT_DATA,
    LOADED_INPUT_DATA,
    NO_PAYLOAD,
    STEP_FAILURE_DATA,
    STEP_OUTPUT_DATA,
    STEP_RETRY_DATA,
    STEP_SKIPPED_DATA,
    EventRow,
    row,
)

if TYPE_CHECKING:
    from dagloom.compute_logs.base import ComputeLogManager

SUCCESS = 0
FAILED = 1
SKIPPED = 2

_STEP_START = EventType.STEP_START
_STEP_RESTARTED = EventType.STEP_RESTARTED
_STEP_OUTPUT = EventType.STEP_OUTPUT
_STEP_SUCCESS = EventType.STEP_SUCCESS
_STEP_FAILURE = EventType.STEP_FAILURE
_STEP_SKIPPED = EventType.STEP_SKIPPED
_STEP_UP_FOR_RETRY = EventType.STEP_UP_FOR_RETRY
_STEP_DURATIONS = PROCESS.step_durations
_STEP_DURATIONS_PENDING = _STEP_DURATIONS.pending
_HANDLED_OUTPUT = EventType.HANDLED_OUTPUT
_LOADED_INPUT = EventType.LOADED_INPUT
_HOOK_COMPLETED = EventType.HOOK_COMPLETED
_HOOK_ERRORED = EventType.HOOK_ERRORED
_HOOK_SKIPPED = EventType.HOOK_SKIPPED
_DEBUG = LogLevel.DEBUG
_set_current_step = CURRENT_STEP.set
_INFO = LogLevel.INFO
_ERROR = LogLevel.ERROR
# The events of every step are written out as row tuples (see `dagloom.messages.rows` for
# their layout) rather than built by `row`: a call is a sixth of a row's cost.


class StepScope(Protocol):
    """What output handling needs of a step: its key and the metadata its op added."""

    @property
    def step_key(self) -> str: ...

    def output_metadata_for(self, output_name: str) -> dict[str, Any] | None: ...


class _Skip(Exception):
    """A step cannot run because an upstream output it needs was not produced."""

    def __init__(self, reason: str, upstream: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.upstream = upstream


@dataclass(slots=True)
class RunFacts:
    """What every step of one run shares."""

    run_id: str
    job_name: str
    plan: ExecutionPlan
    emit: Callable[[EventRow], None]
    resources: Resources
    io_managers: Mapping[str, IOManager]
    op_configs: Mapping[str, Any]
    input_values: Mapping[tuple[str, str], Any]
    run_config: Mapping[str, Any] = field(default_factory=dict)
    run_tags: Mapping[str, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    reused: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Steps not executed in this run (a re-execution): step key -> {output name: id of the
    run that stored it}; their outputs are loaded from those runs."""
    output_configs: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    """(node, output) -> the config its IO manager's `output_config_schema` took."""
    input_configs: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    """(node, input) -> the config its loader's `input_config_schema` took."""
    partitions: RunPartitions | None = None
    """The partitions the run targets (from its tags), or None for an unpartitioned run."""
    check_specs: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    """Node name -> the AssetCheckSpecs whose AssetCheckResults the node reports."""
    compute_logs: ComputeLogManager | None = None
    """Where each attempt's stdout and stderr go; None: not captured."""
    instance: Any = None
    """The run's DagloomInstance (`context.instance`), or None for a run without storage."""
    flush_events: Callable[[], None] | None = None
    """Makes the run's events so far durable, blocking (before `context.instance` reads)."""
    asset_upstream: Mapping[Any, Any] = field(default_factory=dict)
    """Asset key -> the keys of the assets it depends on (for input data version tags)."""
    data_versions: dict[Any, str] = field(default_factory=dict)
    """Asset key -> its latest data version: read from storage before the run for upstream
    assets outside it, and set as the run materializes assets."""
    lazy_messages: bool = False
    """`emit` goes only to the `RowLog` kept for the run's result: the events whose message
    their row's other fields tell are emitted without it (see `standard_message`)."""


@dataclass(slots=True)
class Outcome:
    """How one step attempt ended."""

    status: int  # SUCCESS / FAILED; RETRY is FAILED with a delay
    retry_delay: float | None = None
    error: BaseException | None = None


_SUCCEEDED = Outcome(SUCCESS)
# Tuples, not `A | B`: a union object is built anew each time the expression runs.
_SEQUENCES = (list, tuple)
_WRAPPED = (Output, MaterializeResult, DynamicOutput)
_OUTPUT_LIKE = (Output, MaterializeResult)
# What an op may return that is not simply its only output's value.
_RETURN_SPECIAL = (AssetCheckResult, list, tuple, Output, MaterializeResult, DynamicOutput)
_NOT_PLAIN = (*_RETURN_SPECIAL, GeneratorType)  # ... nor a sync op's yielded items


class PlainOutput:
    """A plain output's value in `ExecutionState.outputs` where it could be taken for
    something else (None, an OutputContext, a PlainOutput)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"PlainOutput({self.value!r})"


def plain_value(stored: Any) -> Any:
    """The value of a plain output as `ExecutionState.outputs` holds it."""
    return stored.value if type(stored) is PlainOutput else stored


_MISSING = object()


class ExecutionState:
    """The run's progress: step statuses, produced outputs, and user errors by step.

    A plain output (a value for the in-memory IO manager, with no asset, mapping key,
    metadata, config or partitions: most outputs of a large op job) is kept here as its
    value, not stored through the manager with a context: a context and an entry in the
    manager took ~190 bytes a step of a run. `output` makes its context when asked."""

    __slots__ = ("blocking_failures", "dynamic_keys", "errors", "outputs", "plain", "status")

    def __init__(self) -> None:
        self.status: dict[str, int] = {}
        # node -> the blocking check that failed in its current attempt
        self.blocking_failures: dict[str, str] = {}
        # (step key, output) -> its OutputContext, or a plain output's value (`plain_value`)
        self.outputs: dict[tuple[str, str], Any] = {}
        # (step key, dynamic output) -> {mapping key: OutputContext}, in yield order
        self.dynamic_keys: dict[tuple[str, str], dict[str, OutputContext]] = {}
        self.errors: dict[str, BaseException] = {}
        # (run id, job name, resources) of the run's plain outputs
        self.plain: tuple[str, str, Any] | None = None

    @property
    def failed_steps(self) -> list[str]:
        return [key for key, value in self.status.items() if value == FAILED]

    def output(self, key: tuple[str, str]) -> OutputContext | None:
        """The context of the output (step key, output name) stored, or None."""
        found = self.outputs.get(key, _MISSING)
        if found is _MISSING:
            return None
        if isinstance(found, OutputContext):
            return found
        return self.plain_context(key)

    def plain_context(self, key: tuple[str, str]) -> OutputContext:
        """The context of the plain output under `key`, as the IO manager would have got it."""
        assert self.plain is not None, "a plain output is stored by a StepRunner"
        run_id, job_name, resources = self.plain
        return OutputContext(key[0], key[1], run_id, job_name=job_name, resources=resources)

    def record_output(self, output: OutputContext) -> None:
        """Note that `output` is stored (a dynamic output's elements, by mapping key)."""
        if output.mapping_key is None:
            self.outputs[(output.step_key, output.name)] = output
        else:
            by_key = self.dynamic_keys.setdefault((output.step_key, output.name), {})
            by_key[output.mapping_key] = output


class StepRunner:
    """Runs attempts of single steps: load inputs, call the op, store outputs, emit events.

    Everything user code raises inside an attempt (its op, IO managers, `SystemExit` and
    `KeyboardInterrupt` included) becomes an Outcome with a STEP_FAILURE (or retry) event
    carrying the original error, never an exception; cancellation propagates (see
    `dagloom.execution.boundary`).
    """

    __slots__ = ("facts", "state")

    def __init__(self, facts: RunFacts, state: ExecutionState) -> None:
        self.facts = facts
        self.state = state
        state.plain = (facts.run_id, facts.job_name, facts.resources)

    def reuse(self, step_key: str, outputs: Mapping[str, str]) -> None:
        """Record the outputs of a step this run does not execute, as stored by the runs
        `outputs` names (output name -> run id), for downstream steps to load."""
        facts = self.facts
        tmpl = facts.plan.steps[step_key]
        for output_name, run_id in outputs.items():
            out_def = tmpl.node.op.outs[output_name]
            context = OutputContext(
                step_key,
                output_name,
                run_id,
                asset_key=tmpl.facts.asset_keys.get(output_name),
                job_name=facts.job_name,
                definition_metadata=out_def.metadata,
                resources=facts.resources,
            )
            context.dagster_type = tmpl.node.op.output_type(output_name)
            self.state.record_output(context)

    # -- inputs ---------------------------------------------------------------------------

    def _source_key(self, node: str, mapping_key: str | None) -> str:
        if mapping_key is not None and self.facts.plan.steps[node].scope is not None:
            return f"{node}[{mapping_key}]"
        return node

    def _load_stored(
        self, step_key: str, input_name: str, key: tuple[str, str], stored: Any, manager: str
    ) -> Any:
        """`_load` of the output (step key, name) `key`, kept in the run's state as
        `stored`: a plain output read through the in-memory IO manager is its value."""
        if isinstance(stored, OutputContext):
            return self._load(step_key, input_name, stored, manager)
        facts = self.facts
        if type(facts.io_managers[manager]) is not InMemoryIOManager:
            return self._load(step_key, input_name, self.state.plain_context(key), manager)
        self._loaded_input(step_key, input_name, manager, key[0], key[1])
        return plain_value(stored)

    def _load(self, step_key: str, input_name: str, upstream: OutputContext, manager: str) -> Any:
        facts = self.facts
        io_manager = facts.io_managers[manager]
        if type(io_manager) is InMemoryIOManager and (
            facts.partitions is None or upstream.asset_key is None
        ):
            # It reads nothing of an InputContext but the upstream output.
            value = io_manager.value_of(upstream, input_name)
        else:
            context = InputContext(
                input_name,
                step_key,
                upstream,
                asset_key=upstream.asset_key,
                resources=facts.resources,
            )
            self._describe_input(context, step_key, input_name)
            self._set_input_config(context, step_key, input_name)
            if facts.partitions is not None and upstream.asset_key is not None:
                self._set_input_partitions(context, step_key, upstream.asset_key)
            value = io_manager.load_input(context)
        self._loaded_input(step_key, input_name, manager, upstream.step_key, upstream.name)
        return value

    def _loaded_input(
        self, step_key: str, input_name: str, manager: str, from_step: str, from_output: str
    ) -> None:
        """Emit LOADED_INPUT: `input_name` of `step_key` was read through `manager` from
        output `from_output` of step `from_step`."""
        facts = self.facts
        facts.emit(
            (
                _LOADED_INPUT,
                step_key,
                time(),
                None
                if facts.lazy_messages
                else f'Loaded input "{input_name}" using input manager "{manager}", from '
                f'output "{from_output}" of step "{from_step}"',
                _DEBUG,
                facts.job_name,
                LOADED_INPUT_DATA,
                (input_name, manager, from_step, from_output),
            )
        )

    def _read(
        self,
        step_key: str,
        node_name: str,
        spec: StepInput,
        source: tuple[str, str],
        stored: Any,
    ) -> Any:
        """Load the plain input `spec` of unmapped step `step_key` (reading `source`,
        kept as `stored`) through its IO manager's `load_input`."""
        facts = self.facts
        upstream = stored if isinstance(stored, OutputContext) else self.state.plain_context(source)
        reading = InputContext(
            spec.name,
            step_key,
            upstream,
            asset_key=upstream.asset_key,
            resources=facts.resources,
        )
        self._describe_input(reading, step_key, spec.name)
        if facts.input_configs:
            reading.config = facts.input_configs.get((node_name, spec.name))
        if facts.partitions is not None and upstream.asset_key is not None:
            self._set_input_partitions(reading, step_key, upstream.asset_key)
        return facts.io_managers[spec.manager_key].load_input(reading)

    def missing_outputs(self, tmpl: StepTemplate, mapping_key: str | None) -> tuple[str, ...]:
        """Upstream steps that finished without the output this step reads (an optional
        output not yielded); empty when every input can be loaded."""
        outputs = self.state.outputs
        missing: list[str] = []
        for spec in tmpl.inputs:
            if spec.kind == FROM_OUTPUT:
                node, output = spec.source
                if mapping_key is not None:
                    node = self._source_key(node, mapping_key)
                if (node, output) not in outputs:
                    missing.append(node)
            elif spec.kind == FROM_FAN_IN and not any(s in outputs for s in spec.sources):
                missing.extend(node for node, _ in spec.sources)
        return tuple(missing)

    def load_inputs(
        self, tmpl: StepTemplate, step_key: str, mapping_key: str | None
    ) -> dict[str, Any]:
        """The values of a step's inputs, loaded through their IO managers."""
        state = self.state
        values: dict[str, Any] = {}
        for spec in tmpl.inputs:
            kind = spec.kind
            if kind == FROM_OUTPUT:
                node, output = spec.source
                source = node if mapping_key is None else self._source_key(node, mapping_key)
                # `prepare` checked with `missing_outputs` that this output exists.
                key = (source, output)
                values[spec.name] = self._load_stored(
                    step_key, spec.name, key, state.outputs[key], spec.manager_key
                )
            elif kind == FROM_ELEMENT:
                node, output = spec.source
                upstream = state.dynamic_keys[(node, output)][mapping_key or ""]
                values[spec.name] = self._load(step_key, spec.name, upstream, spec.manager_key)
            elif kind == FROM_FAN_IN:
                items = []
                outputs = state.outputs
                for source_key in spec.sources:
                    produced = outputs.get(source_key)
                    if produced is not None:  # a fan-in skips outputs that were not yielded
                        items.append(
                            self._load_stored(
                                step_key, spec.name, source_key, produced, spec.manager_key
                            )
                        )
                values[spec.name] = items
            elif kind == FROM_COLLECT:
                values[spec.name] = self._collect(
                    step_key, spec.name, spec.source, spec.manager_key
                )
            elif kind == FROM_ASSET:
                assert spec.asset_key is not None
                context = InputContext(
                    spec.name,
                    step_key,
                    None,
                    asset_key=spec.asset_key,
                    resources=self.facts.resources,
                )
                self._describe_input(context, step_key, spec.name)
                self._set_input_config(context, step_key, spec.name)
                if self.facts.partitions is not None:
                    self._set_input_partitions(context, step_key, spec.asset_key)
                values[spec.name] = self.facts.io_managers[spec.manager_key].load_input(context)
                self._emit_loaded_asset(step_key, spec.name, spec.manager_key, spec.asset_key)
            elif kind == FROM_DEFAULT:
                values[spec.name] = spec.default
            elif kind == FROM_CONFIG:
                value = self.facts.input_values[(tmpl.key, spec.name)]
                loader = input_loader(tmpl.node.op.ins[spec.name].dagster_type)
                if loader is not None:
                    value = loader.construct_from_config_value(
                        self._loader_context(step_key, tmpl), value
                    )
                values[spec.name] = value
            elif kind == FROM_MANAGER:
                context = InputContext(
                    spec.name,
                    step_key,
                    None,
                    resources=self.facts.resources,
                )
                self._describe_input(context, step_key, spec.name)
                self._set_input_config(context, step_key, spec.name)
                values[spec.name] = self.facts.io_managers[spec.manager_key].load_input(context)
        return values

    def _describe_input(self, context: InputContext, step_key: str, input_name: str) -> None:
        """Give a loader's context what the input was declared with: its metadata
        (`In(metadata=...)`, `AssetIn(metadata=...)`) and its DagsterType."""
        tmpl = self.facts.plan.steps.get(split_step_key(step_key)[0])
        if tmpl is None:
            return
        op = tmpl.node.op
        spec = op.ins.get(input_name)
        if spec is not None and spec.metadata:
            context.definition_metadata = spec.metadata
        context.dagster_type = op.input_type(input_name)

    def _set_input_config(self, context: InputContext, step_key: str, input_name: str) -> None:
        """Give the loader's context the config its `input_config_schema` took, if any."""
        configs = self.facts.input_configs
        if configs:
            context.config = configs.get((split_step_key(step_key)[0], input_name))

    def _set_input_partitions(self, context: InputContext, step_key: str, upstream: Any) -> None:
        """Give an input context the upstream partitions its asset's mapping reads."""
        parts = self.facts.partitions
        assert parts is not None
        node_name, _ = split_step_key(step_key)
        written = self.facts.plan.steps[node_name].asset_keys
        downstream = next(iter(written.values()), None)
        keys = parts.keys_for_input(downstream, upstream)
        if keys is not None:
            context.set_partitions(keys, parts.partitions_def(upstream), parts.run_partition_key)

    def _emit_loaded_asset(self, step_key: str, input_name: str, manager: str, key: Any) -> None:
        facts = self.facts
        facts.emit(
            row(
                _LOADED_INPUT,
                step_key,
                f'Loaded input "{input_name}" using input manager "{manager}" from '
                f'asset "{key.to_user_string()}"',
                _DEBUG,
                facts.job_name,
                LOADED_INPUT_DATA,
                LoadedInputData(input_name=input_name, manager_key=manager),
            )
        )

    def _collect(
        self, step_key: str, input_name: str, source: tuple[str, str], manager: str
    ) -> list[Any]:
        node, output = source
        plan = self.facts.plan
        state = self.state
        scope = plan.steps[node].scope
        items: list[Any] = []
        if scope is None:  # collecting the dynamic output itself
            for element in state.dynamic_keys.get((node, output), {}).values():
                items.append(self._load(step_key, input_name, element, manager))
            return items
        for mapping_key in state.dynamic_keys.get(scope, {}):
            key = (f"{node}[{mapping_key}]", output)
            instance = state.outputs.get(key)
            if instance is not None:
                items.append(self._load_stored(step_key, input_name, key, instance, manager))
        return items

    # -- calling --------------------------------------------------------------------------

    def prepare(
        self, step_key: str, attempt: int
    ) -> tuple[StepTemplate, StepScope | None, Callable[..., Any], dict[str, Any]]:
        """Emit the start event, build the context and load inputs; return the template, the
        op's context (None for an op that takes none), and the function and keyword
        arguments that call the op. Raises what input loading raises (the caller turns it
        into an outcome).

        An op that takes no context gets none: building one costs ~1 µs, a tenth of a step.
        """
        facts = self.facts
        steps = facts.plan.steps
        tmpl = steps.get(step_key)
        if tmpl is not None and tmpl.facts.scope is None:  # an unmapped step: its node's name
            node_name, mapping_key = step_key, None
        else:
            node_name, mapping_key = split_step_key(step_key)
            tmpl = steps[node_name]
        op = tmpl.node.op
        state = self.state
        outputs = state.outputs
        reads = tmpl.inputs if mapping_key is None and tmpl.facts.plain else None
        plain = reads is not None
        if reads:
            for spec in reads:
                if spec.source not in outputs:
                    plain = False  # the general check below names what is missing
                    break
        if not plain:
            absent = self.missing_outputs(tmpl, mapping_key)
            if absent:
                names = ", ".join(f'"{a}"' for a in absent)
                raise _Skip(f"outputs it reads were not produced by {names}", absent)
        emit = facts.emit
        job_name = facts.job_name
        # The step get_dagster_logger records to, from here in this task (and the threads
        # and tasks it starts) until the next step is prepared in it.
        _set_current_step((step_key, job_name, emit))
        if attempt == 0:
            emit(
                (
                    _STEP_START,
                    step_key,
                    time(),
                    None if facts.lazy_messages else f'Started execution of step "{step_key}".',
                    _DEBUG,
                    job_name,
                    NO_PAYLOAD,
                    None,
                )
            )
        else:
            emit(
                row(
                    _STEP_RESTARTED,
                    step_key,
                    f'Started re-execution (attempt # {attempt + 1}) of step "{step_key}".',
                    _DEBUG,
                    job_name,
                )
            )
        sig = op.signature
        if plain:
            # Every input is an upstream output of an unmapped step, each there (checked
            # above): the loop of `load_inputs` and `_load` inlined.
            kwargs: dict[str, Any] = {}
            io_managers = facts.io_managers
            parts = facts.partitions
            lazy = facts.lazy_messages
            for spec in reads or ():
                input_name = spec.name
                source = spec.source
                manager = spec.manager_key
                stored = outputs[source]
                io_manager = io_managers[manager]
                if type(io_manager) is not InMemoryIOManager:
                    kwargs[input_name] = self._read(step_key, node_name, spec, source, stored)
                elif not isinstance(stored, OutputContext):  # a plain output: its value
                    kwargs[input_name] = plain_value(stored)
                elif parts is None or stored.asset_key is None:
                    # It reads nothing of an InputContext but the upstream output.
                    kwargs[input_name] = io_manager.value_of(stored, input_name)
                else:
                    kwargs[input_name] = self._read(step_key, node_name, spec, source, stored)
                emit(
                    (
                        _LOADED_INPUT,
                        step_key,
                        time(),
                        None
                        if lazy
                        else f'Loaded input "{input_name}" using input manager "{manager}", '
                        f'from output "{source[1]}" of step "{source[0]}"',
                        _DEBUG,
                        job_name,
                        LOADED_INPUT_DATA,
                        (input_name, manager, source[0], source[1]),
                    )
                )
        else:
            kwargs = self.load_inputs(tmpl, step_key, mapping_key)
        if op.input_type_checks:
            for input_name, dagster_type in op.input_type_checks:
                if input_name in kwargs:
                    check_value(
                        dagster_type,
                        self._type_check_context(step_key),
                        kwargs[input_name],
                        where=f'input "{input_name}"',
                        step_key=step_key,
                    )
        op_config = facts.op_configs.get(node_name)
        if sig.config_param is not None:
            kwargs[sig.config_param] = op_config
        for name in sig.resource_params:
            kwargs[name] = facts.resources.get(name)
        if not sig.takes_context:
            return tmpl, None, op.compute_fn, kwargs
        checks = facts.check_specs.get(tmpl.key, ())
        context_type: type[OpExecutionContext] = OpExecutionContext
        if tmpl.facts.asset_keys:
            context_type = AssetExecutionContext
        elif checks:  # an @asset_check / @multi_asset_check op
            context_type = AssetCheckExecutionContext
        context = context_type(
            run_id=facts.run_id,
            job_name=job_name,
            step_key=step_key,
            op_def=op,
            op_config=op_config,
            resources=facts.resources,
            emit=emit,
            retry_number=attempt,
            mapping_key=mapping_key,
            asset_keys=tmpl.facts.asset_keys or None,
            run_config=facts.run_config,
            run_tags=facts.run_tags,
            partitions=facts.partitions,
            instance=facts.instance,
            flush_events=facts.flush_events,
            check_specs=checks,
        )
        return tmpl, context, partial(op.compute_fn, context), kwargs

    # -- outputs --------------------------------------------------------------------------

    def store_output(
        self,
        tmpl: StepTemplate,
        step_key: str,
        scope: StepScope | None,
        value: Any,
        output_name: str,
        metadata: Mapping[str, Any] | None,
        mapping_key: str | None = None,
        data_version: Any = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Store one output of step `step_key` through its IO manager, with its events;
        `scope` is the op's context (None for an op that takes none: it added no
        metadata)."""
        facts = self.facts
        op = tmpl.node.op
        out_def = op.outs.get(output_name)
        if out_def is None:
            raise DagloomError(
                f'op "{op.name}" returned output "{output_name}", which it does not '
                f"declare; its outputs are {sorted(op.outs)}"
            )
        mapped = mapping_key is not None
        # The sole output is not dynamic (see `StepTemplate.sole_output`): no check needed.
        if (mapped or output_name != tmpl.facts.sole_output) and out_def.is_dynamic != mapped:
            kind = "a DynamicOutput" if out_def.is_dynamic else "an Output"
            raise DagloomError(f'output "{output_name}" of "{step_key}" must be given as {kind}')
        checks = op.output_type_checks
        if checks and output_name in checks and value is not NO_VALUE:
            check_value(
                checks[output_name],
                self._type_check_context(step_key),
                value,
                where=f'output "{output_name}"',
                step_key=step_key,
            )
        asset_key = tmpl.facts.asset_keys.get(output_name) if tmpl.facts.asset_keys else None
        if scope is not None:
            added = scope.output_metadata_for(output_name)
            if added:
                metadata = {**added, **(metadata or {})}
        manager = out_def.io_manager_key
        yielded: str | None
        handled: str | None
        if facts.lazy_messages:
            yielded = handled = None
        elif output_name == tmpl.facts.sole_output:
            yielded, handled = tmpl.facts.sole_output_messages
        else:
            yielded = f'Yielded output "{output_name}".'
            handled = f'Handled output "{output_name}" using IO manager "{manager}"'
        emit = facts.emit
        job_name = facts.job_name
        emit(
            (
                _STEP_OUTPUT,
                step_key,
                time(),
                yielded,
                _DEBUG,
                job_name,
                STEP_OUTPUT_DATA,
                (output_name, mapping_key or "", to_metadata_messages(metadata))
                if metadata
                else (output_name, mapping_key or ""),
            )
        )
        io_manager = facts.io_managers.get(manager)
        partition_keys: list[str] | None = None
        held: Any
        if (
            mapping_key is None
            and asset_key is None
            and type(io_manager) is InMemoryIOManager
            and not out_def.metadata
            and not facts.output_configs
            and facts.partitions is None
            and value is not NO_VALUE
        ):
            # A plain output: kept as its value in the run's state (see ExecutionState).
            boxed = value is None or isinstance(value, OutputContext | PlainOutput)
            held = PlainOutput(value) if boxed else value
        else:
            if mapping_key is None and asset_key is None and not out_def.metadata:
                # The same context, given only what differs from the defaults: each keyword
                # argument passed costs ~0.15 µs.
                held = out_ctx = OutputContext(
                    step_key,
                    output_name,
                    facts.run_id,
                    job_name=job_name,
                    resources=facts.resources,
                )
            else:
                held = out_ctx = OutputContext(
                    step_key,
                    output_name,
                    facts.run_id,
                    mapping_key=mapping_key,
                    asset_key=asset_key,
                    job_name=job_name,
                    definition_metadata=out_def.metadata,
                    resources=facts.resources,
                )
            out_ctx.dagster_type = tmpl.node.op.output_type(output_name)
            if facts.output_configs:
                out_ctx.config = facts.output_configs.get((tmpl.key, output_name))
            parts = facts.partitions
            if parts is not None:
                run_key = parts.run_partition_key
                if asset_key is not None:
                    partition_keys = parts.keys_for_asset(asset_key)
                    out_ctx.set_partitions(partition_keys, parts.partitions_def(asset_key), run_key)
                else:
                    out_ctx.set_partitions(None, None, run_key)
            if value is not NO_VALUE:
                facts.io_managers[manager].handle_output(out_ctx, value)
        if value is not NO_VALUE:
            emit(
                (
                    _HANDLED_OUTPUT,
                    step_key,
                    time(),
                    handled,
                    _DEBUG,
                    job_name,
                    HANDLED_OUTPUT_DATA,
                    (output_name, manager, mapping_key or ""),
                )
            )
        if mapping_key is None:  # `record_output`, inlined
            if output_name == tmpl.facts.sole_output and tmpl.facts.scope is None:
                # An unmapped step (its key is its node's name): the plan's tuple
                self.state.outputs[tmpl.sole_output_key or (step_key, output_name)] = held
            else:
                self.state.outputs[(step_key, output_name)] = held
        else:
            self.state.record_output(out_ctx)
        if asset_key is not None:
            combined: dict[str, Any] = {}
            if out_ctx.user_metadata:
                combined.update(out_ctx.user_metadata)
            if metadata:
                combined.update(metadata)
            version_tags = self._version_tags(tmpl, out_def, asset_key, data_version, tags)
            for partition in partition_keys or (None,):
                self.emit_materialization(
                    step_key, asset_key, combined, None, partition, version_tags
                )

    def _version_tags(
        self,
        tmpl: StepTemplate,
        out_def: Any,
        asset_key: Any,
        data_version: Any,
        tags: Mapping[str, str] | None,
    ) -> dict[str, str]:
        """The data version tags of a materialization of `asset_key`; notes its new data
        version for assets downstream in this run."""
        facts = self.facts
        known = facts.data_versions
        inputs = {
            up.to_user_string(): known[up]
            for up in facts.asset_upstream.get(asset_key, ())
            if up in known
        }
        given = getattr(data_version, "value", data_version)
        version_tags = materialization_tags(
            code_version=out_def.code_version or tmpl.node.op.code_version or facts.run_id,
            input_versions=inputs,
            data_version=str(given) if given is not None else None,
            user_tags=tags,
        )
        known[asset_key] = version_tags[DATA_VERSION_TAG]
        return version_tags

    def emit_materialization(
        self,
        step_key: str,
        asset_key: Any,
        metadata: Mapping[str, Any],
        description: str | None,
        partition: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Record one ASSET_MATERIALIZATION (of one partition, when given)."""
        facts = self.facts
        facts.emit(
            materialization_row(
                step_key, facts.job_name, asset_key, metadata, description, partition, tags
            )
        )

    def _loader_context(self, step_key: str, tmpl: Any) -> DagsterTypeLoaderContext:
        facts = self.facts
        log = DagloomLogManager(facts.run_id, facts.job_name, step_key, facts.emit)
        return DagsterTypeLoaderContext(
            facts.run_id, facts.resources, log, tmpl.node.op, facts.op_configs.get(tmpl.key)
        )

    def _type_check_context(self, step_key: str) -> TypeCheckContext:
        facts = self.facts
        log = DagloomLogManager(facts.run_id, facts.job_name, step_key, facts.emit)
        return TypeCheckContext(facts.run_id, facts.resources, log)

    def handle_item(
        self,
        tmpl: StepTemplate,
        step_key: str,
        scope: StepScope | None,
        item: Any,
        seen: set[str],
    ) -> None:
        """One yielded (or returned) object of an op (`scope`: its context, if it takes
        one)."""
        if isinstance(item, Output | DynamicOutput):
            seen.add(item.output_name)
            mapping_key = item.mapping_key if isinstance(item, DynamicOutput) else None
            if isinstance(item, Output):
                self.store_output(
                    tmpl,
                    step_key,
                    scope,
                    item.value,
                    item.output_name,
                    item.metadata,
                    None,
                    item.data_version,
                    item.tags,
                )
            else:
                self.store_output(
                    tmpl, step_key, scope, item.value, item.output_name, item.metadata, mapping_key
                )
        elif isinstance(item, MaterializeResult):
            output_name = self._output_for_asset(tmpl, item)
            seen.add(output_name)
            self.store_output(
                tmpl,
                step_key,
                scope,
                item.value,
                output_name,
                item.metadata,
                None,
                item.data_version,
                item.tags,
            )
            own_key = tmpl.facts.asset_keys.get(output_name)
            for check in item.check_results:
                if check.asset_key is None and own_key is not None:
                    check = dataclasses.replace(check, asset_key=own_key)  # this asset's check
                self.record_check(tmpl, step_key, check)
        elif isinstance(item, AssetMaterialization):
            if item.data_version is not None:
                self.facts.data_versions[item.asset_key] = item.data_version
            self.emit_materialization(
                step_key,
                item.asset_key,
                item.metadata or {},
                item.description,
                item.partition,
                item.tags,
            )
        elif isinstance(item, AssetObservation):
            self.facts.emit(observation_row(step_key, self.facts.job_name, item))
        elif isinstance(item, ExpectationResult):
            self.facts.emit(expectation_row(step_key, self.facts.job_name, item))
        elif isinstance(item, AssetCheckResult):
            self.record_check(tmpl, step_key, item)
        else:
            outs = tmpl.node.op.outs
            if len(outs) == 1:
                name = next(iter(outs))
                seen.add(name)
                self.store_output(tmpl, step_key, scope, item, name, None)
            else:
                raise DagloomError(
                    f'op "{tmpl.node.op.name}" yielded {type(item).__name__}; an op with several '
                    "outputs must yield Output(value, output_name)"
                )

    def record_check(self, tmpl: StepTemplate, step_key: str, result: AssetCheckResult) -> None:
        """Record a check's result; a failed blocking check of severity ERROR fails the step
        once its function has returned (`check_required`)."""
        facts = self.facts
        spec = match_check_spec(facts.check_specs.get(tmpl.key, ()), result, tmpl.key)
        parts = facts.partitions
        partition = parts.run_partition_key if parts is not None else None
        facts.emit(check_evaluation_row(step_key, facts.job_name, spec, result, partition))
        if not result.passed and spec.blocking and result.severity == AssetCheckSeverity.ERROR:
            self.state.blocking_failures[tmpl.key] = spec.key.to_user_string()

    def _output_for_asset(self, tmpl: StepTemplate, result: MaterializeResult) -> str:
        if result.asset_key is None:
            if len(tmpl.node.op.outs) != 1:
                raise DagloomError(
                    f'multi-asset "{tmpl.node.op.name}" must name asset_key in each '
                    "MaterializeResult"
                )
            return next(iter(tmpl.node.op.outs))
        for output_name, key in tmpl.facts.asset_keys.items():
            if key == result.asset_key:
                return output_name
        raise DagloomError(
            f'"{tmpl.node.op.name}" returned a MaterializeResult for {result.asset_key}, which '
            "it does not define"
        )

    def handle_return(
        self, tmpl: StepTemplate, step_key: str, scope: StepScope | None, value: Any
    ) -> None:
        """What an op returned, spread over its outputs; checks required outputs."""
        sole = tmpl.facts.sole_output
        if sole is not None and value is not None and not isinstance(value, _RETURN_SPECIAL):
            # The common case: a plain value for the op's only output. It was required or
            # not, it is there now; only a failed blocking check can fail the step.
            self.store_output(tmpl, step_key, scope, value, sole, None)
            if self.state.blocking_failures:
                self.check_required(tmpl, {sole})
            return
        op = tmpl.node.op
        seen: set[str] = set()
        outs = op.outs
        if isinstance(value, AssetCheckResult) or (
            isinstance(value, _SEQUENCES) and value and isinstance(value[0], AssetCheckResult)
        ):
            for item in value if isinstance(value, _SEQUENCES) else (value,):
                self.handle_item(tmpl, step_key, scope, item, seen)
            self.check_required(tmpl, seen)
            return
        if len(outs) == 1:
            out_name, out_def = next(iter(outs.items()))
            if out_def.is_dynamic and isinstance(value, _SEQUENCES):
                for item in value:
                    self.handle_item(tmpl, step_key, scope, item, seen)
                seen.add(out_name)  # an empty list is a valid dynamic result
            elif isinstance(value, _WRAPPED):
                self.handle_item(tmpl, step_key, scope, value, seen)
            elif value is None and not out_def.is_required:
                pass
            elif value is None and op.signature.returns_none and tmpl.facts.asset_keys:
                # As Dagster's Nothing-typed output: the asset is materialized, its IO
                # manager not called (a range run of `-> None` has no value per partition).
                seen.add(out_name)
                self.store_output(tmpl, step_key, scope, NO_VALUE, out_name, None)
            else:
                seen.add(out_name)
                self.store_output(tmpl, step_key, scope, value, out_name, None)
        elif value is None:
            pass
        elif isinstance(value, tuple) and len(value) == len(outs):
            for (out_name, _), item in zip(outs.items(), value, strict=True):
                if isinstance(item, Output) and item.output_name == DEFAULT_OUTPUT:
                    # An unnamed Output in a returned tuple fills the output at its place.
                    item = dataclasses.replace(item, output_name=out_name)
                if isinstance(item, _OUTPUT_LIKE):
                    self.handle_item(tmpl, step_key, scope, item, seen)
                else:
                    seen.add(out_name)
                    self.store_output(tmpl, step_key, scope, item, out_name, None)
        elif isinstance(value, tuple) and all(isinstance(v, MaterializeResult) for v in value):
            for item in value:
                self.handle_item(tmpl, step_key, scope, item, seen)
        else:
            raise DagloomError(
                f'op "{op.name}" has outputs {list(outs)} but returned {type(value).__name__}; '
                "return a tuple with one value per output"
            )
        self.check_required(tmpl, seen)

    def check_required(self, tmpl: StepTemplate, seen: set[str]) -> None:
        failed_check = self.state.blocking_failures.pop(tmpl.key, None)
        if failed_check is not None:
            raise DagloomError(
                f'blocking asset check "{failed_check}" failed; assets downstream of it are '
                "not materialized"
            )
        for out_name in tmpl.facts.required_outputs:
            if out_name not in seen:
                raise DagloomError(
                    f'op "{tmpl.node.op.name}" did not return or yield required output "{out_name}"'
                )

    # -- attempts -------------------------------------------------------------------------

    def succeed(self, step_key: str, started: float) -> Outcome:
        facts = self.facts
        elapsed = perf_counter() - started
        _STEP_DURATIONS_PENDING.append(elapsed)
        if len(_STEP_DURATIONS_PENDING) >= PENDING_LIMIT:
            _STEP_DURATIONS.fold()
        elapsed_ms = elapsed * 1000
        if facts.lazy_messages:  # the message is made of the duration when read
            facts.emit(
                (
                    _STEP_SUCCESS,
                    step_key,
                    time(),
                    None,
                    _DEBUG,
                    facts.job_name,
                    NO_PAYLOAD,
                    elapsed_ms,
                )
            )
            return _SUCCEEDED
        facts.emit(
            (
                _STEP_SUCCESS,
                step_key,
                time(),
                f'Finished execution of step "{step_key}" in {elapsed_ms:.2f}ms.',
                _DEBUG,
                facts.job_name,
                NO_PAYLOAD,
                None,
            )
        )
        return _SUCCEEDED

    def fail(self, step_key: str, attempt: int, exc: BaseException) -> Outcome:
        """Turn an exception from an attempt into a retry or a failure, with its event."""
        facts = self.facts
        tmpl = facts.plan.template(step_key)
        policy = tmpl.facts.retry_policy
        delay: float | None = None
        max_retries = 0
        if isinstance(exc, RetryRequested):
            max_retries = exc.max_retries
            delay = exc.seconds_to_wait
        elif policy is not None and (not isinstance(exc, Failure) or exc.allow_retries):
            max_retries = policy.max_retries
            delay = policy.delay_for(attempt + 1, facts.rng)
        if attempt < max_retries:
            facts.emit(
                row(
                    _STEP_UP_FOR_RETRY,
                    step_key,
                    f'Execution of step "{step_key}" failed and has requested a retry '
                    f"in {delay or 0:.3g} seconds.",
                    _DEBUG,
                    facts.job_name,
                    STEP_RETRY_DATA,
                    StepRetryData(
                        attempt=attempt + 1,
                        max_retries=max_retries,
                        delay_seconds=delay or 0.0,
                        error=error_info(exc),
                    ),
                )
            )
            return Outcome(FAILED, retry_delay=delay or 0.0, error=exc)
        user_failure = isinstance(exc, Failure)
        metadata = exc.metadata if isinstance(exc, Failure) else None
        if isinstance(exc, Failure):
            description = f"Failure: {exc.description or exc}"
        else:
            description = describe_user_error(exc)
        facts.emit(
            row(
                _STEP_FAILURE,
                step_key,
                f'Execution of step "{step_key}" failed: {description}',
                _ERROR,
                facts.job_name,
                STEP_FAILURE_DATA,
                StepFailureData(
                    error=error_info(exc),
                    user_failure=user_failure,
                    metadata=to_metadata_messages(metadata),
                ),
            )
        )
        self.state.errors[step_key] = exc
        if tmpl.facts.hooks:
            self.run_hooks(tmpl, step_key, exc)
        return Outcome(FAILED, error=exc)

    def _consume(
        self, tmpl: StepTemplate, step_key: str, scope: StepScope | None, result: Any
    ) -> None:
        """What a sync op produced: the items it yielded (drained in a worker thread, or not
        yet), or the value it returned."""
        if isinstance(result, GeneratorType):
            items: Any = result
        elif isinstance(result, _Drained):
            items = result.items
        else:
            self.handle_return(tmpl, step_key, scope, result)
            return
        seen: set[str] = set()
        for item in items:
            self.handle_item(tmpl, step_key, scope, item, seen)
        self.check_required(tmpl, seen)

    def run_sync(self, step_key: str, attempt: int) -> Outcome:
        """One attempt of a sync op, inline."""
        started = perf_counter()
        try:
            tmpl, scope, fn, kwargs = self.prepare(step_key, attempt)
            result = fn(**kwargs)
            sole = tmpl.facts.sole_output
            if sole is not None and result is not None and not isinstance(result, _NOT_PLAIN):
                # `handle_return`'s common case, inlined: a value for the only output.
                self.store_output(tmpl, step_key, scope, result, sole, None)
                if self.state.blocking_failures:
                    self.check_required(tmpl, {sole})
            elif isinstance(result, GeneratorType):
                self._consume(tmpl, step_key, scope, result)
            else:
                self.handle_return(tmpl, step_key, scope, result)
        except _Skip as skip:
            return self.skip(step_key, str(skip), skip.upstream)
        except BaseException as exc:  # the user-code boundary of an op, at the cost of a `try`
            if is_cancellation(exc):
                raise
            return self.fail(step_key, attempt, exc)
        outcome = self.succeed(step_key, started)
        if tmpl.facts.hooks:
            self.run_hooks(tmpl, step_key, None)
        return outcome

    async def run_async(
        self, step_key: str, attempt: int, threads: anyio.CapacityLimiter | None
    ) -> Outcome:
        """One attempt of an async op (or of a sync op in a worker thread)."""
        started = perf_counter()
        try:
            tmpl, scope, fn, kwargs = self.prepare(step_key, attempt)
            if threads is not None and not tmpl.facts.is_async:
                result = await anyio.to_thread.run_sync(
                    _call_and_drain, partial(fn, **kwargs), limiter=threads
                )
            else:
                result = fn(**kwargs)
            if inspect.isasyncgen(result):
                seen: set[str] = set()
                async for item in result:
                    self.handle_item(tmpl, step_key, scope, item, seen)
                self.check_required(tmpl, seen)
            elif inspect.isawaitable(result):
                self.handle_return(tmpl, step_key, scope, await result)
            else:
                self._consume(tmpl, step_key, scope, result)
        except _Skip as skip:
            return self.skip(step_key, str(skip), skip.upstream)
        except BaseException as exc:  # the user-code boundary of an op, at the cost of a `try`
            if is_cancellation(exc):
                raise
            return self.fail(step_key, attempt, exc)
        outcome = self.succeed(step_key, started)
        if tmpl.facts.hooks:
            self.run_hooks(tmpl, step_key, None)
        return outcome

    # -- hooks --------------------------------------------------------------------------

    def run_hooks(self, tmpl: StepTemplate, step_key: str, error: BaseException | None) -> None:
        """Run the step's hooks after its success (`error` None) or final failure: those
        that trigger run inside the user-code boundary and record HOOK_COMPLETED or
        HOOK_ERRORED, the others HOOK_SKIPPED. What a hook raises never reaches the step's
        outcome; cancellation propagates."""
        facts = self.facts
        node_name, _ = split_step_key(step_key)
        op = tmpl.node.op
        log = DagloomLogManager(facts.run_id, facts.job_name, step_key, facts.emit)
        for hook in tmpl.facts.hooks:
            if not hook.triggers_on(error is None):
                facts.emit(
                    row(
                        _HOOK_SKIPPED,
                        step_key,
                        f'Skipped the execution of hook "{hook.name}": it triggers on '
                        f"{hook.kind} only.",
                        _DEBUG,
                        facts.job_name,
                    )
                )
                continue
            context = HookContext(
                hook_def=hook,
                run_id=facts.run_id,
                job_name=facts.job_name,
                step_key=step_key,
                op=op,
                op_config=facts.op_configs.get(node_name),
                resources=facts.resources,
                log=log,
                op_exception=error,
                output_values=partial(self._output_values, op, step_key),
            )
            try:
                with user_code("hook", hook.name, "hook function"):
                    hook.decorated_fn(context)
            except DagloomError as exc:
                facts.emit(
                    row(
                        _HOOK_ERRORED,
                        step_key,
                        f'Error in hook "{hook.name}" triggered for step "{step_key}": {exc}',
                        _ERROR,
                        facts.job_name,
                    )
                )
                continue
            facts.emit(
                row(
                    _HOOK_COMPLETED,
                    step_key,
                    f'Finished the execution of hook "{hook.name}" triggered for "{step_key}".',
                    _DEBUG,
                    facts.job_name,
                )
            )

    def _output_values(self, op: OpDefinition, step_key: str) -> dict[str, Any]:
        """The values a step stored, loaded back through their IO managers (for a dynamic
        output, mapping key -> value)."""
        facts = self.facts
        state = self.state
        values: dict[str, Any] = {}
        for out_name, out_def in op.outs.items():
            manager = facts.io_managers[out_def.io_manager_key]
            if out_def.is_dynamic:
                elements = state.dynamic_keys.get((step_key, out_name), {})
                values[out_name] = {
                    key: manager.load_input(self._reader(step_key, element))
                    for key, element in elements.items()
                }
                continue
            stored = state.outputs.get((step_key, out_name))
            if stored is None:
                continue
            if isinstance(stored, OutputContext):
                values[out_name] = manager.load_input(self._reader(step_key, stored))
            else:  # a plain output (see ExecutionState)
                values[out_name] = plain_value(stored)
        return values

    def _reader(self, step_key: str, upstream: OutputContext) -> InputContext:
        reader = InputContext(
            upstream.name,
            step_key,
            upstream,
            asset_key=upstream.asset_key,
            resources=self.facts.resources,
        )
        if upstream.has_asset_partitions:
            reader.set_partitions(
                upstream.asset_partition_keys,
                upstream.asset_partitions_def,
                upstream.partition_key if upstream.has_partition_key else None,
            )
        return reader

    def skip(self, step_key: str, reason: str, upstream: tuple[str, ...]) -> Outcome:
        facts = self.facts
        facts.emit(
            row(
                _STEP_SKIPPED,
                step_key,
                f'Skipped execution of step "{step_key}": {reason}.',
                _INFO,
                facts.job_name,
                STEP_SKIPPED_DATA,
                StepSkippedData(upstream_step_keys=list(upstream)),
            )
        )
        return Outcome(SKIPPED)


class _Drained:
    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


def _call_and_drain(call: Callable[[], Any]) -> Any:
    result = call()
    if inspect.isgenerator(result):
        return _Drained(list(result))
    return result
