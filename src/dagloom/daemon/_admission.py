"""Queue admission: which queued runs may start now. Pure and synchronous, so it is tested
without an event loop and the coordinator only feeds it what storage says."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dagloom.daemon._tags import PRIORITY_TAGS, tag_value


@dataclass(frozen=True, slots=True)
class TagConcurrencyLimit:
    """At most `limit` runs in progress with tag `key` (equal to `value`, when given).

    With `value` None the limit counts every run carrying the key, whatever its value;
    with `per_value` it applies to each value separately, as Dagster's
    `applyLimitPerUniqueValue` does.
    """

    key: str
    limit: int
    value: str | None = None
    per_value: bool = False

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError(f"tag concurrency limit for {self.key!r} is negative: {self.limit}")
        if self.value is not None and self.per_value:
            raise ValueError(f"tag limit for {self.key!r}: give value or per_value, not both")

    def bucket(self, tags: Mapping[str, str]) -> str | None:
        """Which counter a run with `tags` falls in under this limit; None: not limited."""
        found = tags.get(self.key)
        if found is None:
            return None
        if self.value is not None:
            return self.value if found == self.value else None
        return found if self.per_value else ""


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A queued run as admission sees it: its id and tags."""

    run_id: str
    tags: Mapping[str, str]


def run_priority(tags: Mapping[str, str]) -> int:
    """A run's queue priority: its `dagloom/priority` tag, else `dagster/priority`, as an
    integer; 0 when neither is set or the value is not an integer (as Dagster reads it)."""
    found = tag_value(tags, PRIORITY_TAGS)
    if found is None:
        return 0
    try:
        return int(found[1].strip())
    except ValueError:
        return 0


def admission_order(queued: Sequence[QueuedRun]) -> list[QueuedRun]:
    """`queued` (in submission order) in the order admission considers it: higher priority
    first, submission order within a priority."""
    return sorted(queued, key=lambda run: -run_priority(run.tags))


def runs_to_admit(
    queued: Sequence[QueuedRun],
    in_progress: Sequence[Mapping[str, str]],
    *,
    max_concurrent_runs: int | None,
    tag_limits: Sequence[TagConcurrencyLimit] = (),
) -> list[str]:
    """The ids of the queued runs to launch now, in the order to launch them.

    `queued` is in submission order; runs are considered in `admission_order` (priority
    tags first). `in_progress` holds the tags of each run already launched and not finished
    (STARTING, STARTED, CANCELING). At most `max_concurrent_runs` runs are in progress after
    admission (None or negative: no limit; 0: the queue is paused), and for each
    `TagConcurrencyLimit` at most `limit` runs are in progress in each of its buckets, the
    in-progress runs included (so limits already exceeded admit nothing more). A run that
    would exceed a tag limit stays queued, and runs behind it that the limit does not
    concern go ahead of it, so one busy tag never blocks the whole queue; once the global
    limit is reached admission stops.

    Greedy in admission order, hence maximal: every run left out would, at its turn, have
    broken a limit given the in-progress runs and the runs admitted before it. Pure: the
    same input gives the same output.
    """
    room: int | None = None
    if max_concurrent_runs is not None and max_concurrent_runs >= 0:
        room = max(0, max_concurrent_runs - len(in_progress))
    counts: dict[tuple[int, str], int] = {}
    for tags in in_progress:
        for i, limit in enumerate(tag_limits):
            bucket = limit.bucket(tags)
            if bucket is not None:
                counts[(i, bucket)] = counts.get((i, bucket), 0) + 1
    admitted: list[str] = []
    for run in admission_order(queued):
        if room is not None and len(admitted) >= room:
            break
        hits = [
            (i, bucket)
            for i, limit in enumerate(tag_limits)
            if (bucket := limit.bucket(run.tags)) is not None
        ]
        if any(counts.get(hit, 0) >= tag_limits[hit[0]].limit for hit in hits):
            continue
        for hit in hits:
            counts[hit] = counts.get(hit, 0) + 1
        admitted.append(run.run_id)
    return admitted
