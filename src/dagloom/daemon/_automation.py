"""Automation condition evaluation: which asset partitions to request on one tick, and why.

`evaluate_automation` is pure and sync. It reads a snapshot (each asset's condition, deps and
partitions; each asset's records; the state the previous tick left) and an explicit `now`,
and returns the requested partitions, an evaluation tree per asset (each node's label and the
partitions it is true for), and the state for the next tick. The automation loop does the I/O
around it; tests call it tick by tick with a hand-made clock.

A partition key `None` stands for the single partition of an unpartitioned asset.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from graphlib import CycleError, TopologicalSorter
from typing import Any, NamedTuple

from dagloom.definitions._cron import iter_cron_ticks, load_timezone
from dagloom.definitions.asset_checks import AssetCheckKey
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.automation_condition import AutomationCondition
from dagloom.definitions.partition_mapping import (
    LastPartitionMapping,
    PartitionMapping,
    infer_partition_mapping,
)
from dagloom.definitions.partitions import PartitionsDefinition
from dagloom.errors import DagloomError, DagsterUnknownPartitionError

PartitionKey = str | None
Subset = frozenset[PartitionKey]
_EMPTY: Subset = frozenset()
_UNPARTITIONED: Subset = frozenset({None})

# What automation evaluates: an asset, or an asset check (unpartitioned, its asset its dep).
EntityKey = AssetKey | AssetCheckKey

# A stored evaluation tree lists at most this many partition keys per node; the count is exact.
MAX_LISTED_PARTITIONS = 100


@dataclass(frozen=True, slots=True)
class AutomationAsset:
    """One asset as automation sees it: its condition (None: not automated), deps, code
    version, and partitions (None: unpartitioned). `partition_end_times` holds each time
    partition's window end (epoch seconds), aligned with `partition_keys`.

    With `partitions_def` set on both sides of a dependency, a partition reads the upstream
    partitions its `PartitionMapping` names (`dep_mappings` by dependency key, else Dagster's
    default for the pair); without, same keys read each other."""

    key: EntityKey
    condition: AutomationCondition | None = None
    deps: tuple[AssetKey, ...] = ()
    partition_keys: tuple[str, ...] | None = None
    partition_end_times: tuple[float, ...] | None = None
    code_version: str | None = None
    # Why this asset cannot be requested (not in any launchable job, ...), else None.
    launch_problem: str | None = None
    partitions_def: PartitionsDefinition | None = None
    dep_mappings: Mapping[AssetKey, PartitionMapping] = field(default_factory=dict)

    @property
    def all_partitions(self) -> Subset:
        if self.partition_keys is None:
            return _UNPARTITIONED
        return frozenset(self.partition_keys)


@dataclass(frozen=True, slots=True)
class AssetRecords:
    """What storage says about one asset: each materialized partition's latest storage id,
    the partitions targeted by unfinished runs, and those whose latest run failed."""

    materialized: Mapping[PartitionKey, int] = field(default_factory=dict)
    in_progress: frozenset[PartitionKey] = _EMPTY
    failed: frozenset[PartitionKey] = _EMPTY


_NO_RECORDS = AssetRecords()


@dataclass(frozen=True, slots=True)
class AssetCursor:
    """The state one tick leaves for the next, per asset. `max_storage_id` is the newest
    materialization storage id of any asset that tick saw."""

    evaluation_time: float
    max_storage_id: int
    requested: Subset
    code_version: str | None
    condition_hash: str
    node_state: Mapping[str, Subset]
    # Fingerprint of the last stored evaluation tree, so unchanged trees are not stored again.
    tree_hash: str = ""
    # What the evaluation read (`_inputs`), and whether it left the state as it found it:
    # a tick with the same inputs after a stable one would compute the same again.
    inputs: int = 0
    stable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "stable": self.stable,
            "evaluation_time": self.evaluation_time,
            "max_storage_id": self.max_storage_id,
            "requested": _subset_to_json(self.requested),
            "code_version": self.code_version,
            "condition_hash": self.condition_hash,
            "node_state": {k: _subset_to_json(v) for k, v in self.node_state.items()},
            "tree_hash": self.tree_hash,
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> AssetCursor:
        return AssetCursor(
            evaluation_time=float(data["evaluation_time"]),
            max_storage_id=int(data["max_storage_id"]),
            requested=_subset_from_json(data.get("requested", [])),
            code_version=data.get("code_version"),
            condition_hash=str(data.get("condition_hash", "")),
            node_state={k: _subset_from_json(v) for k, v in data.get("node_state", {}).items()},
            tree_hash=str(data.get("tree_hash", "")),
            inputs=int(data.get("inputs", 0)),
            stable=bool(data.get("stable", False)),
        )


class EvaluationNode(NamedTuple):
    """One node of an evaluation tree: its label, the partitions it was evaluated over and
    those it is true for. (A named tuple: a tick makes one per node of every asset's tree.)"""

    node_id: str
    label: str
    candidate_size: int
    true_subset: Subset
    children: tuple[EvaluationNode, ...] = ()

    @property
    def value(self) -> bool:
        return bool(self.true_subset)

    def to_dict(self) -> dict[str, Any]:
        listed = sorted(p for p in self.true_subset if p is not None)[:MAX_LISTED_PARTITIONS]
        return {
            "node_id": self.node_id,
            "label": self.label,
            "candidate_size": self.candidate_size,
            "num_true": len(self.true_subset),
            "true_partitions": listed,
            "children": [c.to_dict() for c in self.children],
        }


@dataclass(frozen=True, slots=True)
class AssetEvaluation:
    """Why an asset was or was not requested on one tick."""

    asset_key: EntityKey
    evaluation_time: float
    requested: Subset
    root: EvaluationNode | None
    error: str | None = None
    # True when the previous result was reused: same inputs, stable state (no tree kept).
    reused: bool = False

    @property
    def num_requested(self) -> int:
        return len(self.requested)

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset_key": list(_asset_of(self.asset_key).path),
            **(
                {"check_name": self.asset_key.name}
                if isinstance(self.asset_key, AssetCheckKey)
                else {}
            ),
            "evaluation_time": self.evaluation_time,
            "requested": _subset_to_json(self.requested),
            "num_requested": self.num_requested,
            "root": self.root.to_dict() if self.root else None,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class AutomationTickResult:
    """One tick's outcome: the requested partitions by asset, each automated asset's
    evaluation, which of them changed since their last stored evaluation, and the cursors."""

    requested: dict[EntityKey, Subset]
    evaluations: dict[EntityKey, AssetEvaluation]
    changed: frozenset[EntityKey]
    cursors: dict[EntityKey, AssetCursor]


def evaluate_automation(
    assets: Sequence[AutomationAsset],
    records: Mapping[EntityKey, AssetRecords],
    cursors: Mapping[EntityKey, AssetCursor],
    now: float,
    *,
    order: Sequence[EntityKey] = (),
) -> AutomationTickResult:
    """Evaluate every asset's condition at `now` (epoch seconds); `order` is
    `topological_order(assets)` when the caller keeps it between ticks.

    Assets are evaluated upstream first, so `will_be_requested` on a dependency sees what
    this tick requests for it. An asset whose evaluation fails (a cron timezone that does not
    load, a condition naming an unknown asset, an asset that cannot be launched) gets an
    evaluation with `error` set and requests nothing; the others go on.
    """
    # A tick keeps every asset's tree (about 15 nodes each) until it returns, and none of
    # it forms a cycle. With the cyclic collector on, its collections re-walk the growing
    # trees: 5,000 assets took 1.1 s of CPU instead of 0.3 s. Off for the evaluation only.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _evaluate(assets, records, cursors, now, order)
    finally:
        if collecting:
            gc.enable()


def _evaluate(
    assets: Sequence[AutomationAsset],
    records: Mapping[EntityKey, AssetRecords],
    cursors: Mapping[EntityKey, AssetCursor],
    now: float,
    order: Sequence[EntityKey],
) -> AutomationTickResult:
    by_key = {a.key: a for a in assets}
    tick = _Tick(by_key, records, now, cursors)
    evaluations: dict[EntityKey, AssetEvaluation] = {}
    new_cursors: dict[EntityKey, AssetCursor] = {}
    changed: set[EntityKey] = set()
    # newly_updated compares storage ids with the newest one the previous tick saw anywhere.
    global_max = max((max(r.materialized.values(), default=0) for r in records.values()), default=0)
    hashes: dict[int, str] = {}  # by condition object: many assets share one
    for key in order or topological_order(assets):
        asset = by_key[key]
        if asset.condition is None:
            continue
        previous = cursors.get(key)
        condition_hash = hashes.get(id(asset.condition))
        if condition_hash is None:
            condition_hash = hashes[id(asset.condition)] = _condition_hash(asset.condition)
        if previous is not None and previous.condition_hash != condition_hash:
            previous = None  # a changed condition starts over, as on its first evaluation
        max_id = global_max if previous is None else max(global_max, previous.max_storage_id)
        inputs = _inputs(tick, asset, previous) if previous is not None else 0
        if previous is not None and previous.stable and inputs and inputs == previous.inputs:
            # Nothing it reads changed and its state held still: the same result again.
            tick.requested[key] = previous.requested
            evaluations[key] = AssetEvaluation(
                key, now, previous.requested, None, None, reused=True
            )
            new_cursors[key] = dataclasses.replace(
                previous, evaluation_time=now, max_storage_id=max_id
            )
            if previous.requested:
                changed.add(key)
            continue
        try:
            if asset.launch_problem is not None:
                raise AutomationEvaluationError(asset.launch_problem)
            evaluator = _AssetEvaluator(tick, asset, previous)
            root = evaluator.evaluate(asset.condition, "0", asset, asset.all_partitions)
            requested = root.true_subset
            error = None
            node_state = evaluator.new_state
            tree_hash = _trace_hash(evaluator.trace)
        except Exception as exc:  # a supervision point: one asset's failure stops no other
            root = None
            requested = _EMPTY
            reason = str(exc) if isinstance(exc, AutomationEvaluationError) else repr(exc)
            error = f"{_kind(key)} {key.to_user_string()!r}: {reason}"
            node_state = dict(previous.node_state) if previous else {}
            tree_hash = _trace_hash([error])
        tick.requested[key] = requested
        evaluation = AssetEvaluation(key, now, requested, root, error)
        if previous is None or previous.tree_hash != tree_hash or requested:
            changed.add(key)
        evaluations[key] = evaluation
        stable = (
            previous is not None
            and error is None
            and inputs != 0
            and inputs == previous.inputs
            and requested == previous.requested
            and node_state == previous.node_state
            and tree_hash == previous.tree_hash
        )
        new_cursors[key] = AssetCursor(
            evaluation_time=now,
            max_storage_id=max_id,
            requested=requested,
            code_version=asset.code_version,
            condition_hash=condition_hash,
            node_state=node_state,
            tree_hash=tree_hash,
            inputs=inputs,
            stable=stable,
        )
    requested_now = {k: v for k, v in tick.requested.items() if v}
    return AutomationTickResult(requested_now, evaluations, frozenset(changed), new_cursors)


def _inputs(tick: _Tick, asset: AutomationAsset, previous: AssetCursor) -> int:
    """A fingerprint of everything `asset`'s condition reads on this tick (0: it reads what
    a fingerprint does not cover, so it is always evaluated).

    Covered: the records of the asset and of its deps (how many partitions materialized, the
    newest storage id and whether it is newer than the previous tick saw, in progress,
    failed, partitions), the deps' requests on this tick, the asset's previous request and
    code versions, and whether each cron schedule in the condition ticked since the previous
    tick. Conditions reading other assets' deps (`asset_matches`, nested dependency
    conditions) are not covered.
    """
    assert asset.condition is not None
    crons = tick.crons(asset.condition)
    if crons is None:
        return 0
    try:
        passed = tuple(
            _cron_tick_between(cron, tz, previous.evaluation_time, tick.now) for cron, tz in crons
        )
    except AutomationEvaluationError:
        return 0
    since = previous.max_storage_id
    parts: list[object] = [
        asset.code_version,
        previous.code_version,
        previous.requested,
        passed,
        tick.record_inputs(asset, since),
    ]
    by_key = tick.by_key
    for dep in asset.deps:
        parts.append(tick.record_inputs(by_key.get(dep) or AutomationAsset(dep), since))
    return hash(tuple(parts)) or 1


class AutomationEvaluationError(Exception):
    """A condition cannot be evaluated for an asset (recorded on its evaluation)."""


class _Tick:
    """What every asset's evaluation on one tick shares."""

    def __init__(
        self,
        by_key: Mapping[EntityKey, AutomationAsset],
        records: Mapping[EntityKey, AssetRecords],
        now: float,
        cursors: Mapping[EntityKey, AssetCursor] | None = None,
    ) -> None:
        self.by_key = by_key
        self.records = records
        self.now = now
        self.cursors = cursors or {}  # the previous tick's, for deps' previous requests
        self.requested: dict[EntityKey, Subset] = {}
        # Computed once per tick: labels by condition object, dependency node labels.
        self.labels: dict[int, str] = {}
        self.dep_labels: dict[tuple[AssetKey, int], tuple[str, str]] = {}
        self._crons: dict[int, tuple[tuple[str, str], ...] | None] = {}
        self._record_inputs: dict[tuple[EntityKey, int], tuple[object, ...]] = {}
        # (upstream, downstream) -> downstream partition -> the upstream partitions it reads.
        self._reads: dict[tuple[EntityKey, EntityKey], dict[PartitionKey, Subset]] = {}

    def crons(self, condition: AutomationCondition) -> tuple[tuple[str, str], ...] | None:
        """The cron schedules `condition` reads, or None when it reads what `_inputs` does
        not cover."""
        key = id(condition)
        if key not in self._crons:
            self._crons[key] = _crons_of(condition, depth=0)
        return self._crons[key]

    def _previous_requested(self, key: EntityKey) -> Subset:
        cursor = self.cursors.get(key)
        return cursor.requested if cursor is not None else _EMPTY

    def record_inputs(self, asset: AutomationAsset, since: int) -> tuple[object, ...]:
        key = (asset.key, since)
        found = self._record_inputs.get(key)
        if found is None:
            records = self.records.get(asset.key, _NO_RECORDS)
            newest = max(records.materialized.values(), default=0)
            found = (
                len(records.materialized),
                newest,
                newest > since,
                records.in_progress,
                records.failed,
                self.requested.get(asset.key, _EMPTY),
                self._previous_requested(asset.key),
                None if asset.partition_keys is None else len(asset.partition_keys),
                asset.partition_keys[-1] if asset.partition_keys else None,
            )
            # A dependency's request is known once it is evaluated: cache only after that.
            if asset.key in self.requested or asset.condition is None:
                self._record_inputs[key] = found
        return found

    def mapped(
        self,
        true_upstream: Subset,
        upstream: AutomationAsset,
        downstream: AutomationAsset,
        candidates: Subset,
    ) -> Subset:
        """The `candidates` of `downstream` that read a partition of `upstream` in
        `true_upstream`, through the dependency's partition mapping."""
        if not true_upstream:
            return _EMPTY
        up_def = upstream.partitions_def
        if upstream.partition_keys is None or up_def is None:
            return _mapped(true_upstream, upstream, downstream, candidates)
        if downstream.partition_keys is not None and downstream.partitions_def is None:
            return _mapped(true_upstream, upstream, downstream, candidates)
        reads = self._reads.get((upstream.key, downstream.key))
        if reads is None:
            reads = self._reads[(upstream.key, downstream.key)] = _reads_of(upstream, downstream)
        true: set[PartitionKey] = set()
        for partition in candidates:
            read = reads.get(partition)
            if read is None:
                read = reads[partition] = _upstream_partitions(upstream, downstream, partition)
            if not read.isdisjoint(true_upstream):
                true.add(partition)
        return frozenset(true)

    def label(self, condition: AutomationCondition) -> str:
        label = self.labels.get(id(condition))
        if label is None:
            label = self.labels[id(condition)] = condition.name
        return label

    def dep_label(self, dep: AssetKey, condition: AutomationCondition) -> tuple[str, str]:
        """The node id suffix and label of `condition` evaluated on dependency `dep`."""
        found = self.dep_labels.get((dep, id(condition)))
        if found is None:
            name = dep.to_user_string()
            found = (f"/{name}", f"{name}: {self.label(condition)}")
            self.dep_labels[(dep, id(condition))] = found
        return found


class _AssetEvaluator:
    """Evaluates one asset's condition tree; collects the state for the next tick."""

    def __init__(self, tick: _Tick, asset: AutomationAsset, previous: AssetCursor | None) -> None:
        self.tick = tick
        self.root_asset = asset
        self.previous = previous
        # Nodes skipped on this tick (no candidates) keep their state.
        self.new_state: dict[str, Subset] = dict(previous.node_state) if previous else {}
        # Each evaluated node's true subset, in evaluation order: the tree's fingerprint.
        self.trace: list[Subset] = []

    def evaluate(
        self,
        condition: AutomationCondition,
        node_id: str,
        target: AutomationAsset,
        candidates: Subset,
    ) -> EvaluationNode:
        """The node for `condition` evaluated on `target` over `candidates`. Over no
        candidates it is false and its children are not evaluated (their state is kept)."""
        if not candidates:
            self.trace.append(_EMPTY)
            return EvaluationNode(node_id, self.tick.label(condition), 0, _EMPTY)
        kind = condition.kind
        children: tuple[EvaluationNode, ...] = ()
        match kind:
            case "and":
                nodes = []
                remaining = candidates
                for i, child in enumerate(condition.children):
                    if not remaining:
                        break  # false already: the rest are not evaluated
                    node = self.evaluate(child, f"{node_id}.{i}", target, remaining)
                    nodes.append(node)
                    remaining = remaining & node.true_subset
                children = tuple(nodes)
                true = remaining
            case "or":
                nodes = []
                true = _EMPTY
                for i, child in enumerate(condition.children):
                    node = self.evaluate(child, f"{node_id}.{i}", target, candidates)
                    nodes.append(node)
                    true = true | node.true_subset
                children = tuple(nodes)
            case "not":
                node = self.evaluate(condition.children[0], f"{node_id}.0", target, candidates)
                children = (node,)
                true = candidates - node.true_subset
            case "newly_true":
                node = self.evaluate(condition.children[0], f"{node_id}.0", target, candidates)
                children = (node,)
                before = self._previous_state(node_id)
                true = node.true_subset - before if before is not None else node.true_subset
                self.new_state[node_id] = node.true_subset
            case "since":
                trigger = self.evaluate(condition.children[0], f"{node_id}.0", target, candidates)
                reset = self.evaluate(condition.children[1], f"{node_id}.1", target, candidates)
                children = (trigger, reset)
                before = self._previous_state(node_id) or _EMPTY
                true = ((before | trigger.true_subset) - reset.true_subset) & candidates
                self.new_state[node_id] = (before | trigger.true_subset) - reset.true_subset
            case "any_deps_match" | "all_deps_match":
                children, true = self._deps(condition, node_id, target, candidates)
            case "asset_matches":
                assert condition.asset_key is not None
                other = self.tick.by_key.get(condition.asset_key)
                if other is None:
                    raise AutomationEvaluationError(
                        f"asset_matches names {condition.asset_key.to_user_string()!r}, "
                        "which is not an asset of this code location"
                    )
                node = self.evaluate(
                    condition.children[0],
                    f"{node_id}/{condition.asset_key.to_user_string()}",
                    other,
                    other.all_partitions,
                )
                children = (node,)
                true = self.tick.mapped(node.true_subset, other, target, candidates)
            case _:
                true = self._leaf(condition, target, candidates)
        self.trace.append(true)
        label = self.tick.label(condition)
        return EvaluationNode(node_id, label, len(candidates), true, children)

    def _previous_state(self, node_id: str) -> Subset | None:
        if self.previous is None:
            return None
        return self.previous.node_state.get(node_id, _EMPTY)

    def _deps(
        self,
        condition: AutomationCondition,
        node_id: str,
        target: AutomationAsset,
        candidates: Subset,
    ) -> tuple[tuple[EvaluationNode, ...], Subset]:
        deps = target.deps
        if condition.allow_keys is not None or condition.ignore_keys:
            deps = tuple(
                d
                for d in deps
                if (condition.allow_keys is None or d in condition.allow_keys)
                and d not in condition.ignore_keys
            )
        nodes = []
        any_true = _EMPTY
        all_true = candidates
        inner = condition.children[0]
        tick = self.tick
        for dep_key in deps:
            dep = tick.by_key.get(dep_key) or AutomationAsset(dep_key)
            suffix, label = tick.dep_label(dep_key, inner)
            node = self.evaluate(inner, node_id + suffix, dep, dep.all_partitions)
            nodes.append(node._replace(label=label))
            mapped = tick.mapped(node.true_subset, dep, target, candidates)
            any_true = any_true | mapped
            all_true = all_true & mapped
        if condition.kind == "any_deps_match":
            return tuple(nodes), any_true
        return tuple(nodes), all_true

    def _leaf(
        self, condition: AutomationCondition, target: AutomationAsset, candidates: Subset
    ) -> Subset:
        records = self.tick.records.get(target.key, _NO_RECORDS)
        previous = self.previous
        match condition.kind:
            case "missing":
                return frozenset(p for p in candidates if p not in records.materialized)
            case "in_progress":
                return candidates & records.in_progress
            case "execution_failed":
                return candidates & records.failed
            case "will_be_requested":
                return candidates & self.tick.requested.get(target.key, _EMPTY)
            case "newly_requested":
                if target.key != self.root_asset.key:
                    # A dependency's request on the previous tick, from its own cursor.
                    return candidates & self.tick._previous_requested(target.key)
                return candidates & previous.requested if previous else _EMPTY
            case "newly_updated":
                if previous is None:
                    return _EMPTY
                since = previous.max_storage_id
                return frozenset(p for p in candidates if records.materialized.get(p, 0) > since)
            case "initial_evaluation":
                return candidates if previous is None else _EMPTY
            case "code_version_changed":
                if previous is None or previous.code_version == target.code_version:
                    return _EMPTY
                return candidates
            case "cron_tick_passed":
                if previous is None:
                    return _EMPTY
                assert condition.cron_schedule is not None
                passed = _cron_tick_between(
                    condition.cron_schedule,
                    condition.cron_timezone,
                    previous.evaluation_time,
                    self.tick.now,
                )
                return candidates if passed else _EMPTY
            case "in_latest_time_window":
                return candidates & _latest_window(target, condition.lookback_seconds)
        raise AutomationEvaluationError(f"cannot evaluate condition kind {condition.kind!r}")


def _mapped(
    true_upstream: Subset,
    upstream: AutomationAsset,
    downstream: AutomationAsset,
    candidates: Subset,
) -> Subset:
    """The `candidates` of `downstream` that read a partition of `upstream` in `true_upstream`.

    An unpartitioned side reads (or is read by) every partition of the other; two partitioned
    assets sharing a key read each other's same key, and a key the upstream lacks reads all of it.
    """
    if not true_upstream:
        return _EMPTY
    if upstream.partition_keys is None or downstream.partition_keys is None:
        return candidates
    upstream_keys = upstream.all_partitions
    return frozenset(p for p in candidates if p in true_upstream or p not in upstream_keys)


# (id(upstream), id(downstream)) -> both assets and what each downstream partition reads;
# kept while the same asset objects come back (the loop reuses its graph between ticks).
_READS: dict[tuple[int, int], tuple[AutomationAsset, AutomationAsset, dict[PartitionKey, Subset]]]
_READS = {}


def _reads_of(upstream: AutomationAsset, downstream: AutomationAsset) -> dict[PartitionKey, Subset]:
    found = _READS.get((id(upstream), id(downstream)))
    if found is not None and found[0] is upstream and found[1] is downstream:
        return found[2]
    if len(_READS) > 10_000:
        _READS.clear()
    reads: dict[PartitionKey, Subset] = {}
    _READS[(id(upstream), id(downstream))] = (upstream, downstream, reads)
    return reads


def _upstream_partitions(
    upstream: AutomationAsset, downstream: AutomationAsset, partition: PartitionKey
) -> Subset:
    """The partitions of `upstream` that `partition` of `downstream` reads, by the mapping
    of the dependency (a mapping naming partitions the upstream lacks reads none of them)."""
    up_def = upstream.partitions_def
    assert up_def is not None
    down_def = downstream.partitions_def
    name = f"{upstream.key.to_user_string()} -> {downstream.key.to_user_string()}"
    try:
        mapping = infer_partition_mapping(
            downstream.dep_mappings.get(_asset_of(upstream.key)), up_def, down_def, where=name
        )
        assert mapping is not None
        if partition is None and not isinstance(mapping, LastPartitionMapping):
            return upstream.all_partitions
        keys = mapping.upstream_partition_keys(
            None if partition is None else [partition], down_def, up_def
        )
    except DagsterUnknownPartitionError:
        return _EMPTY
    except DagloomError as exc:
        raise AutomationEvaluationError(f"partition mapping {name}: {exc}") from exc
    return frozenset(keys)


def _latest_window(asset: AutomationAsset, lookback_seconds: float | None) -> Subset:
    if asset.partition_keys is None:
        return _UNPARTITIONED
    if asset.partition_end_times is None or not asset.partition_keys:
        return frozenset(asset.partition_keys)
    latest_end = asset.partition_end_times[-1]
    if lookback_seconds is None:
        return frozenset({asset.partition_keys[-1]})
    return frozenset(
        key
        for key, end in zip(asset.partition_keys, asset.partition_end_times, strict=True)
        if end >= latest_end - lookback_seconds
    )


@lru_cache(maxsize=1024)
def _cron_tick_between(cron: str, timezone: str, after: float, until: float) -> bool:
    try:
        tz = load_timezone(timezone)
    except ValueError as exc:
        raise AutomationEvaluationError(f"cron_tick_passed({cron!r}): {exc}") from exc
    start = datetime.fromtimestamp(after, UTC).astimezone(tz)
    first = next(iter_cron_ticks([cron], tz, start))
    return first.timestamp() <= until


def _crons_of(condition: AutomationCondition, depth: int) -> tuple[tuple[str, str], ...] | None:
    if condition.kind == "asset_matches":
        return None
    if condition.kind in ("any_deps_match", "all_deps_match"):
        if depth > 0:
            return None
        depth += 1
    found: list[tuple[str, str]] = []
    if condition.kind == "cron_tick_passed" and condition.cron_schedule is not None:
        found.append((condition.cron_schedule, condition.cron_timezone))
    for child in condition.children:
        inner = _crons_of(child, depth)
        if inner is None:
            return None
        found.extend(inner)
    return tuple(dict.fromkeys(found))


def topological_order(assets: Iterable[AutomationAsset]) -> tuple[EntityKey, ...]:
    """The assets' keys, each after its deps (sorted by key when there is a cycle)."""
    by_key = {a.key: a for a in assets}
    graph = {k: [d for d in a.deps if d in by_key] for k, a in by_key.items()}
    try:
        return tuple(TopologicalSorter(graph).static_order())
    except CycleError:
        return tuple(sorted(by_key, key=entity_sort_key))


def entity_sort_key(key: EntityKey) -> tuple[tuple[str, ...], str]:
    """Orders assets and checks by asset path, each asset before its checks."""
    if isinstance(key, AssetCheckKey):
        return (key.asset_key.path, key.name)
    return (key.path, "")


def check_entity(
    key: AssetCheckKey,
    condition: AutomationCondition | None,
    *,
    additional_deps: Iterable[AssetKey] = (),
    launch_problem: str | None = None,
) -> AutomationAsset:
    """An asset check as automation sees it: unpartitioned, its asset (and any additional
    deps) its dependencies. Its records' `materialized` holds its latest execution's storage
    id, so `missing()` is "never executed" and `newly_updated()` "executed since last tick"."""
    deps = tuple(dict.fromkeys([key.asset_key, *additional_deps]))
    return AutomationAsset(key=key, condition=condition, deps=deps, launch_problem=launch_problem)


def _asset_of(key: EntityKey) -> AssetKey:
    return key.asset_key if isinstance(key, AssetCheckKey) else key


def _kind(key: EntityKey) -> str:
    return "asset check" if isinstance(key, AssetCheckKey) else "asset"


@lru_cache(maxsize=4096)
def _condition_hash(condition: AutomationCondition) -> str:
    text = json.dumps(condition.to_dict(), sort_keys=True)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def _trace_hash(trace: Sequence[Subset | str]) -> str:
    parts = []
    for item in trace:
        if isinstance(item, str):
            parts.append(item)
        elif not item:
            parts.append("0")
        elif item == _UNPARTITIONED:
            parts.append("1")
        else:
            parts.append(",".join(sorted(str(p) for p in item)))
    text = "|".join(parts)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def _subset_to_json(subset: Iterable[PartitionKey]) -> list[str | None]:
    return sorted(subset, key=lambda p: "" if p is None else p)


def _subset_from_json(values: Iterable[str | None]) -> Subset:
    return frozenset(values)


__all__ = [
    "MAX_LISTED_PARTITIONS",
    "AssetCursor",
    "AssetEvaluation",
    "AssetRecords",
    "AutomationAsset",
    "AutomationEvaluationError",
    "AutomationTickResult",
    "EvaluationNode",
    "evaluate_automation",
    "topological_order",
]
