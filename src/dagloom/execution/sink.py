"""Where a run's events go: the executor emits event rows into a sink; storage and lists
implement it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from dagloom.messages.row_log import CHUNK, RowLog
from dagloom.messages.rows import EventRow


class EventSink(Protocol):
    """Receives the rows of one run's events (see `dagloom.messages.rows`) in the order they
    happen.

    `emit` never blocks and never raises for a storage reason: a sink buffers what it cannot
    write at once. `flush` returns once every event emitted before the call is durable (for a
    storage-backed sink) or delivered; calling it twice is safe. The executor flushes before it
    reports a run finished, so a terminal event is durable before anyone is told.
    """

    def emit(self, row: EventRow) -> None: ...

    async def flush(self) -> None: ...


class ListEventSink:
    """Keeps rows in memory, in a `RowLog` (compacted as they accumulate); `flush` has
    nothing to do."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows = RowLog()

    def emit(self, row: EventRow) -> None:
        # `RowLog.append` inlined: this is called ~5 times per step.
        rows = self.rows
        tail = rows.tail
        tail.append(row)
        if len(tail) >= CHUNK:
            rows.seal()

    async def flush(self) -> None:
        return None


class FanoutEventSink:
    """Emits each row to several sinks in order; `flush` flushes them all."""

    __slots__ = ("_emits", "_sinks")

    def __init__(self, *sinks: EventSink) -> None:
        self._sinks = sinks
        self._emits = tuple(sink.emit for sink in sinks)

    def emit(self, row: EventRow) -> None:
        for emit in self._emits:
            emit(row)

    async def flush(self) -> None:
        for sink in self._sinks:
            await sink.flush()


class LoggerEventSink:
    """Logs each row to the Python loggers a job's `logger_defs` built for the run, at its
    level, with `run_id`, `job_name`, `step_key` and `dagster_event_type` as record
    attributes; `flush` has nothing to do."""

    __slots__ = ("_loggers", "_run_id")

    def __init__(self, loggers: Sequence[logging.Logger], run_id: str) -> None:
        self._loggers = tuple(loggers)
        self._run_id = run_id

    def emit(self, row: EventRow) -> None:
        event_type, step_key, _, message, level, job_name = row[:6]
        number = int(level) or logging.INFO
        name = getattr(event_type, "name", str(event_type))
        extra = {
            "run_id": self._run_id,
            "job_name": job_name,
            "step_key": step_key or None,
            "dagster_event_type": name,
        }
        for target in self._loggers:
            if target.isEnabledFor(number):
                target.log(number, "%s", message if message is not None else name, extra=extra)

    async def flush(self) -> None:
        return None
