"""Component families: every family built from {module, class, config}, and every bad
input one ConfigError naming the file, the component and the key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from dagloom._components import ComponentFamily, build_component
from dagloom.actors.job_source import DefinitionsJobSource
from dagloom.actors.run_coordinator import (
    DefaultRunCoordinator,
    QueuedRunCoordinator,
    build_run_coordinator,
)
from dagloom.actors.run_launcher import (
    InProcessRunLauncher,
    SubprocessRunLauncher,
    build_run_launcher,
)
from dagloom.definitions import Definitions
from dagloom.errors import ConfigError
from dagloom.instance import DagloomInstance
from dagloom.transport import MemoryTransport

JOBS = DefinitionsJobSource({"empty": Definitions()})


class Sized(BaseModel):
    size: int


class TakesSize:
    config_model = Sized

    def __init__(self, size: int) -> None:
        self.size = size


class BuildsSomethingElse:
    @classmethod
    def from_config(cls, config: dict[str, Any], context: object) -> object:
        return "not a launcher"


def _instance(tmp_path: Path, text: str) -> DagloomInstance:
    (tmp_path / "dagloom.yaml").write_text(text)
    return DagloomInstance.open(tmp_path)


def _launcher(instance: DagloomInstance) -> object:
    return build_run_launcher(instance, {}, jobs=JOBS)


def _coordinator(instance: DagloomInstance) -> object:
    launcher = MemoryTransport().ref(InProcessRunLauncher(DagloomInstance.ephemeral(), JOBS))
    return build_run_coordinator(instance, launcher)


def test_short_names_and_class_names_pick_the_builtins(tmp_path: Path) -> None:
    instance = _instance(
        tmp_path,
        "run_launcher: {class: subprocess, config: {terminate_grace_seconds: 1}}\n"
        "run_coordinator:\n  class: queued\n  config: {max_concurrent_runs: 3}\n",
    )
    launcher = _launcher(instance)
    assert isinstance(launcher, SubprocessRunLauncher)
    coordinator = _coordinator(instance)
    assert isinstance(coordinator, QueuedRunCoordinator) and coordinator.max_concurrent_runs == 3
    section = "module: dagster.core.run_coordinator\n  class: DefaultRunCoordinator\n"
    dagster = _instance(tmp_path, f"run_coordinator:\n  {section}")
    assert isinstance(_coordinator(dagster), DefaultRunCoordinator)


def test_dagsters_queued_coordinator_section_builds(tmp_path: Path) -> None:
    """The section as a dagster.yaml deployed on Kubernetes writes it."""
    section = (
        "run_coordinator:\n"
        "  module: dagster.core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n"
        "  config:\n"
        "    max_concurrent_runs: -1\n"
        "    dequeue_use_threads: true\n"
        "    dequeue_num_workers: 4\n"
    )
    coordinator = _coordinator(_instance(tmp_path, section))
    assert isinstance(coordinator, QueuedRunCoordinator)
    assert coordinator.max_concurrent_runs == -1


@pytest.mark.parametrize(
    ("text", "build", "key_path", "expected"),
    [
        ("run_launcher: {class: nope}\n", _launcher, "run_launcher.class", "not a built-in"),
        (
            "run_launcher: {module: no_such_module_dagloom, class: X}\n",
            _launcher,
            "run_launcher.module",
            "cannot import",
        ),
        (
            "run_launcher: {module: collections, class: Nope}\n",
            _launcher,
            "run_launcher.class",
            "has no class",
        ),
        (
            "run_launcher: {module: collections, class: OrderedDict}\n",
            _launcher,
            "run_launcher.class",
            "OrderedDict is not a RunLauncher",
        ),
        (
            "run_launcher: {class: warm_pool, config: {size: 0}}\n",
            _launcher,
            "run_launcher.config.size",
            "greater than or equal to 1",
        ),
        (
            "run_launcher: {class: in_process, config: {sizes: 1}}\n",
            _launcher,
            "run_launcher.config.sizes",
            "unknown key",
        ),
        (
            "run_coordinator: {class: InProcessRunLauncher}\n",
            _coordinator,
            "run_coordinator.class",
            "not a built-in",
        ),
        (
            "run_coordinator:\n  module: dagloom.actors.run_launcher\n"
            "  class: InProcessRunLauncher\n",
            _coordinator,
            "run_coordinator.class",
            "is not an actor serving the RunCoordinator protocol",
        ),
        (
            "run_coordinator: {class: queued, config: {max_concurrent_runs: many}}\n",
            _coordinator,
            "run_coordinator.config.max_concurrent_runs",
            "integer",
        ),
    ],
)
def test_a_bad_component_is_one_error_naming_file_and_key_path(
    tmp_path: Path, text: str, build: Any, key_path: str, expected: str
) -> None:
    instance = _instance(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        build(instance)
    error = caught.value
    assert error.key_paths == [key_path]
    assert error.source == str(tmp_path / "dagloom.yaml")
    assert str(error).startswith(f"{tmp_path / 'dagloom.yaml'}: ")
    assert expected in str(error)


def test_a_constructor_that_refuses_its_config_names_the_config_key() -> None:
    family = ComponentFamily(
        "widget", "a widget", lambda cls: True, {"sized": f"{__name__}:TakesSize"}
    )
    built = build_component(family, None, "sized", {"size": 2}, None)
    assert isinstance(built, TakesSize) and built.size == 2
    with pytest.raises(ConfigError) as caught:
        build_component(family, None, "sized", {"size": "big"}, None, source="w.yaml")
    assert caught.value.key_paths == ["widget.config.size"]
    plain = ComponentFamily("widget", "a widget", lambda cls: True, {"path": "pathlib:PurePath"})
    with pytest.raises(ConfigError) as refused:
        build_component(plain, None, "path", {"nope": 1}, None)
    assert refused.value.key_paths == ["widget.config"]
    assert "does not accept it" in str(refused.value)


def test_a_from_config_that_builds_something_outside_the_family_is_refused() -> None:
    family = ComponentFamily(
        "widget",
        "a widget",
        lambda cls: cls is not str,
        {"odd": f"{__name__}:BuildsSomethingElse"},
    )
    with pytest.raises(ConfigError) as caught:
        build_component(family, None, "odd", {}, None)
    assert caught.value.key_paths == ["widget.class"]
    assert "built a str, which is not a widget" in str(caught.value)
