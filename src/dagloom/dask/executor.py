"""The Dask executor: each step attempt runs as one task on a Dask distributed cluster.

The run keeps dagloom's executor core (`execute_plan`: order, skips, retries, dynamic
mapping) and the multiprocess executor's step entry (`run_step`): a Dask worker imports the
job's code location, builds the run's resources, loads inputs through the IO manager, runs
the op and stores its outputs. A task carries what the run's attempts share, pickled once
(and unpickled once per worker), and only the outputs its step reads.

Its events, led by an engine event naming the worker, stream back in batches while the
step runs (on Dask's event topic `EVENTS_TOPIC`, once the step has run for
`STREAM_INTERVAL`), so the run's event log shows a running step live; the result carries
them all too, and each is emitted once, in order. The worker pushes the finished attempt's
result on that topic ahead of the task's end, so the run need not fetch it from the worker
(it does when the push is lost). The step's stdout and stderr travel the same way into the
attempt's compute log, up to the compute log manager's limit: on a worker of one thread
under a nanny the step owns file descriptors 1 and 2 (`_FileCapture`), elsewhere its own
thread's sys.stdout/sys.stderr writes are kept in memory (`_MemoryLog`). Dask futures only
carry the attempts. Outputs therefore pass through the IO manager, which must persist
across processes: an in-memory one is refused before any step runs.

Each attempt is the task `run_id:step_key:attempt`, so concurrent runs of one job never
share a key. A worker lost under a step makes Dask run the task on another worker; when
Dask gives up (`KilledWorker`) or the cluster is unreachable, the attempt fails with a
clear error and the step's `RetryPolicy` applies. Dask cannot interrupt a running task, so
cancelling the run sets its cancel event, which a long op polls with `run_canceled()`
between chunks of work; after `cancel_grace_seconds` the run's futures are released and a
step still running is abandoned (its result discarded).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import pickle
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

import anyio
import anyio.to_thread
import orjson
from pydantic import BaseModel, Field, model_validator

from dagloom.compute_logs.capture import (
    STDERR,
    STDOUT,
    StepLog,
    install_routers,
    routed_to,
    truncation_marker,
    uninstall_routers,
)
from dagloom.definitions.config import Config
from dagloom.definitions.executor import ExecutorDefinition
from dagloom.errors import DagloomError, DefinitionError
from dagloom.execution.boundary import is_cancellation
from dagloom.execution.multiprocess import (
    OutputRef,
    RemoteStepRunner,
    StepResult,
    StepTask,
    check_persistent_io,
    job_origin,
    run_step,
)
from dagloom.execution.origin import JobOrigin, infer_code_origin
from dagloom.execution.step import FAILED, ExecutionState
from dagloom.messages import EventType, LogLevel
from dagloom.messages.rows import ENGINE_EVENT_DATA, EventRow, loaded_row, row

if TYPE_CHECKING:
    from distributed import Client, Future

    from dagloom.execution.executor import ExecutorContext

__all__ = [
    "DaskClusterConfig",
    "DaskExecutor",
    "DaskExecutorConfig",
    "ExistingClusterConfig",
    "LocalClusterConfig",
    "cancel_event_name",
    "dask_executor",
    "run_canceled",
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
    # Store each step's events while it runs (else when its attempt ends).
    stream_events: bool = True
    # After a cancel, how long running steps get to see `run_canceled()` and end.
    cancel_grace_seconds: float = Field(default=10.0, ge=0)
    retries: dict[str, Any] | None = None


def step_task_key(task: StepTask) -> str:
    """The Dask key of one attempt: unique across runs, steps and attempts."""
    return f"{task.run_id}:{task.step_key}:{task.attempt}"


EVENTS_TOPIC = "dagloom-step-events"
"""The Dask event topic steps stream their events on while they run. One topic for every run
(the scheduler keeps a bounded log per topic); each message names its task key."""


def cancel_event_name(run_id: str) -> str:
    """The Dask `Event` set when `run_id` is cancelled, for its running steps to see."""
    return f"dagloom-cancel:{run_id}"


_current = threading.local()


def run_canceled() -> bool:
    """Whether the run of the step executing on this thread was cancelled (False outside a
    Dask executor's step).

    Dask cannot interrupt a running task: a long op calls this between chunks of work and
    returns (or raises) once it is True. Each call asks the scheduler (one round trip, about
    a millisecond), so call it every chunk, not every item.
    """
    run_id = getattr(_current, "run_id", None)
    if run_id is None:
        return False
    from distributed import Event, get_client

    return bool(Event(cancel_event_name(run_id), client=get_client()).is_set())


STREAM_INTERVAL = 0.1
"""Seconds between two sends of a running attempt's new events: an attempt shorter than
this sends none (its result carries them all), a longer one sends each batch as one
message, so the scheduler sees at most one message per running step per interval."""


class _OutputSource(Protocol):
    """Where a running attempt's stdout and stderr are kept on the worker."""

    def since(self, offsets: tuple[int, int]) -> tuple[bytes, bytes]:
        """The stdout and stderr bytes kept past `offsets` so far (within the limit)."""
        ...


class _EventBatcher:
    """The events and output of this process's running attempts, sent on `EVENTS_TOPIC` by
    one thread every `interval` seconds as `{"key", "i", "rows", "out"}` (`i`: the index of
    `rows[0]` among the attempt's events; `out`: `[stdout offset, stdout bytes, stderr
    offset, stderr bytes]`), once an attempt has run for `interval`."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Condition()
        # task key -> [worker, opened at, index of the first pending row, pending rows,
        #              output source or None, [stdout, stderr] bytes sent]
        self._attempts: dict[str, list[Any]] = {}
        self._thread: threading.Thread | None = None

    def open(self, worker: Any, key: str, output: _OutputSource | None = None) -> None:
        with self._lock:
            self._attempts[key] = [worker, time.monotonic(), 0, [], output, [0, 0]]
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._send_forever, name="dagloom-step-events", daemon=True
                )
                self._thread.start()
            self._lock.notify()

    def add(self, key: str, data: bytes) -> None:
        with self._lock:
            self._attempts[key][3].append(data)

    def close(self, key: str) -> None:
        """Stop sending `key`'s events and output: the rest go back with its result."""
        with self._lock:
            self._attempts.pop(key, None)

    def due(self, now: float) -> list[tuple[Any, dict[str, Any]]]:
        """Take the pending rows and new output of every attempt that has run for
        `interval`: (worker, message) pairs."""
        batches = []
        with self._lock:
            for key, entry in self._attempts.items():
                worker, opened, first, rows, output, sent = entry
                if now - opened < self.interval:
                    continue
                message: dict[str, Any] = {"key": key, "i": first, "rows": rows}
                if output is not None:
                    out, err = output.since((sent[0], sent[1]))
                    if out or err:
                        message["out"] = [sent[0], out, sent[1], err]
                        entry[5] = [sent[0] + len(out), sent[1] + len(err)]
                if rows or "out" in message:
                    batches.append((worker, message))
                    entry[2] = first + len(rows)
                    entry[3] = []
        return batches

    def _send_forever(self) -> None:
        while True:
            with self._lock:
                while not self._attempts:
                    self._lock.wait()
            time.sleep(self.interval)
            for worker, message in self.due(time.monotonic()):
                worker.log_event(EVENTS_TOPIC, message)


_batcher = _EventBatcher(STREAM_INTERVAL)


RunPart = tuple[JobOrigin, str, Mapping[str, Any], Mapping[str, str], Mapping[str, Any]]
"""What every attempt of a run shares: origin, run id, run config, run tags, reused steps."""
StepPart = tuple[
    str, int, tuple[OutputRef, ...], int | None, tuple[tuple[tuple[str, ...], str], ...]
]
"""What is an attempt's own: step key, attempt, the outputs it reads, capture limit, and the
data versions the run knows so far (they change as its steps materialize)."""

_run_parts: OrderedDict[bytes, RunPart] = OrderedDict()
_run_parts_lock = threading.Lock()


def pickle_run_part(task: StepTask) -> bytes:
    """`task`'s run part, pickled: done once per run, each attempt ships these bytes."""
    part: RunPart = (task.origin, task.run_id, task.run_config, task.run_tags, task.reused)
    return pickle.dumps(part, pickle.HIGHEST_PROTOCOL)


def step_part(task: StepTask) -> StepPart:
    return (task.step_key, task.attempt, task.outputs, task.capture_limit, task.data_versions)


def unpickle_task(run_part: bytes, step: StepPart) -> StepTask:
    """The attempt's `StepTask`; a run part is unpickled once per worker process (the last
    few runs' are kept)."""
    with _run_parts_lock:
        part = _run_parts.get(run_part)
        if part is None:
            part = _run_parts[run_part] = pickle.loads(run_part)
            if len(_run_parts) > 16:
                _run_parts.popitem(last=False)
        else:
            _run_parts.move_to_end(run_part)
    origin, run_id, run_config, run_tags, reused = part
    step_key, attempt, outputs, capture_limit, data_versions = step
    return StepTask(
        origin,
        run_id,
        run_config,
        run_tags,
        step_key,
        attempt,
        outputs,
        reused,
        capture_limit=capture_limit,
        data_versions=data_versions,
    )


def run_step_on_worker(run_part: bytes, step: StepPart, stream_events: bool = True) -> StepResult:
    """Run the attempt `run_part` (`pickle_run_part`) and `step` describe on this Dask worker
    (`run_step`), its events led by an engine event that names the worker. With
    `stream_events`, events an attempt emits while it runs are also sent on `EVENTS_TOPIC`
    in batches (`_EventBatcher`). Blocks for the whole attempt."""
    from distributed import get_worker

    task = unpickle_task(run_part, step)

    worker = get_worker()
    address = worker.address
    key = step_task_key(task)

    def keep(event: EventRow) -> bytes:
        return orjson.dumps(event)

    output: _MemoryLog | _FileCapture | None = None
    if task.capture_limit is not None:
        if _owns_its_process(worker):
            output = _FileCapture(worker.local_directory, key, task.capture_limit)
        else:
            output = _MemoryLog(task, task.capture_limit)
    stream = keep
    if stream_events:
        _batcher.open(worker, key, output)

        def stream(event: EventRow) -> bytes:
            data = orjson.dumps(event)
            _batcher.add(key, data)
            return data

    where = stream(
        row(
            EventType.ENGINE_EVENT,
            task.step_key,
            f'Step "{task.step_key}" attempt {task.attempt} executed on Dask worker {address}.',
            LogLevel.DEBUG,
            task.origin.job_name,
            ENGINE_EVENT_DATA,
            {"metadata": {"dask_worker": {"text": address}}, "error": None},
        )
    )
    _current.run_id = task.run_id
    captured: tuple[bytes, bytes] = (b"", b"")
    try:
        if isinstance(output, _FileCapture):
            try:
                result = run_step(replace(task, log_paths=output.paths, capture_limit=None), stream)
            finally:
                captured = output.take()
        elif output is not None:
            install_routers()
            try:
                with routed_to(output):
                    result = run_step(task, stream)
            finally:
                uninstall_routers()
                captured = output.take()
        else:
            result = run_step(task, stream)
    finally:
        _current.run_id = None
        if stream_events:
            _batcher.close(key)
    done = StepResult(
        result.status,
        result.retry_delay,
        result.error,
        (where, *result.events),
        result.outputs,
        result.started,
        captured,
        result.data_versions,
    )
    # Sent ahead of the task's end on the same stream, so the run has the result without
    # fetching it from this worker (two round trips fewer per step).
    worker.log_event(
        EVENTS_TOPIC, {"key": key, "result": pickle.dumps(done, pickle.HIGHEST_PROTOCOL)}
    )
    return done


class _MemoryLog(StepLog):
    """A step attempt's stdout and stderr kept in memory on the worker, each cut at `limit`
    bytes with the usual marker; never echoed, never written to a file. For a worker that
    runs several steps at once: it gets this thread's sys.stdout/sys.stderr writes."""

    __slots__ = ("_data",)

    def __init__(self, task: StepTask, limit: int) -> None:
        super().__init__(
            task.run_id, task.step_key, task.attempt, _no_files, limit=limit, echo=False
        )
        self._data = (bytearray(), bytearray())

    def _keep(self, stream: int, data: bytes) -> None:
        self._data[stream].extend(data)

    def since(self, offsets: tuple[int, int]) -> tuple[bytes, bytes]:
        with self._lock:
            return (
                bytes(self._data[STDOUT][offsets[0] :]),
                bytes(self._data[STDERR][offsets[1] :]),
            )

    def take(self) -> tuple[bytes, bytes]:
        """End the log and return what it kept, stdout and stderr."""
        with self._lock:
            self._closed = True
            return (bytes(self._data[STDOUT]), bytes(self._data[STDERR]))


def _no_files() -> tuple[Path, Path]:
    raise DagloomError("a step's output on a Dask worker is kept in memory, not in files")


def _owns_its_process(worker: Any) -> bool:
    """Whether `worker` runs one task at a time in a process of its own (one thread, started
    by a nanny), so a step may take over the process's file descriptors 1 and 2."""
    return int(worker.state.nthreads) == 1 and getattr(worker, "nanny", None) is not None


class _FileCapture:
    """A step attempt's stdout and stderr as two files in the worker's local directory that
    take over file descriptors 1 and 2 while the step runs (C-level writes and child
    processes are caught), read back within `limit` bytes each and removed by `take`."""

    def __init__(self, directory: str, key: str, limit: int) -> None:
        self.limit = limit
        self.paths = cast(
            "tuple[str, str]",
            tuple(
                _temp_file(directory, f"dagloom-{key.replace(':', '-')}-", s)
                for s in (".out", ".err")
            ),
        )

    def since(self, offsets: tuple[int, int]) -> tuple[bytes, bytes]:
        # Python's own buffers: a print not yet flushed shows in the next batch.
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                stream.flush()
        return (self._read(STDOUT, offsets[0]), self._read(STDERR, offsets[1]))

    def _read(self, stream: int, offset: int) -> bytes:
        if offset >= self.limit:
            return b""
        try:
            with open(self.paths[stream], "rb") as file:
                file.seek(offset)
                return file.read(self.limit - offset)
        except OSError:
            return b""

    def take(self) -> tuple[bytes, bytes]:
        """What the step wrote, each stream cut at `limit` with the usual marker; removes the
        files."""
        kept = []
        for stream, path in enumerate(self.paths):
            data = self._read(stream, 0)
            with suppress(OSError):
                if os.path.getsize(path) > self.limit:
                    data += truncation_marker(self.limit)
                os.unlink(path)
            kept.append(data)
        return (kept[STDOUT], kept[STDERR])


def _temp_file(directory: str, prefix: str, suffix: str) -> str:
    handle, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    os.close(handle)
    return path


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
    """Sends attempts to the cluster behind `client`, keeps the futures in flight, and emits
    each attempt's events as they stream in (`on_streamed`) and the rest with its result.

    Every event is emitted once and in order: a streamed event is taken only when it is the
    next one of its attempt; whatever did not stream (or came out of order) is emitted from
    the result, which carries all of them. Sync methods run on the run's event loop."""

    captures_in_memory: ClassVar[bool] = True

    def __init__(
        self, client: Client, run_id: str, emit: Callable[[EventRow], None], *, stream: bool
    ) -> None:
        self._client = client
        self._stream = stream
        self._prefix = f"{run_id}:"
        self._emit = emit
        self.in_flight: dict[str, Future[StepResult]] = {}
        self._streamed: dict[str, int] = {}  # task key -> events emitted so far
        self._results: dict[str, asyncio.Future[bytes]] = {}  # task key -> pushed result
        self._logs: dict[str, StepLog] = {}  # task key -> the attempt's compute log
        self._run_part: bytes | None = None  # what every attempt shares, pickled once
        self._written: dict[str, list[int]] = {}  # task key -> stdout, stderr bytes written

    def on_streamed(self, event: tuple[float, Any]) -> None:
        """A message on `EVENTS_TOPIC`: an attempt's result (pickled), or a batch of events of
        which those that come next for a running attempt of this run are emitted."""
        message = event[1]
        key = message["key"]
        if not key.startswith(self._prefix) or key not in self.in_flight:
            return
        if "result" in message:
            waiter = self._results.get(key)
            if waiter is not None and not waiter.done():
                waiter.set_result(message["result"])
            return
        if "out" in message:
            self._write_output(key, message["out"])
        done = self._streamed.get(key, 0)
        first: int = message["i"]
        rows: list[bytes] = message["rows"]
        if not first <= done < first + len(rows):
            return
        for data in rows[done - first :]:
            self._emit(loaded_row(orjson.loads(data)))
        self._streamed[key] = first + len(rows)

    def _write_output(self, key: str, out: list[Any]) -> None:
        """Append a streamed chunk of output (`[stdout offset, bytes, stderr offset, bytes]`)
        to the attempt's log, from where the log stands."""
        log = self._logs.get(key)
        if log is None:
            return
        written = self._written.setdefault(key, [0, 0])
        for stream, (offset, data) in enumerate(((out[0], out[1]), (out[2], out[3]))):
            if offset <= written[stream] < offset + len(data):
                log.write_bytes(stream, data[written[stream] - offset :])
                written[stream] = offset + len(data)

    async def run(self, task: StepTask, log: StepLog | None = None) -> StepResult:
        key = step_task_key(task)
        if log is not None:
            self._logs[key] = log
        # A Dask worker never points its process's stdout and stderr at this process's log
        # files (`log_paths` is not shipped): the step's output comes back with its events
        # and result (`captures_in_memory`).
        if self._run_part is None:
            self._run_part = pickle_run_part(task)
        future = self._client.submit(
            run_step_on_worker,
            self._run_part,
            step_part(task),
            self._stream,
            key=key,
            pure=False,
            retries=0,
        )
        self.in_flight[key] = future
        pushed = self._results[key] = asyncio.get_running_loop().create_future()
        # Cancelled, the future stays in `in_flight`: the executor stops and releases it.
        try:
            result = await self._result(future, pushed)
        except Exception as exc:  # the cluster could not run it (lost workers, no scheduler)
            self.in_flight.pop(key, None)
            self._streamed.pop(key, None)
            message = f"Dask could not run task {key!r}: {type(exc).__name__}: {exc}"
            return StepResult(FAILED, None, message, (), (), started=False)
        finally:
            self._results.pop(key, None)
            self._logs.pop(key, None)
            written = self._written.pop(key, [0, 0])
        self.in_flight.pop(key, None)
        future.release()
        emitted = self._streamed.pop(key, 0)
        if not emitted and written == [0, 0]:
            return result
        out, err = result.output
        return StepResult(
            result.status,
            result.retry_delay,
            result.error,
            result.events[emitted:],
            result.outputs,
            result.started,
            (out[written[STDOUT] :], err[written[STDERR] :]),
            result.data_versions,
        )

    @staticmethod
    async def _result(future: Future[StepResult], pushed: asyncio.Future[bytes]) -> StepResult:
        """The attempt's result as the worker pushed it, or else (the push lost, the task
        failed or its worker died) as Dask has it: raises what the task raised."""
        # Awaiting a Dask future waits for its state, then fetches the result: the push comes
        # first on the scheduler's stream, so the fetch is cancelled before it starts.
        fetched: asyncio.Task[StepResult] = asyncio.ensure_future(_fetch(future))
        try:
            await asyncio.wait((pushed, fetched), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not fetched.done():
                fetched.cancel()
        if pushed.done():
            result: StepResult = pickle.loads(pushed.result())
            return result
        return fetched.result()


async def _fetch(future: Future[StepResult]) -> StepResult:
    return await future  # type: ignore[no-any-return]


def _ended(future: Future[Any]) -> asyncio.Future[None]:
    """An asyncio future of the running loop that is done once the Dask `future` finished,
    failed or was cancelled (Dask's `wait` needs a default client; a run's is not)."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def wake(_: object) -> None:  # on a thread of Dask's callback pool
        with suppress(RuntimeError):  # the run's loop closed
            loop.call_soon_threadsafe(_settle, ended)

    future.add_done_callback(wake)
    return ended


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


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
            with _releasing(
                _DaskSubmitter(client, facts.run_id, facts.emit, stream=self.config.stream_events)
            ) as submitter:
                if self.config.stream_events:
                    client.subscribe_topic(EVENTS_TOPIC, submitter.on_streamed)

                def make_runner(facts_: Any, state: ExecutionState) -> RemoteStepRunner:
                    return RemoteStepRunner(facts_, state, origin=where, pool=submitter)

                try:
                    return await context.execute_plan(
                        max_concurrent=self.config.max_concurrent or _UNLIMITED,
                        make_runner=make_runner,
                        every_step_concurrent=True,
                    )
                except BaseException as exc:
                    if is_cancellation(exc) and submitter.in_flight:
                        with anyio.CancelScope(shield=True):
                            await self._stop_steps(client, facts.run_id, submitter)
                    raise
        finally:
            # Closing releases the run's futures; a cancelled run must still get there.
            with anyio.CancelScope(shield=True):
                await client.close()

    async def _stop_steps(self, client: Client, run_id: str, submitter: _DaskSubmitter) -> None:
        """Tell the run's running steps it was cancelled (`run_canceled`) and give them
        `cancel_grace_seconds` to end; the futures are released after, ended or not."""
        from distributed import Event

        await Event(cancel_event_name(run_id), client=client).set()
        ended = [_ended(future) for future in submitter.in_flight.values()]
        with anyio.move_on_after(self.config.cancel_grace_seconds):
            await asyncio.gather(*ended)
        for waiter in ended:
            waiter.cancel()


dask_executor = ExecutorDefinition(
    "dask", DaskExecutorConfig, module="dagloom.dask.executor", class_name="DaskExecutor"
)
"""Dagster's `dask_executor`: `@job(executor_def=dask_executor)`, or
`dask_executor.configured({"cluster": {"existing": {"address": ...}}})`."""
