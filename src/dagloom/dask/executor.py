"""The Dask executor: each step attempt runs as one task on a Dask distributed cluster.

The run keeps dagloom's executor core (`execute_plan`: order, skips, retries, dynamic
mapping) and the multiprocess executor's step entry (`run_step`): a Dask worker imports the
job's code location, builds the run's resources, loads inputs through the IO manager, runs
the op and stores its outputs; its event rows come back with the task's result and are
emitted in order, preceded by an engine event naming the worker. Dask futures only carry
the attempts. Outputs therefore pass through the IO manager, which must persist across
processes: an in-memory one is refused before any step runs.

Each attempt is the task `run_id:step_key:attempt`, so concurrent runs of one job never
share a key. A worker lost under a step makes Dask run the task on another worker; when
Dask gives up (`KilledWorker`) or the cluster is unreachable, the attempt fails with a
clear error and the step's `RetryPolicy` applies. Cancelling the run cancels its
futures; Dask cannot interrupt a task already running, which runs on and is discarded.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.to_thread
import orjson
from pydantic import BaseModel, Field, model_validator

from dagloom.definitions.config import Config
from dagloom.definitions.executor import ExecutorDefinition
from dagloom.errors import DefinitionError
from dagloom.execution.multiprocess import (
    RemoteStepRunner,
    StepResult,
    StepTask,
    check_persistent_io,
    job_origin,
    run_step,
)
from dagloom.execution.origin import infer_code_origin
from dagloom.execution.step import FAILED, ExecutionState
from dagloom.messages import EventType, LogLevel
from dagloom.messages.rows import ENGINE_EVENT_DATA, row

if TYPE_CHECKING:
    from distributed import Client, Future

    from dagloom.execution.executor import ExecutorContext

__all__ = [
    "DaskClusterConfig",
    "DaskExecutor",
    "DaskExecutorConfig",
    "ExistingClusterConfig",
    "LocalClusterConfig",
    "dask_executor",
    "step_task_key",
]

# Unbounded in practice: the scheduler queues tasks itself; this only caps the futures a
# run holds at once (a fan of 10,000 steps holds 10,000 small futures).
_UNLIMITED = 1_000_000


class ExistingClusterConfig(Config):
    """`cluster: {existing: {address}}`: a running scheduler, e.g. `tcp://host:8786`."""

    address: str


class LocalClusterConfig(Config):
    """`cluster: {local: {...}}`: a cluster this process starts (once, then kept warm)."""

    n_workers: int | None = Field(default=None, ge=1)
    threads_per_worker: int | None = Field(default=None, ge=1)
    processes: bool = True


class DaskClusterConfig(Config):
    """Exactly one of `existing` and `local` (none: a local cluster with Dask's defaults)."""

    existing: ExistingClusterConfig | None = None
    local: LocalClusterConfig | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> DaskClusterConfig:
        if self.existing is not None and self.local is not None:
            raise ValueError("give one of `existing` and `local`, not both")
        return self


class DaskExecutorConfig(Config):
    """`execution: {config: {cluster: ..., max_concurrent: ...}}` for the Dask executor, in
    Dagster's shape (`cluster: {existing: {address}}` or `{local: {n_workers, ...}}`)."""

    cluster: DaskClusterConfig = Field(default_factory=DaskClusterConfig)
    max_concurrent: int = Field(default=0, ge=0)  # step tasks in flight; 0: no limit
    retries: dict[str, Any] | None = None


def step_task_key(task: StepTask) -> str:
    """The Dask key of one attempt: unique across runs, steps and attempts."""
    return f"{task.run_id}:{task.step_key}:{task.attempt}"


def run_step_on_worker(task: StepTask) -> StepResult:
    """Run `task` on this Dask worker (`run_step`), its events led by an engine event that
    names the worker. Blocks for the whole attempt."""
    from distributed import get_worker

    address = get_worker().address
    result = run_step(task)
    where = row(
        EventType.ENGINE_EVENT,
        task.step_key,
        f'Step "{task.step_key}" attempt {task.attempt} executed on Dask worker {address}.',
        LogLevel.DEBUG,
        task.origin.job_name,
        ENGINE_EVENT_DATA,
        {"metadata": {"dask_worker": {"text": address}}, "error": None},
    )
    return StepResult(
        result.status,
        result.retry_delay,
        result.error,
        (orjson.dumps(where), *result.events),
        result.outputs,
    )


# -- local clusters, kept warm per config ------------------------------------------------------

_local_clusters: dict[LocalClusterConfig, Any] = {}
_local_lock = threading.Lock()


def local_cluster_address(config: LocalClusterConfig) -> str:
    """The scheduler address of this process's local cluster for `config`, starting it the
    first time; blocks while it starts. Closed at interpreter exit."""
    from distributed import LocalCluster

    with _local_lock:
        cluster = _local_clusters.get(config)
        if cluster is None:
            options: dict[str, Any] = {
                "processes": config.processes,
                "protocol": "tcp://",
                "host": "127.0.0.1",
                "dashboard_address": None,
            }
            if config.n_workers is not None:
                options["n_workers"] = config.n_workers
            if config.threads_per_worker is not None:
                options["threads_per_worker"] = config.threads_per_worker
            cluster = LocalCluster(**options)
            _local_clusters[config] = cluster
        return str(cluster.scheduler_address)


def close_local_clusters() -> None:
    """Close every local cluster this process started; idempotent."""
    with _local_lock:
        for cluster in _local_clusters.values():
            cluster.close()
        _local_clusters.clear()


atexit.register(close_local_clusters)


# -- the run's side --------------------------------------------------------------------------


class _DaskSubmitter:
    """Sends attempts to the cluster behind `client` and keeps the futures in flight."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.in_flight: dict[str, Future[StepResult]] = {}

    async def run(self, task: StepTask) -> StepResult:
        key = step_task_key(task)
        future = self._client.submit(run_step_on_worker, task, key=key, pure=False, retries=0)
        self.in_flight[key] = future
        try:
            result: StepResult = await future
        except Exception as exc:  # the cluster could not run it (lost workers, no scheduler)
            message = f"Dask could not run task {key!r}: {type(exc).__name__}: {exc}"
            return StepResult(FAILED, None, message, (), ())
        finally:
            self.in_flight.pop(key, None)
        return result


@contextmanager
def _releasing(submitter: _DaskSubmitter) -> Iterator[_DaskSubmitter]:
    try:
        yield submitter
    finally:
        for future in list(submitter.in_flight.values()):
            future.release()
        submitter.in_flight.clear()


class DaskExecutor:
    """The `dask` executor: each step attempt a task on a Dask cluster (see the module
    docstring); `cluster` names an existing scheduler or a local cluster kept warm in this
    process."""

    config_model: ClassVar[type[BaseModel]] = DaskExecutorConfig

    def __init__(self, config: DaskExecutorConfig | None = None) -> None:
        self.config = config or DaskExecutorConfig()

    @classmethod
    def from_config(cls, config: DaskExecutorConfig, context: object) -> DaskExecutor:
        return cls(config)

    async def scheduler_address(self) -> str:
        """The address of the scheduler this executor's steps go to; starts a local cluster
        (in a thread) the first time one is configured."""
        cluster = self.config.cluster
        if cluster.existing is not None:
            return cluster.existing.address
        local = cluster.local or LocalClusterConfig()
        return await anyio.to_thread.run_sync(local_cluster_address, local)

    async def execute(self, context: ExecutorContext) -> ExecutionState:
        """Run the plan with every attempt on the cluster; blocks until every step ended.

        Raises `DefinitionError` before any step runs when the job's code cannot be imported
        by another process or an IO manager keeps outputs in memory. Cancelling it cancels
        the run's futures and re-raises.
        """
        from distributed import Client

        facts = context.facts
        job = context.job
        origin = context.code_origin or infer_code_origin(job)
        if origin is None:
            raise DefinitionError(
                f"job {job.name!r} uses the dask executor, but its code is not in a file or "
                "module a Dask worker can import (it is defined in __main__?); load it from a "
                "code location",
                name=job.name,
            )
        check_persistent_io(facts.plan, facts.io_managers, executor="dask")
        address = await self.scheduler_address()
        where = job_origin(job, origin, context.op_selection)
        client = await Client(address, asynchronous=True, set_as_default=False)
        try:
            with _releasing(_DaskSubmitter(client)) as submitter:

                def make_runner(facts_: Any, state: ExecutionState) -> RemoteStepRunner:
                    return RemoteStepRunner(facts_, state, origin=where, pool=submitter)

                return await context.execute_plan(
                    max_concurrent=self.config.max_concurrent or _UNLIMITED,
                    make_runner=make_runner,
                    every_step_concurrent=True,
                )
        finally:
            # Closing releases the run's futures; a cancelled run must still get there.
            with anyio.CancelScope(shield=True):
                await client.close()


dask_executor = ExecutorDefinition(
    "dask", DaskExecutorConfig, module="dagloom.dask.executor", class_name="DaskExecutor"
)
"""Dagster's `dask_executor`: `@job(executor_def=dask_executor)`, or
`dask_executor.configured({"cluster": {"existing": {"address": ...}}})`."""
