"""Process counters: plain numbers that the hot paths bump and `dagloom.metrics` reads when
it is scraped.

Bumping one is an attribute increment (or, for a histogram, a bisect over a dozen bounds),
with no lock and no import of the metrics library: everything that bumps them runs on one
event loop or under the GIL, where a lost update is a miscount of one, never a crash.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate

STEP_DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
)  # fmt: skip
"""Upper bounds (seconds) of the step duration histogram's buckets; +Inf follows."""


PENDING_LIMIT = 1024
"""Observations a hot path may leave in `Histogram.pending` before it calls `fold`."""


class Histogram:
    """Observations counted into fixed buckets: `counts[i]` is how many fell in
    (bounds[i-1], bounds[i]], the last count is those above every bound.

    A hot path appends to `pending` instead of calling `observe` (a list append is about a
    third of the cost), and calls `fold` once `PENDING_LIMIT` values wait there; readers
    fold before they read, so nothing pending is missed and the list stays small.
    """

    __slots__ = ("bounds", "count", "counts", "pending", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"histogram bounds must be increasing, got {list(bounds)}")
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.total = 0.0
        self.pending: list[float] = []

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def fold(self) -> None:
        """Count the values waiting in `pending` and take them out of it.

        Safe beside threads appending: only the values it read are removed."""
        pending = self.pending
        taken = pending[: len(pending)]
        del pending[: len(taken)]
        for value in taken:
            self.observe(value)

    def cumulative(self) -> list[int]:
        """Observations at or below each bound, then the total count (Prometheus' `le`);
        folds `pending` first."""
        self.fold()
        return list(accumulate(self.counts))


class ProcessCounters:
    """What this process did since it started."""

    __slots__ = ("events_written", "step_durations")

    def __init__(self) -> None:
        self.events_written = 0
        """Event rows this process stored in an event log."""
        self.step_durations = Histogram(STEP_DURATION_BUCKETS)
        """Seconds each step attempt that succeeded in this process took."""


PROCESS = ProcessCounters()
"""This process's counters."""
