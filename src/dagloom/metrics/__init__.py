"""Prometheus metrics: `/metrics` in Prometheus' text exposition format.

The one call a web app makes::

    def add_routes(
        app: aiohttp.web.Application,
        *,
        instance: DagloomInstance,
        sources: MetricsSources | None = None,
        path: str = "/metrics",
    ) -> None

It adds `GET path` (route name `"metrics"`), answered by one handler that renders every metric
below on each scrape. Everything it reads is either aggregated by storage (the same for every
replica over one storage) or counted in this process (plain integers read at scrape time):

- from storage (`instance`): runs by status and job, queue depth, run durations and step
  durations (histograms), daemon loop heartbeats and lag;
- from this process (`sources`, default: every live actor in this process): actor inbox depth
  and restarts, events written by this process, code location load errors.

`MetricsSources` names where process-local figures come from (all optional)::

    @dataclass(frozen=True)
    class MetricsSources:
        actors: Callable[[], Iterable[Actor]] | None = None   # None: every live actor here
        locations: Callable[[], Awaitable[Iterable[LocationSnapshot]]] | None = None

Also: `async def render_metrics(instance, *, sources=None) -> tuple[bytes, str]` (body and
content type) for callers that serve it themselves, and `serve_metrics(...)` for a node with
no webserver (topology node option `metrics: {port: N}`).
"""
