"""Assets, written as Dagster's asset docs show: AssetSpec with string keys and its
methods, AssetsDefinition accessors, subsettable multi-assets, optional outputs, loading
assets from modules and packages, and selecting assets to run."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import dagloom as dg


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_asset_spec_takes_string_keys_and_deps() -> None:
    spec = dg.AssetSpec(key="orders", deps=["raw_orders", ["lake", "customers"]])
    assert spec.key == dg.AssetKey("orders")
    assert [dep.asset_key for dep in spec.deps] == [
        dg.AssetKey("raw_orders"),
        dg.AssetKey(["lake", "customers"]),
    ]
    assert all(isinstance(dep, dg.AssetDep) for dep in spec.deps)
    assert dg.AssetSpec(["a", "b"]).key == dg.AssetKey(["a", "b"])


def test_asset_deps_are_asset_deps_keeping_their_partition_mapping() -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")
    mapping = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)

    @dg.asset(partitions_def=daily)
    def events() -> None: ...

    @dg.asset(partitions_def=daily, deps=[dg.AssetDep(events, partition_mapping=mapping), "raw"])
    def yesterday() -> None: ...

    spec = yesterday.specs_by_key[dg.AssetKey("yesterday")]
    first, second = spec.deps
    assert first.asset_key == dg.AssetKey("events")
    assert first.partition_mapping is mapping
    assert second == dg.AssetDep(dg.AssetKey("raw"))
    assert second.partition_mapping is None
    assert yesterday.get_partition_mapping("events") is mapping

    merged = dg.AssetSpec("report", deps=[events]).merge_attributes(
        deps=[dg.AssetDep("events", partition_mapping=mapping), "raw"]
    )
    assert [d.asset_key.to_user_string() for d in merged.deps] == ["events", "raw"]
    assert merged.deps[0].partition_mapping is mapping


def test_asset_key_string_forms() -> None:
    key = dg.AssetKey(["lake", "orders"])
    assert key.to_string() == '["lake", "orders"]'
    assert dg.AssetKey.from_db_string(key.to_string()) == key
    assert dg.AssetKey.from_db_string("lake.orders") == key
    assert dg.AssetKey.from_db_string(None) is None
    assert key.to_user_string() == "lake/orders"
    assert dg.AssetKey.from_user_string("lake/orders") == key
    assert dg.AssetKey.from_escaped_user_string(key.to_escaped_user_string()) == key
    assert dg.AssetKey.from_graphql_input(key.to_graphql_input()) == key
    assert key.has_prefix(["lake"]) and not key.has_prefix(["sea"])
    assert pickle.loads(pickle.dumps({key: [key]})) == {key: [key]}


def test_asset_spec_replace_and_merge_attributes() -> None:
    spec = dg.AssetSpec("orders", group_name="sales", metadata={"a": 1}, tags={"t": "1"})
    replaced = spec.replace_attributes(group_name="finance", description="all orders")
    assert (replaced.group_name, replaced.description) == ("finance", "all orders")
    assert spec.group_name == "sales"  # specs are immutable
    merged = spec.merge_attributes(metadata={"b": 2}, tags={"u": "2"}, owners=["team:data"])
    assert merged.metadata == {"a": 1, "b": 2}
    assert merged.tags == {"t": "1", "u": "2"}
    assert merged.owners == ("team:data",)


def test_asset_spec_replace_attributes_rejects_unknown_names() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError) as info:
        dg.AssetSpec("orders").replace_attributes(colour="red")
    assert "orders" in str(info.value)
    assert "colour" in str(info.value)


def test_asset_spec_with_io_manager_key_routes_a_multi_asset_output() -> None:
    stored: dict[str, Any] = {}

    class Recording(dg.IOManager):
        def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
            stored[context.asset_key.to_user_string()] = obj

        def load_input(self, context: dg.InputContext) -> Any:
            raise AssertionError("not read")

    @dg.multi_asset(
        specs=[dg.AssetSpec("left").with_io_manager_key("recording"), dg.AssetSpec("right")]
    )
    def pair() -> Any:
        yield dg.Output(1, output_name="left")
        yield dg.Output(2, output_name="right")

    result = dg.materialize_to_memory([pair], resources={"recording": Recording()})
    assert result.success
    assert stored == {"left": 1}


def test_assets_definition_accessors() -> None:
    @dg.asset(group_name="sales", description="all orders")
    def orders() -> int:
        return 1

    assert orders.key == dg.AssetKey("orders")
    assert orders.keys == {dg.AssetKey("orders")}
    assert [s.key for s in orders.specs] == [dg.AssetKey("orders")]
    assert orders.get_asset_spec().group_name == "sales"
    assert orders.get_asset_spec("orders").description == "all orders"
    assert orders.op.name == "orders"
    assert isinstance(orders.op, dg.OpDefinition)


def test_subsettable_multi_asset_yields_only_the_selected_outputs() -> None:
    @dg.multi_asset(
        outs={"a": dg.AssetOut(is_required=False), "b": dg.AssetOut(is_required=False)},
        internal_asset_deps={"a": set(), "b": {dg.AssetKey("a")}},
        can_subset=True,
    )
    def split(context: dg.AssetExecutionContext) -> Any:
        for name in sorted(context.selected_output_names):
            yield dg.Output(name.upper(), output_name=name)

    @dg.asset
    def downstream(b: str) -> str:
        return b + "!"

    full = dg.materialize_to_memory([split, downstream])
    assert _materialized(full) == {"a", "b", "downstream"}
    subset = dg.materialize_to_memory([split, downstream], selection=["b"])
    assert _materialized(subset) == {"b"}
    assert split.deps_by_key[dg.AssetKey("b")] == (dg.AssetKey("a"),)
    assert split.deps_by_key[dg.AssetKey("a")] == ()


def test_internal_asset_deps_naming_an_unknown_output_is_rejected() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError) as info:

        @dg.multi_asset(outs={"a": dg.AssetOut()}, internal_asset_deps={"zz": set()})
        def broken() -> int:
            return 1

    assert "broken" in str(info.value)
    assert "'zz'" in str(info.value)


def test_asset_output_required_false_may_skip_materializing() -> None:
    @dg.asset(output_required=False)
    def maybe() -> Any:
        if False:  # nothing new today
            yield dg.Output(1)

    @dg.asset
    def after(maybe: int) -> int:
        return maybe + 1

    result = dg.materialize_to_memory([maybe, after])
    assert result.success
    assert _materialized(result) == set()
    assert result.is_node_skipped("after")


def test_materialize_selection_runs_only_the_selected_assets() -> None:
    @dg.asset
    def a() -> int:
        return 1

    @dg.asset
    def b(a: int) -> int:
        return a + 1

    result = dg.materialize_to_memory([a, b], selection=dg.AssetSelection.assets("a"))
    assert _materialized(result) == {"a"}


def test_execute_in_process_asset_selection_on_an_asset_job() -> None:
    @dg.asset
    def a() -> int:
        return 1

    @dg.asset
    def b(a: int) -> int:
        return a + 1

    defs = dg.Definitions(
        assets=[a, b],
        jobs=[dg.define_asset_job("all_assets", selection="*")],
        resources={"io_manager": dg.InMemoryIOManager()},
    )
    job = defs.get_job_def("all_assets")
    assert _materialized(job.execute_in_process(asset_selection=[dg.AssetKey("a")])) == {"a"}
    assert _materialized(job.execute_in_process(asset_selection=["a", "b"])) == {"a", "b"}


def test_execute_in_process_asset_selection_outside_the_job_names_the_key() -> None:
    @dg.asset
    def a() -> int:
        return 1

    @dg.asset
    def other() -> int:
        return 2

    defs = dg.Definitions(assets=[a, other], jobs=[dg.define_asset_job("only_a", selection="a")])
    with pytest.raises(dg.DagsterInvalidInvocationError) as info:
        defs.get_job_def("only_a").execute_in_process(asset_selection=["other"])
    assert "only_a" in str(info.value)
    assert "other" in str(info.value)


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    vars(module).update(attrs)
    return module


def test_load_assets_from_modules_collects_each_asset_once() -> None:
    @dg.asset
    def a() -> int:
        return 1

    @dg.asset
    def b(a: int) -> int:
        return a + 1

    first = _module("first", a=a, alias=a, b=b, helper=len)
    second = _module("second", b=b)
    loaded = dg.load_assets_from_modules([first, second])
    assert [d.key for d in loaded] == [dg.AssetKey("a"), dg.AssetKey("b")]


def test_load_assets_from_modules_with_group_and_prefix() -> None:
    @dg.asset
    def a() -> int:
        return 1

    @dg.asset
    def b(a: int) -> int:
        return a + 1

    loaded = dg.load_assets_from_modules(
        [_module("m", a=a, b=b)], group_name="sales", key_prefix="warehouse"
    )
    assert {d.key for d in loaded} == {
        dg.AssetKey(["warehouse", "a"]),
        dg.AssetKey(["warehouse", "b"]),
    }
    assert {d.get_asset_spec().group_name for d in loaded} == {"sales"}
    result = dg.materialize_to_memory(loaded)
    assert _materialized(result) == {"warehouse/a", "warehouse/b"}
    assert result.output_for_node("b") == 2


def test_load_assets_from_modules_rejects_one_key_defined_twice() -> None:
    @dg.asset(name="x")
    def x1() -> int:
        return 1

    @dg.asset(name="x")
    def x2() -> int:
        return 2

    with pytest.raises(dg.DagsterInvalidDefinitionError) as info:
        dg.load_assets_from_modules([_module("one", x=x1), _module("two", x=x2)])
    assert "'x'" in str(info.value)
    assert "one" in str(info.value) and "two" in str(info.value)


def test_load_assets_from_package_module_walks_submodules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "shop_assets"
    (package / "sales").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sales" / "__init__.py").write_text("")
    (package / "raw.py").write_text(
        "import dagloom as dg\n\n@dg.asset\ndef raw_orders():\n    return [1, 2]\n"
    )
    (package / "sales" / "orders.py").write_text(
        "import dagloom as dg\n\n@dg.asset\ndef orders(raw_orders):\n    return sum(raw_orders)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import shop_assets  # type: ignore[import-not-found]

        loaded = dg.load_assets_from_package_module(shop_assets, group_name="shop")
        assert {d.key.to_user_string() for d in loaded} == {"raw_orders", "orders"}
        assert dg.materialize_to_memory(loaded).output_for_node("orders") == 3
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "shop_assets"]:
            del sys.modules[name]


def test_load_assets_from_current_module_in_a_definitions_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shop_defs.py").write_text(
        "import dagloom as dg\n\n"
        "@dg.asset\ndef raw_orders():\n    return [1, 2]\n\n"
        "@dg.asset\ndef order_total(raw_orders):\n    return sum(raw_orders)\n\n"
        "defs = dg.Definitions(assets=dg.load_assets_from_current_module(group_name='shop'))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import shop_defs  # type: ignore[import-not-found]

        defs = shop_defs.defs
        assert defs.get_assets_def("order_total").get_asset_spec().group_name == "shop"
        assert dg.materialize_to_memory(defs.assets).output_for_node("order_total") == 3
    finally:
        sys.modules.pop("shop_defs", None)


def test_assets_definition_by_key_accessors() -> None:
    @dg.asset(metadata={"owner": "sales"}, tags={"tier": "gold"}, deps=["raw"])
    def orders() -> int:
        return 1

    key = dg.AssetKey("orders")
    assert orders.metadata_by_key == {key: {"owner": "sales"}}
    assert orders.tags_by_key == {key: {"tier": "gold"}}
    assert orders.asset_deps == {key: {dg.AssetKey("raw")}}
    assert orders.group_names_by_key == {key: "default"}


def test_source_asset_is_loaded_through_its_io_manager() -> None:
    class WarehouseIOManager(dg.IOManager):
        def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
            raise AssertionError("a source asset is never stored")

        def load_input(self, context: dg.InputContext) -> Any:
            return [context.asset_key.to_user_string(), 2]

    raw_orders = dg.SourceAsset(
        key=dg.AssetKey("raw_orders"), io_manager_key="warehouse", description="loaded nightly"
    )

    @dg.asset
    def order_count(raw_orders: list[Any]) -> int:
        return len(raw_orders)

    defs = dg.Definitions(
        assets=[raw_orders, order_count], resources={"warehouse": WarehouseIOManager()}
    )
    result = defs.get_implicit_global_asset_job_def().execute_in_process()
    assert result.output_for_node("order_count") == 2
    assert isinstance(raw_orders, dg.AssetSpec)
    assert raw_orders.description == "loaded nightly"
    moved = raw_orders.with_io_manager_key("lake")
    assert isinstance(moved, dg.SourceAsset) and moved.io_manager_key == "lake"
    assert moved.key == dg.AssetKey("raw_orders")


def test_an_unselected_upstream_asset_loads_through_its_own_io_manager() -> None:
    class Tagged(dg.IOManager):
        def __init__(self, tag: str) -> None:
            self.tag = tag

        def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
            return None

        def load_input(self, context: dg.InputContext) -> Any:
            return self.tag

    seen: list[str] = []

    @dg.asset(io_manager_key="lake")
    def upstream() -> int:
        return 1

    @dg.asset
    def downstream(upstream: str) -> None:
        seen.append(upstream)

    resources = {"io_manager": Tagged("default"), "lake": Tagged("lake")}
    dg.materialize([upstream, downstream], selection=["downstream"], resources=resources)
    assert seen == ["lake"]
    job = dg.define_asset_job("only_downstream", selection=["downstream"])
    defs = dg.Definitions(assets=[upstream, downstream], jobs=[job], resources=resources)
    defs.get_job_def("only_downstream").execute_in_process()
    assert seen == ["lake", "lake"]
