"""Gathering one scrape's figures and serving them over HTTP (aiohttp)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import structlog
from aiohttp import web
from anyio.abc import TaskStatus
from prometheus_client import REGISTRY
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder

from dagloom._counters import PROCESS
from dagloom.actors import Actor, live_actors
from dagloom.actors.code_location import CodeLocationServer
from dagloom.errors import DagloomError
from dagloom.messages import DaemonHeartbeat
from dagloom.messages.rpc import LocationSnapshot
from dagloom.metrics._families import (
    ActorFigures,
    LocationFigures,
    MetricsSnapshot,
    metric_families,
)
from dagloom.storage.base import RUN_DURATION_BUCKETS, DurationHistogram, RunStats

_log = structlog.get_logger("dagloom.metrics")

LOCATIONS_TIMEOUT = 5.0
"""Seconds a scrape waits for `MetricsSources.locations` before reporting without it."""


class MetricsInstance(Protocol):
    """What metrics read from an instance (`DagloomInstance` has it)."""

    async def get_run_stats(
        self, duration_buckets: Sequence[float] = RUN_DURATION_BUCKETS
    ) -> RunStats: ...

    async def get_events_stored(self) -> int: ...

    async def get_daemon_heartbeats(self) -> dict[str, DaemonHeartbeat]: ...


@dataclass(frozen=True, slots=True)
class MetricsSources:
    """Where a scrape finds what this process knows beyond storage; every field optional.

    `actors`: the actors whose inbox depth and restarts to report (None: every actor of this
    process not closed, `dagloom.actors.live_actors`). Code location servers among them
    report their failed loads. `locations`: snapshots of code locations served elsewhere
    (e.g. over gRPC), for whether each is failing to load; a scrape waits for it at most
    `LOCATIONS_TIMEOUT` seconds. `process_collectors`: also report prometheus-client's
    default registry (`process_*`, `python_*`, and whatever the user registered there).
    """

    actors: Callable[[], Iterable[Actor[Any, Any]]] | None = None
    locations: Callable[[], Awaitable[Iterable[LocationSnapshot]]] | None = None
    process_collectors: bool = True
    clock: Callable[[], float] = time.time


def _step_durations() -> DurationHistogram:
    h = PROCESS.step_durations
    cumulative = h.cumulative()  # folds the pending observations first
    return DurationHistogram(
        bounds=h.bounds, cumulative=tuple(cumulative[:-1]), count=cumulative[-1], total=h.total
    )


def _actor_figures(actors: Iterable[Actor[Any, Any]]) -> list[ActorFigures]:
    out = []
    for actor in actors:
        stats = actor.statistics()
        health = actor.health()
        out.append(
            ActorFigures(
                actor=actor.name,
                inbox=stats.current_buffer_used,
                waiting_asks=stats.tasks_waiting_send,
                restarts=health.restarts,
                ready=health.ready,
            )
        )
    return out


async def _location_figures(
    actors: Sequence[Actor[Any, Any]], sources: MetricsSources
) -> list[LocationFigures]:
    figures: dict[str, LocationFigures] = {}
    for actor in actors:
        if isinstance(actor, CodeLocationServer):
            figures[actor.location_name] = LocationFigures(
                location=actor.location_name,
                failing=actor.snapshot.load_error is not None and actor.snapshot.loaded_at > 0,
                load_failures=actor.load_failures,
            )
    if sources.locations is not None:
        snapshots: Iterable[LocationSnapshot] = ()
        with anyio.move_on_after(LOCATIONS_TIMEOUT) as waited:
            try:
                snapshots = list(await sources.locations())
            except (DagloomError, OSError) as exc:
                _log.warning("metrics_locations_unavailable", error=str(exc))
        if waited.cancelled_caught:
            _log.warning(
                "metrics_locations_unavailable", error=f"no answer in {LOCATIONS_TIMEOUT} s"
            )
        for snap in snapshots:
            local = figures.get(snap.location_name)
            figures[snap.location_name] = LocationFigures(
                location=snap.location_name,
                failing=snap.load_error is not None,
                load_failures=None if local is None else local.load_failures,
            )
    return list(figures.values())


async def gather(
    instance: MetricsInstance, sources: MetricsSources | None = None
) -> MetricsSnapshot:
    """Read one scrape's figures: storage aggregates through `instance` (left out, with
    `storage_up` False, if storage fails) and this process's counters and actors."""
    sources = sources or MetricsSources()
    run_stats: RunStats | None = None
    heartbeats: dict[str, DaemonHeartbeat] | None = None
    events_stored: int | None = None
    try:
        run_stats = await instance.get_run_stats()
        events_stored = await instance.get_events_stored()
        heartbeats = await instance.get_daemon_heartbeats()
    except (DagloomError, OSError) as exc:
        _log.warning("metrics_storage_unavailable", error=str(exc))
        run_stats = heartbeats = events_stored = None
    actors = list(sources.actors() if sources.actors is not None else live_actors())
    return MetricsSnapshot(
        now=sources.clock(),
        storage_up=run_stats is not None,
        run_stats=run_stats,
        heartbeats=heartbeats,
        events_written=PROCESS.events_written,
        events_stored=events_stored,
        step_durations=_step_durations(),
        actors=_actor_figures(actors),
        locations=await _location_figures(actors, sources),
    )


class _Families:
    """A one-shot collector over ready-made families, as the encoders want one."""

    def __init__(self, families: list[Metric], *, with_default: bool) -> None:
        self._families = families
        self._with_default = with_default

    def collect(self) -> Iterator[Metric]:
        yield from self._families
        if self._with_default:
            yield from REGISTRY.collect()


async def render_metrics(
    instance: MetricsInstance,
    *,
    sources: MetricsSources | None = None,
    accept: str | None = None,
) -> tuple[bytes, str]:
    """One scrape: the exposition body and its content type. `accept` (the request's Accept
    header) picks OpenMetrics when the scraper asks for it, else Prometheus' text format."""
    sources = sources or MetricsSources()
    snapshot = await gather(instance, sources)
    encoder, content_type = choose_encoder(accept or "")
    families = _Families(metric_families(snapshot), with_default=sources.process_collectors)
    body = encoder(families)
    return body, content_type


ROUTE_NAME = "metrics"
"""The name of the `/metrics` route, for middleware that must single it out (auth)."""


def metrics_handler(
    instance: MetricsInstance, sources: MetricsSources | None = None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The one aiohttp handler that answers a scrape (gzip when the scraper accepts it)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body, content_type = await render_metrics(
            instance, sources=sources, accept=request.headers.get("Accept")
        )
        response = web.Response(body=body, headers={"Content-Type": content_type})
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.enable_compression()
        return response

    return handle


def add_routes(
    app: web.Application,
    *,
    instance: MetricsInstance,
    sources: MetricsSources | None = None,
    path: str = "/metrics",
) -> None:
    """Serve the metrics at `GET path` in `app` (route named `ROUTE_NAME`)."""
    app.router.add_get(path, metrics_handler(instance, sources), name=ROUTE_NAME)


async def serve_metrics(
    instance: MetricsInstance,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    sources: MetricsSources | None = None,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve only `/metrics` on `host:port` until cancelled, for a node with no webserver;
    reports the bound port through `task_status` (port 0 picks a free one).

    `OSError` if the port cannot be bound (e.g. taken), with the address in the message.
    """
    app = web.Application()
    add_routes(app, instance=instance, sources=sources)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            message = f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            raise OSError(exc.errno, message) from exc
        bound = int(runner.addresses[0][1])  # the port the OS chose when 0 was asked
        _log.info("metrics_serving", address=f"http://{host}:{bound}/metrics")
        task_status.started(bound)
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()
