"""Full garbage collections deferred while a large run or a job's definition is being built.

CPython starts a full (oldest-generation) collection each time the objects that survived
younger collections grow by a quarter of those already old. A run keeps every event row it
records for its result (5 to 6 per step), so a long run grows the old generation steadily and
pays for full passes over everything it has kept: at 20,000 steps two full passes took 37% of
the run, and per-step cost rose from ~15 µs at 500 steps to 27 to 46 µs. The same happens while a
20,000-op job is composed.

While any deferral is active the oldest generation's threshold is raised a hundredfold, so in
practice only the young generations are collected (short-lived cycles are still freed); when
the last one ends, the thresholds in force before the first one are put back and collection
carries on as usual. Deferrals nest and may overlap across threads and tasks: a counter under
a lock decides which one is first and which is last.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# A run of fewer steps than this keeps too few rows for full passes to matter (measured: the
# 500-step chain spends <5% of its time in the collector), and leaving small runs alone means a
# busy server of short runs never goes without full collections.
LARGE_RUN_STEPS = 1_000

# The oldest generation is collected after `threshold2` collections of the middle one (10 by
# default), each after `threshold1` of the youngest (every 700 net allocations). A 100,000-step
# run makes about 185 middle collections in memory and twice that on SQLite, so 1,000 keeps
# full passes out of any such run, yet still bounds a deferral that never ends (a server
# busy with large runs back to back): a full pass after about 7 million net allocations.
DEFERRED_OLDEST_THRESHOLD = 1_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


def deferred_thresholds(thresholds: tuple[int, int, int]) -> tuple[int, int, int]:
    """The collector thresholds to use while full collections are deferred: the young
    generations' as given, the oldest's raised to `DEFERRED_OLDEST_THRESHOLD` (kept when
    already higher). A youngest threshold of 0 (collection disabled by threshold) stays."""
    young, middle, oldest = thresholds
    if young == 0:
        return thresholds
    return (young, middle, max(oldest, DEFERRED_OLDEST_THRESHOLD))


def defers_run(n_steps: int) -> bool:
    """Whether a run of `n_steps` steps defers full collections while it executes."""
    return n_steps >= LARGE_RUN_STEPS


def _enter() -> None:
    global _depth, _saved
    with _lock:
        if _depth == 0:
            current = gc.get_threshold()
            _saved = (current[0], current[1], current[2])
            gc.set_threshold(*deferred_thresholds(_saved))
        _depth += 1


def _exit() -> None:
    global _depth, _saved
    with _lock:
        _depth -= 1
        if _depth == 0 and _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None


@contextmanager
def full_collections_deferred(active: bool = True) -> Iterator[None]:
    """Defer full garbage collections for the duration of the block (when `active`).

    Safe to nest and to overlap from several threads or tasks; thresholds are restored when
    the last overlapping block ends, also when it ends by an exception or cancellation.
    Thresholds set by other code while a block is active are overwritten at its end.
    """
    if not active:
        yield
        return
    _enter()
    try:
        yield
    finally:
        _exit()


def deferring() -> bool:
    """Whether some block is deferring full collections now."""
    with _lock:
        return _depth > 0
