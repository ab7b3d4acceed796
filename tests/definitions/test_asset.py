"""@asset, @multi_asset, AssetIn, AssetDep, MaterializeResult, materialize and
materialize_to_memory."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from dagloom import (
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    Config,
    DagsterInvalidDefinitionError,
    DefinitionError,
    FilesystemIOManager,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    graph_asset,
    materialize,
    materialize_to_memory,
    multi_asset,
)
from dagloom.definitions.metadata import from_metadata_message
from dagloom.messages import EventType


class Scale(Config):
    factor: int = 1


def _materialized_keys(result) -> list[str]:
    return [
        "/".join(e.asset_materialization.asset_key.path)
        for e in result.filter_events(EventType.ASSET_MATERIALIZATION)
    ]


# -- keys and attributes ------------------------------------------------------------------


def test_asset_key_from_a_string_a_list_and_a_user_string() -> None:
    assert AssetKey("a").path == ("a",)
    assert AssetKey(["a", "b"]).path == ("a", "b")
    assert AssetKey.from_user_string("a/b") == AssetKey(["a", "b"])
    assert AssetKey(["a", "b"]).to_user_string() == "a/b"
    assert AssetKey("a").with_prefix("p") == AssetKey(["p", "a"])
    assert len({AssetKey("a"), AssetKey(["a"])}) == 1


def test_asset_key_rejects_empty_and_bad_components() -> None:
    with pytest.raises(DefinitionError):
        AssetKey([])
    with pytest.raises(DefinitionError):
        AssetKey(["has space"])


def test_asset_key_is_its_function_name() -> None:
    @asset
    def orders():
        return [1]

    assert orders.key == AssetKey("orders")
    assert orders.op.name == "orders"


def test_asset_group_kinds_and_description() -> None:
    @asset(group_name="sales", kinds=["python", "pandas"], description="All orders")
    def orders():
        return [1]

    key = AssetKey("orders")
    assert orders.group_names_by_key == {key: "sales"}
    assert orders.descriptions_by_key == {key: "All orders"}
    (spec,) = orders.specs
    assert spec.kinds == {"python", "pandas"}


def test_asset_description_defaults_to_docstring_and_group_to_default() -> None:
    @asset
    def orders():
        """Orders from the shop."""
        return [1]

    assert orders.descriptions_by_key == {AssetKey("orders"): "Orders from the shop."}
    assert orders.group_names_by_key == {AssetKey("orders"): "default"}


def test_key_prefix_prefixes_the_key_and_the_inputs() -> None:
    @asset(key_prefix=["warehouse"])
    def orders():
        return [1, 2]

    @asset(key_prefix="warehouse")
    def order_count(orders):
        return len(orders)

    assert orders.key == AssetKey(["warehouse", "orders"])
    assert order_count.key == AssetKey(["warehouse", "order_count"])
    assert order_count.keys_by_input == {"orders": AssetKey(["warehouse", "orders"])}
    result = materialize_to_memory([orders, order_count])
    assert result.asset_value(["warehouse", "order_count"]) == 2
    assert sorted(_materialized_keys(result)) == ["warehouse/order_count", "warehouse/orders"]


def test_asset_key_argument_names_the_key() -> None:
    @asset(key=["a", "b"])
    def whatever():
        return 1

    assert whatever.key == AssetKey(["a", "b"])


# -- dependencies -------------------------------------------------------------------------


def test_parameter_names_are_upstream_assets() -> None:
    @asset
    def numbers():
        return [1, 2, 3]

    @asset
    def total(numbers):
        return sum(numbers)

    @asset
    def report(numbers, total):
        return f"{len(numbers)} numbers sum to {total}"

    result = materialize_to_memory([numbers, total, report])
    assert result.success
    assert result.asset_value("report") == "3 numbers sum to 6"
    assert sorted(_materialized_keys(result)) == ["numbers", "report", "total"]


def test_asset_in_remaps_a_parameter_to_another_key() -> None:
    @asset(key_prefix="raw")
    def events():
        return ["a", "b"]

    @asset(ins={"rows": AssetIn(key=["raw", "events"])})
    def event_count(rows):
        return len(rows)

    assert event_count.keys_by_input == {"rows": AssetKey(["raw", "events"])}
    assert materialize_to_memory([events, event_count]).asset_value("event_count") == 2


def test_asset_in_key_prefix_applies_to_the_parameter_name() -> None:
    @asset(key_prefix="raw")
    def events():
        return ["a"]

    @asset(ins={"events": AssetIn(key_prefix="raw")})
    def count(events):
        return len(events)

    assert count.keys_by_input == {"events": AssetKey(["raw", "events"])}


def test_asset_parameter_default_is_its_input_default() -> None:
    @asset(ins={"rows": AssetIn(key="events", metadata={"m": 1})})
    def counted(rows: int = 3, scale: int = 2) -> int:
        return rows * scale

    assert counted.op.ins["rows"].default_value == 3
    assert counted.op.ins["rows"].asset_key == AssetKey("events")
    assert counted.op.ins["rows"].metadata == {"m": 1}
    assert counted.op.ins["scale"].default_value == 2
    assert counted.op.ins["scale"].dagster_type is int


def test_deps_order_assets_without_passing_data() -> None:
    order: list[str] = []

    @asset
    def table():
        order.append("table")

    @asset(deps=[table])
    def view():
        order.append("view")

    @asset(deps=[AssetDep("view"), "table"])
    def dashboard():
        order.append("dashboard")

    # declared out of order on purpose: only deps= can put them in order
    result = materialize_to_memory([dashboard, view, table])
    assert result.success
    assert order == ["table", "view", "dashboard"]
    assert dashboard.dependency_keys == {AssetKey("view"), AssetKey("table")}
    loaded = result.filter_events(EventType.LOADED_INPUT)
    assert loaded == []


def test_same_key_in_parameters_and_deps_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError):

        @asset(deps=["a"])
        def b(a):
            return a


def test_two_assets_with_the_same_key_are_a_definition_error() -> None:
    @asset(name="dup")
    def first():
        return 1

    @asset(name="dup")
    def second():
        return 2

    with pytest.raises(DefinitionError, match="dup"):
        materialize_to_memory([first, second])


def test_assets_depending_on_each_other_are_a_definition_error_naming_them() -> None:
    @asset
    def chicken(egg):
        return egg

    @asset
    def egg(chicken):
        return chicken

    with pytest.raises(DefinitionError) as caught:
        materialize_to_memory([chicken, egg])
    assert "cycle" in str(caught.value)
    assert "chicken" in str(caught.value)
    assert "egg" in str(caught.value)


def test_upstream_outside_the_selection_is_loaded_from_storage(tmp_path: Path) -> None:
    calls: list[str] = []

    @asset
    def source():
        calls.append("source")
        return 41

    @asset
    def derived(source):
        calls.append("derived")
        return source + 1

    io = FilesystemIOManager(base_dir=str(tmp_path))
    materialize([source], resources={"io_manager": io})
    result = materialize([source, derived], resources={"io_manager": io}, selection=[derived])
    assert calls == ["source", "derived"]
    assert result.asset_value("derived") == 42
    loaded = result.filter_events(EventType.LOADED_INPUT)
    assert [e.loaded_input.input_name for e in loaded] == ["source"]


# -- multi_asset --------------------------------------------------------------------------


def test_multi_asset_materializes_one_asset_per_out() -> None:
    @multi_asset(outs={"evens": AssetOut(), "odds": AssetOut(key=["n", "odds"])})
    def split():
        return [2, 4], [1, 3]

    @asset(ins={"odds": AssetIn(key=["n", "odds"])})
    def odd_total(odds):
        return sum(odds)

    @asset
    def even_total(evens):
        return sum(evens)

    assert split.keys == {AssetKey("evens"), AssetKey(["n", "odds"])}
    result = materialize_to_memory([split, odd_total, even_total])
    assert result.asset_value("odd_total") == 4
    assert result.asset_value("even_total") == 6
    assert sorted(_materialized_keys(result)) == [
        "even_total",
        "evens",
        "n/odds",
        "odd_total",
    ]


def test_multi_asset_yielding_outputs_by_name() -> None:
    @multi_asset(outs={"a": AssetOut(group_name="g"), "b": AssetOut()})
    def both():
        yield Output(1, output_name="a")
        yield Output(2, output_name="b")

    result = materialize_to_memory([both])
    assert result.asset_value("a") == 1
    assert result.asset_value("b") == 2
    assert both.group_names_by_key[AssetKey("a")] == "g"


def test_multi_asset_optional_out_not_yielded_is_not_materialized() -> None:
    @multi_asset(outs={"a": AssetOut(), "b": AssetOut(is_required=False)})
    def maybe():
        yield Output(1, output_name="a")

    @asset
    def after_b(b):
        return b

    result = materialize_to_memory([maybe, after_b])
    assert result.success
    assert _materialized_keys(result) == ["a"]
    assert result.is_node_skipped("after_b")


# -- MaterializeResult and metadata --------------------------------------------------------


def test_materialize_result_metadata_is_in_the_materialization_event() -> None:
    written: list[int] = []

    @asset
    def external_table() -> MaterializeResult:
        written.append(3)
        return MaterializeResult(
            metadata={
                "rows": 3,
                "source": "api",
                "ratio": 0.5,
                "docs": MetadataValue.url("https://example.com"),
                "columns": ["a", "b"],
            }
        )

    result = materialize_to_memory([external_table])
    assert result.success
    (event,) = result.filter_events(EventType.ASSET_MATERIALIZATION)
    assert list(event.asset_materialization.asset_key.path) == ["external_table"]
    metadata = {
        k: from_metadata_message(v) for k, v in event.asset_materialization.metadata.items()
    }
    assert metadata == {
        "rows": 3,
        "source": "api",
        "ratio": 0.5,
        "docs": "https://example.com",
        "columns": ["a", "b"],
    }
    assert event.asset_materialization.metadata["docs"].url == "https://example.com"
    # nothing was handed to the IO manager: the asset stored its data itself
    assert result.filter_events(EventType.HANDLED_OUTPUT) == []


def test_output_metadata_of_an_asset_is_in_the_materialization_event() -> None:
    @asset
    def counted():
        return Output([1, 2], metadata={"count": 2})

    result = materialize_to_memory([counted])
    (event,) = result.filter_events(EventType.ASSET_MATERIALIZATION)
    assert event.asset_materialization.metadata["count"].int == 2
    assert result.asset_value("counted") == [1, 2]


def test_context_add_output_metadata_is_in_the_materialization_event() -> None:
    @asset
    def annotated(context: AssetExecutionContext):
        context.add_output_metadata({"note": "hi"})
        return 1

    result = materialize_to_memory([annotated])
    (event,) = result.filter_events(EventType.ASSET_MATERIALIZATION)
    assert event.asset_materialization.metadata["note"].text == "hi"


def test_asset_context_knows_its_asset_key() -> None:
    @asset(key_prefix="p")
    def keyed(context: AssetExecutionContext):
        return context.asset_key

    assert materialize_to_memory([keyed]).asset_value(["p", "keyed"]) == AssetKey(["p", "keyed"])


# -- direct invocation, config ------------------------------------------------------------


def test_asset_called_directly_runs_its_function() -> None:
    @asset
    def total(numbers):
        return sum(numbers)

    assert total([1, 2, 3]) == 6


def test_asset_config_from_run_config_and_direct_call() -> None:
    @asset
    def scaled(config: Scale):
        return 10 * config.factor

    result = materialize_to_memory(
        [scaled], run_config={"ops": {"scaled": {"config": {"factor": 3}}}}
    )
    assert result.asset_value("scaled") == 30
    assert materialize_to_memory([scaled]).asset_value("scaled") == 10
    assert scaled(config=Scale(factor=2)) == 20


# -- materialize with storage -------------------------------------------------------------


def test_materialize_with_filesystem_io_manager_writes_under_base_dir(tmp_path: Path) -> None:
    @asset(key_prefix="wh")
    def stored():
        return {"x": 1}

    result = materialize(
        [stored], resources={"io_manager": FilesystemIOManager(base_dir=str(tmp_path))}
    )
    assert result.success
    path = tmp_path / "wh" / "stored"
    assert pickle.loads(path.read_bytes()) == {"x": 1}
    (event,) = result.filter_events(EventType.ASSET_MATERIALIZATION)
    assert event.asset_materialization.metadata["path"].path == str(path)


def test_materialize_defaults_to_storage_under_dagloom_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGLOOM_HOME", str(tmp_path))

    @asset
    def homed():
        return [1, 2]

    assert materialize([homed]).asset_value("homed") == [1, 2]
    assert pickle.loads((tmp_path / "storage" / "homed").read_bytes()) == [1, 2]


def test_materialize_to_memory_writes_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGLOOM_HOME", str(tmp_path))

    @asset
    def kept():
        return 1

    assert materialize_to_memory([kept]).asset_value("kept") == 1
    assert list(tmp_path.iterdir()) == []


def test_materialize_failure_reraises_and_raise_on_error_false_reports() -> None:
    @asset
    def broken():
        raise ValueError("no data")

    @asset
    def downstream(broken):
        return broken

    with pytest.raises(ValueError, match="no data"):
        materialize_to_memory([broken, downstream])
    result = materialize_to_memory([broken, downstream], raise_on_error=False)
    assert not result.success
    assert _materialized_keys(result) == []
    assert result.is_node_skipped("downstream")


def test_multi_asset_returns_one_materialize_result_per_asset() -> None:
    @multi_asset(outs={"x": AssetOut(), "y": AssetOut()})
    def xy():
        return (
            MaterializeResult(asset_key="x", metadata={"rows": 1}),
            MaterializeResult(asset_key="y", metadata={"rows": 2}),
        )

    result = materialize_to_memory([xy])
    rows = {
        "/".join(e.asset_materialization.asset_key.path): e.asset_materialization.metadata[
            "rows"
        ].int
        for e in result.filter_events(EventType.ASSET_MATERIALIZATION)
    }
    assert rows == {"x": 1, "y": 2}


def test_asset_job_selecting_one_output_of_a_multi_asset_runs_the_whole_op() -> None:
    from dagloom import AssetSelection, Definitions, define_asset_job

    @multi_asset(outs={"p": AssetOut(), "q": AssetOut()})
    def pq():
        return 1, 2

    @asset
    def uses_q(q):
        return q * 10

    defs = Definitions(
        assets=[pq, uses_q],
        jobs=[define_asset_job("from_q", AssetSelection.keys("q").downstream())],
    )
    result = defs.get_job_def("from_q").execute_in_process()
    assert result.asset_value("uses_q") == 20
    assert sorted(_materialized_keys(result)) == ["p", "q", "uses_q"]


def test_asset_config_schema_is_read_from_context_op_config() -> None:
    from dagloom import build_asset_context

    @asset(config_schema={"n": int})
    def configured(context: AssetExecutionContext):
        return context.op_config["n"]

    result = materialize_to_memory(
        [configured], run_config={"ops": {"configured": {"config": {"n": 3}}}}
    )
    assert result.asset_value("configured") == 3
    assert configured(build_asset_context(asset_config={"n": 5})) == 5


@pytest.mark.parametrize("decorate", [asset, graph_asset], ids=["asset", "graph_asset"])
def test_key_with_name_or_key_prefix_is_rejected(decorate: Any) -> None:
    def fn() -> None: ...

    with pytest.raises(DagsterInvalidDefinitionError, match="'fn': give key, or name/key_prefix"):
        decorate(key="k", key_prefix="p")(fn)
    with pytest.raises(DagsterInvalidDefinitionError, match="not both"):
        decorate(key="k", name="n")(fn)
