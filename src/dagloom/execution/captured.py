"""Running step attempts with their stdout and stderr captured by a compute log manager."""

from __future__ import annotations

import anyio

from dagloom._logging import get_logger
from dagloom.compute_logs.base import ComputeLogManager
from dagloom.compute_logs.capture import AttemptOutput, StepLog, reset_current, set_current
from dagloom.errors import DagloomError
from dagloom.execution.sink import EventSink
from dagloom.execution.step import ExecutionState, Outcome, RunFacts, StepRunner
from dagloom.messages.rows import EventRow

_log = get_logger("dagloom.compute_logs")


class UncapturedSink:
    """An event sink whose events are emitted with writes routed to the console: events
    are dagloom's, not the step's, so what a sink prints (the CLI's progress) stays out of
    the step's log. Only sinks that print need it; the storage sink does not."""

    __slots__ = ("_sink",)

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink

    def emit(self, row: EventRow) -> None:
        token = set_current(None)
        try:
            self._sink.emit(row)
        finally:
            reset_current(token)

    async def flush(self) -> None:
        await self._sink.flush()


def open_step_log(
    manager: ComputeLogManager, run_id: str, step_key: str, attempt: int
) -> StepLog | None:
    """The attempt's log, or None (logged) when it cannot have one: the step runs
    uncaptured rather than failing for it."""
    try:
        return manager.open_step(run_id, step_key, attempt)
    except DagloomError as exc:
        _log.warning("compute_log_unavailable", run_id=run_id, step_key=step_key, error=str(exc))
        return None


class CapturingStepRunner(StepRunner):
    """A `StepRunner` whose attempts (inputs, op, outputs, hooks) write sys.stdout and
    sys.stderr to their own log, opened on the attempt's first write; the routers must be
    installed (`dagloom.compute_logs.capture.install_routers`)."""

    __slots__ = ("_opener", "manager")

    def __init__(self, facts: RunFacts, state: ExecutionState) -> None:
        super().__init__(facts, state)
        assert facts.compute_logs is not None
        self.manager = facts.compute_logs
        self._opener = self._open_log  # bound once, not once per attempt

    def _open_log(self, step_key: str, attempt: int) -> StepLog | None:
        return open_step_log(self.manager, self.facts.run_id, step_key, attempt)

    def run_sync(self, step_key: str, attempt: int) -> Outcome:
        output = AttemptOutput(self._opener, step_key, attempt)
        token = set_current(output)
        try:
            return StepRunner.run_sync(self, step_key, attempt)
        finally:
            reset_current(token)
            log = output.end()
            if log is not None:
                self.manager.step_finished(log)

    async def run_async(
        self, step_key: str, attempt: int, threads: anyio.CapacityLimiter | None
    ) -> Outcome:
        # Each attempt runs in its own task, so the route set here is this task's alone.
        output = AttemptOutput(self._opener, step_key, attempt)
        token = set_current(output)
        try:
            return await super().run_async(step_key, attempt, threads)
        finally:
            reset_current(token)
            log = output.end()
            if log is not None:
                self.manager.step_finished(log)
