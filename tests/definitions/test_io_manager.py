"""IO managers: custom IOManager and ConfigurableIOManager implementations, the filesystem and
in-memory managers, and per-output manager keys."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from dagloom import (
    AssetKey,
    ConfigurableIOManager,
    FilesystemIOManager,
    InitResourceContext,
    InMemoryIOManager,
    InputContext,
    IOManager,
    IOManagerDefinition,
    Out,
    OutputContext,
    asset,
    build_init_resource_context,
    io_manager,
    job,
    materialize,
    op,
)
from dagloom.messages import EventType


class RecordingIOManager(IOManager):
    """Keeps values in a dict and records every call with the context it got."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], Any] = {}
        self.outputs: list[OutputContext] = []
        self.inputs: list[InputContext] = []

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        self.outputs.append(context)
        self.stored[(context.step_key, context.name)] = obj

    def load_input(self, context: InputContext) -> Any:
        self.inputs.append(context)
        upstream = context.upstream_output
        assert upstream is not None
        return self.stored[(upstream.step_key, upstream.name)]


class PrefixIOManager(ConfigurableIOManager):
    """Stores values as strings with a configured prefix, in a class-level dict."""

    prefix: str

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        _prefix_store[context.step_key] = f"{self.prefix}{obj}"

    def load_input(self, context: InputContext) -> Any:
        assert context.upstream_output is not None
        return _prefix_store[context.upstream_output.step_key]


_prefix_store: dict[str, str] = {}


@op
def produce() -> int:
    return 5


@op
def consume(value: Any) -> str:
    return f"got {value}"


def test_custom_io_manager_stores_outputs_and_loads_inputs_with_contexts() -> None:
    manager = RecordingIOManager()

    @job(resource_defs={"io_manager": manager})
    def piping():
        consume(produce())

    result = piping.execute_in_process()
    assert result.output_for_node("consume") == "got 5"
    assert [(c.step_key, c.name) for c in manager.outputs] == [
        ("produce", "result"),
        ("consume", "result"),
    ]
    out = manager.outputs[0]
    assert out.run_id == result.run_id
    assert out.job_name == "piping"
    assert out.asset_key is None
    assert out.get_identifier() == [result.run_id, "produce", "result"]
    # consume's input, then output_for_node loading consume's result
    (loaded, _) = manager.inputs
    assert loaded.name == "value"
    assert loaded.step_key == "consume"
    assert loaded.upstream_output is not None
    assert loaded.upstream_output.step_key == "produce"
    handled = result.filter_events(EventType.HANDLED_OUTPUT)
    assert [(e.step_key, e.handled_output.manager_key) for e in handled] == [
        ("produce", "io_manager"),
        ("consume", "io_manager"),
    ]
    (loaded_event,) = result.filter_events(EventType.LOADED_INPUT)
    assert loaded_event.loaded_input.input_name == "value"
    assert loaded_event.loaded_input.upstream_step_key == "produce"
    assert loaded_event.loaded_input.upstream_output_name == "result"


def test_configurable_io_manager_gets_its_config() -> None:
    _prefix_store.clear()

    @job(resource_defs={"io_manager": PrefixIOManager(prefix="v=")})
    def piping():
        consume(produce())

    result = piping.execute_in_process()
    assert result.output_for_node("consume") == "v=got v=5"
    overridden = piping.execute_in_process(
        {"resources": {"io_manager": {"config": {"prefix": "w="}}}}
    )
    assert overridden.output_for_node("consume") == "w=got w=5"


def test_out_io_manager_key_picks_the_manager_for_that_output() -> None:
    special = RecordingIOManager()
    default = RecordingIOManager()

    @op(out=Out(io_manager_key="special"))
    def produce_special() -> int:
        return 7

    @job(resource_defs={"io_manager": default, "special": special})
    def piping():
        consume(produce_special())

    result = piping.execute_in_process()
    assert result.output_for_node("consume") == "got 7"
    assert list(special.stored) == [("produce_special", "result")]
    assert ("produce_special", "result") not in default.stored
    handled = result.filter_events(EventType.HANDLED_OUTPUT)
    assert handled[0].handled_output.manager_key == "special"


def test_io_manager_decorator_builds_a_manager_from_a_function() -> None:
    manager = RecordingIOManager()

    @io_manager
    def recording() -> IOManager:
        return manager

    @job(resource_defs={"io_manager": recording})
    def piping():
        consume(produce())

    assert piping.execute_in_process().output_for_node("consume") == "got 5"
    assert ("produce", "result") in manager.stored


def test_io_manager_decorator_makes_an_io_manager_definition() -> None:
    @io_manager
    def plain() -> IOManager:
        """Keeps values in memory."""
        return InMemoryIOManager()

    @io_manager(config_schema={"base_dir": str}, description="on disk")
    def on_disk(init_context: InitResourceContext) -> IOManager:
        return FilesystemIOManager(base_dir=init_context.resource_config["base_dir"])

    assert isinstance(plain, IOManagerDefinition)
    assert plain.description == "Keeps values in memory."
    assert isinstance(plain(), InMemoryIOManager)
    assert isinstance(on_disk, IOManagerDefinition)
    assert on_disk.description == "on disk"
    assert on_disk.config_schema == {"base_dir": str}
    built = on_disk(build_init_resource_context(config={"base_dir": "/tmp/x"}))
    assert built.base_dir == "/tmp/x"


def test_io_manager_that_raises_in_handle_output_fails_the_step() -> None:
    class Broken(InMemoryIOManager):
        def handle_output(self, context: OutputContext, obj: Any) -> None:
            raise OSError("disk full")

    @job(resource_defs={"io_manager": Broken()})
    def piping():
        consume(produce())

    result = piping.execute_in_process(raise_on_error=False)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "produce"
    assert failure.step_failure.error.cls_name == "OSError"
    assert result.is_node_skipped("consume")


def test_filesystem_io_manager_writes_op_outputs_under_base_dir(tmp_path: Path) -> None:
    @job(resource_defs={"io_manager": FilesystemIOManager(base_dir=str(tmp_path))})
    def piping():
        consume(produce())

    result = piping.execute_in_process()
    assert result.output_for_node("consume") == "got 5"
    stored = tmp_path / result.run_id / "produce" / "result"
    assert pickle.loads(stored.read_bytes()) == 5
    assert pickle.loads((tmp_path / result.run_id / "consume" / "result").read_bytes()) == "got 5"
    assert not list(tmp_path.rglob("*.tmp"))


def test_filesystem_io_manager_writes_assets_at_their_key_path(tmp_path: Path) -> None:
    @asset(key_prefix=["lake", "raw"])
    def table():
        return [1, 2, 3]

    materialize([table], resources={"io_manager": FilesystemIOManager(base_dir=str(tmp_path))})
    assert pickle.loads((tmp_path / "lake" / "raw" / "table").read_bytes()) == [1, 2, 3]


def test_filesystem_io_manager_loading_a_missing_asset_names_the_input(tmp_path: Path) -> None:
    from dagloom import DagloomError

    manager = FilesystemIOManager(base_dir=str(tmp_path))
    context = InputContext("rows", "step", None, asset_key=AssetKey("never"))
    with pytest.raises(DagloomError, match="rows"):
        manager.load_input(context)


def test_in_memory_io_manager_is_the_default_and_keeps_values_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGLOOM_HOME", str(tmp_path / "home"))

    @job
    def piping():
        consume(produce())

    assert piping.execute_in_process().output_for_node("consume") == "got 5"
    assert list(tmp_path.iterdir()) == []


def test_in_memory_io_manager_round_trips_values() -> None:
    manager = InMemoryIOManager()
    out = OutputContext("step", "result", "run")
    manager.handle_output(out, {"a": 1})
    assert manager.load_input(InputContext("x", "next", out)) == {"a": 1}
