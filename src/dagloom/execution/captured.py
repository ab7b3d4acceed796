"""Running step attempts with their stdout and stderr captured by a compute log manager."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import anyio
import structlog

from dagloom.compute_logs.base import ComputeLogManager
from dagloom.compute_logs.capture import StepLog, reset_current, set_current
from dagloom.errors import DagloomError
from dagloom.execution.step import ExecutionState, Outcome, RunFacts, StepRunner
from dagloom.messages.rows import EventRow

_log = structlog.get_logger("dagloom.compute_logs")


def uncaptured(emit: Callable[[EventRow], None]) -> Callable[[EventRow], None]:
    """`emit`, called with this context's writes routed to the console."""

    def emit_uncaptured(event: EventRow) -> None:
        token = set_current(None)
        try:
            emit(event)
        finally:
            reset_current(token)

    return emit_uncaptured


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
    sys.stderr to their own log; the routers must be installed
    (`dagloom.compute_logs.capture.install_routers`)."""

    __slots__ = ("manager",)

    def __init__(self, facts: RunFacts, state: ExecutionState) -> None:
        assert facts.compute_logs is not None
        # Events are dagloom's, not the step's: whatever their sinks print (the CLI's
        # progress) goes to the console, not into the step's log.
        super().__init__(replace(facts, emit=uncaptured(facts.emit)), state)
        self.manager = facts.compute_logs

    def run_sync(self, step_key: str, attempt: int) -> Outcome:
        log = open_step_log(self.manager, self.facts.run_id, step_key, attempt)
        token = set_current(log)
        try:
            return super().run_sync(step_key, attempt)
        finally:
            reset_current(token)
            if log is not None:
                self.manager.step_finished(log)

    async def run_async(
        self, step_key: str, attempt: int, threads: anyio.CapacityLimiter | None
    ) -> Outcome:
        # Each attempt runs in its own task, so the route set here is this task's alone.
        log = open_step_log(self.manager, self.facts.run_id, step_key, attempt)
        token = set_current(log)
        try:
            return await super().run_async(step_key, attempt, threads)
        finally:
            reset_current(token)
            if log is not None:
                self.manager.step_finished(log)
