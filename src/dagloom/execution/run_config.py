"""Run config for one run, validated against the job before the run exists.

Shape, as in Dagster: `ops: {<node>: {config: ..., inputs: {...}, ops: {...nested graph...}}}`,
`resources: {<key>: {config: ...}}`, `execution: {config: ...}`. Every problem raises one
ConfigError naming its key path.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagloom.definitions.config import RunConfig, coerce_run_config
from dagloom.definitions.executor import ExecutorDefinition, select_executor
from dagloom.definitions.resources import validate_resource_config
from dagloom.errors import ConfigError
from dagloom.execution.plan import FROM_CONFIG

if TYPE_CHECKING:
    from dagloom.definitions.config import Config
    from dagloom.definitions.job import JobDefinition

_TOP_LEVEL = frozenset({"ops", "resources", "execution", "loggers"})
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
    return ConfigError("invalid run config", problems=[(path, text)])


def _flatten_ops(
    ops: Any,
    prefix: str,
    path: tuple[str | int, ...],
    known: frozenset[str],
    out: dict[str, Any],
) -> None:
    if not isinstance(ops, Mapping):
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


@dataclass(frozen=True, slots=True)
class _ConfigShape:
    """What run-config validation needs to know of a job, computed once per job."""

    known: frozenset[str]  # node names and their graph prefixes
    order: dict[str, int]  # node name -> position, for stable error order
    needs_config: frozenset[str]  # nodes with a config schema or config-fed inputs
    config_inputs: dict[str, tuple[str, ...]]


_SHAPES: weakref.WeakKeyDictionary[JobDefinition, _ConfigShape] = weakref.WeakKeyDictionary()


def _shape_of(job: JobDefinition) -> _ConfigShape:
    shape = _SHAPES.get(job)
    if shape is not None:
        return shape
    known: set[str] = set()
    for name in job.nodes:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            known.add(".".join(parts[:i]))
    plan = job.get_plan()
    config_inputs = {
        name: names
        for name, tmpl in plan.steps.items()
        if (names := tuple(i.name for i in tmpl.inputs if i.kind == FROM_CONFIG))
    }
    needs = {name for name, node in job.nodes.items() if node.op.config_model is not None}
    shape = _ConfigShape(
        frozenset(known),
        {name: i for i, name in enumerate(job.nodes)},
        frozenset(needs | config_inputs.keys()),
        config_inputs,
    )
    _SHAPES[job] = shape
    return shape


def resolve_run_config(
    job: JobDefinition,
    run_config: Mapping[str, Any] | RunConfig | None,
    resource_defs: Mapping[str, Any] | None = None,
) -> ResolvedRunConfig:
    """Validate `run_config` (over the job's default config) for `job`, whose resources are
    `resource_defs` (default: the job's own)."""
    raw = deep_merge(job.default_run_config, coerce_run_config(run_config))
    for key in raw:
        if key not in _TOP_LEVEL:
            raise _fail((key,), f"unknown key; expected one of {sorted(_TOP_LEVEL)}")
    shape = _shape_of(job)
    entries: dict[str, Any] = {}
    _flatten_ops(raw.get("ops") or {}, "", ("ops",), shape.known, entries)

    op_configs: dict[str, Any] = {}
    input_values: dict[tuple[str, str], Any] = {}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    # Nodes without config, config inputs or an entry have nothing to check: most of them.
    chosen = shape.needs_config | (entries.keys() & shape.order.keys())
    for name in sorted(chosen, key=shape.order.__getitem__):
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
            if isinstance(value, Mapping) and set(value) == {"value"}:
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
    if problems:
        raise ConfigError(f"invalid run config for job {job.name!r}", problems=problems)
    resources = validate_resource_config(
        job.resource_defs if resource_defs is None else resource_defs, raw.get("resources")
    )
    execution = raw.get("execution") or {}
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
        raw, op_configs, input_values, resources, executor_config, executor_def
    )
