"""Starting one node of a topology: one function per role builds its actors, and `run_node`
is where their lifetimes are laid out.

A node builds the actors its config places on it, reaches actors on its own node through
the memory transport and the others through gRPC (`host:grpc_port` of the node hosting
them), exposes its own on its gRPC port, and runs them all under one `Supervisor`, in one
task group, beside the gRPC server and (on the API node) the public API server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from dagloom.actors import HealthReporter, Supervisor
from dagloom.actors._runtime import Actor
from dagloom.actors.code_location import CodeLocationServer, EvaluationSettings
from dagloom.actors.job_source import JobSource, LoaderJobSource, checked_job, pick_location
from dagloom.actors.run_coordinator import (
    CodeLocationValidator,
    DefaultRunCoordinator,
    build_run_coordinator,
)
from dagloom.actors.run_launcher import (
    InProcessRunLauncher,
    LauncherContext,
    build_run_launcher,
    make_run_launcher,
)
from dagloom.actors.run_launcher.base import RunLauncher
from dagloom.actors.run_launcher.config import heartbeat_interval
from dagloom.actors.run_worker import RunWorker
from dagloom.api.server import ApiServer, DagloomApiService
from dagloom.code.watch import LocationWatcher
from dagloom.daemon import DaemonLoop
from dagloom.daemon.automation_loop import AutomationLoop
from dagloom.daemon.backfill_loop import BackfillLoop
from dagloom.daemon.daemon import Daemon
from dagloom.daemon.lease_purge_loop import LeasePurgeLoop
from dagloom.daemon.monitoring_loop import RunMonitoringLoop
from dagloom.daemon.queue_loop import RunQueueLoop
from dagloom.daemon.retry_loop import RunRetryLoop
from dagloom.daemon.scheduler import SchedulerLoop
from dagloom.daemon.sensors import SensorLoop
from dagloom.definitions.asset_checks import AssetCheckKey
from dagloom.definitions.job import JobDefinition
from dagloom.errors import ConfigError
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance, load_config_file
from dagloom.topology.config import (
    InstanceRef,
    LocationConfig,
    MetricsConfig,
    NodeConfig,
    TopologyConfig,
)
from dagloom.topology.security import (
    api_authenticator,
    check_exposure,
    cluster_security,
    webserver_ssl_context,
)
from dagloom.transport import ActorRef, GrpcTransport, MemoryTransport
from dagloom.webserver import Backend, TokenGate, Webserver

COORDINATOR = "run_coordinator"
LAUNCHER = "run_launcher"
HEALTH = "health"
DAEMON = "daemon"

# A gRPC ref needs only the service a class serves; these concrete classes name the
# coordinator's and launcher's, whichever implementation the remote node runs.
_COORDINATOR_SERVICE: type[Actor[Any, Any]] = DefaultRunCoordinator
_LAUNCHER_SERVICE: type[Actor[Any, Any]] = InProcessRunLauncher


async def _serve_metrics(
    tg: TaskGroup,
    node: NodeConfig,
    config: MetricsConfig,
    instance: DagloomInstance,
    actors: list[Actor[Any, Any]],
) -> str:
    """Start the node's metrics-only endpoint in `tg`, reporting `actors`; its host:port."""
    from dagloom.metrics import MetricsSources, serve_metrics  # aiohttp only when asked

    host = config.host or node.host
    sources = MetricsSources(actors=lambda: actors)
    port = await tg.start(
        partial(serve_metrics, instance, host=host, port=config.port, sources=sources)
    )
    return f"{host}:{port}"


def worker_name(node: str, index: int) -> str:
    """The name of a worker-pool node's `index`-th run worker."""
    return f"{node}.worker-{index}"


@dataclass(slots=True)
class RunningNode:
    """What a started node reports: where it listens, and its in-process handles."""

    name: str
    instance: DagloomInstance
    supervisor: Supervisor
    grpc_address: str | None = None
    api_address: str | None = None
    metrics_address: str | None = None
    api: DagloomApiService | None = None
    webserver_address: str | None = None
    webserver: Webserver | None = None
    actors: dict[str, Actor[Any, Any]] = field(default_factory=dict)
    watchers: dict[str, LocationWatcher] = field(default_factory=dict)
    """The file watchers of the node's code locations, by location (`reload_on_change`)."""

    def addresses(self) -> list[tuple[str, str]]:
        """(what, host:port) for each listening socket, for printing."""
        out = []
        if self.webserver_address is not None:
            tls = self.webserver is not None and self.webserver.ssl_context is not None
            scheme = "https" if tls else "http"
            out.append(("webserver (GraphQL at /graphql)", f"{scheme}://{self.webserver_address}"))
        if self.api_address is not None:
            out.append(("public gRPC API", self.api_address))
        if self.metrics_address is not None:
            out.append(("metrics (HTTP /metrics)", self.metrics_address))
        if self.grpc_address is not None:
            out.append(("actors and Health (gRPC)", self.grpc_address))
        return out


def instance_for(ref: InstanceRef) -> DagloomInstance:
    """The instance a topology names, not yet entered: configured by `config` if given,
    else by `home/dagloom.yaml`. Reads the config file now (blocks briefly); `ConfigError`
    names a missing or invalid file."""
    if ref.config is not None:
        path = Path(ref.config)
        if not path.exists():
            raise ConfigError("the instance config does not exist", source=str(path))
        return DagloomInstance.from_config(load_config_file(path), home=ref.home, source=str(path))
    return DagloomInstance.open(ref.home)


class NodeJobSource:
    """Jobs for workers on a node: from the node's own code-location actors when they serve
    the location (sharing their import and their reloads), else imported here once."""

    def __init__(
        self, local: dict[str, CodeLocationServer], origins: dict[str, CodeOrigin]
    ) -> None:
        self._local = local
        self._origins = origins
        self._loader = LoaderJobSource({n: o for n, o in origins.items() if n not in local})

    def get_job(
        self,
        location_name: str,
        job_name: str,
        asset_selection: Sequence[Sequence[str]] = (),
        *,
        snapshot_id: str = "",
        asset_check_selection: Sequence[AssetCheckKey] = (),
    ) -> JobDefinition:
        """The job; blocks while a location first imports here (never for local ones).

        A local location's code is what the coordinator validated against, reloads
        included; a run whose snapshot id it no longer has fails (`SnapshotMismatchError`).
        """
        name = pick_location(location_name, self._origins)
        server = self._local.get(name)
        if server is not None:
            loaded = server.loaded
            return checked_job(
                loaded.definitions,
                loaded.job_snapshot_ids,
                location_name=name,
                job_name=job_name,
                asset_selection=asset_selection,
                snapshot_id=snapshot_id,
                asset_check_selection=asset_check_selection,
            )
        return self._loader.get_job(
            name,
            job_name,
            asset_selection,
            snapshot_id=snapshot_id,
            asset_check_selection=asset_check_selection,
        )

    def code_origin(self, location_name: str) -> CodeOrigin | None:
        return self._origins.get(pick_location(location_name, self._origins))


class _Refs:
    """Refs from this node to any actor of the topology: memory if it is here, else gRPC."""

    def __init__(
        self,
        topology: TopologyConfig,
        here: str,
        memory: MemoryTransport,
        grpc: GrpcTransport | None,
        local: dict[str, Actor[Any, Any]],
    ) -> None:
        self._topology = topology
        self._here = here
        self._memory = memory
        self._grpc = grpc
        self._local = local

    def to(self, kind: type[Actor[Any, Any]], name: str, node: str) -> ActorRef[Any, Any]:
        if node == self._here:
            return self._memory.ref(self._local[name])
        # Validation gives every node with remote peers a gRPC port, hence a transport.
        assert self._grpc is not None, f"node {self._here!r} calls {node!r} but serves no gRPC"
        address = self._topology.nodes[node].grpc_address()
        return self._grpc.ref(kind, name=name, address=address)


# -- one function per role ---------------------------------------------------------------


def wire_code_locations(
    topology: TopologyConfig, node: NodeConfig, instance: DagloomInstance | None = None
) -> list[CodeLocationServer]:
    """The code-location actors the node serves, each named for its location; their
    schedule and sensor ticks read `instance` as `context.instance`."""
    return [
        CodeLocationServer(
            name,
            topology.locations[name],
            evaluation=_evaluation(topology.locations[name]),
            instance=instance,
        )
        for name in node.code_locations
    ]


def _evaluation(location: LocationConfig) -> EvaluationSettings:
    config = location.evaluation
    return EvaluationSettings(timeout_seconds=config.timeout_seconds, processes=config.processes)


def wire_worker_pool(
    topology: TopologyConfig,
    node_name: str,
    node: NodeConfig,
    instance: DagloomInstance,
    jobs: JobSource,
) -> list[RunWorker]:
    """The node's run workers; they report run ends once `wire_coordinator` has run."""
    pool = node.worker_pool
    if pool is None:
        return []
    return [
        RunWorker(
            instance,
            jobs,
            name=worker_name(node_name, i),
            max_concurrent_runs=pool.max_concurrent_runs,
            heartbeat_interval=heartbeat_interval(pool, instance),
        )
        for i in range(pool.workers)
    ]


def wire_launcher(
    topology: TopologyConfig,
    node: NodeConfig,
    instance: DagloomInstance,
    jobs: JobSource,
    refs: _Refs,
) -> RunLauncher | None:
    """The run launcher, if the node hosts it: the `kind` the topology names (a short
    name of the launcher family), else the one dagloom.yaml configures."""
    if node.launcher is None:
        return None
    workers = [
        refs.to(RunWorker, worker_name(n, i), n)
        for n in topology.worker_nodes()
        for i in range(_pool_size(topology, n))
    ]
    context = LauncherContext(instance, dict(topology.locations), jobs, workers, LAUNCHER)
    kind = node.launcher.kind
    if kind is None:
        return build_run_launcher(
            instance, context.origins, jobs=jobs, workers=workers, name=LAUNCHER
        )
    config: dict[str, Any] = {}
    if kind == "warm_pool":
        config = {"size": node.launcher.size, "host": node.host}
    elif kind == "dask":
        config = {"address": node.launcher.address, "home": node.launcher.home}
    path = ("nodes", topology.node_of("launcher"), "launcher")
    return make_run_launcher(None, kind, config, context, path=path)


def _pool_size(topology: TopologyConfig, node: str) -> int:
    pool = topology.nodes[node].worker_pool
    assert pool is not None
    return pool.workers


def wire_coordinator(
    topology: TopologyConfig, node: NodeConfig, instance: DagloomInstance, refs: _Refs
) -> Actor[Any, Any] | None:
    """The run coordinator the instance configures, if the node hosts it; it validates runs
    with the code-location actors wherever they live."""
    if node.coordinator is None:
        return None
    launcher_ref = refs.to(_LAUNCHER_SERVICE, LAUNCHER, topology.node_of("launcher"))
    validator = CodeLocationValidator(_location_refs(topology, refs))
    return build_run_coordinator(instance, launcher_ref, validator=validator, name=COORDINATOR)


def wire_daemon(
    topology: TopologyConfig, node: NodeConfig, instance: DagloomInstance, refs: _Refs
) -> Daemon | None:
    """The daemon, if the node hosts one: the scheduler and sensor loops, which evaluate
    in the code-location actors and submit to the coordinator, wherever those live; and the
    run queue, run monitoring and run retry loops their `dagloom.yaml` sections turn on.
    Each daemon has its own id, the owner of the leases its loops take."""
    if node.daemon is None:
        return None
    coordinator = refs.to(_COORDINATOR_SERVICE, COORDINATOR, topology.node_of("coordinator"))
    launcher = refs.to(_LAUNCHER_SERVICE, LAUNCHER, topology.node_of("launcher"))
    locations = _location_refs(topology, refs)
    daemon_id = str(uuid.uuid4())
    loops: list[DaemonLoop] = [
        SchedulerLoop(instance, locations, coordinator, owner=daemon_id),
        SensorLoop(instance, locations, coordinator, owner=daemon_id),
        BackfillLoop(instance, coordinator, owner=daemon_id),
        LeasePurgeLoop(instance.schedule_storage),
    ]
    optional = (
        RunQueueLoop.from_instance(instance, launcher),
        RunMonitoringLoop.from_instance(instance, launcher),
        RunRetryLoop.from_instance(instance, coordinator, launcher=launcher),
        AutomationLoop.from_instance(instance, locations, coordinator, owner=daemon_id),
    )
    loops.extend(loop for loop in optional if loop is not None)
    return Daemon(instance.schedule_storage, loops, name=DAEMON, daemon_id=daemon_id)


def _location_refs(topology: TopologyConfig, refs: _Refs) -> dict[str, ActorRef[Any, Any]]:
    return {
        name: refs.to(CodeLocationServer, name, topology.node_of_location(name))
        for name in topology.locations
    }


def wire_api(
    topology: TopologyConfig,
    node: NodeConfig,
    instance: DagloomInstance,
    refs: _Refs,
    health: ActorRef[Any, Any],
) -> tuple[DagloomApiService, ApiServer | None] | None:
    """The public API, if the node hosts it: the service, and its server unless the
    config gives it no port (then it is reachable in-process only)."""
    if node.api is None:
        return None
    coordinator = refs.to(_COORDINATOR_SERVICE, COORDINATOR, topology.node_of("coordinator"))
    service = DagloomApiService(instance, coordinator, _location_refs(topology, refs))
    if node.api.port is None:
        return service, None
    security = cluster_security(instance)
    server = ApiServer(
        service,
        host=node.api.host or node.host,
        port=node.api.port,
        health=health,
        authenticator=api_authenticator(instance),
        ssl=security.server_ssl,
    )
    return service, server


def wire_webserver(
    topology: TopologyConfig, node: NodeConfig, instance: DagloomInstance, refs: _Refs
) -> Webserver | None:
    """The webserver, if the node hosts one: it reads the instance and reaches the
    coordinator and every code location through refs, wherever they live."""
    if node.webserver is None:
        return None
    coordinator = refs.to(_COORDINATOR_SERVICE, COORDINATOR, topology.node_of("coordinator"))
    authenticator = api_authenticator(instance)
    backend = Backend(
        instance,
        coordinator,
        _location_refs(topology, refs),
        gate=TokenGate(authenticator),
        authenticator=authenticator,
        metrics_public=instance.config.auth.metrics_public,
    )
    return Webserver(
        backend,
        host=node.webserver.host or node.host,
        port=node.webserver.port,
        ssl_context=webserver_ssl_context(instance),
    )


# -- the node ----------------------------------------------------------------------------


def _listening_hosts(node: NodeConfig) -> list[tuple[str, str]]:
    hosts: list[tuple[str, str]] = []
    if node.grpc_port is not None:
        hosts.append(("actors", node.host))
    if node.api is not None and node.api.port is not None:
        hosts.append(("api", node.api.host or node.host))
    if node.webserver is not None:
        hosts.append(("webserver", node.webserver.host or node.host))
    return hosts


async def run_node(
    topology: TopologyConfig,
    node_name: str,
    *,
    instance: DagloomInstance | None = None,
    memory: MemoryTransport | None = None,
    insecure: bool = False,
    export_security: bool = False,
    task_status: TaskStatus[RunningNode] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run the actors `topology` places on `node_name` until cancelled.

    A node listening beyond loopback needs the instance's `auth.enabled` for its API and a
    cluster secret or mutual TLS for its actors, else it raises `ConfigError` before
    binding anything, unless `insecure`. With `export_security` the cluster secret and TLS
    paths are put in this process's environment, where the run workers and code servers it
    starts find them (`ClusterSecurity.from_env`).

    Opens the topology's instance unless one is given. The actors start in dependency
    order under one supervisor (code locations, which import their code first, then
    workers, launcher, coordinator, daemon, health); then, with `reload_on_change`, a watcher per
    code location reloads it when its files change; then the node's gRPC server, the API
    server and the webserver listen, and `task_status.started(RunningNode)` reports the
    addresses. Peers on other nodes need not be up: calls to them fail with
    `ActorUnavailableError` and reconnect once they are. Raises `ConfigError` for an unknown
    node, `OSError` when a port is taken. Cancelling it stops the servers, then every actor,
    then closes the instance it opened.
    """
    node = topology.node(node_name)
    async with AsyncExitStack() as stack:
        if instance is None:
            instance = await stack.enter_async_context(instance_for(topology.instance))
        memory = memory or MemoryTransport()
        security = cluster_security(instance)
        check_exposure(
            _listening_hosts(node),
            auth_enabled=instance.config.auth.enabled,
            secured_actors=bool(security.secret) or bool(security.tls and security.tls.ca),
            insecure=insecure,
        )
        if export_security:
            os.environ.update(security.environ())
        grpc = (
            GrpcTransport(host=node.host, port=node.grpc_port, security=security)
            if node.grpc_port is not None
            else None
        )
        local: dict[str, Actor[Any, Any]] = {}
        refs = _Refs(topology, node_name, memory, grpc, local)
        supervisor = Supervisor(f"node {node_name}")

        locations = wire_code_locations(topology, node, instance)
        local.update((a.name, a) for a in locations)
        jobs = NodeJobSource(
            {a.name: a for a in locations},
            dict(topology.locations),
        )
        workers = wire_worker_pool(topology, node_name, node, instance, jobs)
        local.update((a.name, a) for a in workers)
        launcher = wire_launcher(topology, node, instance, jobs, refs)
        if launcher is not None:
            local[launcher.name] = launcher
        coordinator = wire_coordinator(topology, node, instance, refs)
        if coordinator is not None:
            local[coordinator.name] = coordinator
        daemon = wire_daemon(topology, node, instance, refs)
        if daemon is not None:
            local[daemon.name] = daemon
        # The coordinator refs the launcher; the launcher and workers report run ends back:
        # that cycle is closed here, once both ends exist.
        coordinator_ref = refs.to(
            _COORDINATOR_SERVICE, COORDINATOR, topology.node_of("coordinator")
        )
        if launcher is not None:
            launcher.report_to(coordinator_ref)
        for worker in workers:
            worker.report_to(coordinator_ref)
        health = HealthReporter(supervisor.health, name=HEALTH)
        for actor in (*local.values(), health):
            supervisor.add(actor)
            if grpc is not None:
                grpc.expose(actor)
        local[health.name] = health
        api = wire_api(topology, node, instance, refs, memory.ref(health))
        webserver = wire_webserver(topology, node, instance, refs)

        running = RunningNode(node_name, instance, supervisor, actors=dict(local))
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            if node.reload_on_change:
                for location in locations:
                    watcher = LocationWatcher(
                        location.name, memory.ref(location), topology.locations[location.name]
                    )
                    await tg.start(watcher.run)
                    running.watchers[location.name] = watcher
            if grpc is not None:
                running.grpc_address = await tg.start(grpc.run)
            if api is not None:
                running.api, server = api
                if server is not None:
                    running.api_address = await tg.start(server.run)
            if node.metrics is not None:
                running.metrics_address = await _serve_metrics(
                    tg, node, node.metrics, instance, list(local.values())
                )
            if webserver is not None:
                running.webserver = webserver
                running.webserver_address = await tg.start(webserver.run)
            task_status.started(running)
