"""What `/metrics` says, as a pure function of one `MetricsSnapshot`: no I/O, no clock.

The snapshot is gathered by `_gather` (storage reads and process counters); here it becomes
Prometheus metric families, so every name, label and value is tested without an event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from dagloom.messages import DaemonHeartbeat, RunStatus
from dagloom.storage.base import DurationHistogram, RunStats

RUN_STATUSES: tuple[RunStatus, ...] = tuple(RunStatus)
"""Every status a run can be in; `dagloom_runs` reports each of them for every job (0 when
none), so a query over a status that no run is in yet finds a series."""


@dataclass(frozen=True, slots=True)
class ActorFigures:
    """One actor of this process, as `Actor.statistics()` and `Actor.health()` show it."""

    actor: str
    inbox: int
    waiting_asks: int
    restarts: int
    ready: bool


@dataclass(frozen=True, slots=True)
class LocationFigures:
    """One code location: whether it is failing to load now (None: not known here) and how
    many loads failed in this process (None: it is not served by this process)."""

    location: str
    failing: bool | None
    load_failures: int | None


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Everything one scrape reports. `run_stats`, `heartbeats` and `events_stored` are None
    when storage could not be read (then `storage_up` is False and their families are left
    out)."""

    now: float
    storage_up: bool
    run_stats: RunStats | None
    heartbeats: Mapping[str, DaemonHeartbeat] | None
    events_written: int
    step_durations: DurationHistogram
    events_stored: int | None = None
    actors: Sequence[ActorFigures] = ()
    locations: Sequence[LocationFigures] = field(default_factory=tuple)


def loop_lag(heartbeat: DaemonHeartbeat, now: float) -> float:
    """How many seconds a daemon loop's next round is overdue at `now`: the time since its
    last round ended beyond its interval, never negative (an interval of 0 counts from the
    last round)."""
    return max(0.0, now - heartbeat.timestamp - max(heartbeat.interval, 0.0))


def _buckets(h: DurationHistogram) -> list[tuple[str, float]]:
    """Prometheus' cumulative (le, count) pairs of `h`, ending with +Inf."""
    buckets = [(_le(b), float(n)) for b, n in zip(h.bounds, h.cumulative, strict=True)]
    buckets.append(("+Inf", float(h.count)))
    return buckets


def _le(bound: float) -> str:
    # Prometheus' own spelling of a bound: 1.0, 0.005, 1800.0.
    return repr(float(bound))


def metric_families(snapshot: MetricsSnapshot) -> list[Metric]:
    """The metric families of `snapshot`, in a stable order."""
    out: list[Metric] = []
    up = GaugeMetricFamily(
        "dagloom_storage_up",
        "1 if this scrape read the instance's storage, 0 if it failed (storage figures absent)",
    )
    up.add_metric([], 1.0 if snapshot.storage_up else 0.0)
    out.append(up)
    if snapshot.run_stats is not None:
        out.extend(_run_families(snapshot.run_stats))
    if snapshot.events_stored is not None:
        stored = CounterMetricFamily(
            "dagloom_events_stored", "Run events ever stored in the event log, by any process"
        )
        stored.add_metric([], float(snapshot.events_stored))
        out.append(stored)
    if snapshot.heartbeats is not None:
        out.extend(_daemon_families(snapshot.heartbeats, snapshot.now))
    out.extend(_process_families(snapshot))
    return out


def _run_families(stats: RunStats) -> list[Metric]:
    runs = GaugeMetricFamily(
        "dagloom_runs", "Stored runs by job and status", labels=["job", "status"]
    )
    jobs = sorted({job for job, _ in stats.counts})
    for job in jobs:
        for status in RUN_STATUSES:
            runs.add_metric([job, status.name], float(stats.counts.get((job, status), 0)))
    queued = GaugeMetricFamily("dagloom_run_queue_depth", "Runs waiting in the run queue")
    queued.add_metric(
        [], float(sum(n for (_, s), n in stats.counts.items() if s == RunStatus.QUEUED))
    )
    durations = HistogramMetricFamily(
        "dagloom_run_duration_seconds",
        "Durations of stored runs that started and ended, start to end, by job",
        labels=["job"],
    )
    for job in sorted(stats.durations):
        h = stats.durations[job]
        durations.add_metric([job], _buckets(h), h.total)
    return [runs, queued, durations]


def _daemon_families(heartbeats: Mapping[str, DaemonHeartbeat], now: float) -> list[Metric]:
    last = GaugeMetricFamily(
        "dagloom_daemon_loop_last_heartbeat_timestamp_seconds",
        "When each daemon loop last finished a round (seconds since the epoch)",
        labels=["loop"],
    )
    lag = GaugeMetricFamily(
        "dagloom_daemon_loop_lag_seconds",
        "How long each daemon loop's next round is overdue (0 while on time)",
        labels=["loop"],
    )
    failed = GaugeMetricFamily(
        "dagloom_daemon_loop_last_error_timestamp_seconds",
        "When each daemon loop last met an error (seconds since the epoch; 0: never)",
        labels=["loop"],
    )
    for name in sorted(heartbeats):
        beat = heartbeats[name]
        last.add_metric([name], beat.timestamp)
        lag.add_metric([name], loop_lag(beat, now))
        failed.add_metric([name], beat.last_error_time)
    return [last, lag, failed]


def _process_families(snapshot: MetricsSnapshot) -> list[Metric]:
    events = CounterMetricFamily(
        "dagloom_events_written", "Run events this process stored in the event log"
    )
    events.add_metric([], float(snapshot.events_written))
    steps = HistogramMetricFamily(
        "dagloom_step_duration_seconds",
        "Durations of the step attempts that succeeded in this process",
    )
    steps.add_metric([], _buckets(snapshot.step_durations), snapshot.step_durations.total)
    out: list[Metric] = [events, steps]
    out.extend(_actor_families(snapshot.actors))
    out.extend(_location_families(snapshot.locations))
    return out


def _actor_families(actors: Sequence[ActorFigures]) -> list[Metric]:
    # Two actors of one name in a process (rare: tests, embedded instances) add up.
    merged: dict[str, list[float]] = {}
    for a in actors:
        row = merged.setdefault(a.actor, [0.0, 0.0, 0.0, 0.0])
        row[0] += a.inbox
        row[1] += a.waiting_asks
        row[2] += a.restarts
        row[3] = max(row[3], 1.0 if a.ready else 0.0)
    inbox = GaugeMetricFamily(
        "dagloom_actor_inbox_messages",
        "Messages waiting in each actor's inbox of this process",
        labels=["actor"],
    )
    waiting = GaugeMetricFamily(
        "dagloom_actor_waiting_asks",
        "Askers blocked on each actor's full inbox in this process",
        labels=["actor"],
    )
    restarts = CounterMetricFamily(
        "dagloom_actor_restarts",
        "Times each actor of this process was restarted after a crash",
        labels=["actor"],
    )
    ready = GaugeMetricFamily(
        "dagloom_actor_ready", "1 if the actor is serving its inbox", labels=["actor"]
    )
    for name in sorted(merged):
        n_inbox, n_waiting, n_restarts, is_ready = merged[name]
        inbox.add_metric([name], n_inbox)
        waiting.add_metric([name], n_waiting)
        restarts.add_metric([name], n_restarts)
        ready.add_metric([name], is_ready)
    return [inbox, waiting, restarts, ready]


def _location_families(locations: Sequence[LocationFigures]) -> list[Metric]:
    failing = GaugeMetricFamily(
        "dagloom_code_location_load_failing",
        "1 if the code location's last load failed (it serves its last good code, if any)",
        labels=["location"],
    )
    errors = CounterMetricFamily(
        "dagloom_code_location_load_errors",
        "Failed loads of each code location served by this process",
        labels=["location"],
    )
    for loc in sorted(locations, key=lambda x: x.location):
        if loc.failing is not None:
            failing.add_metric([loc.location], 1.0 if loc.failing else 0.0)
        if loc.load_failures is not None:
            errors.add_metric([loc.location], float(loc.load_failures))
    return [failing, errors]
