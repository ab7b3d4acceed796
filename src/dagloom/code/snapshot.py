"""Snapshots: a code location's definitions, run requests and tick outcomes as wire messages.

Everything here is pure and sync: it reads definitions and builds betterproto2 messages, with
no I/O and no user code run, so it is tested without an event loop. The code location actor
(`dagloom.actors.code_location`) calls it once per load and once per tick.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import types
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import orjson

from dagloom.definitions.asset import AssetsDefinition, AssetSpec
from dagloom.definitions.asset_checks import AssetCheckKey
from dagloom.definitions.asset_job import IMPLICIT_ASSET_JOB_NAME
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.automation_condition_sensor import AutomationConditionSensorDefinition
from dagloom.definitions.definitions import Definitions
from dagloom.definitions.event_sensors import AssetSensorDefinition, RunStatusSensorDefinition
from dagloom.definitions.job import JobDefinition
from dagloom.definitions.node import (
    Binding,
    FromCollect,
    FromDynamicElement,
    FromFanIn,
    FromGraphInput,
    FromOutput,
    Node,
)
from dagloom.definitions.partition_mapping import PartitionMapping, partition_mapping_to_dict
from dagloom.definitions.partitions import (
    DeleteDynamicPartitionsRequest,
    DynamicPartitionsDefinition,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionsDefinition,
)
from dagloom.definitions.run_request import RunRequest
from dagloom.definitions.schedule import (
    DefaultScheduleStatus,
    ScheduleDefinition,
    ScheduleExecutionData,
)
from dagloom.definitions.sensor import DefaultSensorStatus, SensorDefinition, SensorExecutionData
from dagloom.errors import CodeLocationLoadError, DefinitionError
from dagloom.execution.events import error_info
from dagloom.messages import (
    AssetCheckKeyMessage,
    AssetCheckSnapshot,
    AssetKeyMessage,
    DynamicPartitionsRequestMessage,
    ErrorInfo,
    PartitionsSnapshot,
)
from dagloom.messages.rpc import (
    AssetSnapshot,
    BackfillPolicySnapshot,
    JobSnapshot,
    LocationSnapshot,
    NodeInputSnapshot,
    NodeSnapshot,
    RunRequestMessage,
    ScheduleSnapshot,
    SensorSnapshot,
    TickResult,
)

__all__ = [
    "asset_key_message",
    "asset_snapshots",
    "check_key_message",
    "check_key_of",
    "failed_snapshot",
    "job_snapshot",
    "load_error_info",
    "location_snapshot",
    "run_request_message",
    "schedule_snapshot",
    "schedule_tick_result",
    "sensor_snapshot",
    "sensor_tick_result",
    "snapshot_jobs",
    "tick_error",
]


# -- definitions -> LocationSnapshot -------------------------------------------------------


def location_snapshot(
    definitions: Definitions, *, location_name: str, loaded_at: float
) -> LocationSnapshot:
    """Everything `definitions` declares, as one message.

    Jobs are those of `snapshot_jobs`; assets come with the jobs that materialize them;
    `loaded_at` is when the code was imported (seconds since the epoch). Raises
    `DefinitionError` if the implicit asset job cannot be built.
    """
    jobs = snapshot_jobs(definitions)
    assets = asset_snapshots(definitions, jobs)
    partitions_defs, index, job_index = partitions_snapshots(definitions, jobs)
    for asset in assets:
        if asset.key is not None:
            asset.partitions_index = index.get(tuple(asset.key.path), 0)
    return LocationSnapshot(
        job_partitions_index=job_index,
        location_name=location_name,
        jobs=[job_snapshot(job) for job in jobs],
        assets=assets,
        partitions_defs=partitions_defs,
        schedules=[schedule_snapshot(s) for s in definitions.schedules],
        sensors=[_with_automation(definitions, s) for s in definitions.sensors],
        resource_keys=sorted(definitions.resources),
        loaded_at=loaded_at,
    )


def failed_snapshot(location_name: str, error: ErrorInfo, *, loaded_at: float) -> LocationSnapshot:
    """The snapshot of a location whose code never loaded: no definitions, and the error."""
    return LocationSnapshot(location_name=location_name, load_error=error, loaded_at=loaded_at)


def load_error_info(exc: BaseException) -> ErrorInfo:
    """`exc` as an ErrorInfo whose stack is the user's traceback when the loader kept one.

    `CodeLocationLoadError.traceback_text` leaves out the loader's and importlib's frames,
    so the stack reads as the user's own code.
    """
    info = error_info(exc)
    if isinstance(exc, CodeLocationLoadError) and exc.traceback_text:
        info.stack = exc.traceback_text
    return info


def snapshot_jobs(definitions: Definitions) -> list[JobDefinition]:
    """The jobs a location serves: every declared or targeted job (asset jobs resolved), then
    the implicit asset job `__ASSET_JOB` when there are assets and it is not declared."""
    jobs = definitions.get_all_job_defs()
    if definitions.asset_graph.keys and not definitions.has_job(IMPLICIT_ASSET_JOB_NAME):
        jobs.append(definitions.get_implicit_global_asset_job_def())
    return jobs


def job_snapshot(job: JobDefinition) -> JobSnapshot:
    """`job` as data: its nodes in declaration order, its asset keys, and `snapshot_id`.

    `snapshot_id` is the SHA-256 of the snapshot's own bytes (with an empty id), maps in key
    order, and of each op's compiled code (`code_digest`), so two loads of the same job give
    the same id, in any process of one Python version, and any change to the graph, tags,
    executor or an op's body gives another. What an op calls elsewhere is not covered.
    """
    asset_keys = job.asset_layer.asset_keys if job.asset_layer is not None else []
    snapshot = JobSnapshot(
        name=job.name,
        description=job.description or "",
        tags=_string_map(job.tags),
        nodes=[node_snapshot(node) for node in job.nodes.values()],
        asset_keys=[asset_key_message(key) for key in asset_keys],
        executor=job.executor_def.name,
    )
    digest = hashlib.sha256(bytes(snapshot))
    for node in job.nodes.values():
        digest.update(code_digest(node.op.compute_fn).encode())
    snapshot.snapshot_id = digest.hexdigest()
    return snapshot


def code_digest(fn: object) -> str:
    """The SHA-256 of `fn`'s compiled code (bytecode, constants, names; nested functions
    included), or "" for a callable without code. Equal in every process running one Python
    version: no addresses, file names or line numbers, and sets of constants sorted."""
    code = getattr(inspect.unwrap(fn) if callable(fn) else fn, "__code__", None)
    if not isinstance(code, types.CodeType):
        return ""
    digest = hashlib.sha256()
    _hash_code(code, digest)
    return digest.hexdigest()


def _hash_code(code: types.CodeType, digest: Any) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _hash_code(const, digest)
        elif isinstance(const, frozenset):
            # A set's order follows string hashing, which differs between processes.
            digest.update(repr(sorted(repr(item) for item in const)).encode())
        else:
            digest.update(repr(const).encode())


def node_snapshot(node: Node) -> NodeSnapshot:
    """One node of a job: its op, each declared input with where it comes from, its outputs.

    An input that no node feeds (loaded from an asset, a default or config) has no upstream
    nodes; a fan-in input lists each source node and, when they agree, the output name.
    """
    inputs = []
    for input_name in node.op.ins:
        binding = node.inputs.get(input_name)
        upstream, output = _upstream(binding) if binding is not None else ([], "")
        inputs.append(
            NodeInputSnapshot(name=input_name, upstream_nodes=upstream, upstream_output=output)
        )
    return NodeSnapshot(
        name=node.name,
        op_name=node.op.name,
        description=node.op.description or "",
        inputs=inputs,
        outputs=list(node.op.outs),
        tags=_string_map({**node.op.tags, **node.tags}),
        is_async=node.op.is_async,
        after_nodes=list(node.after),
        config_schema_json=_config_schema_json(node),
    )


def _config_schema_json(node: Node) -> str:
    """The JSON Schema of the node's op config as JSON text; "" when it takes none."""
    from dagloom.definitions.config_schema import op_config_schema

    schema = op_config_schema(node.op.config_model, node.op.config_field)
    return orjson.dumps(schema, default=str).decode() if schema is not None else ""


def _upstream(binding: Binding) -> tuple[list[str], str]:
    match binding:
        case FromOutput(node=node, output=output):
            return [node], output
        case FromDynamicElement(node=node, output=output) | FromCollect(node=node, output=output):
            return [node], output
        case FromFanIn(sources=sources):
            outputs = {source.output for source in sources}
            return [s.node for s in sources], outputs.pop() if len(outputs) == 1 else ""
        case FromGraphInput():
            # Jobs inline their graphs, so a job's nodes never read a graph input.
            return [], ""


def asset_snapshots(
    definitions: Definitions, jobs: Iterable[JobDefinition] = ()
) -> list[AssetSnapshot]:
    """Every asset `definitions` declares, computed or external (an `AssetSpec`), in
    declaration order; `job_names` lists those of `jobs` that materialize it."""
    job_names: dict[AssetKey, list[str]] = {}
    for job in jobs:
        if job.asset_layer is not None:
            for key in job.asset_layer.asset_keys:
                job_names.setdefault(key, []).append(job.name)
    checks: dict[AssetKey, list[AssetCheckSnapshot]] = {}
    # (spec, whether its op is its own: @asset_check, not the asset's op's check_specs)
    check_specs = [(spec, True) for c in definitions.asset_checks for spec in c.specs]
    check_specs += [
        (spec, False)
        for item in definitions.assets
        if isinstance(item, AssetsDefinition)
        for spec in item.check_specs
    ]
    for check, alone in check_specs:
        checks.setdefault(check.asset_key, []).append(
            AssetCheckSnapshot(
                name=check.name,
                description=check.description or "",
                blocking=check.blocking,
                automation_condition_json=(
                    json.dumps(check.automation_condition.to_dict())
                    if check.automation_condition is not None
                    else ""
                ),
                additional_deps=[dep.to_user_string() for dep in check.additional_deps],
                executable_alone=alone,
            )
        )
    out: list[AssetSnapshot] = []
    for item in definitions.assets:
        if isinstance(item, AssetsDefinition):
            for spec in item.specs:
                snapshot = _asset(
                    spec, item.deps_by_key[spec.key], item.op.name, job_names.get(spec.key)
                )
                snapshot.dep_partition_mappings_json = _dep_mappings_json(
                    item.partition_mappings, item.deps_by_key[spec.key]
                )
                snapshot.checks = checks.get(spec.key, [])
                if item.backfill_policy is not None:
                    snapshot.backfill_policy = BackfillPolicySnapshot(
                        max_partitions_per_run=item.backfill_policy.max_partitions_per_run or 0
                    )
                out.append(snapshot)
        else:
            snapshot = _asset(item, item.dep_keys, "", job_names.get(item.key))
            snapshot.checks = checks.get(item.key, [])
            out.append(snapshot)
    return out


def _dep_mappings_json(
    mappings: Mapping[AssetKey, PartitionMapping], deps: Sequence[AssetKey]
) -> str:
    """The partition mappings given on `deps`, as JSON ("" for none)."""
    out: dict[str, Any] = {}
    for dep in deps:
        mapping = mappings.get(dep)
        data = partition_mapping_to_dict(mapping) if mapping is not None else None
        if data is not None:
            out[dep.to_user_string()] = data
    return json.dumps(out, sort_keys=True) if out else ""


def partitions_snapshots(
    definitions: Definitions, jobs: Sequence[JobDefinition] = ()
) -> tuple[list[PartitionsSnapshot], dict[tuple[str, ...], int], dict[str, int]]:
    """Each distinct partitions definition of the assets and of `jobs` once; for each
    partitioned asset's key path, and each partitioned job's name, the 1-based index of
    its own: many share one definition, and its keys are sent once."""
    out: list[PartitionsSnapshot] = []
    seen: dict[int, int] = {}
    same: dict[bytes, int] = {}

    def place(partitions_def: PartitionsDefinition) -> int:
        position = seen.get(id(partitions_def))
        if position is None:
            snapshot = partitions_snapshot(partitions_def)
            assert snapshot is not None
            wire = bytes(snapshot)
            position = same.get(wire)
            if position is None:
                out.append(snapshot)
                position = same[wire] = len(out)
            seen[id(partitions_def)] = position
        return position

    index: dict[tuple[str, ...], int] = {}
    for item in definitions.assets:
        partitions_def = getattr(item, "partitions_def", None)
        if partitions_def is None:
            continue
        position = place(partitions_def)
        keys = (
            [spec.key for spec in item.specs] if isinstance(item, AssetsDefinition) else [item.key]
        )
        for key in keys:
            index[tuple(key.path)] = position
    job_index: dict[str, int] = {}
    for job in jobs:
        job_partitions = job.partitions_def
        if job_partitions is not None:
            job_index[job.name] = place(job_partitions)
    return out, index, job_index


def partitions_snapshot(partitions_def: PartitionsDefinition | None) -> PartitionsSnapshot | None:
    """An asset's partitions as data: their kind, the definition as text, and the keys it
    has now (dynamic partitions: the instance's name for them instead). None when the
    asset is not partitioned."""
    if partitions_def is None:
        return None
    kinds: list[tuple[type[PartitionsDefinition], str]] = [
        (StaticPartitionsDefinition, "static"),
        (TimeWindowPartitionsDefinition, "time_window"),
        (DynamicPartitionsDefinition, "dynamic"),
        (MultiPartitionsDefinition, "multi"),
    ]
    kind = next((name for cls, name in kinds if isinstance(partitions_def, cls)), "custom")
    out = PartitionsSnapshot(type=kind, description=str(partitions_def))
    if isinstance(partitions_def, DynamicPartitionsDefinition) and partitions_def.name:
        out.dynamic_name = partitions_def.name
        return out
    # Keys that need the instance (a multi-dimension with a dynamic one) are left out.
    with contextlib.suppress(DefinitionError):
        out.keys = list(partitions_def.get_partition_keys())
    if isinstance(partitions_def, MultiPartitionsDefinition):
        out.dimensions_json = _dimensions_json(partitions_def)
    if isinstance(partitions_def, TimeWindowPartitionsDefinition):
        out.time_window_json = _time_window_json(partitions_def)
        out.end_times = [
            partitions_def.time_window_for_partition_key(key).end.timestamp() for key in out.keys
        ]
    return out


def _time_window_json(definition: TimeWindowPartitionsDefinition) -> str:
    return json.dumps(
        {
            "start": definition.start.isoformat(),
            "end": definition.end.isoformat() if definition.end else None,
            "fmt": definition.fmt,
            "timezone": definition.timezone,
            "end_offset": definition.end_offset,
            "cron_schedule": definition.cron_schedule,
        }
    )


def _dimensions_json(definition: MultiPartitionsDefinition) -> str:
    """The dimensions of `definition` as JSON, or "" when one is neither static nor
    time-window partitioned."""
    dimensions: list[dict[str, Any]] = []
    for dimension in definition.partitions_defs:
        part = dimension.partitions_def
        if isinstance(part, TimeWindowPartitionsDefinition):
            dimensions.append({"name": dimension.name, "time_window": _time_window_json(part)})
        elif isinstance(part, StaticPartitionsDefinition):
            dimensions.append({"name": dimension.name, "keys": part.get_partition_keys()})
        else:
            return ""
    return json.dumps(dimensions)


def _asset(
    spec: AssetSpec, deps: Sequence[AssetKey], op_name: str, job_names: list[str] | None
) -> AssetSnapshot:
    condition = spec.automation_condition
    launch_problem = ""
    if condition is not None and not op_name:
        launch_problem = "it is an external asset, which only reported events materialize"
    elif condition is not None and not job_names:
        launch_problem = "no job of its code location materializes it"
    return AssetSnapshot(
        key=asset_key_message(spec.key),
        group_name=spec.group_name,
        description=spec.description or "",
        kinds=sorted(spec.kinds),
        deps=[asset_key_message(dep) for dep in deps],
        op_name=op_name,
        job_names=list(job_names or ()),
        automation_condition_json=json.dumps(condition.to_dict()) if condition else "",
        code_version=spec.code_version or "",
        observable=getattr(spec, "observe_fn", None) is not None,
        automation_launch_problem=launch_problem,
    )


def schedule_snapshot(schedule: ScheduleDefinition) -> ScheduleSnapshot:
    """A schedule's name, cron strings, target job, timezone and default status."""
    cron = schedule.cron_schedule
    return ScheduleSnapshot(
        name=schedule.name,
        cron_schedules=[cron] if isinstance(cron, str) else list(cron),
        job_name=schedule.job_name,
        execution_timezone=schedule.execution_timezone or "",
        description=schedule.description or "",
        default_running=schedule.default_status is DefaultScheduleStatus.RUNNING,
        catch_up=schedule.catch_up or "",
    )


def sensor_snapshot(sensor: SensorDefinition) -> SensorSnapshot:
    """A sensor's name, target jobs, interval and default status."""
    return SensorSnapshot(
        name=sensor.name,
        job_names=list(sensor.job_names),
        minimum_interval_seconds=sensor.minimum_interval_seconds,
        description=sensor.description or "",
        default_running=sensor.default_status is DefaultSensorStatus.RUNNING,
        **_event_sensor_fields(sensor),
    )


def _with_automation(definitions: Definitions, sensor: SensorDefinition) -> SensorSnapshot:
    """`sensor_snapshot`, with the assets an AutomationConditionSensorDefinition targets
    (resolved here: the daemon has no asset graph to resolve a selection against)."""
    snapshot = sensor_snapshot(sensor)
    if isinstance(sensor, AutomationConditionSensorDefinition):
        keys = sensor.target.resolve(definitions.asset_graph)
        snapshot.automation_condition_sensor = True
        snapshot.automation_targets = [
            asset_key_message(k) for k in sorted(keys, key=lambda k: k.path)
        ]
        snapshot.automation_run_tags = sensor.run_tags
    return snapshot


def _event_sensor_fields(sensor: SensorDefinition) -> dict[str, Any]:
    """What the daemon must look up in storage for a run status or asset sensor."""
    if isinstance(sensor, RunStatusSensorDefinition):
        return {
            "monitored_run_status": sensor.run_status.name,
            "monitored_job_names": sensor.monitored_job_names,
            "monitor_all_code_locations": sensor.monitor_all_code_locations,
        }
    if isinstance(sensor, AssetSensorDefinition):
        return {"monitored_asset_key": asset_key_message(sensor.asset_key)}
    return {}


def asset_key_message(key: AssetKey) -> AssetKeyMessage:
    """An AssetKey as its wire message."""
    return AssetKeyMessage(path=list(key.path))


def check_key_message(key: AssetCheckKey) -> AssetCheckKeyMessage:
    """An AssetCheckKey as its wire message."""
    return AssetCheckKeyMessage(asset_key=asset_key_message(key.asset_key), name=key.name)


def check_key_of(message: AssetCheckKeyMessage) -> AssetCheckKey:
    """The AssetCheckKey a wire message names."""
    path = message.asset_key.path if message.asset_key is not None else []
    return AssetCheckKey(AssetKey(tuple(path)), message.name)


def _string_map(values: Mapping[str, Any]) -> dict[str, str]:
    # Sorted so the serialized map, and so the snapshot id, do not depend on insertion order.
    return {str(k): str(values[k]) for k in sorted(values, key=str)}


# -- ticks -> TickResult -------------------------------------------------------------------


def run_request_message(
    request: RunRequest, *, default_asset_selection: Collection[AssetKey] | None = None
) -> RunRequestMessage:
    """A run request as its wire message; run config travels as JSON with sorted keys.

    `default_asset_selection` (sorted) fills in a request that names no assets, for a sensor
    that targets assets rather than jobs. Raises `DefinitionError` when the run config is not
    JSON (a set, an object) or an asset key is malformed, since neither can cross the wire.
    """
    try:
        config_json = json.dumps(request.run_config, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise DefinitionError(
            f"the run config of run request {request.run_key or '(no run key)'} is not "
            f"JSON-serializable: {exc}"
        ) from exc
    if request.asset_selection is not None:
        keys = [AssetKey.from_coercible(k) for k in request.asset_selection]
    else:
        keys = sorted(default_asset_selection or ())
    tags = dict(request.tags)
    if request.partition_key is not None:
        from dagloom.execution.partitions import PARTITION_TAG

        tags[PARTITION_TAG] = request.partition_key  # how a run names its partition
    return RunRequestMessage(
        run_key=request.run_key or "",
        job_name=request.job_name or "",
        run_config_json=config_json,
        tags=tags,
        asset_selection=[asset_key_message(key) for key in keys],
        asset_check_selection=[check_key_message(k) for k in request.asset_check_keys or ()],
    )


def schedule_tick_result(data: ScheduleExecutionData) -> TickResult:
    """A schedule tick's outcome as a TickResult (never a cursor; schedules have none).

    Raises `DefinitionError` as `run_request_message` does.
    """
    return TickResult(
        run_requests=[run_request_message(r) for r in data.run_requests],
        skip_message=data.skip_message or "",
    )


def sensor_tick_result(
    data: SensorExecutionData,
    *,
    previous_cursor: str | None,
    default_asset_selection: Collection[AssetKey] | None = None,
) -> TickResult:
    """A sensor tick's outcome as a TickResult.

    `cursor_updated` is true when the tick's cursor differs from `previous_cursor` (the one
    the tick was evaluated with); `cursor` is then the new value, "" when it was cleared.
    `default_asset_selection` is passed to `run_request_message`, whose errors this raises.
    """
    updated = data.cursor != previous_cursor
    return TickResult(
        run_requests=[
            run_request_message(r, default_asset_selection=default_asset_selection)
            for r in data.run_requests
        ],
        skip_message=data.skip_message or "",
        cursor=(data.cursor or "") if updated else "",
        cursor_updated=updated,
        dynamic_partitions_requests=[
            DynamicPartitionsRequestMessage(
                partitions_def_name=change.partitions_def_name,
                partition_keys=list(change.partition_keys),
                delete=isinstance(change, DeleteDynamicPartitionsRequest),
            )
            for change in data.dynamic_partitions_requests
        ],
    )


def tick_error(exc: BaseException) -> TickResult:
    """The TickResult of a tick whose evaluation raised `exc` (user code or a bad result)."""
    return TickResult(error=error_info(exc))
