"""Warm processes that evaluate a code location's schedules and sensors, each under a timeout.

A schedule or sensor function is user code that may block for ever (a sensor polling a
database that hangs). A thread running it cannot be stopped, so the code location runs them
in child processes instead: each imports the location's code once, then evaluates ticks one
at a time; one that runs past its timeout is killed, so nothing of it is left running.

A tick's `context.instance` stays in the parent, which holds the instance: in the worker it
is a `ForwardedInstance` whose calls travel over the worker's pipe, are answered by the
parent from its `TickInstance` while it waits for the tick, and come back as their result or
error. A tick that never calls it sends nothing more than before.
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.connection
import pickle
import signal
import threading
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread

from dagloom._logging import get_logger
from dagloom.errors import DagloomError, UserCodeError, UserCodeTimeoutError
from dagloom.execution.events import error_info
from dagloom.messages import ErrorInfo
from dagloom.messages.rpc import EvaluateScheduleRequest, EvaluateSensorRequest, TickResult

if TYPE_CHECKING:
    from dagloom.actors._tick_instance import TickInstance
    from dagloom.execution.origin import CodeOrigin
    from dagloom.instance.sync import ForwardedInstance

__all__ = ["EvaluationSettings", "InstigatorKind", "InstigatorPool"]

InstigatorKind = Literal["schedule", "sensor"]

IMPORT_TIMEOUT_FLOOR = 60.0
"""Seconds a new worker may always take to import the code, whatever the evaluation timeout:
the location imported the same code already, and a short tick timeout must not turn a slow
import into workers killed one after another."""

_READY = "ready"
_LOAD_ERROR = "load_error"
_TICK = "tick"
_INSTANCE_CALL = "instance_call"
_INSTANCE_REPLY = "instance_reply"


@dataclass(frozen=True, slots=True)
class EvaluationSettings:
    """How a code location evaluates schedules and sensors.

    `timeout_seconds` bounds one evaluation (a new worker's import of the code before its
    first one may take at least `IMPORT_TIMEOUT_FLOOR`); past it the worker process is
    killed and the tick fails with `UserCodeTimeoutError`. `processes` is how many
    evaluations run at once, each in its own warm worker process; more wait their turn
    (outside the location's inbox).
    """

    timeout_seconds: float = 60.0
    processes: int = 2

    def __post_init__(self) -> None:
        if not self.timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be positive, not {self.timeout_seconds}")
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1, not {self.processes}")


class _WorkerGone(Exception):
    """The worker process ended (or its pipe broke) before it answered."""


class _Worker:
    """One evaluation process and the parent's end of its pipe; used by one task at a time."""

    __slots__ = ("_child", "conn", "generation", "killed", "process", "ready")

    def __init__(self, source: CodeOrigin, location_name: str, generation: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, self._child = context.Pipe(duplex=True)
        # `spawn`, since the parent runs an event loop and threads that `fork` would copy in
        # an unusable state; daemonic, so it never outlives the node.
        self.process: SpawnProcess = context.Process(
            target=_serve,
            args=(self._child, source),
            name=f"dagloom-evaluator-{location_name}",
            daemon=True,
        )
        self.generation = generation
        self.ready = False
        self.killed = False

    def start(self) -> None:
        """Start the process; blocks for the ~2-25 ms a spawn takes, so callers on an event
        loop run it in a thread."""
        self.process.start()
        self._child.close()

    async def receive(self) -> tuple[str, bytes]:
        """The worker's next message.

        Waits without a thread, on the pipe becoming readable (the message is then read
        whole: the worker writes it in one go). Raises `_WorkerGone` if the process ended
        first. Cancelling it reads nothing.
        """
        await anyio.wait_readable(self.conn.fileno())
        try:
            kind, data = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise _WorkerGone(self._gone()) from exc
        return str(kind), bytes(data)

    def send(self, kind: InstigatorKind, request: bytes, now: float, forward: bool) -> None:
        """Hand the worker one evaluation (`forward`: whether its `context.instance` calls
        come back to this process); does not wait for it (a request is a few hundred
        bytes, or for a run status sensor a few KB per run it carries, at most 25: within a
        pipe's buffer, and read whole by the idle worker)."""
        try:
            self.conn.send((kind, request, now, forward))
        except OSError as exc:
            raise _WorkerGone(self._gone()) from exc

    def answer(self, reply: bytes) -> None:
        """Hand the worker the answer to its `context.instance` call; it is waiting for it,
        reading, so this does not block for long whatever the answer's size."""
        try:
            self.conn.send((_INSTANCE_REPLY, reply))
        except OSError as exc:
            raise _WorkerGone(self._gone()) from exc

    def _gone(self) -> str:
        self.process.join(timeout=0)  # a poll: the loop never waits on a dying process
        code = self.process.exitcode
        return "its evaluation process ended" + ("" if code is None else f" (exit code {code})")

    async def kill(self) -> None:
        """Kill the process and wait until it is gone; idempotent, safe under cancellation."""
        if self.killed:
            return
        self.killed = True
        with anyio.CancelScope(shield=True):
            if self.process.pid is None:  # never started
                self.conn.close()
                self._child.close()
                return
            if self.process.is_alive():
                self.process.kill()
                with anyio.move_on_after(5.0):
                    await anyio.wait_readable(self.process.sentinel)
            self.process.join(timeout=1.0)
            self.conn.close()
            self.process.close()


class InstigatorPool:
    """Evaluates one location's schedules and sensors in warm worker processes.

    At most `settings.processes` evaluations run at once; later ones wait in the caller's
    task. Workers start on first use and import the code once; one is killed (and later
    replaced) when an evaluation runs past `settings.timeout_seconds` or the worker dies.
    `reset` makes later evaluations use freshly imported code. `evaluate` never raises for
    what user code does; cancelling it kills the worker it was using.

    With `instance`, a tick's `context.instance` is that instance (its calls answered here
    while the tick runs, within the tick's timeout); without, it is None.
    """

    def __init__(
        self,
        location_name: str,
        source: CodeOrigin,
        settings: EvaluationSettings,
        instance: TickInstance | None = None,
    ) -> None:
        self.location_name = location_name
        self.source = source
        self.settings = settings
        self.instance = instance
        self._idle: list[_Worker] = []
        self._live: set[_Worker] = set()
        self._generation = 0
        self._limiter: anyio.CapacityLimiter | None = None
        self._log = get_logger("dagloom.actors").bind(location=location_name)

    async def evaluate(
        self,
        kind: InstigatorKind,
        name: str,
        request: EvaluateScheduleRequest | EvaluateSensorRequest,
        now: float,
    ) -> TickResult:
        """One tick of the schedule or sensor `name`, evaluated in a worker process.

        Blocks until the tick ends, its timeout passes, or its worker dies; each of these
        is a TickResult (the last two with an error naming the instigator).
        """
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.settings.processes)
        async with self._limiter:
            worker = self._idle.pop() if self._idle else self._new_worker()
            keep = False
            try:
                if worker.process.pid is None:
                    await anyio.to_thread.run_sync(worker.start)
                result, keep = await self._evaluate_in(worker, kind, name, bytes(request), now)
                return result
            finally:
                if keep and worker.generation == self._generation:
                    self._idle.append(worker)
                else:
                    self._live.discard(worker)
                    await worker.kill()

    async def _evaluate_in(
        self, worker: _Worker, kind: InstigatorKind, name: str, request: bytes, now: float
    ) -> tuple[TickResult, bool]:
        timeout = self.settings.timeout_seconds
        import_timeout = max(timeout, IMPORT_TIMEOUT_FLOOR)
        try:
            if not worker.ready:
                with anyio.move_on_after(import_timeout) as importing:
                    ready, data = await worker.receive()
                if importing.cancelled_caught:
                    return self._timed_out(kind, name, "importing its code", import_timeout), False
                if ready == _LOAD_ERROR:
                    return TickResult(error=ErrorInfo.parse(data)), False
                worker.ready = True
            worker.send(kind, request, now, self.instance is not None)
            with anyio.move_on_after(timeout) as evaluating:
                what, data = await worker.receive()
                while what == _INSTANCE_CALL:
                    worker.answer(await self._instance_call(data))
                    what, data = await worker.receive()
        except _WorkerGone as exc:
            error = UserCodeError(f"evaluating {kind} {name!r} failed: {exc}")
            self._log.warning("instigator_worker_died", kind=kind, name=name, error=str(exc))
            return TickResult(error=error_info(error)), False
        if evaluating.cancelled_caught:
            return self._timed_out(kind, name, "evaluating", timeout), False
        return TickResult.parse(data), True

    async def _instance_call(self, call: bytes) -> bytes:
        """Answer a worker's `context.instance` call (a pickled method name, positional and
        keyword arguments): the pickled ("ok", result) or ("error", exception)."""
        try:
            name, args, kwargs = pickle.loads(call)
            if self.instance is None:
                raise DagloomError(
                    f"code location {self.location_name!r} evaluates ticks without an instance"
                )
            from dagloom.instance.sync import INSTANCE_METHODS

            if name not in INSTANCE_METHODS:
                raise DagloomError(f"context.instance has no method {name!r} here")
            view = await self.instance.view()
            method = functools.partial(getattr(view, name), *args, **kwargs)
            result = await anyio.to_thread.run_sync(method, abandon_on_cancel=True)
            return pickle.dumps(("ok", result))
        # The call's failure (bad arguments, storage down, an answer that does not pickle)
        # belongs to the tick that made it: it is raised there, in user code.
        except Exception as exc:
            return _pickled_error(exc)

    def _timed_out(self, kind: InstigatorKind, name: str, doing: str, timeout: float) -> TickResult:
        self._log.warning("instigator_timed_out", kind=kind, name=name, timeout=timeout)
        error = UserCodeTimeoutError(
            f"{kind} {name!r} of code location {self.location_name!r} timed out after "
            f"{timeout:g} s {doing}; its evaluation process was killed",
            kind=kind,
            name=name,
            timeout_seconds=timeout,
        )
        return TickResult(error=error_info(error))

    def _new_worker(self) -> _Worker:
        worker = _Worker(self.source, self.location_name, self._generation)
        self._live.add(worker)
        return worker

    async def reset(self) -> None:
        """Use freshly imported code from now on: idle workers are killed now, busy ones
        when their evaluation ends."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for worker in idle:
            self._live.discard(worker)
            await worker.kill()

    async def aclose(self) -> None:
        """Kill every worker, busy or idle; idempotent. The pool may be used again after."""
        self._idle = []
        live, self._live = self._live, set()
        for worker in live:
            await worker.kill()


def _pickled_error(exc: Exception) -> bytes:
    try:
        return pickle.dumps(("error", exc))
    except Exception:  # an exception that does not pickle travels as its text
        return pickle.dumps(("error", DagloomError(f"{type(exc).__name__}: {exc}")))


def _forwarder(conn: multiprocessing.connection.Connection) -> ForwardedInstance:
    """A `ForwardedInstance` whose calls go to the parent over `conn` (in a worker); each
    blocks until the parent answers."""
    from dagloom.errors import DagsterInvalidInvocationError
    from dagloom.instance.sync import ForwardedInstance

    # A tick may call the instance from threads of its own: one call at a time on the pipe.
    turn = threading.Lock()

    def forward(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            call = pickle.dumps((name, args, kwargs))
        except Exception as exc:
            raise DagsterInvalidInvocationError(
                f"context.instance.{name}: its arguments cannot be sent to the instance "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        with turn:
            conn.send((_INSTANCE_CALL, call))
            _, reply = conn.recv()
        status, value = pickle.loads(reply)
        if status == "error":
            raise value
        return value

    return ForwardedInstance(forward)


def _serve(conn: multiprocessing.connection.Connection, source: CodeOrigin) -> None:
    """A worker process's life: import the code, say so, then evaluate ticks until the pipe
    closes. Interrupts are the parent's to handle (it kills this process), so SIGINT from a
    terminal's Ctrl-C is ignored here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from dagloom.actors.code_location import evaluate_schedule, evaluate_sensor
    from dagloom.code.snapshot import load_error_info
    from dagloom.errors import CodeLocationLoadError

    try:
        definitions = source.load()
    except CodeLocationLoadError as exc:
        conn.send((_LOAD_ERROR, bytes(load_error_info(exc))))
        return
    conn.send((_READY, b""))
    forwarded = _forwarder(conn)
    while True:
        try:
            kind, request, now, forward = conn.recv()
        except EOFError:
            return
        instance = forwarded if forward else None
        if kind == "schedule":
            result = evaluate_schedule(
                definitions, EvaluateScheduleRequest.parse(request), now=now, instance=instance
            )
        else:
            result = evaluate_sensor(
                definitions, EvaluateSensorRequest.parse(request), instance=instance
            )
        conn.send((_TICK, bytes(result)))
