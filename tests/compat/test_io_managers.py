"""IO managers, written as Dagster's IO manager docs show: ConfigurableIOManager and
ConfigurableIOManagerFactory, @io_manager, input managers, the contexts handed to them
(`asset_key`, `has_asset_key`, `upstream_output`, metadata) and unit tests built with
build_output_context and build_input_context."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

import dagloom as dg


class PickleIOManager(dg.ConfigurableIOManager):
    """Stores each asset under its key path, each op output under its step and name."""

    base_dir: str

    def _path(self, context: dg.OutputContext) -> Path:
        if context.has_asset_key:
            parts = context.asset_key.path
        else:
            parts = [context.step_key, context.name]
        return Path(self.base_dir).joinpath(*parts)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(obj))
        context.add_output_metadata({"path": str(path)})

    def load_input(self, context: dg.InputContext) -> Any:
        if context.upstream_output is None:
            path = Path(self.base_dir).joinpath(*context.asset_key.path)
        else:
            path = self._path(context.upstream_output)
        return pickle.loads(path.read_bytes())


class RecordingIOManager(dg.IOManager):
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.stored: dict[str, Any] = {}
        self.output_metadata: dict[str, Any] = {}

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        self.stored[context.name] = obj
        self.output_metadata[context.name] = dict(context.metadata)

    def load_input(self, context: dg.InputContext) -> Any:
        assert context.upstream_output is not None
        return self.stored[context.upstream_output.name]


class RecordingFactory(dg.ConfigurableIOManagerFactory):
    prefix: str

    def create_io_manager(self, context: dg.InitResourceContext) -> RecordingIOManager:
        manager = RecordingIOManager(self.prefix)
        MANAGERS.append(manager)
        return manager


MANAGERS: list[RecordingIOManager] = []


def test_configurable_io_manager_stores_assets_at_their_key(tmp_path: Path) -> None:
    @dg.asset(key_prefix=["raw"])
    def numbers() -> list[int]:
        return [1, 2, 3]

    @dg.asset(ins={"numbers": dg.AssetIn(key=["raw", "numbers"])})
    def total(numbers: list[int]) -> int:
        return sum(numbers)

    manager = PickleIOManager(base_dir=str(tmp_path))
    result = dg.materialize([numbers, total], resources={"io_manager": manager})
    assert result.success
    assert pickle.loads((tmp_path / "raw" / "numbers").read_bytes()) == [1, 2, 3]
    assert pickle.loads((tmp_path / "total").read_bytes()) == 6


def test_io_manager_context_for_op_outputs_has_no_asset_key(tmp_path: Path) -> None:
    @dg.op
    def emit() -> str:
        return "v"

    @dg.op
    def read(value: str) -> str:
        return value * 2

    @dg.job(resource_defs={"io_manager": PickleIOManager(base_dir=str(tmp_path))})
    def pipeline() -> None:
        read(emit())

    assert pipeline.execute_in_process().output_for_node("read") == "vv"
    assert pickle.loads((tmp_path / "emit" / "result").read_bytes()) == "v"


def test_configurable_io_manager_factory_builds_one_manager_per_run() -> None:
    MANAGERS.clear()

    @dg.op(out=dg.Out(metadata={"owner": "data"}))
    def emit() -> int:
        return 5

    @dg.op
    def double(value: int) -> int:
        return value * 2

    @dg.job(resource_defs={"io_manager": RecordingFactory(prefix="p")})
    def pipeline() -> None:
        double(emit())

    result = pipeline.execute_in_process()
    assert result.output_for_node("double") == 10
    [manager] = MANAGERS
    assert manager.prefix == "p"
    # Both ops name their output "result": double's value replaced emit's after being read.
    assert manager.stored == {"result": 10}
    assert manager.output_metadata["result"] == {}
    assert MANAGERS[0] is manager


def test_io_manager_decorator_with_config_schema() -> None:
    @dg.io_manager(config_schema={"prefix": str})
    def recording(context: dg.InitResourceContext) -> RecordingIOManager:
        manager = RecordingIOManager(context.resource_config["prefix"])
        MANAGERS.append(manager)
        return manager

    MANAGERS.clear()

    @dg.asset
    def seven() -> int:
        return 7

    result = dg.materialize(
        [seven],
        resources={"io_manager": recording},
        run_config={"resources": {"io_manager": {"config": {"prefix": "q"}}}},
    )
    assert result.success
    assert MANAGERS[0].prefix == "q"
    assert MANAGERS[0].stored == {"result": 7}


def test_io_manager_decorator_accepts_input_and_output_config_schemas() -> None:
    @dg.io_manager(output_config_schema={"path": str}, input_config_schema={"path": str})
    def configured(_: dg.InitResourceContext) -> RecordingIOManager:
        return RecordingIOManager("c")

    assert isinstance(configured, dg.IOManagerDefinition)
    assert configured.output_config_schema == {"path": str}
    assert configured.input_config_schema == {"path": str}


def test_per_output_io_manager_key() -> None:
    MANAGERS.clear()

    @dg.asset(io_manager_key="recording")
    def kept() -> str:
        return "k"

    result = dg.materialize_to_memory([kept], resources={"recording": RecordingFactory(prefix="r")})
    assert result.success
    assert MANAGERS[0].stored == {"result": "k"}


def test_input_manager_loads_an_input_from_an_upstream_output() -> None:
    @dg.input_manager
    def tenfold(context: dg.InputContext) -> int:
        assert context.upstream_output is not None
        return 10 * len(context.upstream_output.name)

    @dg.op
    def emit() -> int:
        return 1

    @dg.op(ins={"value": dg.In(input_manager_key="tenfold")})
    def read(value: int) -> int:
        return value

    @dg.job(resource_defs={"tenfold": tenfold})
    def pipeline() -> None:
        read(emit())

    assert pipeline.execute_in_process().output_for_node("read") == 60  # len("result") * 10


def test_input_manager_class_with_a_config_schema() -> None:
    class Fixed(dg.InputManager):
        def __init__(self, value: int) -> None:
            self.value = value

        def load_input(self, context: dg.InputContext) -> int:
            return self.value

    @dg.input_manager(config_schema={"value": int})
    def fixed(context: dg.InputContext) -> Fixed:
        return Fixed(context.resource_config["value"])

    @dg.op
    def emit() -> int:
        return 1

    @dg.op(ins={"value": dg.In(input_manager_key="fixed")})
    def read(value: int) -> int:
        return value

    @dg.job(resource_defs={"fixed": fixed})
    def pipeline() -> None:
        read(emit())

    result = pipeline.execute_in_process(
        run_config={"resources": {"fixed": {"config": {"value": 42}}}}
    )
    assert result.output_for_node("read") == 42


def test_unit_testing_an_io_manager_with_built_contexts(tmp_path: Path) -> None:
    manager = PickleIOManager(base_dir=str(tmp_path))
    out = dg.build_output_context(asset_key="orders", metadata={"owner": "sales"})
    assert out.has_asset_key
    assert out.asset_key == dg.AssetKey("orders")
    assert out.metadata == {"owner": "sales"}
    manager.handle_output(out, {"n": 1})
    assert out.user_metadata == {"path": str(tmp_path / "orders")}

    loaded = manager.load_input(dg.build_input_context(upstream_output=out))
    assert loaded == {"n": 1}
    by_key = manager.load_input(dg.build_input_context(asset_key=["orders"]))
    assert by_key == {"n": 1}


def test_built_op_output_context_has_no_asset_key() -> None:
    out = dg.build_output_context(step_key="emit", name="result")
    assert not out.has_asset_key
    with pytest.raises(dg.DagloomError):
        out.get_asset_identifier()


def test_filesystem_io_manager_refuses_a_key_that_leaves_its_folder(tmp_path: Path) -> None:
    manager = dg.FilesystemIOManager(base_dir=str(tmp_path / "store"))
    with pytest.raises(dg.DagloomError) as info:
        manager.handle_output(dg.build_output_context(asset_key=["..", "escape"]), 1)
    assert "escape" in str(info.value)
    assert not (tmp_path / "escape").exists()


def test_input_manager_loads_an_input_that_has_no_upstream() -> None:
    @dg.input_manager
    def table_loader(context: dg.InputContext) -> list[int]:
        assert context.upstream_output is None
        return [1, 2, 3] if context.name == "rows" else []

    @dg.op(ins={"rows": dg.In(input_manager_key="table_loader")})
    def count(rows: list[int]) -> int:
        return len(rows)

    @dg.job(resource_defs={"table_loader": table_loader})
    def pipeline() -> None:
        count()

    assert pipeline.execute_in_process().output_for_node("count") == 3


def test_a_missing_input_manager_names_the_job_and_key() -> None:
    @dg.op(ins={"rows": dg.In(input_manager_key="table_loader")})
    def count(rows: list[int]) -> int:
        return len(rows)

    @dg.job
    def pipeline() -> None:
        count()

    with pytest.raises(dg.DefinitionError) as info:
        pipeline.execute_in_process()
    assert "pipeline" in str(info.value)
    assert "table_loader" in str(info.value)


class LoggingIOManager(dg.IOManager):
    def __init__(self) -> None:
        self.values: dict[tuple[str, ...], Any] = {}

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        context.log.info("storing %s", context.name)
        self.values[tuple(context.get_identifier())] = obj

    def load_input(self, context: dg.InputContext) -> Any:
        context.log.info("loading %s", context.name)
        return self.values[tuple(context.get_identifier())]


def test_io_manager_logs_and_identifies_op_outputs() -> None:
    @dg.op
    def emit() -> int:
        return 3

    @dg.op
    def read(value: int) -> int:
        return value + 1

    @dg.job(
        resource_defs={
            "io_manager": dg.IOManagerDefinition.hardcoded_io_manager(LoggingIOManager())
        }
    )
    def pipeline() -> None:
        read(emit())

    assert pipeline.execute_in_process().output_for_node("read") == 4


class TableIOManager(dg.IOManager):
    """Writes each output to the table its run config names; reads it back by that name."""

    def __init__(self) -> None:
        self.tables: dict[str, Any] = {}

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        self.tables[context.config["table"]] = (obj, context.config["mode"])

    def load_input(self, context: dg.InputContext) -> Any:
        return self.tables[context.upstream_output.config["table"]][0]


def test_output_config_schema_is_read_from_run_config_outputs() -> None:
    manager = TableIOManager()

    @dg.io_manager(output_config_schema={"table": str, "mode": dg.Field(str, default_value="w")})
    def table_io_manager(_: dg.InitResourceContext) -> TableIOManager:
        return manager

    @dg.op
    def op_1() -> int:
        return 1

    @dg.op
    def op_2(a: int) -> int:
        return a + 1

    @dg.job(resource_defs={"io_manager": table_io_manager})
    def my_job() -> None:
        op_2(op_1())

    result = my_job.execute_in_process(
        run_config={
            "ops": {
                "op_1": {"outputs": {"result": {"table": "table1"}}},
                "op_2": {"outputs": {"result": {"table": "table2", "mode": "a"}}},
            }
        },
    )
    assert result.success
    assert manager.tables == {"table1": (1, "w"), "table2": (2, "a")}
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        my_job.execute_in_process(
            run_config={"ops": {"op_1": {"outputs": {"result": {"table": "t"}}}}}
        )
    assert caught.value.key_paths == ["ops.op_2.outputs.result"]
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        my_job.execute_in_process(
            run_config={
                "ops": {
                    "op_1": {"outputs": {"result": {"table": "t", "colour": "red"}}},
                    "op_2": {"outputs": {"other": {"table": "u"}}},
                }
            }
        )
    assert set(caught.value.key_paths) == {
        "ops.op_1.outputs.result.colour",
        "ops.op_2.outputs.other",
        "ops.op_2.outputs.result",
    }


def test_output_config_for_a_manager_without_a_schema_is_rejected() -> None:
    @dg.op
    def plain() -> int:
        return 1

    @dg.job
    def plain_job() -> None:
        plain()

    with pytest.raises(dg.DagsterInvalidConfigError, match="no output config") as caught:
        plain_job.execute_in_process(
            run_config={"ops": {"plain": {"outputs": {"result": {"table": "t"}}}}}
        )
    assert caught.value.key_paths == ["ops.plain.outputs.result"]


def test_input_config_schema_is_read_from_run_config_inputs() -> None:
    tables = {"table1": [1, 2, 3]}

    @dg.input_manager(input_config_schema={"table_name": str})
    def table_loader(context: dg.InputContext) -> Any:
        return tables[context.config["table_name"]]

    @dg.op(ins={"dataframe": dg.In(input_manager_key="my_loader")})
    def my_op(dataframe: list[int]) -> int:
        return sum(dataframe)

    @dg.job(resource_defs={"my_loader": table_loader})
    def my_job() -> None:
        my_op()

    result = my_job.execute_in_process(
        run_config={"ops": {"my_op": {"inputs": {"dataframe": {"table_name": "table1"}}}}}
    )
    assert result.output_for_node("my_op") == 6
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        my_job.execute_in_process()
    assert caught.value.key_paths == ["ops.my_op.inputs.dataframe"]


def test_io_manager_input_config_schema_for_inputs_loaded_from_upstream() -> None:
    seen: list[Any] = []

    class Recording(dg.IOManager):
        def __init__(self) -> None:
            self.values: dict[str, Any] = {}

        def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
            self.values[context.step_key] = obj

        def load_input(self, context: dg.InputContext) -> Any:
            seen.append(context.config)
            return self.values[context.upstream_output.step_key]

    recording = Recording()

    @dg.io_manager(input_config_schema={"sample": dg.Field(float, default_value=1.0)})
    def sampling_io_manager(_: dg.InitResourceContext) -> Recording:
        return recording

    @dg.op
    def produce() -> int:
        return 4

    @dg.op
    def consume(n: int) -> int:
        return n * 2

    @dg.job(resource_defs={"io_manager": sampling_io_manager})
    def sampled() -> None:
        consume(produce())

    result = sampled.execute_in_process(
        run_config={"ops": {"consume": {"inputs": {"n": {"sample": 0.5}}}}}
    )
    assert result.output_for_node("consume") == 8
    assert seen[0] == {"sample": 0.5}
    sampled.execute_in_process()
    assert seen[-1] == {"sample": 1.0}


class JsonIOManager(dg.UPathIOManager):
    """Stores values as JSON files, as Dagster's UPathIOManager examples store parquet."""

    extension: str = ".json"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: Any) -> None:
        import json

        with path.open("w") as file:
            json.dump(obj, file)

    def load_from_path(self, context: dg.InputContext, path: Any) -> Any:
        import json

        with path.open("r") as file:
            return json.load(file)

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict[str, Any]:
        return {"items": len(obj)} if isinstance(obj, list) else {}


def test_upath_io_manager_stores_assets_and_op_outputs_in_files(tmp_path: Path) -> None:
    @dg.asset(key_prefix=["shop"])
    def orders() -> list[int]:
        return [1, 2, 3]

    @dg.asset(ins={"orders": dg.AssetIn(key_prefix=["shop"])})
    def order_count(orders: list[int]) -> list[int]:
        return [len(orders)]

    manager = JsonIOManager(base_path=str(tmp_path))
    result = dg.materialize([orders, order_count], resources={"io_manager": manager})
    assert result.success
    assert (tmp_path / "shop" / "orders.json").read_text() == "[1, 2, 3]"
    assert (tmp_path / "order_count.json").read_text() == "[3]"
    (event, _) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["path"] == dg.MetadataValue.path(str(tmp_path / "shop" / "orders.json"))
    assert metadata["items"].value == 3

    @dg.op
    def numbers() -> list[int]:
        return [4, 5]

    @dg.op
    def total(values: list[int]) -> int:
        return sum(values)

    @dg.job(resource_defs={"io_manager": JsonIOManager(base_path=tmp_path / "ops")})
    def totals() -> None:
        total(numbers())

    run = totals.execute_in_process()
    assert run.output_for_node("total") == 9
    stored = tmp_path / "ops" / run.run_id / "numbers" / "result.json"
    assert stored.read_text() == "[4, 5]"


def test_upath_io_manager_refuses_paths_leaving_its_base(tmp_path: Path) -> None:
    manager = JsonIOManager(base_path=tmp_path)
    context = dg.build_output_context(step_key="..", name="result", run_id="r")
    with pytest.raises(dg.DagloomError, match="storage folder"):
        manager.handle_output(context, [1])
    with pytest.raises(dg.DagloomError, match="nothing stored"):
        manager.load_input(dg.build_input_context(asset_key="missing"))
