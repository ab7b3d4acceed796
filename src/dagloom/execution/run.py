"""One run from start to end in this process: config, resources, events, executor, result."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from itertools import chain
from time import time
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import anyio._backends._asyncio  # what `anyio.run` would import on a first run
import orjson
from anyio import run as anyio_run

from dagloom._gc import defers_run, full_collections_deferred
from dagloom._logging import get_logger
from dagloom.compute_logs.capture import install_routers, uninstall_routers
from dagloom.definitions.config import RunConfig
from dagloom.definitions.executor import prepare_default_executor
from dagloom.definitions.io_manager import InMemoryIOManager, InputManager, IOManager
from dagloom.definitions.node import (
    Binding,
    FromCollect,
    FromDynamicElement,
    FromFanIn,
    FromOutput,
    Node,
)
from dagloom.definitions.resources import ResourceScope
from dagloom.errors import (
    ConfigError,
    DagloomError,
    DefinitionError,
    RunClaimRefusedError,
    StorageError,
)
from dagloom.execution.boundary import is_cancellation, user_code
from dagloom.execution.captured import UncapturedSink
from dagloom.execution.events import error_info, run_start_row
from dagloom.execution.executor import ExecutorContext
from dagloom.execution.partitions import (
    PARTITION_TAG,
    dynamic_partition_names_of,
    run_partitions,
)
from dagloom.execution.plan import select_nodes
from dagloom.execution.result import ExecuteInProcessResult
from dagloom.execution.run_config import (
    ResolvedRunConfig,
    required_resource_keys,
    resolve_run_config,
)
from dagloom.execution.sink import EventSink, FanoutEventSink, ListEventSink, LoggerEventSink
from dagloom.execution.step import ExecutionState, RunFacts
from dagloom.messages import (
    AssetKeyMessage,
    Event,
    EventType,
    LogLevel,
    Run,
    RunFailureData,
    RunStatus,
)
from dagloom.messages.row_log import RowLog
from dagloom.messages.rows import RUN_FAILURE_DATA, EventRow, event_of, row

if TYPE_CHECKING:
    from pathlib import Path

    from dagloom.compute_logs.base import ComputeLogManager
    from dagloom.definitions.asset_key import AssetKey
    from dagloom.definitions.job import JobDefinition
    from dagloom.execution.origin import CodeOrigin
    from dagloom.instance import DagloomInstance
    from dagloom.instance._threads import HandoffEventSink
    from dagloom.storage.sink import StorageEventSink

T = TypeVar("T")

_log = get_logger("dagloom.execution")

# The event loop policy is made once per process, on first use, and so are the default
# executor's class and config: made here (with everything else a run needs, see
# `dagloom.definitions.job`), not by the first run.
asyncio.get_event_loop_policy()
prepare_default_executor()


def run_sync(awaitable: Awaitable[T], *, what: str) -> T:
    """Run a coroutine to completion on a new event loop; refuse inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
        raise RuntimeError(
            f"{what} was called inside a running event loop; await the _async variant instead"
        )

    async def main() -> T:
        return await awaitable

    return anyio_run(main)


def run_sync_with(awaitable: Awaitable[T], instance: DagloomInstance | None, *, what: str) -> T:
    """`run_sync` for a run that may use `instance`: the instance is opened for synchronous
    use (unless open; `DagloomInstance.open_in_background`, so later calls can use it too)
    and the run executes on a thread of its own, so op code can call `context.instance`
    synchronously without waiting on its own loop."""
    if instance is None:
        return run_sync(awaitable, what=what)
    from dagloom.execution.run_thread import run_on_own_thread

    if not instance.is_open:
        # Kept open for the calls that follow, as Dagster's instances are reused.
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            instance.open_in_background()

    async def on_own_thread() -> T:
        return await run_on_own_thread(lambda: awaitable, name=f"dagloom {what}")

    return run_sync(instance.run_open(on_own_thread()), what=what)


def subset_job(job: JobDefinition, selected: set[str]) -> JobDefinition:
    """The job restricted to `selected` nodes; inputs from outside come from run config."""
    nodes: dict[str, Node] = {}
    for name, node in job.nodes.items():
        if name not in selected:
            continue
        inputs: dict[str, Binding] = {}
        for input_name, binding in node.inputs.items():
            if isinstance(binding, FromOutput | FromDynamicElement | FromCollect):
                if binding.node in selected:
                    inputs[input_name] = binding
            elif isinstance(binding, FromFanIn):
                kept = tuple(s for s in binding.sources if s.node in selected)
                if kept:
                    inputs[input_name] = FromFanIn(kept)
        after = tuple(n for n in node.after if n in selected)
        nodes[name] = Node(name, node.op, inputs, node.tags, node.retry_policy, after)
    layer = job.asset_layer
    sub_layer = None
    if layer is not None:
        from dagloom.definitions.job import AssetLayer

        sub_layer = AssetLayer(
            {k: v for k, v in layer.asset_keys_by_output.items() if k[0] in selected},
            {
                **{k: v for k, v in layer.source_inputs.items() if k[0] in selected},
                **{
                    (node, input_name): layer.asset_keys_by_output[(up.node, up.output)]
                    for node, n in job.nodes.items()
                    if node in selected
                    for input_name, up in n.inputs.items()
                    if isinstance(up, FromOutput)
                    and up.node not in selected
                    and (up.node, up.output) in layer.asset_keys_by_output
                },
            },
            layer.asset_graph,
            {k: v for k, v in layer.check_specs_by_node.items() if k in selected},
        )
    # A subset carries no graph outputs: they may name nodes it left out.
    return job.with_replaced_attrs(nodes=nodes, asset_layer=sub_layer, graph_outputs={})


async def reused_steps(
    instance: DagloomInstance,
    job: JobDefinition,
    parent_run_id: str,
    step_keys_to_execute: Sequence[str],
) -> dict[str, dict[str, str]]:
    """The steps of `job` a re-execution of `parent_run_id` does not execute: each static
    step not named (nor its node) in `step_keys_to_execute`, without dynamic outputs, that
    succeeded in the parent or, failing that, in the nearest run up the parent lineage;
    with, for each, the outputs it stored there (output name -> that run's id).

    Reads events only. Steps no run of the lineage succeeded in are left out (so they
    execute).
    """
    from dagloom.execution.plan import split_step_key

    plan = job.get_plan()
    listed = {split_step_key(key)[0] for key in step_keys_to_execute}
    wanted = {
        key
        for key, tmpl in plan.steps.items()
        if key not in listed
        and tmpl.scope is None
        and not any(out.is_dynamic for out in tmpl.node.op.outs.values())
    }
    found: dict[str, dict[str, str]] = {}
    seen: set[str] = set()
    run_id: str | None = parent_run_id
    while run_id and run_id not in seen and wanted - set(found):
        seen.add(run_id)
        records = await instance.get_events(
            run_id, event_types=[EventType.STEP_SUCCESS, EventType.HANDLED_OUTPUT]
        )
        events = [r.event for r in records if r.event is not None]
        succeeded = {
            e.step_key
            for e in events
            if e.event_type == EventType.STEP_SUCCESS
            and e.step_key in wanted
            and e.step_key not in found
        }
        for key in succeeded:
            found[key] = {}
        for event in events:
            handled = event.handled_output
            if (
                event.event_type == EventType.HANDLED_OUTPUT
                and event.step_key in succeeded
                and handled is not None
                and not handled.mapping_key
            ):
                found[event.step_key][handled.output_name] = run_id
        parent = await instance.get_run(run_id)
        run_id = parent.parent_run_id if parent is not None else None
    return found


def with_storage_io_manager(job: JobDefinition, storage_dir: Path) -> JobDefinition:
    """`job` with a filesystem `io_manager` under `storage_dir` (an instance's
    `storage_dir`), unless it has an io_manager: what a run stored in an instance executes
    with, as Dagster's default `fs_io_manager`, so a re-execution or retry from failure can
    load the outputs of the steps it does not execute again. Pure."""
    from dagloom.definitions.io_manager import FilesystemIOManager

    if "io_manager" in job.resource_defs:
        return job
    return job.with_resources({"io_manager": FilesystemIOManager(base_dir=str(storage_dir))})


def default_resource_defs(job: JobDefinition) -> dict[str, Any]:
    """The job's resources, with an in-memory `io_manager` when none is given."""
    defs = dict(job.resource_defs)
    if "io_manager" not in defs:
        defs["io_manager"] = InMemoryIOManager()
    return defs


def cancels_run(exc: BaseException) -> bool:
    """Whether `exc` means the run was cancelled: its task's cancellation (the boundary's
    `is_cancellation`), or Ctrl-C (`KeyboardInterrupt`, which reaches here only from the top
    of the process: the user-code boundary turns one raised by user code into an error), or
    a group of only those."""
    if isinstance(exc, BaseExceptionGroup):
        return all(cancels_run(e) for e in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt) or is_cancellation(exc)


def interrupted_run_row(job_name: str, exc: BaseException) -> EventRow:
    """The end event of a run that `exc` interrupted: RUN_CANCELED for a cancellation
    (`cancels_run`), else RUN_FAILURE with the error's class, message and stack."""
    if cancels_run(exc):
        return row(
            EventType.RUN_CANCELED,
            "",
            f'Run of "{job_name}" was canceled.',
            LogLevel.ERROR,
            job_name,
        )
    return row(
        EventType.RUN_FAILURE,
        "",
        f'Execution of run for "{job_name}" failed. {type(exc).__name__}: {exc}',
        LogLevel.ERROR,
        job_name,
        RUN_FAILURE_DATA,
        RunFailureData(error=error_info(exc)),
    )


async def _end_run_on_storage_error(
    instance: DagloomInstance, run_id: str, job_name: str, error: StorageError
) -> None:
    """Store RUN_FAILURE with `error` for a run whose events could not all be stored, if
    storage takes that one event now; if it does not, the caller's error says enough."""
    event = Event(
        run_id=run_id,
        event_type=EventType.RUN_FAILURE,
        timestamp=time(),
        job_name=job_name,
        message=f'Execution of run for "{job_name}" failed: its events could not be stored.',
        level=LogLevel.ERROR,
        run_failure=RunFailureData(error=error_info(error)),
    )
    try:
        await instance.transition_run(run_id, event)
    except StorageError as again:
        _log.error("run_end_not_stored", run_id=run_id, error=str(again))


def asset_upstream_of(job: JobDefinition) -> dict[AssetKey, tuple[AssetKey, ...]]:
    """Each asset the job materializes -> the keys of the assets it depends on."""
    layer = job.asset_layer
    if layer is None or layer.asset_graph is None:
        return {}
    graph = layer.asset_graph
    return {key: tuple(sorted(graph.upstream.get(key, ()))) for key in layer.asset_keys}


async def _run_data_versions(
    instance: DagloomInstance | None, job: JobDefinition, partition: str | None = None
) -> tuple[dict[AssetKey, tuple[AssetKey, ...]], dict[AssetKey, str]]:
    """Each asset the job materializes -> its upstream keys, and the current data version of
    each upstream asset the job does not materialize (read now, once per run, so steps
    record the input data versions they read without reading storage).

    In a run of one `partition`, a partitioned upstream asset's version is that of the one
    partition its downstream assets read (`upstream_partitions`), so each partition records
    what it read; one that they read several partitions of (or different ones) records
    none, and its staleness compares update times instead."""
    upstream = asset_upstream_of(job)
    produced = set(upstream)
    outside = {up for ups in upstream.values() for up in ups} - produced
    if instance is None or not outside:
        return upstream, {}
    from dagloom.instance.asset_versions import (
        latest_data_versions,
        read_partition_version_records,
    )

    read = _partitions_read(job, upstream, outside, partition)
    whole = sorted(k for k in outside if k not in read)
    versions = await latest_data_versions(instance, whole) if whole else {}
    chosen = {key: parts[0] for key, parts in read.items() if len(parts) == 1}
    if chosen:
        records = await read_partition_version_records(instance, chosen.items())
        for (key, _), record in records.items():
            version = record.current_data_version
            if version is not None:
                versions[key] = version
    return upstream, versions


def _partitions_read(
    job: JobDefinition,
    upstream: Mapping[AssetKey, Sequence[AssetKey]],
    outside: set[AssetKey],
    partition: str | None,
) -> dict[AssetKey, tuple[str, ...]]:
    """Each partitioned asset of `outside` -> the partitions the job's assets read of it in
    a run of `partition` (all of them distinct); empty for a run of no one partition."""
    layer = job.asset_layer
    if partition is None or layer is None or layer.asset_graph is None:
        return {}
    from dagloom.definitions.staleness import upstream_partitions, version_nodes

    graph = layer.asset_graph
    partitioned = {k for k in outside if graph.partitions_def(k) is not None}
    if not partitioned:
        return {}
    nodes = version_nodes(graph)
    read: dict[AssetKey, set[str | None]] = {}
    for key, ups in upstream.items():
        own = partition if graph.partitions_def(key) is not None else None
        for up in ups:
            if up in partitioned:
                read.setdefault(up, set()).update(upstream_partitions(nodes, key, up, own))
    return {
        key: tuple(sorted(p for p in parts if p is not None)) if None not in parts else ()
        for key, parts in read.items()
    }


def _capturing_manager(instance: DagloomInstance | None, run_id: str) -> ComputeLogManager | None:
    """The instance's compute log manager when it captures output, else None. A manager
    that cannot be built (a wrong `compute_logs` section) is logged and the run goes on
    uncaptured: logs are never a reason for a run to fail."""
    if instance is None:
        return None
    try:
        manager = instance.compute_log_manager
    except DagloomError as exc:
        _log.error("compute_log_manager_unavailable", run_id=run_id, error=str(exc))
        return None
    return manager if manager.captures else None


def _run_loggers(job: JobDefinition, resolved: ResolvedRunConfig, run_id: str) -> list[Any]:
    """The Python loggers the job's `logger_defs` build for run `run_id`, in their order;
    what a logger function raises is a UserCodeError naming the logger."""
    built = []
    for name, logger_def in job.logger_defs.items():
        with user_code("logger", name, "setup"):
            built.append(
                logger_def.initialize(resolved.logger_configs.get(name), job_def=job, run_id=run_id)
            )
    return built


async def execute_job_in_process(
    job: JobDefinition,
    *,
    run_config: Mapping[str, Any] | RunConfig | None = None,
    instance: DagloomInstance | None = None,
    resources: Mapping[str, Any] | None = None,
    raise_on_error: bool = True,
    op_selection: list[str] | None = None,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    sink: EventSink | None = None,
    run_is_stored: bool = False,
    code_origin: CodeOrigin | None = None,
    parent_run_id: str | None = None,
    step_keys_to_execute: Sequence[str] = (),
    heartbeat_interval: float | None = 30.0,
    resuming: bool = False,
    claimed: EventRow | None = None,
) -> ExecuteInProcessResult:
    """Execute `job` on the running loop and return its result (see
    JobDefinition.execute_in_process_async for the contract).

    `sink` receives every event too (live progress, streams). With `run_is_stored`, the run
    `run_id` already exists in `instance` (a coordinator created it) and is not created again:
    it is claimed first, by moving it to STARTED in storage (`transition_run` with RUN_START),
    and when storage refuses that (another executor claimed it, or it was canceled or has
    ended) `RunClaimRefusedError` is raised before anything else is done, so a stored run is
    executed at most once. A caller that claimed the stored run already (a run worker, on its
    own loop, before handing the run to this thread) passes the RUN_START row it stored
    with the claim (`run_start_row`) as `claimed`, and the run is not claimed again.
    `code_origin` says where the job's code lives, for an executor whose
    step processes import it themselves (multiprocess); without it, it is inferred from the
    job's module.

    With an instance, the run's heartbeat tags are written every `heartbeat_interval`
    seconds while it executes (`DagloomInstance.start_run_heartbeat`), so run monitoring
    tells a long run from one whose process died; None writes none (a run worker beats
    for its runs itself).

    With `resuming`, the stored run carries on where a lost worker left it: what is reused
    is looked up from the run itself first (`reused_steps` from `run_id`, then up its
    parent lineage), so every step outside `step_keys_to_execute` that succeeded there is
    not executed again and its stored outputs are loaded instead; steps named execute.

    Only cancellation (of the calling task, or Ctrl-C) ends the run CANCELED; anything else
    raised while it executes ends it FAILURE with the error in its RunFailureData.

    When the run's events cannot all be stored (storage failed past its retries), the run is
    ended FAILURE with that `StorageError` if storage takes one more event, and the
    `StorageError` is raised either way.
    """
    run_id = run_id or str(uuid.uuid4())
    if claimed is not None:
        start = claimed
        run_is_stored = True
    else:
        start = run_start_row(job.name)
        if instance is not None and run_is_stored:
            moved = await instance.transition_run(run_id, event_of(run_id, start))
            if not moved.applied:
                raise RunClaimRefusedError(run_id, moved.status)
    is_claimed = instance is not None and run_is_stored
    if op_selection:
        job = subset_job(job, select_nodes(job, op_selection))
    if resources:
        # As in Dagster, resources given for this run override the job's own.
        job = job.with_replaced_attrs(resource_defs={**job.resource_defs, **resources})
    resource_defs = default_resource_defs(job)
    resolved = resolve_run_config(job, run_config, resource_defs)
    reused: dict[str, dict[str, str]] = {}
    if instance is not None and resuming:
        reused = await reused_steps(instance, job, run_id, step_keys_to_execute)
    elif instance is not None and parent_run_id and step_keys_to_execute:
        reused = await reused_steps(instance, job, parent_run_id, step_keys_to_execute)
    missing = sorted(required_resource_keys(job) - resource_defs.keys())
    if missing:
        raise DefinitionError(
            f"job {job.name!r} needs resources {missing} that are not provided; pass them in "
            "Definitions(resources=...), @job(resource_defs=...) or resources=",
            name=job.name,
        )
    run_tags = {**job.tags, **job.run_tags, **dict(tags or {})}
    graph = job.asset_layer.asset_graph if job.asset_layer else None
    dynamic = dynamic_partition_names_of(graph)
    store = (
        await instance.dynamic_partitions_snapshot(dynamic)
        if instance is not None and dynamic
        else None
    )
    if instance is not None and not run_is_stored:
        layer = job.asset_layer
        await instance.create_run(
            Run(
                run_id=run_id,
                job_name=job.name,
                status=RunStatus.NOT_STARTED,
                run_config_json=orjson.dumps(resolved.raw, default=str).decode(),
                tags=run_tags,
                asset_selection=[
                    AssetKeyMessage(path=list(k.path)) for k in (layer.asset_keys if layer else [])
                ],
                root_run_id=run_id,
                create_time=time(),
            )
        )
    # The run's own record of its events (for the result) is the storage sink's, when there
    # is one: a second sink would cost the executor another call per event. Events that
    # storage can give back later are not kept at all: the result reads them (a stored
    # run's result then holds every event stored for the run, those before its claim too).
    stored_rows = instance.stored_run_rows(run_id) if instance is not None else None
    events: ListEventSink | StorageEventSink | HandoffEventSink = (
        ListEventSink()
        if instance is None
        else instance.event_sink(run_id, keep=stored_rows is None)
    )
    compute_logs = _capturing_manager(instance, run_id)
    if sink is not None and compute_logs is not None:
        sink = UncapturedSink(sink)  # what it prints stays out of the steps' logs
    out: EventSink = events if sink is None else FanoutEventSink(events, sink)
    if job.logger_defs:
        # The job's loggers see every event of the run, as Dagster's do.
        out = FanoutEventSink(out, LoggerEventSink(_run_loggers(job, resolved, run_id), run_id))
    emit = out.emit
    if not is_claimed:
        emit(start)
    elif sink is not None:
        sink.emit(start)  # stored with the claim
    asset_upstream, data_versions = await _run_data_versions(
        instance, job, run_tags.get(PARTITION_TAG)
    )
    state: ExecutionState | None = None
    io_managers: dict[str, IOManager] = {}
    run_error: BaseException | None = None
    try:
        # Resources see the instance as op code does: called synchronously. A run without
        # one imports nothing of the instance's.
        resource_instance = None
        if instance is not None:
            from dagloom.instance.sync import SyncInstance

            resource_instance = SyncInstance(instance, getattr(events, "flush_blocking", None))
        scope = ResourceScope(resource_defs, resolved.resources, run_id, instance=resource_instance)
        try:
            built = scope.__enter__()
        except Exception as exc:
            run_error = exc
            built = None
        if built is not None:
            try:
                for key, value in built.as_dict().items():
                    if isinstance(value, InputManager):
                        # An input manager only ever loads (In(input_manager_key=...)).
                        io_managers[key] = cast(IOManager, value)
                executor_config = resolved.executor_config
                facts = RunFacts(
                    run_id=run_id,
                    job_name=job.name,
                    plan=job.get_plan(),
                    emit=emit,
                    resources=built,
                    io_managers=io_managers,
                    op_configs=resolved.op_configs,
                    input_values=resolved.input_values,
                    output_configs=resolved.output_configs,
                    input_configs=resolved.input_configs,
                    run_config=resolved.raw,
                    run_tags=run_tags,
                    reused=reused,
                    partitions=run_partitions(graph, run_tags, store, job.partitions_def),
                    check_specs=job.asset_layer.check_specs_by_node if job.asset_layer else {},
                    compute_logs=compute_logs,
                    instance=instance,
                    # Only a run off its instance's loop can wait for its own events.
                    flush_events=getattr(events, "flush_blocking", None),
                    asset_upstream=asset_upstream,
                    data_versions=data_versions,
                    # Nothing but the result reads its events: their RowLog makes the
                    # messages their rows tell when they are read.
                    lazy_messages=out is events and isinstance(events, ListEventSink),
                )
                context = ExecutorContext(facts, job, executor_config, code_origin, op_selection)
                beat = (
                    instance.start_run_heartbeat(
                        run_id,
                        f"pid {os.getpid()} on {socket.gethostname()}",
                        interval=heartbeat_interval,
                    )
                    if instance is not None and heartbeat_interval is not None
                    else None
                )
                if compute_logs is not None:
                    install_routers()
                try:
                    executor = resolved.executor_def.create(executor_config)
                    with full_collections_deferred(defers_run(len(facts.plan.steps))):
                        state = await executor.execute(context)
                except (DefinitionError, ConfigError) as exc:  # cannot run this way: it fails
                    run_error = exc
                finally:
                    if compute_logs is not None:
                        uninstall_routers()
                        with anyio.CancelScope(shield=True):
                            await compute_logs.wait_uploads()
                    if beat is not None:
                        beat.cancel()
            finally:
                try:
                    scope.close()
                except Exception as exc:
                    run_error = run_error or exc
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            emit(interrupted_run_row(job.name, exc))
            await out.flush()
        raise
    failed = [] if state is None else state.failed_steps
    success = run_error is None and not failed
    if success:
        emit(
            row(
                EventType.RUN_SUCCESS,
                "",
                f'Finished execution of run for "{job.name}".',
                LogLevel.DEBUG,
                job.name,
            )
        )
    else:
        what = f"Steps failed: {failed}." if failed else f"{type(run_error).__name__}: {run_error}"
        emit(
            row(
                EventType.RUN_FAILURE,
                "",
                f'Execution of run for "{job.name}" failed. {what}',
                LogLevel.ERROR,
                job.name,
                RUN_FAILURE_DATA,
                RunFailureData(
                    failed_step_keys=failed,
                    error=error_info(run_error) if run_error is not None else None,
                ),
            )
        )
    try:
        await out.flush()
    except StorageError as exc:
        if instance is not None:
            await _end_run_on_storage_error(instance, run_id, job.name, exc)
        raise
    result = ExecuteInProcessResult(
        job_def=job,
        run_id=run_id,
        # A claimed run's start was stored with the claim, not emitted to `events`.
        rows=(
            stored_rows
            if stored_rows is not None
            else RowLog(chain((start,), events.rows))
            if is_claimed
            else events.rows
        ),
        state=state,
        io_managers=io_managers,
        success=success,
        tags=run_tags,
        run_config=resolved.raw,
    )
    if raise_on_error and not success:
        if run_error is not None:
            raise run_error
        assert state is not None
        raise state.errors[failed[0]]
    return result
