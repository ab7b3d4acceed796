"""The automation loop: evaluates every asset's AutomationCondition each tick and launches
the requested assets.

Each round, under the storage lease `automation`, it reads the code locations' snapshots,
the latest materialization of every asset partition (incrementally: only what is newer than
the previous round saw), the unfinished and recently failed runs, and the state the previous
round left; evaluates (`_automation.evaluate_automation`, pure, in a worker thread); submits
one run per code location, job and partition; then stores the new state and a record for
every asset whose evaluation changed or requested runs. A run's id is derived from the tick
time, location, job and partition, so a round redone after a crash launches nothing twice.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from dagloom.actors.run_coordinator import submit_run
from dagloom.daemon._automation import (
    AssetCursor,
    AssetRecords,
    AutomationAsset,
    AutomationTickResult,
    EntityKey,
    Subset,
    check_entity,
    entity_sort_key,
    evaluate_automation,
    topological_order,
)
from dagloom.daemon._instigators import is_running, sensor_state, sync_state
from dagloom.daemon._submit import LeasedInstigatorLoop, Location
from dagloom.daemon._tags import derived_run_id
from dagloom.definitions.asset_checks import AssetCheckKey
from dagloom.definitions.asset_job import IMPLICIT_ASSET_JOB_NAME
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.automation_condition import AutomationCondition, condition_from_dict
from dagloom.definitions.automation_condition_sensor import DEFAULT_AUTOMATION_SENSOR_NAME
from dagloom.definitions.partition_mapping import PartitionMapping, partition_mapping_from_dict
from dagloom.definitions.partitions import (
    MultiPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionsDefinition,
)
from dagloom.definitions.sensor import SENSOR_NAME_TAG
from dagloom.errors import ConfigError, DefinitionError
from dagloom.messages import EventRecord, PartitionsSnapshot, Run, RunStatus
from dagloom.messages.rpc import LocationSnapshot, SubmitRunRequest
from dagloom.storage.automation import AutomationEvaluationRecord, AutomationStorage
from dagloom.storage.base import RunsFilter

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef

PARTITION_TAG = "dagster/partition"
AUTOMATION_TAG = "dagster/from_automation_condition"
EVALUATION_TAG = "dagloom/automation_evaluation_time"

_UNFINISHED = (
    RunStatus.QUEUED,
    RunStatus.NOT_STARTED,
    RunStatus.MANAGED,
    RunStatus.STARTING,
    RunStatus.STARTED,
    RunStatus.CANCELING,
)
# How many recent finished runs decide `execution_failed` (newest run per partition wins).
_RECENT_RUNS = 500


@dataclass(frozen=True, slots=True)
class AutomationRun:
    """One run the automation loop launches: these assets of one job, for one partition, or
    these asset checks alone (`check_keys`, with no assets: the run executes only them)."""

    location_name: str
    job_name: str
    partition_key: str | None
    asset_keys: tuple[AssetKey, ...]
    sensor_name: str = DEFAULT_AUTOMATION_SENSOR_NAME
    check_keys: tuple[AssetCheckKey, ...] = ()

    @property
    def keys(self) -> tuple[EntityKey, ...]:
        """What the run launches: its assets, then its checks."""
        return (*self.asset_keys, *self.check_keys)


@dataclass(frozen=True, slots=True)
class AutomationGraph:
    """The automated view of every loaded code location: the assets, where each is launched
    (location and job), which assets each job materializes, which automation sensor covers
    each automated asset and the run tags of each (location, sensor)."""

    assets: tuple[AutomationAsset, ...]
    launch: Mapping[EntityKey, tuple[str, str]]
    assets_of_job: Mapping[tuple[str, str], frozenset[AssetKey]]
    sensor_of: Mapping[EntityKey, str] = field(default_factory=dict)
    run_tags: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)
    order: tuple[EntityKey, ...] = ()  # upstream first
    # Time-partitioned assets: their partitions definition as JSON, to list keys as time passes.
    time_windows: Mapping[EntityKey, str] = field(default_factory=dict)
    # Each automation condition sensor's minimum_interval_seconds, by (location, sensor name),
    # and the sensor covering each asset targeted by one (the rest: every round).
    sensor_intervals: Mapping[tuple[str, str], float] = field(default_factory=dict)
    sensor_of_asset: Mapping[EntityKey, tuple[str, str]] = field(default_factory=dict)

    @property
    def automated(self) -> bool:
        return any(a.condition is not None for a in self.assets)


def automation_graph(
    snapshots: Iterable[LocationSnapshot],
    running: Mapping[tuple[str, str], bool] | None = None,
) -> AutomationGraph:
    """The assets of `snapshots` as automation sees them. An asset defined in two locations
    is taken from the first; a condition that does not read back is that asset's launch
    problem (recorded on its evaluation).

    An asset targeted by an automation condition sensor is automated only while one such
    sensor runs (`running`: (location, sensor name) -> running; absent means stopped); the
    others are covered by the default automation sensor, which always runs.
    """
    running = running or {}
    assets: dict[EntityKey, AutomationAsset] = {}
    launch: dict[EntityKey, tuple[str, str]] = {}
    assets_of_job: dict[tuple[str, str], set[AssetKey]] = {}
    sensor_of: dict[EntityKey, str] = {}
    sensor_intervals: dict[tuple[str, str], float] = {}
    sensor_of_asset: dict[EntityKey, tuple[str, str]] = {}
    run_tags: dict[tuple[str, str], Mapping[str, str]] = {}
    time_windows: dict[EntityKey, str] = {}
    for snapshot in snapshots:
        location = snapshot.location_name
        targeted: dict[AssetKey, str | None] = {}
        for sensor in snapshot.sensors:
            if not sensor.automation_condition_sensor:
                continue
            run_tags[(location, sensor.name)] = dict(sensor.automation_run_tags)
            sensor_intervals[(location, sensor.name)] = float(sensor.minimum_interval_seconds)
            on = running.get((location, sensor.name), False)
            for target in sensor.automation_targets:
                target_key = AssetKey(tuple(target.path))
                if targeted.get(target_key) is None:
                    targeted[target_key] = sensor.name if on else None
        for asset in snapshot.assets:
            if asset.key is None:
                continue
            key = AssetKey(tuple(asset.key.path))
            for job in asset.job_names:
                assets_of_job.setdefault((location, job), set()).add(key)
            if key in assets:
                continue
            partitions = (
                snapshot.partitions_defs[asset.partitions_index - 1]
                if asset.partitions_index
                else None
            )
            condition = None
            problem = asset.automation_launch_problem or None
            if asset.automation_condition_json:
                try:
                    condition = _parsed_condition(asset.automation_condition_json)
                except (ValueError, KeyError, TypeError, DefinitionError) as exc:
                    condition = condition_from_dict({"kind": "missing"})
                    problem = f"its automation condition does not load: {exc}"
            if asset.job_names:
                job = (
                    IMPLICIT_ASSET_JOB_NAME
                    if IMPLICIT_ASSET_JOB_NAME in asset.job_names
                    else asset.job_names[0]
                )
                launch[key] = (location, job)
            if partitions is not None and partitions.time_window_json:
                time_windows[key] = partitions.time_window_json
            covering = targeted.get(key, DEFAULT_AUTOMATION_SENSOR_NAME)
            if covering is None:
                condition = None  # its sensors are stopped
            elif condition is not None:
                sensor_of[key] = covering
                if (location, covering) in sensor_intervals:
                    sensor_of_asset[key] = (location, covering)
            dep_mappings: dict[AssetKey, PartitionMapping] = {}
            if asset.dep_partition_mappings_json:
                try:
                    dep_mappings = _parsed_mappings(asset.dep_partition_mappings_json)
                except (ValueError, TypeError) as exc:
                    problem = problem or f"its partition mappings do not load: {exc}"
            assets[key] = AutomationAsset(
                key=key,
                condition=condition,
                deps=tuple(AssetKey(tuple(d.path)) for d in asset.deps),
                partitions_def=_partitions_definition(partitions),
                dep_mappings=dep_mappings,
                partition_keys=tuple(partitions.keys) if partitions is not None else None,
                partition_end_times=(
                    tuple(partitions.end_times)
                    if partitions is not None and partitions.end_times
                    else None
                ),
                code_version=asset.code_version or None,
                launch_problem=problem if condition is not None else None,
            )
            for check in asset.checks:
                if not check.automation_condition_json:
                    continue
                check_key = AssetCheckKey(key, check.name)
                check_problem = _launch_problem(asset)
                if check_problem is None and check.executable_alone and key in launch:
                    # Its own op: launched alone in its asset's job when its asset is not.
                    launch[check_key] = launch[key]
                try:
                    check_condition = _parsed_condition(check.automation_condition_json)
                except (ValueError, KeyError, TypeError, DefinitionError) as exc:
                    check_condition = condition_from_dict({"kind": "missing"})
                    check_problem = f"its automation condition does not load: {exc}"
                if covering is None:
                    continue  # its asset's sensors are stopped
                sensor_of[check_key] = covering
                if (location, covering) in sensor_intervals:
                    sensor_of_asset[check_key] = (location, covering)
                assets[check_key] = check_entity(
                    check_key,
                    check_condition,
                    additional_deps=[AssetKey.from_user_string(d) for d in check.additional_deps],
                    launch_problem=check_problem,
                )
    return AutomationGraph(
        tuple(assets.values()),
        launch,
        {job: frozenset(keys) for job, keys in assets_of_job.items()},
        sensor_of,
        run_tags,
        topological_order(assets.values()),
        time_windows,
        sensor_intervals,
        sensor_of_asset,
    )


def _launch_problem(asset: Any) -> str | None:
    """Why a check of `asset` (an AssetSnapshot) cannot run: it runs in its asset's runs."""
    if asset.automation_launch_problem:
        return f"its asset cannot be launched: {asset.automation_launch_problem}"
    if not asset.job_names:
        return "no job of its code location materializes its asset"
    return None


def due_sensors(
    intervals: Mapping[tuple[str, str], float],
    last_evaluated: Mapping[tuple[str, str], float],
    now: float,
) -> frozenset[tuple[str, str]]:
    """The automation condition sensors whose `minimum_interval_seconds` has passed since
    they last evaluated (or that never did) at `now`."""
    return frozenset(
        sensor
        for sensor, interval in intervals.items()
        if sensor not in last_evaluated or now - last_evaluated[sensor] >= interval
    )


def sensor_evaluations(
    sensor_of_asset: Mapping[EntityKey, tuple[str, str]], cursors: Mapping[EntityKey, AssetCursor]
) -> dict[tuple[str, str], float]:
    """When each sensor last evaluated, by its assets' cursors (the latest of them)."""
    out: dict[tuple[str, str], float] = {}
    for key, sensor in sensor_of_asset.items():
        cursor = cursors.get(key)
        if cursor is not None and cursor.evaluation_time > out.get(sensor, float("-inf")):
            out[sensor] = cursor.evaluation_time
    return out


def graph_for_sensors(graph: AutomationGraph, due: frozenset[tuple[str, str]]) -> AutomationGraph:
    """`graph` with the assets of sensors that are not due left unevaluated this round
    (their conditions off: they request nothing and keep their state)."""
    waiting = {key for key, sensor in graph.sensor_of_asset.items() if sensor not in due}
    if not waiting:
        return graph
    assets = tuple(
        dataclasses.replace(a, condition=None) if a.key in waiting and a.condition else a
        for a in graph.assets
    )
    return dataclasses.replace(graph, assets=assets)


def snapshot_partitions(
    snapshot: LocationSnapshot, asset: Any
) -> tuple[PartitionsDefinition | None, tuple[str, ...] | None, dict[AssetKey, PartitionMapping]]:
    """What a location snapshot says of one asset's (an AssetSnapshot's) partitions: their
    definition, when it can be rebuilt without user code; their keys as the code listed
    them when it loaded (None: unpartitioned); and the partition mapping given for each
    dependency. Raises ValueError (or TypeError) for mappings that do not load."""
    partitions = (
        snapshot.partitions_defs[asset.partitions_index - 1] if asset.partitions_index else None
    )
    mappings = (
        _parsed_mappings(asset.dep_partition_mappings_json)
        if asset.dep_partition_mappings_json
        else {}
    )
    keys = tuple(partitions.keys) if partitions is not None else None
    return _partitions_definition(partitions), keys, mappings


@functools.lru_cache(maxsize=256)
def _parsed_mappings(text: str) -> dict[AssetKey, PartitionMapping]:
    data = json.loads(text)
    return {
        AssetKey.from_user_string(dep): partition_mapping_from_dict(mapping)
        for dep, mapping in data.items()
    }


def _partitions_definition(snapshot: PartitionsSnapshot | None) -> PartitionsDefinition | None:
    """The definition a partitions snapshot describes, when it can be rebuilt without user
    code (static and time-window partitions); None otherwise, and then a dependency's
    partitions are matched by key."""
    if snapshot is None:
        return None
    if snapshot.time_window_json:
        return _time_window_definition(snapshot.time_window_json)
    if snapshot.type == "static":
        return _static_definition(tuple(snapshot.keys))
    if snapshot.type == "multi" and snapshot.dimensions_json:
        return _multi_definition(snapshot.dimensions_json)
    return None


@functools.lru_cache(maxsize=256)
def _multi_definition(text: str) -> PartitionsDefinition:
    dimensions: dict[str, PartitionsDefinition] = {}
    for dimension in json.loads(text):
        if "time_window" in dimension:
            dimensions[dimension["name"]] = _time_window_definition(dimension["time_window"])
        else:
            dimensions[dimension["name"]] = _static_definition(tuple(dimension["keys"]))
    return MultiPartitionsDefinition(dimensions)


@functools.lru_cache(maxsize=256)
def _static_definition(keys: tuple[str, ...]) -> PartitionsDefinition:
    return StaticPartitionsDefinition(list(keys))


@functools.lru_cache(maxsize=256)
def _time_window_definition(text: str) -> TimeWindowPartitionsDefinition:
    from datetime import datetime

    data = json.loads(text)
    return TimeWindowPartitionsDefinition(
        start=datetime.fromisoformat(data["start"]),
        end=datetime.fromisoformat(data["end"]) if data.get("end") else None,
        fmt=data["fmt"],
        timezone=data.get("timezone"),
        end_offset=int(data.get("end_offset", 0)),
        cron_schedule=data["cron_schedule"],
    )


@functools.lru_cache(maxsize=256)
def _parsed_condition(text: str) -> AutomationCondition:
    """The condition a snapshot carries as JSON; one object per distinct text, so the
    evaluation's per-condition caches serve every asset sharing it."""
    return condition_from_dict(json.loads(text))


class TimeWindows:
    """The time-partitioned assets' keys as of a tick: a snapshot lists them as of when the
    code loaded, and a long-running daemon must see the windows that started since. One
    definition is rebuilt per distinct JSON and kept, so listing new windows is incremental."""

    def __init__(self) -> None:
        self._defs: dict[str, Any] = {}
        self._listed: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {}

    def keys(self, text: str, now: float) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """The keys of the definition `text` at `now`, and each window's end."""
        from datetime import UTC, datetime

        definition = self._defs.get(text)
        if definition is None:
            definition = self._defs[text] = _time_window_definition(text)
        keys = tuple(definition.get_partition_keys(current_time=datetime.fromtimestamp(now, UTC)))
        known_keys, known_ends = self._listed.get(text, ((), ()))
        if keys == known_keys:
            return known_keys, known_ends
        # Windows only ever start: new keys follow the known ones.
        reuse = len(known_keys) if keys[: len(known_keys)] == known_keys else 0
        ends = known_ends[:reuse] + tuple(
            definition.time_window_for_partition_key(k).end.timestamp() for k in keys[reuse:]
        )
        self._listed[text] = (keys, ends)
        return keys, ends

    def current(self, graph: AutomationGraph, now: float) -> AutomationGraph:
        """`graph` with its time-partitioned assets' keys as of `now` (itself if unchanged)."""
        if not graph.time_windows:
            return graph
        changed = False
        assets = []
        for asset in graph.assets:
            text = graph.time_windows.get(asset.key)
            if text is not None:
                keys, ends = self.keys(text, now)
                if keys != asset.partition_keys:
                    asset = dataclasses.replace(
                        asset, partition_keys=keys, partition_end_times=ends
                    )
                    changed = True
            assets.append(asset)
        return dataclasses.replace(graph, assets=tuple(assets)) if changed else graph


def run_records(
    graph: AutomationGraph,
    materialized: Mapping[EntityKey, Mapping[str | None, int]],
    unfinished: Sequence[Run],
    recent: Sequence[Run],
    previous: Mapping[EntityKey, AssetRecords] | None = None,
) -> dict[EntityKey, AssetRecords]:
    """Each asset's records: its materializations, the partitions of `unfinished` runs that
    target it, and the partitions whose newest run among `recent` (newest first) failed.
    An asset's record in `previous` is reused when it holds the same (the same
    materializations mapping object, equal in-progress and failed partitions)."""
    in_progress: dict[EntityKey, set[str | None]] = {}
    for run in unfinished:
        partition = run.tags.get(PARTITION_TAG) or None
        for key in _run_assets(graph, run):
            in_progress.setdefault(key, set()).add(partition)
    failed: dict[EntityKey, set[str | None]] = {}
    decided: set[tuple[EntityKey, str | None]] = set()
    for run in recent:
        partition = run.tags.get(PARTITION_TAG) or None
        for key in _run_assets(graph, run):
            if (key, partition) in decided:
                continue
            decided.add((key, partition))
            if run.status == RunStatus.FAILURE:
                failed.setdefault(key, set()).add(partition)
    out: dict[EntityKey, AssetRecords] = {}
    previous = previous or {}
    nothing: frozenset[str | None] = frozenset()
    empty: Mapping[str | None, int] = {}
    for asset in graph.assets:
        key = asset.key
        mat = materialized.get(key, empty)
        running = frozenset(in_progress[key]) if key in in_progress else nothing
        broken = frozenset(failed[key]) if key in failed else nothing
        before = previous.get(key)
        if (
            before is not None
            and before.materialized is mat
            and before.in_progress == running
            and before.failed == broken
        ):
            out[key] = before
        else:
            out[key] = AssetRecords(materialized=mat, in_progress=running, failed=broken)
    return out


def _run_assets(graph: AutomationGraph, run: Run) -> Iterable[EntityKey]:
    """What `run` targets: its selected assets and checks, else every asset of its job."""
    if run.asset_check_selection:
        checks = [
            AssetCheckKey(AssetKey(tuple(c.asset_key.path if c.asset_key else ())), c.name)
            for c in run.asset_check_selection
        ]
        return [*(AssetKey(tuple(k.path)) for k in run.asset_selection), *checks]
    if run.asset_selection:
        return (AssetKey(tuple(k.path)) for k in run.asset_selection)
    return graph.assets_of_job.get((run.code_location, run.job_name), frozenset())


def plan_automation_runs(
    requested: Mapping[EntityKey, Subset],
    launch: Mapping[EntityKey, tuple[str, str]],
    sensor_of: Mapping[EntityKey, str] | None = None,
) -> list[AutomationRun]:
    """As few runs as the requested partitions allow: one per code location, job, covering
    sensor and partition key, each selecting every asset requested for it. Assets with
    nowhere to launch are left out (their evaluation says why).

    A requested check runs in its asset's run when its asset is requested too (a run of an
    asset executes the asset's checks). Otherwise, when it has somewhere to launch (its own
    op, see `automation_graph`), it runs in a run of checks alone: one per code location,
    job and covering sensor, executing only those checks (see `checks_launched`)."""
    sensor_of = sensor_of or {}
    groups: dict[tuple[str, str, str, str | None], list[AssetKey]] = {}
    check_groups: dict[tuple[str, str, str], list[AssetCheckKey]] = {}
    for key, partitions in requested.items():
        if isinstance(key, AssetCheckKey):
            where = launch.get(key)
            if where is not None and key.asset_key not in requested:
                sensor = sensor_of.get(key, DEFAULT_AUTOMATION_SENSOR_NAME)
                check_groups.setdefault((*where, sensor), []).append(key)
            continue
        where = launch.get(key)
        if where is None:
            continue
        sensor = sensor_of.get(key, DEFAULT_AUTOMATION_SENSOR_NAME)
        for partition in partitions:
            groups.setdefault((*where, sensor, partition), []).append(key)
    ordered = sorted(groups.items(), key=lambda item: (*item[0][:3], item[0][3] or ""))
    runs = [
        AutomationRun(location, job, partition, tuple(sorted(keys, key=lambda k: k.path)), sensor)
        for (location, job, sensor, partition), keys in ordered
    ]
    for (location, job, sensor), checks in sorted(check_groups.items()):
        ordered_checks = tuple(sorted(checks, key=lambda k: (k.asset_key.path, k.name)))
        runs.append(AutomationRun(location, job, None, (), sensor, ordered_checks))
    return runs


_TICK_STATE = ""  # the state entry holding the tick's own time and storage id


def split_state(
    cursors: Mapping[EntityKey, AssetCursor],
    previous: Mapping[EntityKey, AssetCursor] | None = None,
) -> dict[str, str]:
    """Stored form of a tick's cursors: one entry per asset without the tick-wide fields,
    and one entry ("") with them. With `previous` (the cursors last stored), only the assets
    whose entry differs from theirs are included."""
    out: dict[str, str] = {}
    tick: dict[str, float] = {}
    for key, cursor in cursors.items():
        if previous is not None:
            before = previous.get(key)
            if before is not None and _same_entry(before, cursor):
                tick = {
                    "evaluation_time": cursor.evaluation_time,
                    "max_storage_id": cursor.max_storage_id,
                }
                continue
        data = cursor.to_dict()
        tick = {"evaluation_time": data.pop("evaluation_time")}
        tick["max_storage_id"] = data.pop("max_storage_id")
        out[_state_key(key)] = json.dumps(data, sort_keys=True)
    if tick:
        out[_TICK_STATE] = json.dumps(tick, sort_keys=True)
    return out


def _same_entry(a: AssetCursor, b: AssetCursor) -> bool:
    return a is b or (
        a.requested == b.requested
        and a.tree_hash == b.tree_hash
        and a.inputs == b.inputs
        and a.stable == b.stable
        and a.code_version == b.code_version
        and a.condition_hash == b.condition_hash
        and (a.node_state is b.node_state or a.node_state == b.node_state)
    )


def join_state(stored: Mapping[str, str]) -> dict[EntityKey, AssetCursor]:
    """The cursors `split_state` stored."""
    tick_text = stored.get(_TICK_STATE)
    if tick_text is None:
        return {}
    tick = json.loads(tick_text)
    out: dict[EntityKey, AssetCursor] = {}
    for key_text, body in stored.items():
        if key_text == _TICK_STATE:
            continue
        out[_parse_state_key(key_text)] = AssetCursor.from_dict({**json.loads(body), **tick})
    return out


def _state_key(key: EntityKey) -> str:
    """A cursor's stored key: `a/b` for an asset, `a/b//name` for a check (no asset key
    holds an empty component, so `//` never appears in one)."""
    if isinstance(key, AssetCheckKey):
        return f"{key.asset_key.to_user_string()}//{key.name}"
    return key.to_user_string()


def _parse_state_key(text: str) -> EntityKey:
    asset, sep, name = text.partition("//")
    if sep:
        return AssetCheckKey(AssetKey.from_user_string(asset), name)
    return AssetKey.from_user_string(text)


def checks_launched(
    requested: Mapping[EntityKey, Subset],
    run_ids: Mapping[EntityKey, Sequence[str]],
    errors: Mapping[EntityKey, str],
) -> tuple[dict[EntityKey, list[str]], dict[EntityKey, str]]:
    """The runs each requested check executes in that `run_ids` does not already name (those
    launched for its asset this tick), and why the others were not launched: a run executes
    the checks of its assets, and a check computed by its asset's op (not launched in a run
    of checks alone, see `plan_automation_runs`) runs only with its asset."""
    ran: dict[EntityKey, list[str]] = {}
    refused: dict[EntityKey, str] = {}
    for key in requested:
        if not isinstance(key, AssetCheckKey) or key in run_ids or key in errors:
            continue
        name = key.to_user_string()
        if key.asset_key in errors:
            refused[key] = f"asset check {name!r}: its asset's run was not launched"
        elif run_ids.get(key.asset_key):
            ran[key] = list(run_ids[key.asset_key])
        else:
            refused[key] = (
                f"asset check {name!r}: not launched: it is computed by its asset's op, so it "
                f"runs only with {key.asset_key.to_user_string()!r}, which was not requested"
            )
    return ran, refused


class AutomationLoop(LeasedInstigatorLoop):
    """The `automation` daemon loop (see the module). A round that raises records nothing
    (the next round evaluates again from the stored state); an asset whose run the
    coordinator refuses gets the refusal as its evaluation's error, and the others go on."""

    name = "automation"
    lease = "automation"

    def __init__(
        self,
        instance: DagloomInstance,
        locations: Mapping[str, ActorRef[Any, Any]],
        coordinator: ActorRef[Any, Any],
        *,
        owner: str,
        interval: float = 30.0,
        lease_seconds: float | None = None,
        ask_timeout: float = 60.0,
        keep_seconds: float = 7 * 86400.0,
    ) -> None:
        super().__init__(
            instance,
            locations,
            coordinator,
            owner=owner,
            interval=interval,
            lease_seconds=lease_seconds,
            ask_timeout=ask_timeout,
        )
        self._keep_seconds = keep_seconds
        self.last_result: AutomationTickResult | None = None
        self.last_runs: list[str] = []
        # What the previous round saw, reused while this daemon keeps the lease.
        self._fence_token: int | None = None
        self._cursors: dict[EntityKey, AssetCursor] = {}
        self._materialized: dict[EntityKey, dict[str | None, int]] = {}
        self._last_records: dict[EntityKey, AssetRecords] = {}
        self._graph: tuple[object, AutomationGraph] | None = None
        self._time_windows = TimeWindows()
        self._seen_storage_id = 0
        # Each checked asset -> the newest check evaluation read of it.
        self._seen_check_ids: dict[AssetKey, int] = {}
        # When each automation condition sensor last evaluated its assets (this process).
        self._sensor_evaluated: dict[tuple[str, str], float] = {}

    @classmethod
    def from_instance(
        cls,
        instance: DagloomInstance,
        locations: Mapping[str, ActorRef[Any, Any]],
        coordinator: ActorRef[Any, Any],
        *,
        owner: str,
    ) -> AutomationLoop | None:
        """The loop the instance's `auto_materialize` section configures; None when it is
        disabled."""
        config = instance.config.auto_materialize
        if not config.enabled:
            return None
        return cls(
            instance,
            locations,
            coordinator,
            owner=owner,
            interval=config.minimum_interval_seconds,
            keep_seconds=config.max_evaluations_kept_seconds,
        )

    async def tick(self, now: float) -> None:
        """One round (see the class). Blocks while storage is read and runs are submitted."""
        self.last_result = None
        self.last_runs = []
        leased = await self._leased_locations(now)
        if leased is None:
            self._fence_token = None
            return
        locations, _problems = leased
        running = await self._running_sensors(locations, now)
        # The graph changes only with a snapshot (a reload) or a sensor's state.
        graph_key = (
            tuple((loc.name, loc.snapshot.loaded_at, id(loc.snapshot)) for loc in locations),
            tuple(sorted(running.items())),
        )
        if self._graph is not None and self._graph[0] == graph_key:
            graph = self._graph[1]
        else:
            graph = automation_graph([loc.snapshot for loc in locations], running)
        graph = self._time_windows.current(graph, now)
        self._graph = (graph_key, graph)
        if not graph.automated:
            return
        storage = self._storage()
        assert self.fence is not None
        if self._fence_token != self.fence.token:
            # Newly holding the lease: another daemon may have written since.
            self._cursors = join_state(await storage.get_automation_state())
            self._materialized = {}
            self._seen_storage_id = 0
            self._seen_check_ids = {}
            self._fence_token = self.fence.token
        # A sensor's last evaluation: this process's, else its assets' stored cursors.
        last = {
            **sensor_evaluations(graph.sensor_of_asset, self._cursors),
            **self._sensor_evaluated,
        }
        due = due_sensors(graph.sensor_intervals, last, now)
        graph = graph_for_sensors(graph, due)
        records = await self._records(graph)
        cursors = self._cursors
        result = await anyio.to_thread.run_sync(
            functools.partial(evaluate_automation, order=graph.order),
            graph.assets,
            records,
            cursors,
            now,
        )
        planned = plan_automation_runs(result.requested, graph.launch, graph.sensor_of)
        errors, run_ids = await self._launch(locations, planned, now, graph.run_tags)
        stored_records = []
        checks_run, check_errors = checks_launched(result.requested, run_ids, errors)
        run_ids.update(checks_run)
        errors.update(check_errors)
        for key in sorted(result.changed | set(errors), key=entity_sort_key):
            evaluation = result.evaluations[key]
            body = evaluation.to_dict()
            if key in errors:
                body["error"] = errors[key]
            stored_records.append(
                AutomationEvaluationRecord(
                    asset_key=key.to_user_string(),
                    timestamp=now,
                    num_requested=evaluation.num_requested,
                    body=json.dumps(body),
                    run_ids=tuple(run_ids.get(key, ())),
                )
            )
        changed_state = split_state(result.cursors, self._cursors)
        await storage.store_automation_tick(changed_state, stored_records, fence=self.fence)
        self._cursors = {**self._cursors, **result.cursors}
        if self._keep_seconds:
            await storage.purge_automation_evaluations(now - self._keep_seconds)
        self.last_result = result
        self._sensor_evaluated.update(dict.fromkeys(due, now))

    async def _running_sensors(
        self, locations: Sequence[Location], now: float
    ) -> dict[tuple[str, str], bool]:
        """Whether each automation condition sensor runs (its stored state, created from
        its default status the first time it is seen)."""
        storage = self._instance.schedule_storage
        out: dict[tuple[str, str], bool] = {}
        for location in locations:
            for sensor in location.snapshot.sensors:
                if sensor.automation_condition_sensor:
                    state = await sync_state(storage, sensor_state(location.name, sensor, now=now))
                    out[(location.name, sensor.name)] = is_running(state)
        return out

    def _storage(self) -> AutomationStorage:
        storage = self._instance.schedule_storage
        assert isinstance(storage, AutomationStorage), "schedule storage lacks automation"
        return storage

    async def _records(self, graph: AutomationGraph) -> dict[EntityKey, AssetRecords]:
        events = self._instance.event_log_storage
        newer = await events.get_latest_materialization_ids(after=self._seen_storage_id)
        for path, partitions in newer.items():
            key = AssetKey(path)
            # A new dict for a changed asset: records built from the old one stay as they were.
            self._materialized[key] = {**self._materialized.get(key, {}), **partitions}
            self._seen_storage_id = max(self._seen_storage_id, *partitions.values())
        await self._check_executions(graph)
        runs = self._instance.run_storage
        unfinished = await runs.get_runs(RunsFilter(statuses=list(_UNFINISHED)))
        recent = await runs.get_runs(limit=_RECENT_RUNS)
        self._last_records = run_records(
            graph, self._materialized, unfinished, recent, self._last_records
        )
        return self._last_records

    async def _check_executions(self, graph: AutomationGraph) -> None:
        """Record each automated check's latest execution (its storage id) as the check's
        `materialized` entry: one read per checked asset, of the evaluations stored since
        the previous round (all of them on the first)."""
        checked = sorted(
            {a.key.asset_key for a in graph.assets if isinstance(a.key, AssetCheckKey)},
            key=lambda k: k.path,
        )
        for asset_key in checked:
            latest: dict[str, int] = {}
            for record in await self._new_check_evaluations(asset_key):
                data = record.event.asset_check_evaluation if record.event else None
                if data is not None and data.check_name not in latest:
                    latest[data.check_name] = record.storage_id
            for name, storage_id in latest.items():
                key = AssetCheckKey(asset_key, name)
                if self._materialized.get(key, {}).get(None) != storage_id:
                    self._materialized[key] = {None: storage_id}

    async def _new_check_evaluations(self, asset_key: AssetKey) -> list[EventRecord]:
        """The check evaluations of `asset_key` stored since the newest one read before,
        newest first: a few at first, more only while all of those read are new."""
        events = self._instance.event_log_storage
        seen = self._seen_check_ids.get(asset_key, 0)
        limit: int | None = None if seen == 0 else 16
        while True:
            records = await events.get_asset_check_evaluations(list(asset_key.path), limit=limit)
            if limit is None or len(records) < limit or records[-1].storage_id <= seen:
                break
            limit *= 4
        new = [r for r in records if r.storage_id > seen]
        if new:
            self._seen_check_ids[asset_key] = new[0].storage_id
        return new

    async def _launch(
        self,
        locations: Sequence[Location],
        planned: Sequence[AutomationRun],
        now: float,
        graph_tags: Mapping[tuple[str, str], Mapping[str, str]],
    ) -> tuple[dict[EntityKey, str], dict[EntityKey, list[str]]]:
        """Submit `planned`; return the refusals and the run ids, by asset."""
        errors: dict[EntityKey, str] = {}
        run_ids: dict[EntityKey, list[str]] = {}
        if planned and self.fence is not None:
            await self._instance.schedule_storage.check_fence(self.fence)
        loaded = {loc.name for loc in locations}
        for run in planned:
            if run.location_name not in loaded:
                continue
            tags = {
                **graph_tags.get((run.location_name, run.sensor_name), {}),
                AUTOMATION_TAG: "true",
                EVALUATION_TAG: f"{now:.3f}",
                SENSOR_NAME_TAG: run.sensor_name,
            }
            if run.partition_key is not None:
                tags[PARTITION_TAG] = run.partition_key
            run_id = derived_run_id(
                "automation",
                f"{now:.6f}",
                run.location_name,
                run.job_name,
                run.sensor_name,
                run.partition_key or "",
                *(["checks"] if run.check_keys else []),
            )
            request = SubmitRunRequest(
                location_name=run.location_name,
                job_name=run.job_name,
                run_config_json="{}",
                tags=tags,
                asset_selection=[_key_message(k) for k in run.asset_keys],
                asset_check_selection=[_check_key_message(k) for k in run.check_keys],
                run_id=run_id,
                request_id=run_id,
            )
            try:
                stored = await submit_run(self._coordinator, request, timeout=self._timeout)
            except (ConfigError, DefinitionError) as exc:
                for key in run.keys:
                    kind = "asset check" if isinstance(key, AssetCheckKey) else "asset"
                    errors[key] = f"{kind} {key.to_user_string()!r}: run not launched: {exc}"
                self._log.warning("automation_run_refused", error=str(exc))
                continue
            self.last_runs.append(stored.run_id)
            for key in run.keys:
                run_ids.setdefault(key, []).append(stored.run_id)
        return errors, run_ids


def _key_message(key: AssetKey) -> Any:
    from dagloom.code.snapshot import asset_key_message

    return asset_key_message(key)


def _check_key_message(key: AssetCheckKey) -> Any:
    from dagloom.code.snapshot import check_key_message as message

    return message(key)


__all__ = [
    "AutomationGraph",
    "AutomationLoop",
    "AutomationRun",
    "TimeWindows",
    "automation_graph",
    "join_state",
    "plan_automation_runs",
    "run_records",
    "snapshot_partitions",
    "split_state",
]
