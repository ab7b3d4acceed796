"""`get_dagster_logger`: a Python logger whose records, while a step runs, are also recorded
as that step's LOG_MESSAGE events (as `context.log` lines are).

The step that is running is a context variable the executor sets as it prepares each step, so
it follows the step into its async tasks and worker threads, and into step processes. Records
logged outside any step go only to Python's logging, like any logger's.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable

from dagloom.messages import EventType, LogLevel
from dagloom.messages.rows import EventRow, row

StepLog = tuple[str, str, Callable[[EventRow], None]]
"""(step key, job name, emit) of the step that is running."""

CURRENT_STEP: contextvars.ContextVar[StepLog | None] = contextvars.ContextVar(
    "dagloom_current_step", default=None
)

_BUILTIN = "dagster.builtin"
_LEVELS = {
    logging.DEBUG: LogLevel.DEBUG,
    logging.INFO: LogLevel.INFO,
    logging.WARNING: LogLevel.WARNING,
    logging.ERROR: LogLevel.ERROR,
    logging.CRITICAL: LogLevel.CRITICAL,
}


class _StepEventHandler(logging.Handler):
    """Records each record logged during a step as a LOG_MESSAGE event of that step."""

    def emit(self, record: logging.LogRecord) -> None:
        step = CURRENT_STEP.get()
        if step is None:
            return
        step_key, job_name, emit = step
        try:
            text = record.getMessage()
        except Exception:  # a bad format string is the caller's; logging reports it itself
            self.handleError(record)
            return
        level = _LEVELS.get(record.levelno, LogLevel.INFO)
        emit(row(EventType.LOG_MESSAGE, step_key, text, level, job_name))


_handler = _StepEventHandler()


def get_dagster_logger(name: str | None = None) -> logging.Logger:
    """A logger (`dagster.builtin`, or `dagster.builtin.<name>`) whose records, logged while
    a step runs, are recorded as that step's LOG_MESSAGE events and also go on to Python's
    logging. It logs from DEBUG unless its level was set."""
    root = logging.getLogger(_BUILTIN)
    if _handler not in root.handlers:
        root.addHandler(_handler)
        if root.level == logging.NOTSET:
            root.setLevel(logging.DEBUG)
    return root if not name else logging.getLogger(f"{_BUILTIN}.{name}")


__all__ = ["CURRENT_STEP", "get_dagster_logger"]
