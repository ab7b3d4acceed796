"""Prometheus metrics: `/metrics` in Prometheus' text format (or OpenMetrics, when asked).

The one call a web app makes::

    def add_routes(
        app: aiohttp.web.Application,
        *,
        instance: DagloomInstance,      # or anything with get_run_stats, get_daemon_heartbeats
        sources: MetricsSources | None = None,
        path: str = "/metrics",
    ) -> None

It adds `GET path` (route name `"metrics"`), answered by one handler that renders every metric
below on each scrape. Everything it reads is either aggregated by storage (the same for every
replica over one storage) or counted in this process (plain integers read at scrape time):

- from storage (`instance`, one aggregate query: `RunStorage.get_run_stats`): runs by status
  and job, queue depth, run durations (histogram by job); daemon loop heartbeats, lag and
  last error;
- from this process (`sources`, default: every live actor in this process): actor inbox depth
  and restarts, events it stored, durations of the steps it ran (histogram), code location
  load failures. Steps run by worker processes (subprocess or warm-pool launchers) are
  counted in those processes, which serve no metrics.

`MetricsSources` names where process-local figures come from (all optional)::

    @dataclass(frozen=True)
    class MetricsSources:
        actors: Callable[[], Iterable[Actor]] | None = None   # None: every live actor here
        locations: Callable[[], Awaitable[Iterable[LocationSnapshot]]] | None = None
        process_collectors: bool = True    # also prometheus-client's process_*/python_*

Also: `async def render_metrics(instance, *, sources=None, accept=None) -> tuple[bytes, str]`
(body and content type) for callers that serve it themselves, `metrics_handler(instance,
sources)` (the handler alone), and `serve_metrics(instance, host=, port=)` for a node with no
webserver. To guard `/metrics` (auth), match the route name `ROUTE_NAME` in a middleware.

Several webserver replicas over one storage each report the same storage figures (take
`max` over replicas in queries) and their own process figures (`sum` them).
"""

from __future__ import annotations

from dagloom.metrics._families import (
    ActorFigures,
    LocationFigures,
    MetricsSnapshot,
    loop_lag,
    metric_families,
)
from dagloom.metrics._serve import (
    LOCATIONS_TIMEOUT,
    ROUTE_NAME,
    MetricsInstance,
    MetricsSources,
    add_routes,
    gather,
    metrics_handler,
    render_metrics,
    serve_metrics,
)

__all__ = [
    "LOCATIONS_TIMEOUT",
    "ROUTE_NAME",
    "ActorFigures",
    "LocationFigures",
    "MetricsInstance",
    "MetricsSnapshot",
    "MetricsSources",
    "add_routes",
    "gather",
    "loop_lag",
    "metric_families",
    "metrics_handler",
    "render_metrics",
    "serve_metrics",
]
