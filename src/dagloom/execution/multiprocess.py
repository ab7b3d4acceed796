"""The multiprocess executor: each step attempt runs in a warm process of a step pool.

The parent keeps the in-process executor's scheduling (`execute_plan`: order, skips, retries,
dynamic mapping) and swaps how an attempt runs. A step process imports the job's code
location itself (by file or module path, once per process), builds the run's resources,
loads inputs through the job's IO manager, runs the op, stores its outputs, and sends back
its event rows as JSON, which the parent emits in order. Steps therefore
exchange outputs only through the IO manager, which must persist across processes
(`FilesystemIOManager`, a database, object storage): an in-memory one is refused before the
run starts.

Pools are warm: a run checks one out of an idle set (starting it if none is idle) and hands
it back when it ends, so the next run's steps find the code already imported. Concurrent
runs never share a pool. A run cancelled while steps run terminates its pool's processes,
so a cancelled op stops with it, and the pool is not reused.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

import anyio
import orjson
from pydantic import BaseModel

from dagloom.code.snapshot import job_snapshot
from dagloom.compute_logs.capture import StepLog, redirect_fds
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.executor import MultiprocessExecutorConfig, StartMethodConfig
from dagloom.definitions.io_manager import (
    InMemoryIOManager,
    InputManager,
    IOManager,
    OutputContext,
)
from dagloom.definitions.resources import ResourceScope
from dagloom.errors import DagloomError, DefinitionError
from dagloom.execution.boundary import describe_user_error, is_cancellation
from dagloom.execution.captured import open_step_log
from dagloom.execution.executor import ExecutorContext, execute_plan
from dagloom.execution.origin import CodeOrigin, JobOrigin, infer_code_origin, load_job
from dagloom.execution.partitions import run_partitions
from dagloom.execution.plan import (
    FROM_COLLECT,
    FROM_ELEMENT,
    FROM_FAN_IN,
    FROM_OUTPUT,
    ExecutionPlan,
    split_step_key,
)
from dagloom.execution.step import FAILED, ExecutionState, Outcome, RunFacts, StepRunner
from dagloom.messages.rows import EventRow, loaded_row

if TYPE_CHECKING:
    from dagloom.definitions.config import Config
    from dagloom.definitions.job import JobDefinition


class StepProcessError(DagloomError):
    """A step failed in a step process, or the process could not run it; the message is the
    original error's class and text (the exception itself stays in the child)."""

    def __init__(self, message: str, *, step_key: str) -> None:
        super().__init__(message)
        self.step_key = step_key


# -- what crosses the process boundary (plain, picklable data) --------------------------------

OutputRef = tuple[str, str, str | None]
"""An output that exists in the IO manager: (step key, output name, mapping key or None)."""


@dataclass(frozen=True, slots=True)
class StepTask:
    """One attempt of one step, as a step process receives it."""

    origin: JobOrigin
    run_id: str
    run_config: Mapping[str, Any]
    run_tags: Mapping[str, str]
    step_key: str
    attempt: int
    outputs: tuple[OutputRef, ...]  # the outputs produced so far that the step may read
    # steps a re-execution does not execute: step key -> {output name: run that stored it}
    reused: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # the attempt's stdout and stderr files, which take over fds 1 and 2; None: not captured
    log_paths: tuple[str, str] | None = None
    # capture sys.stdout/sys.stderr in memory, up to this many bytes each, into the result's
    # `output` (for a runner that shares its process with other steps); None: not captured
    capture_limit: int | None = None
    # (asset key path, data version) of the assets known so far in the run, so the step
    # records the input data versions it reads
    data_versions: tuple[tuple[tuple[str, ...], str], ...] = ()


@dataclass(frozen=True, slots=True)
class StepResult:
    """How the attempt ended, the events it emitted (serialized) and the outputs it stored."""

    status: int
    retry_delay: float | None
    error: str | None
    events: tuple[bytes, ...]  # event rows, each as JSON (`dagloom.messages.rows`)
    outputs: tuple[OutputRef, ...]
    started: bool = True  # False: the step could not start (no events; `error` says why)
    output: tuple[bytes, bytes] = (b"", b"")  # stdout, stderr captured with `capture_limit`
    # (asset key path, data version) of each asset the attempt materialized with a version
    data_versions: tuple[tuple[tuple[str, ...], str], ...] = ()


def _output_context(
    plan: ExecutionPlan, run_id: str, job_name: str, ref: OutputRef, resources: Any
) -> OutputContext:
    step_key, name, mapping_key = ref
    tmpl = plan.template(step_key)
    out_def = tmpl.node.op.outs.get(name)
    context = OutputContext(
        step_key,
        name,
        run_id,
        mapping_key=mapping_key,
        asset_key=tmpl.asset_keys.get(name),
        job_name=job_name,
        definition_metadata=out_def.metadata if out_def is not None else None,
        resources=resources,
    )
    context.dagster_type = tmpl.node.op.output_type(name)
    return context


def _record_outputs(
    state: ExecutionState,
    plan: ExecutionPlan,
    run_id: str,
    job_name: str,
    refs: Sequence[OutputRef],
    resources: Any,
) -> None:
    for ref in refs:
        state.record_output(_output_context(plan, run_id, job_name, ref, resources))


def _produced(state: ExecutionState) -> list[OutputRef]:
    """Every output in `state`, a dynamic output's elements in the order they were yielded
    (a step process rebuilds its state in this order, so `collect` keeps it)."""
    refs: list[OutputRef] = [(s, n, None) for (s, n) in state.outputs]
    for (s, n), by_key in state.dynamic_keys.items():
        refs.extend((s, n, k) for k in by_key)
    return refs


def input_refs(plan: ExecutionPlan, state: ExecutionState, step_key: str) -> list[OutputRef]:
    """The outputs in `state` that step `step_key` may read (its inputs' upstream outputs,
    a collected dynamic output's elements in yield order), so a step process is sent only
    those rather than everything the run produced. Pure."""
    node, mapping_key = split_step_key(step_key)
    outputs = state.outputs
    dynamic = state.dynamic_keys
    refs: list[OutputRef] = []

    def add_dynamic(source: tuple[str, str]) -> None:
        refs.extend((source[0], source[1], k) for k in dynamic.get(source, {}))

    for spec in plan.steps[node].inputs:
        kind = spec.kind
        if kind == FROM_OUTPUT:
            upstream, name = spec.source
            if mapping_key is not None and plan.steps[upstream].scope is not None:
                upstream = f"{upstream}[{mapping_key}]"
            if (upstream, name) in outputs:
                refs.append((upstream, name, None))
        elif kind == FROM_FAN_IN:
            refs.extend((s, n, None) for s, n in spec.sources if (s, n) in outputs)
        elif kind == FROM_ELEMENT:
            upstream, name = spec.source
            if mapping_key in dynamic.get((upstream, name), {}):
                refs.append((upstream, name, mapping_key))
        elif kind == FROM_COLLECT:
            upstream, name = spec.source
            scope = plan.steps[upstream].scope
            if scope is None:
                add_dynamic((upstream, name))
                continue
            add_dynamic(scope)  # the mapping keys, in order, then each instance's output
            for key in dynamic.get(scope, {}):
                if (f"{upstream}[{key}]", name) in outputs:
                    refs.append((f"{upstream}[{key}]", name, None))
    return refs


def run_step(task: StepTask, on_event: Callable[[EventRow], object] | None = None) -> StepResult:
    """Run one step attempt in this (step) process and report it as plain data.

    Blocks for the whole attempt. Whatever the op raises becomes a failed result with its
    events (as in the in-process executor); failing to load the job or build resources
    becomes a failed result with `error` set and no events, for the parent to record.
    With `task.log_paths`, the process's stdout and stderr (file descriptors 1 and 2, so
    C-level writes and child processes too) go to those files for the attempt.
    `on_event` also sees each event as it is emitted (to stream them while the step runs).
    """
    if task.log_paths is None:
        return _run_step(task, on_event)
    with redirect_fds(*task.log_paths):
        return _run_step(task, on_event)


_RNG = random.Random()  # retry jitter: seeding one per step costs more than the step


def _run_step(task: StepTask, on_event: Callable[[EventRow], object] | None) -> StepResult:
    events: list[EventRow] = []
    emit: Callable[[EventRow], None] = events.append
    if on_event is not None:
        tee = on_event

        def emit(event: EventRow) -> None:
            events.append(event)
            tee(event)

    try:
        from dagloom.execution.run import asset_upstream_of, default_resource_defs
        from dagloom.execution.run_config import resolve_run_config

        job = load_job(task.origin)
        resource_defs = default_resource_defs(job)
        resolved = resolve_run_config(job, task.run_config, resource_defs)
        plan = job.get_plan()
        scope = ResourceScope(resource_defs, resolved.resources, task.run_id)
        built = scope.__enter__()
    except BaseException as exc:  # the user-code boundary of a step process: reported
        if is_cancellation(exc):
            raise
        return StepResult(FAILED, None, describe_user_error(exc), (), (), started=False)
    try:
        # An input manager only ever loads (In(input_manager_key=...)).
        io_managers = {
            k: cast(IOManager, v) for k, v in built.as_dict().items() if isinstance(v, InputManager)
        }
        facts = RunFacts(
            run_id=task.run_id,
            job_name=job.name,
            plan=plan,
            emit=emit,
            resources=built,
            io_managers=io_managers,
            op_configs=resolved.op_configs,
            input_values=resolved.input_values,
            output_configs=resolved.output_configs,
            input_configs=resolved.input_configs,
            run_config=resolved.raw,
            run_tags=task.run_tags,
            reused=task.reused,
            partitions=run_partitions(
                job.asset_layer.asset_graph if job.asset_layer else None,
                task.run_tags,
                job_partitions_def=job.partitions_def,
            ),
            check_specs=job.asset_layer.check_specs_by_node if job.asset_layer else {},
            asset_upstream=asset_upstream_of(job),
            data_versions={AssetKey(list(path)): v for path, v in task.data_versions},
            rng=_RNG,
        )
        state = ExecutionState()
        _record_outputs(state, plan, task.run_id, job.name, task.outputs, built)
        before = set(task.outputs)
        runner = StepRunner(facts, state)
        for reused_key, reused_outputs in task.reused.items():
            runner.reuse(reused_key, reused_outputs)  # stored by earlier runs, not this one
        if plan.template(task.step_key).is_async:
            outcome = anyio.run(runner.run_async, task.step_key, task.attempt, None)
        else:
            outcome = runner.run_sync(task.step_key, task.attempt)
    finally:
        scope.close()
    new = tuple(ref for ref in _produced(state) if ref not in before)
    error = None
    if outcome.error is not None:
        error = f"{type(outcome.error).__name__}: {outcome.error}"
    given = dict(task.data_versions)
    versions = tuple(
        (tuple(k.path), v) for k, v in facts.data_versions.items() if given.get(tuple(k.path)) != v
    )
    return StepResult(
        outcome.status,
        outcome.retry_delay,
        error,
        tuple(map(orjson.dumps, events)),
        new,
        data_versions=versions,
    )


# -- warm pools ------------------------------------------------------------------------------


PoolKind = tuple[int, str, tuple[str, ...]]
"""What makes pools interchangeable: size, start method, the fork server's preloaded
modules."""


class StepPool:
    """A `ProcessPoolExecutor` of `size` step processes, started with `spawn` (default) or
    `forkserver`.

    Never `fork`: the parent runs an event loop and threads, which `fork` would copy in
    an unusable state (a fork server is a fresh process that forks only itself). The
    processes start lazily on first use and stay until `close`. `preload` is the modules the
    fork server imports; it takes effect only when this process starts its fork server.
    """

    captures_in_memory: ClassVar[bool] = False  # one attempt at a time: fds are redirected

    def __init__(self, size: int, method: str = "spawn", preload: tuple[str, ...] = ()) -> None:
        self.size = size
        self.kind: PoolKind = (size, method, preload)
        context = multiprocessing.get_context(method)
        if preload and isinstance(context, multiprocessing.context.ForkServerContext):
            context.set_forkserver_preload(list(preload))
        self._executor = ProcessPoolExecutor(max_workers=size, mp_context=context)

    async def run(self, task: StepTask, log: StepLog | None = None) -> StepResult:
        """Run `task` in a step process; blocks until it ends. (`log` is written by the
        step process itself, through `task.log_paths`.)

        Raises `BrokenProcessPool` if a step process died. Cancelling it abandons the
        attempt (the process runs on until `terminate`).
        """
        future: Future[StepResult] = self._executor.submit(run_step, task)
        # asyncio's bridge cancels a future still queued and wakes on completion without a
        # thread per step; dagloom runs on the asyncio backend (see STYLE.md).
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the processes once idle; does not block; idempotent."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def terminate(self) -> None:
        """Kill the processes now, steps and all; does not block; idempotent."""
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()


_idle: dict[PoolKind, list[StepPool]] = {}


def checkout_pool(size: int, method: str = "spawn", preload: tuple[str, ...] = ()) -> StepPool:
    """An idle warm pool of `size` processes started by `method`, or a new one; give it back
    with `checkin_pool`."""
    pools = _idle.get((size, method, preload))
    return pools.pop() if pools else StepPool(size, method, preload)


def checkin_pool(pool: StepPool) -> None:
    """Make `pool` available to the next run."""
    _idle.setdefault(pool.kind, []).append(pool)


def close_pools() -> None:
    """Close every idle pool; idempotent. Runs at interpreter exit."""
    for pools in _idle.values():
        for pool in pools:
            pool.close()
    _idle.clear()


atexit.register(close_pools)


# -- the parent side -------------------------------------------------------------------------


class StepSubmitter(Protocol):
    """Where a `RemoteStepRunner` sends attempts: a warm step pool, or a Dask cluster.

    One whose attempts share their process with others (`captures_in_memory`) gets a task
    with `capture_limit` instead of `log_paths` and returns the output in the result."""

    captures_in_memory: ClassVar[bool]

    async def run(self, task: StepTask, log: StepLog | None = None) -> StepResult:
        """Run `task` elsewhere and return its result; blocks until it ends. A failure to
        run it at all is a result with `error` set and no events (or `BrokenProcessPool`).
        One that captures in memory may write output to the attempt's `log` as it arrives;
        the result's `output` then holds only the rest."""
        ...


class RemoteStepRunner(StepRunner):
    """Runs each attempt through a `StepSubmitter` (in a step process, on a Dask worker) and
    replays its events and outputs here."""

    __slots__ = ("origin", "pool")

    def __init__(
        self, facts: RunFacts, state: ExecutionState, *, origin: JobOrigin, pool: StepSubmitter
    ) -> None:
        super().__init__(facts, state)
        self.origin = origin
        self.pool = pool

    async def run_async(
        self, step_key: str, attempt: int, threads: anyio.CapacityLimiter | None
    ) -> Outcome:
        facts = self.facts
        manager = facts.compute_logs
        log = None
        if manager is not None:
            log = open_step_log(manager, facts.run_id, step_key, attempt)
        try:
            return await self._run_remote(step_key, attempt, log)
        finally:
            if manager is not None and log is not None:
                manager.step_finished(log)

    def _versions_read_by(self, step_key: str) -> tuple[tuple[tuple[str, ...], str], ...]:
        """The data versions known so far of the assets upstream of what `step_key`
        materializes: all a step records of them (as its input data version tags)."""
        facts = self.facts
        known = facts.data_versions
        if not known:
            return ()
        upstream = facts.asset_upstream
        return tuple(
            (tuple(up.path), known[up])
            for key in facts.plan.template(step_key).asset_keys.values()
            for up in upstream.get(key, ())
            if up in known
        )

    async def _run_remote(self, step_key: str, attempt: int, log: StepLog | None) -> Outcome:
        facts = self.facts
        task = StepTask(
            origin=self.origin,
            run_id=facts.run_id,
            run_config=dict(facts.run_config),
            run_tags=dict(facts.run_tags),
            step_key=step_key,
            attempt=attempt,
            outputs=tuple(input_refs(facts.plan, self.state, step_key)),
            reused=facts.reused,
            data_versions=self._versions_read_by(step_key),
        )
        if log is not None and self.pool.captures_in_memory:
            task = replace(task, capture_limit=log.limit)
        elif log is not None:
            task = replace(task, log_paths=log.fd_paths())
        try:
            result = await self.pool.run(task, log)
        except BrokenProcessPool as exc:
            error = StepProcessError(f"the step process died: {exc}", step_key=step_key)
            return self.fail(step_key, attempt, error)
        if not result.started and result.error is not None:
            # The process could not even start the step: record it here, with retries.
            return self.fail(step_key, attempt, StepProcessError(result.error, step_key=step_key))
        if log is not None:
            for stream, data in enumerate(result.output):
                if data:
                    log.write_bytes(stream, data)
        emit = facts.emit
        for data in result.events:
            emit(loaded_row(orjson.loads(data)))
        for path, version in result.data_versions:
            facts.data_versions[AssetKey(list(path))] = version
        _record_outputs(
            self.state, facts.plan, facts.run_id, facts.job_name, result.outputs, facts.resources
        )
        error_obj: BaseException | None = None
        if result.error is not None:
            error_obj = StepProcessError(result.error, step_key=step_key)
            if result.status == FAILED and result.retry_delay is None:
                self.state.errors[step_key] = error_obj
        return Outcome(result.status, retry_delay=result.retry_delay, error=error_obj)

    def run_sync(self, step_key: str, attempt: int) -> Outcome:
        raise RuntimeError("a remote executor runs every step through run_async")


def check_persistent_io(
    plan: ExecutionPlan, io_managers: Mapping[str, IOManager], *, executor: str = "multiprocess"
) -> None:
    """Refuse a plan whose outputs would be kept by an in-memory IO manager.

    Raises `DefinitionError` naming the IO manager keys, the `executor` and the fix; does
    not block.
    """
    keys = {
        out.io_manager_key for tmpl in plan.steps.values() for out in tmpl.node.op.outs.values()
    }
    keys |= {spec.manager_key for tmpl in plan.steps.values() for spec in tmpl.inputs}
    in_memory = sorted(k for k in keys if isinstance(io_managers.get(k), InMemoryIOManager))
    if in_memory:
        raise DefinitionError(
            f"job {plan.job_name!r} uses the {executor} executor, whose steps run in separate "
            f"processes, but IO manager(s) {in_memory} keep outputs in memory; give the job a "
            "persistent IO manager such as FilesystemIOManager (resources={'io_manager': "
            "FilesystemIOManager(base_dir=...)})",
            name=plan.job_name,
        )


def job_origin(
    job: JobDefinition, code: CodeOrigin, op_selection: Sequence[str] | None
) -> JobOrigin:
    layer = job.asset_layer
    keys = sorted({k.path for k in layer.asset_keys}) if layer is not None else []
    checks: list[tuple[tuple[str, ...], str]] = []
    if layer is not None and layer.asset_graph is not None:
        own = layer.check_keys
        if own != layer.asset_graph.check_keys_for(set(layer.asset_keys)):
            # Not its assets' checks (a run of checks alone, or of some of them): say which.
            checks = sorted((k.asset_key.path, k.name) for k in own)
    # Step processes check they run this very job (a warm one may hold older code).
    snapshot_id = job_snapshot(job).snapshot_id
    return JobOrigin(
        code, job.name, tuple(keys), tuple(op_selection or ()), snapshot_id, tuple(checks)
    )


async def execute_plan_multiprocess(
    facts: RunFacts,
    job: JobDefinition,
    config: Config,
    *,
    code_origin: CodeOrigin | None = None,
    op_selection: Sequence[str] | None = None,
) -> ExecutionState:
    """Run `facts.plan` with each step in a process of a warm pool; return the final state.

    `config` is the run's `MultiprocessExecutorConfig` (`max_concurrent` 0: one process per
    core). The step processes import the job from `code_origin` (default: inferred from the
    module defining the job). Raises `DefinitionError` before any step runs when there is no
    importable origin or an IO manager is in-memory. Blocks until every step ended; step
    failures are recorded as events, not raised. Cancelling it terminates the step processes
    of this run and re-raises.
    """
    origin = code_origin or infer_code_origin(job)
    if origin is None:
        raise DefinitionError(
            f"job {job.name!r} uses the multiprocess executor, but its code is not in a file or "
            "module another process can import (it is defined in __main__?); load it from a "
            "code location",
            name=job.name,
        )
    check_persistent_io(facts.plan, facts.io_managers)
    size = int(getattr(config, "max_concurrent", 0) or 0) or os.cpu_count() or 1
    start = getattr(config, "start_method", None)
    if isinstance(start, StartMethodConfig):
        fork_server = start.forkserver
        preload = tuple(fork_server.preload_modules or ()) if fork_server is not None else ()
        pool = checkout_pool(size, start.method, preload)
    else:
        pool = checkout_pool(size)

    make_runner = partial(RemoteStepRunner, origin=job_origin(job, origin, op_selection), pool=pool)
    reusable = False
    try:
        state = await execute_plan(
            facts,
            max_concurrent=size,
            make_runner=make_runner,
            every_step_concurrent=True,
        )
        reusable = True
        return state
    finally:
        if reusable:
            checkin_pool(pool)
        else:
            pool.terminate()


class MultiprocessExecutor:
    """The `multiprocess` executor: each step in a process of a warm pool of
    `max_concurrent` processes (0: one per core); see `execute_plan_multiprocess`."""

    config_model: ClassVar[type[BaseModel]] = MultiprocessExecutorConfig

    def __init__(self, config: MultiprocessExecutorConfig | None = None) -> None:
        self.config = config or MultiprocessExecutorConfig()

    @classmethod
    def from_config(
        cls, config: MultiprocessExecutorConfig, context: object
    ) -> MultiprocessExecutor:
        return cls(config)

    async def execute(self, context: ExecutorContext) -> ExecutionState:
        return await execute_plan_multiprocess(
            context.facts,
            context.job,
            self.config,
            code_origin=context.code_origin,
            op_selection=context.op_selection,
        )
