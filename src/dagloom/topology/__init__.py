"""Topology: which node hosts which actors (`config`), and the code that starts a node
(`wiring`)."""

from __future__ import annotations

from dagloom.topology.config import (
    DEFAULT_API_PORT,
    DEFAULT_CODE_LOCATION_PORT,
    DEFAULT_HOST,
    DEFAULT_WEBSERVER_PORT,
    EvaluationConfig,
    LocationConfig,
    NodeConfig,
    TopologyConfig,
    WebserverConfig,
    dev_topology,
    load_topology,
    parse_topology,
)

__all__ = [
    "DEFAULT_API_PORT",
    "DEFAULT_CODE_LOCATION_PORT",
    "DEFAULT_HOST",
    "DEFAULT_WEBSERVER_PORT",
    "EvaluationConfig",
    "LocationConfig",
    "NodeConfig",
    "TopologyConfig",
    "WebserverConfig",
    "dev_topology",
    "load_topology",
    "parse_topology",
]
