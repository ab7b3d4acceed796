"""Queue admission: priorities, Dagster's tag-limit formats, and, over random queues and
limits, that no limit is ever exceeded and that admission leaves out only runs that must wait."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagloom.daemon import (
    QueuedRun,
    TagConcurrencyLimit,
    admission_order,
    run_priority,
    runs_to_admit,
)


def ids(runs: Sequence[QueuedRun]) -> list[str]:
    return [run.run_id for run in runs]


@pytest.mark.parametrize(
    ("tags", "priority"),
    [
        ({}, 0),
        ({"dagster/priority": "3"}, 3),
        ({"dagloom/priority": "-2"}, -2),
        ({"dagloom/priority": "5", "dagster/priority": "9"}, 5),
        ({"dagster/priority": "high"}, 0),
        ({"dagster/priority": " 7 "}, 7),
    ],
)
def test_priority_comes_from_the_dagloom_tag_then_the_dagster_one(
    tags: dict[str, str], priority: int
) -> None:
    assert run_priority(tags) == priority


def test_higher_priority_runs_go_first_and_equal_ones_keep_submission_order() -> None:
    queue = [
        QueuedRun("a", {}),
        QueuedRun("b", {"dagster/priority": "1"}),
        QueuedRun("c", {"dagloom/priority": "-1"}),
        QueuedRun("d", {"dagster/priority": "1"}),
        QueuedRun("e", {}),
    ]
    assert ids(admission_order(queue)) == ["b", "d", "a", "e", "c"]
    assert runs_to_admit(queue, [], max_concurrent_runs=3) == ["b", "d", "a"]


def test_a_zero_global_limit_pauses_the_queue_and_a_zero_tag_limit_holds_its_runs() -> None:
    queue = [QueuedRun("a", {"db": "x"}), QueuedRun("b", {})]
    assert runs_to_admit(queue, [], max_concurrent_runs=0) == []
    held = TagConcurrencyLimit("db", 0)
    assert runs_to_admit(queue, [], max_concurrent_runs=-1, tag_limits=[held]) == ["b"]


def test_a_high_priority_run_blocked_by_its_tag_does_not_block_the_queue() -> None:
    queue = [QueuedRun("low", {}), QueuedRun("urgent", {"db": "x", "dagster/priority": "10"})]
    limit = TagConcurrencyLimit("db", 1)
    assert runs_to_admit(queue, [{"db": "y"}], max_concurrent_runs=2, tag_limits=[limit]) == ["low"]


def test_limits_already_exceeded_by_running_runs_admit_nothing_more_of_theirs() -> None:
    limit = TagConcurrencyLimit("db", 1, per_value=True)
    running = [{"db": "x"}, {"db": "x"}]
    queue = [QueuedRun("a", {"db": "x"}), QueuedRun("b", {"db": "y"})]
    assert runs_to_admit(queue, running, max_concurrent_runs=None, tag_limits=[limit]) == ["b"]
    assert runs_to_admit(queue, running * 3, max_concurrent_runs=5) == []


def test_malformed_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        TagConcurrencyLimit("db", -1)
    with pytest.raises(ValueError, match="not both"):
        TagConcurrencyLimit("db", 1, value="x", per_value=True)


# -- properties -----------------------------------------------------------------------------

KEYS = ["db", "team", "pool"]
VALUES = ["x", "y", "z"]
tag_sets = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)


@st.composite
def limits(draw: st.DrawFn) -> TagConcurrencyLimit:
    key = draw(st.sampled_from(KEYS))
    limit = draw(st.integers(0, 4))
    kind = draw(st.sampled_from(["all", "value", "per_value"]))
    if kind == "value":
        return TagConcurrencyLimit(key, limit, value=draw(st.sampled_from(VALUES)))
    return TagConcurrencyLimit(key, limit, per_value=kind == "per_value")


@st.composite
def queued_runs(draw: st.DrawFn) -> list[QueuedRun]:
    runs = []
    for i, tags in enumerate(draw(st.lists(tag_sets, max_size=25))):
        tags = dict(tags)
        priority = draw(st.none() | st.integers(-2, 2))
        if priority is not None:
            tags[draw(st.sampled_from(["dagloom/priority", "dagster/priority"]))] = str(priority)
        runs.append(QueuedRun(f"r{i}", tags))
    return runs


def counted(limit: TagConcurrencyLimit, tags: Mapping[str, str]) -> str | None:
    """Which counter of `limit` a run falls in, straight from Dagster's format: a `value`
    limits that pair, `applyLimitPerUniqueValue` each value apart, neither the key as a
    whole (written again here so the property does not trust the code under test)."""
    if limit.key not in tags:
        return None
    if limit.value is not None:
        return "pair" if tags[limit.key] == limit.value else None
    return tags[limit.key] if limit.per_value else "key"


def breaks_a_limit(
    tags: Mapping[str, str],
    others: Sequence[Mapping[str, str]],
    max_concurrent_runs: int,
    tag_limits: Sequence[TagConcurrencyLimit],
) -> bool:
    """Whether adding a run with `tags` to the runs `others` would break any limit."""
    if 0 <= max_concurrent_runs <= len(others):
        return True
    for limit in tag_limits:
        bucket = counted(limit, tags)
        if bucket is not None:
            used = sum(counted(limit, other) == bucket for other in others)
            if used + 1 > limit.limit:
                return True
    return False


@settings(max_examples=400, deadline=None)
@given(
    queue=queued_runs(),
    running=st.lists(tag_sets, max_size=12),
    max_concurrent_runs=st.integers(-1, 15),
    tag_limits=st.lists(limits(), max_size=4),
)
def test_admission_never_exceeds_a_limit_and_is_maximal(
    queue: list[QueuedRun],
    running: list[dict[str, str]],
    max_concurrent_runs: int,
    tag_limits: list[TagConcurrencyLimit],
) -> None:
    chosen = runs_to_admit(
        queue, running, max_concurrent_runs=max_concurrent_runs, tag_limits=tag_limits
    )
    by_id = {run.run_id: run for run in queue}
    assert len(chosen) == len(set(chosen)) and set(chosen) <= set(by_id)

    # Order: higher priority first, then submission order.
    position = {run.run_id: i for i, run in enumerate(queue)}
    keys = [(-run_priority(by_id[i].tags), position[i]) for i in chosen]
    assert keys == sorted(keys)

    # Safety: each admitted run fit alongside the running runs and those admitted before it;
    # so no limit that the running runs alone kept is broken after admission.
    admitted: list[Mapping[str, str]] = []
    for run_id in chosen:
        tags = by_id[run_id].tags
        assert not breaks_a_limit(tags, [*running, *admitted], max_concurrent_runs, tag_limits)
        admitted.append(tags)
    if max_concurrent_runs >= 0:
        assert len(running) + len(chosen) <= max(max_concurrent_runs, len(running))
    for limit in tag_limits:
        before = Counter(counted(limit, tags) for tags in running)
        after = before + Counter(counted(limit, tags) for tags in admitted)
        for bucket, total in after.items():
            if bucket is not None and total > before[bucket]:
                assert total <= limit.limit

    # Maximality: walking the queue in admission order, every run left out would have broken
    # a limit at its turn.
    walked: list[Mapping[str, str]] = []
    for run in sorted(queue, key=lambda r: (-run_priority(r.tags), position[r.run_id])):
        fits = not breaks_a_limit(run.tags, [*running, *walked], max_concurrent_runs, tag_limits)
        assert fits == (run.run_id in chosen)
        if fits:
            walked.append(run.tags)


@settings(max_examples=100, deadline=None)
@given(
    queue=queued_runs(),
    max_concurrent_runs=st.integers(1, 6),
    tag_limits=st.lists(limits(), max_size=3),
    finishing=st.lists(st.integers(0, 5), min_size=1, max_size=30),
)
def test_admitting_in_rounds_as_runs_finish_stays_within_limits_every_round(
    queue: list[QueuedRun],
    max_concurrent_runs: int,
    tag_limits: list[TagConcurrencyLimit],
    finishing: list[int],
) -> None:
    """The queue loop's life: admit, let some runs finish, admit again. At no round are the
    limits exceeded, and each run is admitted at most once."""
    waiting = list(queue)
    running: list[QueuedRun] = []
    admitted_ever: list[str] = []
    for done in finishing:
        chosen = runs_to_admit(
            waiting,
            [run.tags for run in running],
            max_concurrent_runs=max_concurrent_runs,
            tag_limits=tag_limits,
        )
        admitted_ever += chosen
        running += [run for run in waiting if run.run_id in chosen]
        waiting = [run for run in waiting if run.run_id not in chosen]
        assert len(running) <= max_concurrent_runs
        for limit in tag_limits:
            totals = Counter(counted(limit, run.tags) for run in running)
            assert all(n <= limit.limit for b, n in totals.items() if b is not None)
        running = running[done:]
    assert len(admitted_ever) == len(set(admitted_ever))
