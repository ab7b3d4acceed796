"""Run config for one run, validated against the job before the run exists.

Shape, as in Dagster: `ops: {<node>: {config: ..., inputs: {...}, outputs: {...}, ops: {...nested
graph...}}}`, where `outputs: {<output>: ...}` is checked against the output's IO manager's
`output_config_schema` and an input loaded by a manager with an `input_config_schema` takes
its config under `inputs: {<input>: ...}`;
`resources: {<key>: {config: ...}}`, `execution: {config: ...}` (or, naming the executor,
`execution: {multiprocess: {config: ...}}`). A job with a ConfigMapping takes its outer config
instead, mapped to this shape first. Every problem raises one DagsterInvalidConfigError (a
ConfigError) naming its key path.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dagloom.definitions.config import RunConfig, coerce_run_config
from dagloom.definitions.dagster_type_loader import input_loader
from dagloom.definitions.executor import ExecutorDefinition, select_executor
from dagloom.definitions.resources import validate_resource_config
from dagloom.errors import ConfigError, DagsterInvalidConfigError
from dagloom.execution.plan import FROM_CONFIG, FROM_DEFAULT

if TYPE_CHECKING:
    from dagloom.definitions.config import Config
    from dagloom.definitions.job import JobDefinition

_TOP_LEVEL = frozenset({"ops", "resources", "execution", "loggers", "inputs"})
_NODE_KEYS = frozenset({"config", "inputs", "ops", "outputs"})


@dataclass(frozen=True, slots=True)
class ResolvedRunConfig:
    """Run config checked and split per node, resource and executor."""

    raw: dict[str, Any]
    op_configs: dict[str, Any]  # node name -> validated config (model, dict or None)
    input_values: dict[tuple[str, str], Any]  # (node, input) -> value
    resources: dict[str, Any]  # resource key -> config override
    executor_config: Config
    executor_def: ExecutorDefinition  # the job's own, or the one run config picks
    output_configs: dict[tuple[str, str], Any] = field(default_factory=dict)
    """(node, output) -> config for its IO manager's `output_config_schema`."""
    input_configs: dict[tuple[str, str], Any] = field(default_factory=dict)
    """(node, input) -> config for its loader's `input_config_schema`."""
    logger_configs: dict[str, Any] = field(default_factory=dict)
    """logger name -> validated config, for each of the job's `logger_defs`."""


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` laid over `base`, recursing into mappings."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _fail(path: tuple[str | int, ...], text: str) -> ConfigError:
    return DagsterInvalidConfigError("invalid run config", problems=[(path, text)])


def _flatten_ops(
    ops: Any,
    prefix: str,
    path: tuple[str | int, ...],
    known: _KnownNames,
    out: dict[str, Any],
) -> None:
    if type(ops) is not dict and not isinstance(ops, Mapping):  # a dict skips the ABC check
        raise _fail(path, f"expected a mapping of op names, got {type(ops).__name__}")
    for key, entry in ops.items():
        name = f"{prefix}{key}"
        entry_path = (*path, key)
        if name not in known:
            options = sorted(
                k[len(prefix) :]
                for k in known
                if k.startswith(prefix) and "." not in k[len(prefix) :]
            )
            raise _fail(entry_path, f"unknown op; expected one of {options}")
        if entry is None:
            entry = {}
        if not isinstance(entry, Mapping):
            raise _fail(entry_path, "expected a mapping with 'config' and/or 'inputs'")
        extra = set(entry) - _NODE_KEYS
        if extra:
            raise _fail((*entry_path, sorted(extra)[0]), "unknown key")
        out[name] = entry
        if "ops" in entry:
            _flatten_ops(entry["ops"], f"{name}.", (*entry_path, "ops"), known, out)


def _node_path(name: str) -> tuple[str, ...]:
    parts = name.split(".")
    path: list[str] = ["ops", parts[0]]
    for part in parts[1:]:
        path += ["ops", part]
    return tuple(path)


class _KnownNames:
    """The names run config may give under `ops`: every node's, and each graph prefix of a
    nested node's (`outer`, `outer.inner`). The node names are the job's own dict's keys,
    not a copy: a set of a 100,000-node job's names would keep ~4 MB per job."""

    __slots__ = ("nodes", "prefixes")

    def __init__(self, nodes: Mapping[str, Any]) -> None:
        self.nodes = nodes
        prefixes: set[str] = set()
        for name in nodes:
            if "." in name:
                parts = name.split(".")
                prefixes.update(".".join(parts[:i]) for i in range(1, len(parts)))
        self.prefixes = frozenset(prefixes - nodes.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.nodes or name in self.prefixes

    def __iter__(self) -> Iterator[str]:
        yield from self.nodes
        yield from self.prefixes


@dataclass(frozen=True, slots=True)
class _ConfigShape:
    """What run-config validation needs to know of a job, computed once per job."""

    known: _KnownNames  # node names and their graph prefixes
    needs_config: frozenset[str]  # nodes with a config schema or config-fed inputs
    config_inputs: dict[str, tuple[str, ...]]
    required_resources: frozenset[str]  # the job's `required_resource_keys`


_SHAPES: weakref.WeakKeyDictionary[JobDefinition, _ConfigShape] = weakref.WeakKeyDictionary()


def _shape_of(job: JobDefinition) -> _ConfigShape:
    shape = _SHAPES.get(job)
    if shape is not None:
        return shape
    plan = job.get_plan()
    config_inputs = {
        name: names
        for name, tmpl in plan.steps.items()
        if (names := tuple(i.name for i in tmpl.inputs if i.kind == FROM_CONFIG))
    }
    needs = {name for name, node in job.nodes.items() if node.op.has_config}
    shape = _ConfigShape(
        _KnownNames(job.nodes),
        frozenset(needs | config_inputs.keys()),
        config_inputs,
        frozenset(job.required_resource_keys),
    )
    _SHAPES[job] = shape
    return shape


def required_resource_keys(job: JobDefinition) -> frozenset[str]:
    """`job.required_resource_keys`, worked out once per job (a walk of every node)."""
    return _shape_of(job).required_resources


def resolve_run_config(
    job: JobDefinition,
    run_config: Mapping[str, Any] | RunConfig | None,
    resource_defs: Mapping[str, Any] | None = None,
) -> ResolvedRunConfig:
    """Validate `run_config` (over the job's default config, or through its ConfigMapping)
    for `job`, whose resources are `resource_defs` (default: the job's own). Raises
    DagsterInvalidConfigError naming every failing key path."""
    try:
        return _resolve(job, run_config, resource_defs)
    except DagsterInvalidConfigError:
        raise
    except ConfigError as exc:
        first = str(exc).split("\n", 1)[0]
        if exc.source is not None:
            first = first.removeprefix(f"{exc.source}: ")
        raise DagsterInvalidConfigError(first, source=exc.source, problems=exc.problems) from exc


def validate_run_config(
    job_def: JobDefinition, run_config: Mapping[str, Any] | RunConfig | None = None
) -> dict[str, Any]:
    """Check `run_config` against `job_def` as a run would, without running anything;
    returns the run config with the job's defaults merged in, or raises
    DagsterInvalidConfigError naming every failing key path."""
    return resolve_run_config(job_def, run_config).raw


_EXECUTOR_KEYS = ("in_process", "multiprocess")
"""The built-in executors' short names, which Dagster's run config writes as keys."""


def normalize_execution(execution: Any) -> Any:
    """`execution:` as `{config: {<executor>: ...}}`: Dagster also writes the executor's name
    at the top, `{multiprocess: {config: {...}}}` or `{in_process: {}}`; both mean the same."""
    if isinstance(execution, Mapping) and len(execution) == 1:
        ((name, value),) = execution.items()
        if name in _EXECUTOR_KEYS:
            if value is None:
                value = {}
            if not isinstance(value, Mapping) or set(value) - {"config"}:
                raise _fail(("execution", name), "expected a mapping with one key, 'config'")
            return {"config": {name: dict(value.get("config") or {})}}
    return execution


def _copy_mappings(value: Mapping[str, Any]) -> dict[str, Any]:
    """`value` with every nested mapping copied, so mapping never edits the caller's dicts."""
    return {
        key: _copy_mappings(item) if isinstance(item, Mapping) else item
        for key, item in value.items()
    }


def apply_graph_config_mappings(
    mappings: Mapping[str, Any], ops: Mapping[str, Any]
) -> dict[str, Any]:
    """`ops:` run config with each mapped graph's `config` replaced by the config its
    ConfigMapping gives its nodes (laid under any `ops:` given for them). `mappings` is
    graph node name (`outer.inner`) -> ConfigMapping; outer graphs map first, so an outer
    mapping may set an inner graph's `config`."""
    if not isinstance(ops, Mapping):
        return ops  # reported by _flatten_ops
    out = _copy_mappings(ops)
    for name in sorted(mappings, key=lambda n: n.count(".")):
        parts = name.split(".")
        level: Any = out
        for part in parts[:-1]:
            entry = level.get(part) if isinstance(level, Mapping) else None
            level = entry.setdefault("ops", {}) if isinstance(entry, dict) else None
        if not isinstance(level, dict):
            continue
        entry = level.get(parts[-1])
        if entry is None:
            entry = level[parts[-1]] = {}
        if not isinstance(entry, dict):
            continue
        mapped = mappings[name].resolve_from_unvalidated_config(
            entry.pop("config", None), (*_node_path(name), "config")
        )
        entry["ops"] = deep_merge(mapped, entry.get("ops") or {})
    return out


def _logger_configs(
    job: JobDefinition, given: Any, problems: list[tuple[tuple[str | int, ...], str]]
) -> dict[str, Any]:
    """Each of the job's loggers' config from run config `loggers: {name: {config: ...}}`,
    checked against its schema. A job without `logger_defs` logs as it always does and
    takes any `loggers:` section (`console: {config: {log_level: ...}}` among them)."""
    if not job.logger_defs:
        return {}
    if not isinstance(given, Mapping):
        problems.append((("loggers",), "expected a mapping of logger names"))
        return {}
    for name in given:
        if name not in job.logger_defs:
            problems.append(
                (
                    ("loggers", name),
                    f"unknown logger; the job's loggers are {sorted(job.logger_defs)}",
                )
            )
    configs: dict[str, Any] = {}
    for name, logger_def in job.logger_defs.items():
        entry = given.get(name) or {}
        if not isinstance(entry, Mapping) or set(entry) - {"config"}:
            problems.append((("loggers", name), "expected a mapping with one key, 'config'"))
            continue
        try:
            configs[name] = logger_def.process_config(
                entry.get("config"), ("loggers", name, "config")
            )
        except ConfigError as exc:
            problems += exc.problems
    return configs


def _top_level_inputs(
    job: JobDefinition,
    given: Any,
    input_values: dict[tuple[str, str], Any],
    problems: list[tuple[tuple[str | int, ...], str]],
) -> None:
    """Fill `input_values` for the inputs the job's own inputs feed: from run config
    `inputs: {name: value}` (or `{name: {value: ...}}`), else the job's `input_values`."""
    if not isinstance(given, Mapping):
        problems.append((("inputs",), "expected a mapping of the job's input names"))
        return
    for name in given:
        if name not in job.top_level_inputs:
            problems.append(
                (
                    ("inputs", name),
                    f"unknown input; the job's inputs are {sorted(job.top_level_inputs)}",
                )
            )
    for name, pairs in job.top_level_inputs.items():
        if name in given:
            value = given[name]
            if isinstance(value, Mapping) and set(value) == {"value"}:
                value = value["value"]
        elif name in job.input_values:
            value = job.input_values[name]
        else:
            problems.append(
                (("inputs", name), f"missing: input {name!r} of job {job.name!r} has no value")
            )
            value = None  # the run does not start; this only keeps one error per input
        for pair in pairs:
            input_values[pair] = value


def _resolve(
    job: JobDefinition,
    run_config: Mapping[str, Any] | RunConfig | None,
    resource_defs: Mapping[str, Any] | None,
) -> ResolvedRunConfig:
    if job.config_mapping is not None:
        run_config = job.config_mapping.resolve_from_unvalidated_config(
            coerce_run_config(run_config) or None
        )
    raw = deep_merge(job.default_run_config, coerce_run_config(run_config))
    if job.graph_config_mappings:
        raw["ops"] = apply_graph_config_mappings(job.graph_config_mappings, raw.get("ops") or {})
    for key in raw:
        if key not in _TOP_LEVEL:
            raise _fail((key,), f"unknown key; expected one of {sorted(_TOP_LEVEL)}")
    shape = _shape_of(job)
    entries: dict[str, Any] = {}
    _flatten_ops(raw.get("ops") or {}, "", ("ops",), shape.known, entries)

    op_configs: dict[str, Any] = {}
    input_values: dict[tuple[str, str], Any] = {}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if job.top_level_inputs or raw.get("inputs"):
        _top_level_inputs(job, raw.get("inputs") or {}, input_values, problems)
    # Nodes without config, config inputs or an entry have nothing to check: most of them.
    chosen = shape.needs_config | (entries.keys() & job.nodes.keys())
    # In the job's node order, for a stable order of errors.
    for name in [name for name in job.nodes if name in chosen] if chosen else ():
        node = job.nodes[name]
        entry = entries.get(name, {})
        base = _node_path(name)
        try:
            op_configs[name] = node.op.validate_config(entry.get("config"), (*base, "config"))
        except ConfigError as exc:
            problems += exc.problems
        given_inputs = entry.get("inputs") or {}
        if not isinstance(given_inputs, Mapping):
            problems.append(((*base, "inputs"), "expected a mapping of input names"))
            continue
        config_inputs = shape.config_inputs.get(name, ())
        for input_name, value in given_inputs.items():
            if input_name not in node.op.ins:
                problems.append(((*base, "inputs", input_name), "unknown input"))
                continue
            loader = input_loader(node.op.ins[input_name].dagster_type)
            if loader is not None:
                # Its DagsterType's loader makes the value in the step from this config.
                try:
                    value = loader.validate(
                        value, (*base, "inputs", input_name), f"input {input_name!r}"
                    )
                except ConfigError as exc:
                    problems += exc.problems
                    continue
            elif isinstance(value, Mapping) and set(value) == {"value"}:
                value = value["value"]
            input_values[(name, input_name)] = value
        for input_name in config_inputs:
            if (name, input_name) not in input_values:
                problems.append(
                    (
                        (*base, "inputs", input_name),
                        f"missing: input {input_name!r} of op {node.op.name!r} has no upstream "
                        "output and no default value",
                    )
                )
    defs = job.resource_defs if resource_defs is None else resource_defs
    output_configs, input_configs = _io_configs(job, entries, defs, input_values, problems)
    logger_configs = _logger_configs(job, raw.get("loggers") or {}, problems)
    if problems:
        raise DagsterInvalidConfigError(
            f"invalid run config for job {job.name!r}", problems=problems
        )
    resources = validate_resource_config(defs, raw.get("resources"))
    execution = normalize_execution(raw.get("execution") or {})
    if not isinstance(execution, Mapping) or set(execution) - {"config", "module", "class"}:
        raise _fail(("execution",), "expected a mapping of 'config' (and 'module', 'class')")
    if "class" in execution:
        # An executor named as every component is: {module, class, config}.
        executor_def = ExecutorDefinition.from_component(
            execution.get("module"), str(execution["class"])
        )
    elif "module" in execution:
        raise _fail(("execution", "class"), "required with 'module'")
    else:
        executor_def = select_executor(job.executor_def, execution.get("config"))
    executor_config = executor_def.resolve_config(execution.get("config"))
    return ResolvedRunConfig(
        raw,
        op_configs,
        input_values,
        resources,
        executor_config,
        executor_def,
        output_configs,
        input_configs,
        logger_configs,
    )


def _io_configs(
    job: JobDefinition,
    entries: Mapping[str, Any],
    resource_defs: Mapping[str, Any],
    input_values: dict[tuple[str, str], Any],
    problems: list[tuple[tuple[str | int, ...], str]],
) -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str], Any]]:
    """The config of outputs and inputs whose IO or input managers declare an
    `output_config_schema` / `input_config_schema`, checked (defaults filled, missing
    required config reported). Input config moves out of `input_values`. A job whose
    managers declare no such schema (nearly every job) costs a scan of its resources, and
    does not import the config type system."""
    output_schemas = {
        key: d.output_config_schema
        for key, d in resource_defs.items()
        if getattr(d, "output_config_schema", None) is not None
    }
    input_schemas = {
        key: d.input_config_schema
        for key, d in resource_defs.items()
        if getattr(d, "input_config_schema", None) is not None
    }
    output_configs: dict[tuple[str, str], Any] = {}
    input_configs: dict[tuple[str, str], Any] = {}
    for name, entry in entries.items():
        given = entry.get("outputs") if isinstance(entry, Mapping) else None
        if given is None or name not in job.nodes:
            continue
        base = (*_node_path(name), "outputs")
        if not isinstance(given, Mapping):
            problems.append((base, "expected a mapping of output names"))
            continue
        outs = job.nodes[name].op.outs
        for output_name in given:
            if output_name not in outs:
                problems.append(((*base, output_name), f"unknown output; expected {sorted(outs)}"))
            elif outs[output_name].io_manager_key not in output_schemas:
                problems.append(
                    (
                        (*base, output_name),
                        f"IO manager {outs[output_name].io_manager_key!r} of this output takes "
                        "no output config (no output_config_schema)",
                    )
                )
    if not output_schemas and not input_schemas:
        return output_configs, input_configs
    from dagloom.definitions.config_types import as_field, process_config

    plan = job.get_plan()
    for name, node in job.nodes.items():
        entry = entries.get(name) or {}
        given_outputs = entry.get("outputs") if isinstance(entry, Mapping) else None
        given_outputs = given_outputs if isinstance(given_outputs, Mapping) else {}
        for output_name, out in node.op.outs.items():
            schema = output_schemas.get(out.io_manager_key)
            if schema is None:
                continue
            path = (*_node_path(name), "outputs", output_name)
            try:
                output_configs[(name, output_name)] = process_config(
                    as_field(schema), given_outputs.get(output_name), path, f"output {name}"
                )
            except ConfigError as exc:
                problems += exc.problems
        tmpl = plan.steps.get(name)
        if tmpl is None:
            continue
        for spec in tmpl.inputs:
            schema = input_schemas.get(spec.manager_key)
            if schema is None or spec.kind in (FROM_CONFIG, FROM_DEFAULT):
                continue
            path = (*_node_path(name), "inputs", spec.name)
            value = input_values.pop((name, spec.name), None)
            try:
                input_configs[(name, spec.name)] = process_config(
                    as_field(schema), value, path, f"input {name}"
                )
            except ConfigError as exc:
                problems += exc.problems
    return output_configs, input_configs
