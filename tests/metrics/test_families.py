"""What a scrape says for a given snapshot: names, labels and values, without an event loop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from dagloom._counters import Histogram
from dagloom.messages import DaemonHeartbeat, Run, RunStatus
from dagloom.metrics import (
    ActorFigures,
    LocationFigures,
    MetricsSnapshot,
    loop_lag,
    metric_families,
)
from dagloom.storage.base import DurationHistogram, RunStats, fold_run_stats

NO_STEPS = DurationHistogram(bounds=(1.0,), cumulative=(0,), count=0, total=0.0)


class _Collector:
    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self):  # type: ignore[no-untyped-def]
        return metric_families(self.snapshot)


def samples(snapshot: MetricsSnapshot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the text exposition of `snapshot`, parsed back."""
    text = generate_latest(_Collector(snapshot)).decode()  # type: ignore[arg-type]
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            assert isinstance(s, Sample)
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def snapshot(**fields: object) -> MetricsSnapshot:
    base: dict[str, object] = {
        "now": 1000.0,
        "storage_up": True,
        "run_stats": RunStats(counts={}, durations={}),
        "heartbeats": {},
        "events_written": 0,
        "step_durations": NO_STEPS,
    }
    base.update(fields)
    return MetricsSnapshot(**base)  # type: ignore[arg-type]


def test_runs_are_reported_by_job_and_status_with_zeros_and_the_queue_depth() -> None:
    stats = RunStats(
        counts={
            ("etl", RunStatus.SUCCESS): 3,
            ("etl", RunStatus.QUEUED): 2,
            ("report", RunStatus.QUEUED): 1,
        },
        durations={},
    )
    got = samples(snapshot(run_stats=stats))
    assert got[("dagloom_runs", (("job", "etl"), ("status", "SUCCESS")))] == 3
    assert got[("dagloom_runs", (("job", "etl"), ("status", "QUEUED")))] == 2
    assert got[("dagloom_runs", (("job", "etl"), ("status", "FAILURE")))] == 0
    assert got[("dagloom_runs", (("job", "report"), ("status", "QUEUED")))] == 1
    assert got[("dagloom_run_queue_depth", ())] == 3
    assert got[("dagloom_storage_up", ())] == 1


def test_run_durations_are_a_histogram_per_job() -> None:
    h = DurationHistogram(bounds=(1.0, 10.0), cumulative=(1, 3), count=4, total=42.5)
    got = samples(snapshot(run_stats=RunStats(counts={}, durations={"etl": h})))
    assert got[("dagloom_run_duration_seconds_bucket", (("job", "etl"), ("le", "1.0")))] == 1
    assert got[("dagloom_run_duration_seconds_bucket", (("job", "etl"), ("le", "10.0")))] == 3
    assert got[("dagloom_run_duration_seconds_bucket", (("job", "etl"), ("le", "+Inf")))] == 4
    assert got[("dagloom_run_duration_seconds_count", (("job", "etl"),))] == 4
    assert got[("dagloom_run_duration_seconds_sum", (("job", "etl"),))] == 42.5


def test_events_stored_is_a_storage_counter_beside_this_processs_writes() -> None:
    got = samples(snapshot(events_stored=120, events_written=7))
    assert got[("dagloom_events_stored_total", ())] == 120
    assert got[("dagloom_events_written_total", ())] == 7


def test_without_storage_only_process_figures_are_reported() -> None:
    got = samples(snapshot(storage_up=False, run_stats=None, heartbeats=None, events_written=7))
    assert got[("dagloom_storage_up", ())] == 0
    assert got[("dagloom_events_written_total", ())] == 7
    assert not any(name.startswith(("dagloom_runs", "dagloom_daemon")) for name, _ in got)


def test_daemon_loops_report_their_last_heartbeat_and_lag() -> None:
    beats = {
        "scheduler": DaemonHeartbeat(daemon_type="scheduler", timestamp=990.0, interval=30.0),
        "sensors": DaemonHeartbeat(
            daemon_type="sensors", timestamp=900.0, interval=30.0, last_error_time=850.0
        ),
    }
    got = samples(snapshot(heartbeats=beats, now=1000.0))
    stamp = "dagloom_daemon_loop_last_heartbeat_timestamp_seconds"
    assert got[(stamp, (("loop", "scheduler"),))] == 990.0
    assert got[("dagloom_daemon_loop_lag_seconds", (("loop", "scheduler"),))] == 0.0
    assert got[("dagloom_daemon_loop_lag_seconds", (("loop", "sensors"),))] == 70.0
    failed = "dagloom_daemon_loop_last_error_timestamp_seconds"
    assert got[(failed, (("loop", "sensors"),))] == 850.0
    assert got[(failed, (("loop", "scheduler"),))] == 0.0


@given(
    timestamp=st.floats(0, 1e10, allow_nan=False),
    interval=st.floats(-10, 1e5, allow_nan=False),
    now=st.floats(0, 1e10, allow_nan=False),
)
def test_loop_lag_is_never_negative_and_grows_with_time(
    timestamp: float, interval: float, now: float
) -> None:
    beat = DaemonHeartbeat(daemon_type="x", timestamp=timestamp, interval=interval)
    lag = loop_lag(beat, now)
    assert lag >= 0.0
    assert loop_lag(beat, now + 5.0) >= lag


def test_actors_report_inbox_depth_restarts_and_readiness_summed_by_name() -> None:
    actors = [
        ActorFigures(actor="coordinator", inbox=3, waiting_asks=1, restarts=2, ready=True),
        ActorFigures(actor="coordinator", inbox=1, waiting_asks=0, restarts=0, ready=False),
        ActorFigures(actor="daemon", inbox=0, waiting_asks=0, restarts=0, ready=False),
    ]
    got = samples(snapshot(actors=actors))
    assert got[("dagloom_actor_inbox_messages", (("actor", "coordinator"),))] == 4
    assert got[("dagloom_actor_waiting_asks", (("actor", "coordinator"),))] == 1
    assert got[("dagloom_actor_restarts_total", (("actor", "coordinator"),))] == 2
    assert got[("dagloom_actor_ready", (("actor", "coordinator"),))] == 1
    assert got[("dagloom_actor_ready", (("actor", "daemon"),))] == 0


def test_code_locations_report_failing_and_failed_loads_where_known() -> None:
    locations = [
        LocationFigures(location="here", failing=True, load_failures=2),
        LocationFigures(location="remote", failing=False, load_failures=None),
    ]
    got = samples(snapshot(locations=locations))
    assert got[("dagloom_code_location_load_failing", (("location", "here"),))] == 1
    assert got[("dagloom_code_location_load_failing", (("location", "remote"),))] == 0
    assert got[("dagloom_code_location_load_errors_total", (("location", "here"),))] == 2
    assert ("dagloom_code_location_load_errors_total", (("location", "remote"),)) not in got


@given(
    st.lists(st.tuples(st.floats(0, 5000, allow_nan=False), st.booleans()), max_size=50),
)
def test_the_step_histogram_counts_each_observation_once_at_its_bound(
    observations: list[tuple[float, bool]],
) -> None:
    """Whether observed at once or appended to `pending` (as the step runner does) and
    folded later, in any mix, each value counts once in every bucket at or above it."""
    h = Histogram((0.5, 1.0, 60.0))
    values = [v for v, _ in observations]
    for v, at_once in observations:
        if at_once:
            h.observe(v)
        else:
            h.pending.append(v)
            if len(h.pending) >= 7:
                h.fold()
    cumulative = h.cumulative()
    assert cumulative[-1] == h.count == len(values) and not h.pending
    for bound, n in zip(h.bounds, cumulative, strict=False):
        assert n == sum(1 for v in values if v <= bound)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.sampled_from(list(RunStatus)),
            st.floats(0, 1000, allow_nan=False),
            st.floats(0, 1000, allow_nan=False),
        ),
        max_size=30,
    )
)
def test_folded_run_stats_count_every_run_and_only_finished_durations(
    rows: list[tuple[str, RunStatus, float, float]],
) -> None:
    runs = [
        Run(run_id=str(i), job_name=j, status=s, start_time=a, end_time=b)
        for i, (j, s, a, b) in enumerate(rows)
    ]
    stats = fold_run_stats(runs, (1.0, 100.0))
    assert sum(stats.counts.values()) == len(runs)
    timed = [r for r in runs if r.start_time > 0 and r.end_time > 0 and r.end_time >= r.start_time]
    assert sum(h.count for h in stats.durations.values()) == len(timed)
    for h in stats.durations.values():
        assert list(h.cumulative) == sorted(h.cumulative) and h.cumulative[-1] <= h.count
