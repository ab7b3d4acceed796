"""The daemon's decision logic: schedule ticks, sensor ticks, queue admission, run
monitoring verdicts and run retries.

Every function here is pure and sync, takes frozen records and an explicit `now`, and does no
I/O, so the daemon's loops call them between storage reads and writes and tests call them
without an event loop.
"""

from __future__ import annotations

from dagloom.daemon._admission import (
    QueuedRun,
    TagConcurrencyLimit,
    admission_order,
    run_priority,
    runs_to_admit,
)

__all__ = [
    "QueuedRun",
    "TagConcurrencyLimit",
    "admission_order",
    "run_priority",
    "runs_to_admit",
]
