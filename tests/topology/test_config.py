"""Topology files: placement of every actor, addresses, paths and errors with key paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagloom.errors import ConfigError
from dagloom.execution.origin import CodeOrigin
from dagloom.topology.config import (
    DEFAULT_API_PORT,
    dev_topology,
    load_topology,
    parse_topology,
)

REPO = Path(__file__).resolve().parents[2]

THREE_NODES = {
    "locations": {"numbers": {"python_file": "defs.py"}},
    "nodes": {
        "control": {
            "grpc_port": 4100,
            "api": {"port": 3030},
            "coordinator": {},
            "launcher": {"kind": "worker_pool"},
        },
        "code": {"grpc_port": 4000, "code_locations": ["numbers"]},
        "workers": {"grpc_port": 4200, "worker_pool": {"workers": 2}},
    },
}


def test_a_three_node_topology_places_each_role_once(tmp_path: Path) -> None:
    topology = parse_topology(THREE_NODES, base=tmp_path)
    assert topology.node_of("api") == "control"
    assert topology.node_of("coordinator") == "control"
    assert topology.node_of_location("numbers") == "code"
    assert topology.worker_nodes() == ["workers"]
    assert topology.nodes["code"].grpc_address() == "127.0.0.1:4000"


def test_relative_paths_are_resolved_against_the_base(tmp_path: Path) -> None:
    topology = parse_topology(
        {**THREE_NODES, "instance": {"home": "home", "config": "pg.yaml"}}, base=tmp_path
    )
    assert topology.locations["numbers"].python_file == str(tmp_path / "defs.py")
    assert topology.instance.home == str(tmp_path / "home")
    assert topology.instance.config == str(tmp_path / "pg.yaml")


def test_a_missing_coordinator_is_named() -> None:
    data = {"nodes": {"only": {"api": {}, "launcher": {}}}}
    with pytest.raises(ConfigError, match="exactly one node must host `coordinator`") as info:
        parse_topology(data, source="t.yaml")
    assert info.value.source == "t.yaml"
    assert info.value.key_paths == ["nodes"]


def test_an_unknown_location_names_its_key_path() -> None:
    data = {
        "nodes": {"one": {"api": {}, "coordinator": {}, "launcher": {}, "code_locations": ["nope"]}}
    }
    with pytest.raises(ConfigError) as info:
        parse_topology(data)
    assert info.value.key_paths == ["nodes.one.code_locations[0]"]


def test_nodes_called_by_others_need_a_grpc_port(tmp_path: Path) -> None:
    data = {
        "locations": {"numbers": {"python_file": "defs.py"}},
        "nodes": {
            "control": {"grpc_port": 1, "api": {}, "coordinator": {}, "launcher": {}},
            "code": {"code_locations": ["numbers"]},
        },
    }
    with pytest.raises(ConfigError) as info:
        parse_topology(data, base=tmp_path)
    assert info.value.key_paths == ["nodes.code.grpc_port"]


def test_a_worker_pool_launcher_needs_worker_nodes(tmp_path: Path) -> None:
    data = {
        "nodes": {
            "one": {"api": {}, "coordinator": {}, "launcher": {"kind": "worker_pool"}},
        },
    }
    with pytest.raises(ConfigError) as info:
        parse_topology(data, base=tmp_path)
    assert info.value.key_paths == ["nodes.one.launcher.kind"]


def test_unknown_keys_and_bad_ports_are_refused() -> None:
    data = {"nodes": {"one": {"grpc_prot": 1, "api": {"port": 70000}}}}
    with pytest.raises(ConfigError) as info:
        parse_topology(data)
    assert set(info.value.key_paths) == {"nodes.one.grpc_prot", "nodes.one.api.port"}


def test_a_location_needs_exactly_one_source() -> None:
    with pytest.raises(ConfigError) as info:
        parse_topology({"locations": {"x": {}}, "nodes": {}})
    assert info.value.key_paths == ["locations.x"]


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("nodes: [\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_topology(path)
    assert info.value.source == str(path)


def test_the_dev_topology_puts_everything_on_one_node(tmp_path: Path) -> None:
    topology = dev_topology({"defs": CodeOrigin(python_file=str(tmp_path / "defs.py"))})
    assert list(topology.nodes) == ["dev"]
    dev = topology.nodes["dev"]
    assert dev.api is not None and dev.api.port == DEFAULT_API_PORT
    assert dev.code_locations == ["defs"]


@pytest.mark.parametrize(
    "path", sorted([REPO / "configs" / "dev.yaml", *(REPO / "configs" / "prod").glob("*.yaml")])
)
def test_the_shipped_topologies_load(path: Path) -> None:
    if path.name.endswith("dagloom.yaml"):
        pytest.skip("an instance config, not a topology")
    topology = load_topology(path)
    for location in topology.locations.values():
        assert location.python_file is None or Path(location.python_file).exists()


def test_a_dask_launcher_needs_its_schedulers_address(tmp_path: Path) -> None:
    data = {"nodes": {"one": {"api": {}, "coordinator": {}, "launcher": {"kind": "dask"}}}}
    with pytest.raises(ConfigError) as info:
        parse_topology(data, base=tmp_path)
    assert info.value.key_paths == ["nodes.one.launcher.address"]
    data["nodes"]["one"]["launcher"]["address"] = "tcp://127.0.0.1:8786"  # type: ignore[index]
    launcher = parse_topology(data, base=tmp_path).nodes["one"].launcher
    assert launcher is not None and launcher.address == "tcp://127.0.0.1:8786"
