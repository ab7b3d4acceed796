"""The models of a topology file: which node hosts which actors, and where each listens.

A topology is YAML like `configs/dev.yaml`::

    instance: {home: ../.dagloom}          # or {home: ..., config: prod.dagloom.yaml}
    locations:
      numbers:
        python_file: ../examples/numbers.py
        evaluation: {timeout_seconds: 60, processes: 2}   # schedule and sensor ticks
    nodes:
      control:
        host: 127.0.0.1
        grpc_port: 4100
        api: {port: 3030}
        metrics: {port: 9464}                # GET /metrics for Prometheus
        coordinator: {}
        launcher: {kind: in_process}
      code:
        grpc_port: 4000
        code_locations: [numbers]
      workers:
        grpc_port: 4200
        worker_pool: {workers: 2}

Relative paths are relative to the topology file's directory. Every actor of every role is
placed on exactly one node; `validate` refuses a topology where one is missing or doubled,
and every `ConfigError` names the file and the key path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dagloom.errors import ConfigError
from dagloom.execution.origin import CodeOrigin
from dagloom.instance.config import problems_of, read_yaml_file, resolve_env

DEFAULT_HOST = "127.0.0.1"
"""Everything binds to loopback unless a node says otherwise."""
DEFAULT_API_PORT = 3030
"""The public gRPC API (`DagloomApi`)."""
DEFAULT_WEBSERVER_PORT = 3000
"""The webserver's HTTP port, kept free for the webserver."""
DEFAULT_CODE_LOCATION_PORT = 4000
"""Code-location nodes listen from here up."""

LauncherKind = Literal["in_process", "subprocess", "warm_pool", "worker_pool", "dask"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvaluationConfig(_Model):
    """How a code location evaluates its schedules and sensors: `processes` warm worker
    processes at once, each evaluation killed after `timeout_seconds` (no upper bound)."""

    timeout_seconds: float = Field(default=60.0, gt=0)
    processes: int = Field(default=2, ge=1)


@dataclass(frozen=True, slots=True)
class LocationConfig(CodeOrigin):
    """One code location of a topology: where its code lives (a `CodeOrigin`, whose fields
    it takes inline) and how it evaluates its schedules and sensors."""

    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)


class InstanceRef(_Model):
    """Which instance every node opens: `home` (default `$DAGLOOM_HOME`, else ./.dagloom)
    and, optionally, a dagloom.yaml elsewhere than `home/dagloom.yaml`."""

    home: str | None = None
    config: str | None = None


class ApiConfig(_Model):
    """The public gRPC API; `port` None serves it only in-process (tests)."""

    host: str | None = None
    port: int | None = Field(default=DEFAULT_API_PORT, ge=0, le=65535)


class MetricsConfig(_Model):
    """A metrics-only HTTP endpoint (`GET /metrics`) for a node with no webserver; `host`
    defaults to the node's, `port` 0 picks a free one."""

    host: str | None = None
    port: int = Field(ge=0, le=65535)


class WebserverConfig(_Model):
    """The webserver (GraphQL, GraphiQL, `/health`) on `host:port`; any number of nodes may
    host one, each reading the same storage."""

    host: str | None = None
    port: int = Field(default=DEFAULT_WEBSERVER_PORT, ge=0, le=65535)


class CoordinatorConfig(_Model):
    """Where the run coordinator lives; which one (default or queued, and its limits) is
    the instance's `run_coordinator` section in dagloom.yaml."""


class DaemonConfig(_Model):
    """The daemon (schedules and sensors). Any number of nodes may host one: loops that
    must not run twice at once take turns through storage leases."""


class LauncherConfig(_Model):
    """The run launcher. Without `kind`, the one the instance's `run_launcher` section in
    dagloom.yaml configures (default: a warm pool). With it: `in_process` runs on a worker
    in the launcher's own event loop; `subprocess` starts a worker process per run;
    `warm_pool` keeps `size` worker processes that imported the code and hands them runs;
    `worker_pool` hands runs to the run workers of the topology's `worker_pool` nodes;
    `dask` runs each run's worker as a task on the Dask scheduler at `address`, whose
    workers find the instance at `home` (default: the launcher's). The processes of
    `subprocess` and `warm_pool` run beside the launcher, on its node, and import every
    location of the topology."""

    kind: LauncherKind | None = None
    size: int = Field(default=2, ge=1)
    address: str | None = None  # `dask`: the scheduler, e.g. tcp://dask-scheduler:8786
    home: str | None = None  # `dask`: DAGLOOM_HOME as the Dask workers see it


class WorkerPoolConfig(_Model):
    """Run workers on this node: `workers` actors, each running at most
    `max_concurrent_runs` runs at once (None: no limit). They import the code of
    `locations` (default: every location of the topology) themselves."""

    workers: int = Field(default=1, ge=1)
    max_concurrent_runs: int | None = Field(default=None, ge=1)
    locations: list[str] | None = None


class NodeConfig(_Model):
    """One node: its address and the actors it hosts.

    `grpc_port` None means the node serves nothing over gRPC, which only works when no
    other node needs to reach its actors (a single-node topology); 0 picks a free port.
    """

    host: str = DEFAULT_HOST
    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    api: ApiConfig | None = None
    coordinator: CoordinatorConfig | None = None
    launcher: LauncherConfig | None = None
    code_locations: list[str] = Field(default_factory=list)
    reload_on_change: bool = False
    """Reload this node's code locations when a Python file of theirs changes (dev)."""
    worker_pool: WorkerPoolConfig | None = None
    daemon: DaemonConfig | None = None
    metrics: MetricsConfig | None = None
    webserver: WebserverConfig | None = None

    def grpc_address(self) -> str:
        """`host:grpc_port`; `ValueError` when the node serves no gRPC."""
        if self.grpc_port is None:
            raise ValueError("the node serves no gRPC")
        return f"{self.host}:{self.grpc_port}"


class TopologyConfig(_Model):
    """The whole topology: the instance, the code locations, and the nodes by name."""

    instance: InstanceRef = InstanceRef()
    locations: dict[str, LocationConfig] = Field(default_factory=dict)
    nodes: dict[str, NodeConfig]

    @model_validator(mode="after")
    def _placement(self) -> TopologyConfig:
        problems = placement_problems(self)
        if problems:
            # Raised as one ValueError per topology; `parse_topology` turns these into
            # key paths, so pydantic's message only carries them through.
            raise _PlacementError(problems)
        return self

    def node(self, name: str) -> NodeConfig:
        """The node called `name`; `ConfigError` listing the nodes if there is none."""
        node = self.nodes.get(name)
        if node is None:
            raise ConfigError(
                f"no node named {name!r}; nodes are {', '.join(sorted(self.nodes))}",
                problems=[(("nodes",), f"{name!r} is not defined")],
            )
        return node

    def node_of(self, role: Literal["api", "coordinator", "launcher"]) -> str:
        """The name of the node hosting `role` (validation made it exactly one)."""
        return next(n for n, node in self.nodes.items() if getattr(node, role) is not None)

    def node_of_location(self, location: str) -> str:
        """The name of the node serving code location `location`."""
        return next(n for n, node in self.nodes.items() if location in node.code_locations)

    def worker_nodes(self) -> list[str]:
        """The names of the nodes with a worker pool, in file order."""
        return [n for n, node in self.nodes.items() if node.worker_pool is not None]


class _PlacementError(ValueError):
    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(text for _, text in problems))
        self.problems = problems


def placement_problems(topology: TopologyConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """What is misplaced in `topology`, as (key path, text); empty when it is whole.

    Each of api, coordinator and launcher sits on exactly one node (the api and the launcher
    call the coordinator, so it must exist); every location is served by one node; nodes
    reached from other nodes serve gRPC; a `worker_pool` launcher has worker nodes.
    """
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for role in ("api", "coordinator", "launcher"):
        hosts = [n for n, node in topology.nodes.items() if getattr(node, role) is not None]
        if len(hosts) != 1:
            where = ", ".join(hosts) if hosts else "none"
            problems.append((("nodes",), f"exactly one node must host `{role}` (found: {where})"))
    served: dict[str, str] = {}
    for name, node in topology.nodes.items():
        for i, location in enumerate(node.code_locations):
            path: tuple[str | int, ...] = ("nodes", name, "code_locations", i)
            if location not in topology.locations:
                problems.append((path, f"no location {location!r} under `locations`"))
            elif location in served:
                problems.append((path, f"{location!r} is already served by {served[location]}"))
            else:
                served[location] = name
        if node.worker_pool is not None and node.worker_pool.locations is not None:
            for i, location in enumerate(node.worker_pool.locations):
                if location not in topology.locations:
                    problems.append(
                        (
                            ("nodes", name, "worker_pool", "locations", i),
                            f"no location {location!r} under `locations`",
                        )
                    )
    for location in topology.locations:
        if location not in served:
            problems.append((("locations", location), "no node serves this location"))
    if problems:
        return problems
    # Every node some other node calls must serve gRPC.
    control = topology.node_of("coordinator")
    remote = {n for n in topology.nodes if n != control}
    for name in sorted(remote):
        if topology.nodes[name].grpc_port is None:
            problems.append(
                (("nodes", name, "grpc_port"), "required: other nodes call this node's actors")
            )
    if len(topology.nodes) > 1 and topology.nodes[control].grpc_port is None:
        problems.append(
            (("nodes", control, "grpc_port"), "required: other nodes call the coordinator")
        )
    launcher = topology.nodes[topology.node_of("launcher")].launcher
    assert launcher is not None
    if launcher.kind == "dask" and launcher.address is None:
        problems.append(
            (
                ("nodes", topology.node_of("launcher"), "launcher", "address"),
                "a dask launcher needs the `address` of its Dask scheduler",
            )
        )
    if launcher.kind == "worker_pool" and not topology.worker_nodes():
        problems.append(
            (
                ("nodes", topology.node_of("launcher"), "launcher", "kind"),
                "a worker_pool launcher needs a node with a `worker_pool`",
            )
        )
    return problems


def _under(base: Path, path: str | None) -> str | None:
    if path is None:
        return None
    return str((base / Path(path).expanduser()).resolve())


def parse_topology(
    data: Any, *, source: str | None = None, base: Path | None = None
) -> TopologyConfig:
    """Validate a loaded topology tree; `ConfigError` names `source` and each key path.

    `{env: NAME}` values are read from the environment. Paths (location files, working
    directories, instance home and config) are made absolute against `base` (default: the
    current directory).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"expected a mapping with `nodes`, found {type(data).__name__}", source=source
        )
    problems: list[tuple[tuple[str | int, ...], str]] = []
    resolved = resolve_env(dict(data), (), problems)
    if problems:
        raise ConfigError("topology refers to unset variables", source=source, problems=problems)
    try:
        topology = TopologyConfig.model_validate(resolved)
    except ValidationError as exc:
        placement = [
            error
            for e in exc.errors()
            if isinstance(error := e.get("ctx", {}).get("error"), _PlacementError)
        ]
        found = (
            [p for error in placement for p in error.problems] if placement else problems_of(exc)
        )
        raise ConfigError("invalid topology", source=source, problems=found) from exc
    root = (base or Path.cwd()).resolve()
    return topology.model_copy(
        update={
            "instance": InstanceRef(
                home=_under(root, topology.instance.home),
                config=_under(root, topology.instance.config),
            ),
            "locations": {n: loc.resolved(root) for n, loc in topology.locations.items()},
        }
    )


def load_topology(path: str | Path) -> TopologyConfig:
    """Read and validate a topology file; relative paths in it are relative to its folder."""
    file = Path(path)
    return parse_topology(read_yaml_file(file), source=str(file), base=file.resolve().parent)


def dev_topology(
    locations: Mapping[str, CodeOrigin],
    *,
    home: str | None = None,
    host: str = DEFAULT_HOST,
    grpc_port: int | None = 0,
    api_port: int | None = DEFAULT_API_PORT,
    launcher: LauncherKind | None = "in_process",
    reload_on_change: bool = True,
    daemon: bool = True,
    webserver_port: int | None = None,
) -> TopologyConfig:
    """Every actor on one node called `dev`, as `configs/dev.yaml` lays it out (the daemon
    too, unless `daemon` is false; the public API in-process only when `api_port` is None); its code
    locations reload when a file of theirs changes unless `reload_on_change` is false.
    `launcher` None means the instance's `run_launcher`; the webserver listens on
    `webserver_port` when it is given.

    `locations` must already hold absolute paths (see `CodeOrigin.resolved`).
    """
    nodes: dict[str, Any] = {
        "dev": {
            "host": host,
            "grpc_port": grpc_port,
            "api": {"port": api_port},
            "coordinator": {},
            "launcher": {"kind": launcher},
            "code_locations": list(locations),
            "reload_on_change": reload_on_change,
            "daemon": {} if daemon else None,
            "webserver": {"port": webserver_port} if webserver_port is not None else None,
        }
    }
    if launcher == "worker_pool":
        nodes["dev"]["worker_pool"] = {}
    return TopologyConfig.model_validate(
        {
            "instance": {"home": home},
            "locations": {name: origin.to_dict() for name, origin in locations.items()},
            "nodes": nodes,
        }
    )
