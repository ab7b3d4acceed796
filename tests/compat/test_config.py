"""Config, written as Dagster's config docs show: legacy config_schema types, Pythonic
Config with RunConfig, config mapping, validate_run_config, and the errors bad config gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dagloom as dg


def _run_one(op_def: dg.OpDefinition, config: Any) -> Any:
    @dg.job
    def one() -> None:
        op_def()

    result = one.execute_in_process(run_config={"ops": {op_def.name: {"config": config}}})
    return result.output_for_node(op_def.name)


def test_dict_schema_with_field_defaults() -> None:
    @dg.op(
        config_schema={
            "name": str,
            "iterations": dg.Field(int, default_value=2, description="how many"),
            "verbose": dg.Field(bool, is_required=False),
        }
    )
    def greet(context: dg.OpExecutionContext) -> dict[str, Any]:
        return dict(context.op_config)

    assert _run_one(greet, {"name": "ada"}) == {"name": "ada", "iterations": 2}
    assert _run_one(greet, {"name": "ada", "verbose": True})["verbose"] is True


def test_a_missing_required_key_raises_dagster_invalid_config_error() -> None:
    @dg.op(config_schema={"name": str})
    def greet(context: dg.OpExecutionContext) -> str:
        return str(context.op_config["name"])

    @dg.job
    def greeting() -> None:
        greet()

    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        greeting.execute_in_process(run_config={"ops": {"greet": {"config": {"nam": "x"}}}})
    assert isinstance(caught.value, dg.ConfigError)
    assert set(caught.value.key_paths) == {"ops.greet.config.nam", "ops.greet.config.name"}


def test_scalar_schema_and_wrong_type() -> None:
    @dg.op(config_schema=int)
    def double(context: dg.OpExecutionContext) -> int:
        return int(context.op_config) * 2

    assert _run_one(double, 21) == 42
    with pytest.raises(dg.DagsterInvalidConfigError, match="expected Int"):
        _run_one(double, "21")


def test_shape_permissive_selector_noneable_array() -> None:
    @dg.op(
        config_schema=dg.Shape(
            {
                "source": dg.Selector({"table": str, "query": str}),
                "extra": dg.Permissive({"owner": dg.Field(str, default_value="me")}),
                "limit": dg.Noneable(int),
                "columns": dg.Array(str),
                "weights": [float],
            }
        )
    )
    def load(context: dg.OpExecutionContext) -> dict[str, Any]:
        return dict(context.op_config)

    out = _run_one(
        load,
        {
            "source": {"query": "select 1"},
            "extra": {"anything": 1},
            "columns": ["a", "b"],
            "weights": [1, 0.5],
        },
    )
    assert out == {
        "source": {"query": "select 1"},
        "extra": {"anything": 1, "owner": "me"},
        "limit": None,
        "columns": ["a", "b"],
        "weights": [1.0, 0.5],
    }
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        _run_one(
            load,
            {
                "source": {"table": "t", "query": "q"},
                "extra": {},
                "columns": ["a", 3],
                "weights": [],
            },
        )
    assert set(caught.value.key_paths) == {"ops.load.config.source", "ops.load.config.columns[1]"}


def test_enum_values_become_their_python_values() -> None:
    @dg.op(
        config_schema={
            "mode": dg.Field(
                dg.Enum("Mode", [dg.EnumValue("FAST", python_value=1), dg.EnumValue("SAFE")]),
                default_value="SAFE",
            )
        }
    )
    def pick(context: dg.OpExecutionContext) -> Any:
        return context.op_config["mode"]

    assert _run_one(pick, {"mode": "FAST"}) == 1
    assert _run_one(pick, {}) == "SAFE"
    with pytest.raises(dg.DagsterInvalidConfigError, match="FAST"):
        _run_one(pick, {"mode": "SLOW"})


def test_sources_read_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPAT_TOKEN", "s3cret")
    monkeypatch.setenv("COMPAT_PORT", "5432")
    monkeypatch.setenv("COMPAT_DEBUG", "true")

    @dg.op(config_schema={"token": dg.StringSource, "port": dg.IntSource, "debug": dg.BoolSource})
    def connect(context: dg.OpExecutionContext) -> dict[str, Any]:
        return dict(context.op_config)

    out = _run_one(
        connect,
        {
            "token": {"env": "COMPAT_TOKEN"},
            "port": {"env": "COMPAT_PORT"},
            "debug": {"env": "COMPAT_DEBUG"},
        },
    )
    assert out == {"token": "s3cret", "port": 5432, "debug": True}
    assert _run_one(connect, {"token": "plain", "port": 1, "debug": False})["token"] == "plain"
    with pytest.raises(dg.DagsterInvalidConfigError, match="COMPAT_MISSING"):
        _run_one(connect, {"token": {"env": "COMPAT_MISSING"}, "port": 1, "debug": False})


def test_resource_and_io_manager_config_schema() -> None:
    @dg.resource(config_schema={"url": str, "timeout": dg.Field(int, default_value=30)})
    def database(init_context: dg.InitResourceContext) -> dict[str, Any]:
        return dict(init_context.resource_config)

    class ListIOManager(dg.IOManager):
        def __init__(self, prefix: str) -> None:
            self.prefix = prefix
            self.values: dict[str, Any] = {}

        def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
            self.values[self.prefix + context.step_key] = obj

        def load_input(self, context: dg.InputContext) -> Any:
            return self.values[self.prefix + context.upstream_output.step_key]

    @dg.io_manager(config_schema={"prefix": dg.Field(str, default_value="p/")})
    def list_io_manager(init_context: dg.InitResourceContext) -> ListIOManager:
        return ListIOManager(init_context.resource_config["prefix"])

    @dg.op(required_resource_keys={"database"})
    def read(context: dg.OpExecutionContext) -> dict[str, Any]:
        return dict(context.resources.database)

    @dg.job(resource_defs={"database": database, "io_manager": list_io_manager})
    def reader() -> None:
        read()

    result = reader.execute_in_process(
        run_config={"resources": {"database": {"config": {"url": "sqlite://"}}}}
    )
    assert result.output_for_node("read") == {"url": "sqlite://", "timeout": 30}
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        reader.execute_in_process(run_config={"resources": {"database": {"config": {"url": 5}}}})
    assert caught.value.key_paths == ["resources.database.config.url"]


class DoSomethingConfig(dg.Config):
    config_param: str


class SimplifiedConfig(dg.Config):
    simplified_param: str


@dg.op
def do_something(config: DoSomethingConfig) -> str:
    return config.config_param


def simplified_config(val: SimplifiedConfig) -> dg.RunConfig:
    return dg.RunConfig(ops={"do_something": DoSomethingConfig(config_param=val.simplified_param)})


@dg.job(config=dg.ConfigMapping(config_fn=simplified_config))
def do_it_all_with_simplified_config() -> None:
    do_something()


def test_config_mapping_on_a_job() -> None:
    result = do_it_all_with_simplified_config.execute_in_process(
        run_config={"simplified_param": "stuff"}
    )
    assert result.output_for_node("do_something") == "stuff"
    with pytest.raises(dg.DagsterInvalidConfigError):
        do_it_all_with_simplified_config.execute_in_process(run_config={"other": 1})


def test_config_mapping_with_a_legacy_schema() -> None:
    @dg.op(config_schema={"threshold": int})
    def process_data(context: dg.OpExecutionContext) -> int:
        return int(context.op_config["threshold"])

    @dg.job(
        config=dg.ConfigMapping(
            config_fn=lambda cfg: {
                "ops": {"process_data": {"config": {"threshold": cfg["max_value"] * 2}}}
            },
            config_schema={"max_value": int},
        )
    )
    def processing() -> None:
        process_data()

    result = processing.execute_in_process(run_config={"max_value": 4})
    assert result.output_for_node("process_data") == 8


class Greeting(dg.ConfigurableResource):
    salutation: str = "hello"


def test_run_config_object_with_ops_and_resources() -> None:
    @dg.op
    def greet(config: DoSomethingConfig, greeting: Greeting) -> str:
        return f"{greeting.salutation} {config.config_param}"

    @dg.job(resource_defs={"greeting": Greeting()})
    def greeter() -> None:
        greet()

    result = greeter.execute_in_process(
        run_config=dg.RunConfig(
            ops={"greet": DoSomethingConfig(config_param="ada")},
            resources={"greeting": Greeting(salutation="hi")},
        )
    )
    assert result.output_for_node("greet") == "hi ada"


def test_validate_run_config() -> None:
    @dg.op(config_schema={"n": int})
    def count(context: dg.OpExecutionContext) -> int:
        return int(context.op_config["n"])

    @dg.job
    def counting() -> None:
        count()

    validated = dg.validate_run_config(counting, {"ops": {"count": {"config": {"n": 1}}}})
    assert validated["ops"]["count"]["config"] == {"n": 1}
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        dg.validate_run_config(counting, {"ops": {"count": {"config": {"n": "one"}}}})
    assert caught.value.key_paths == ["ops.count.config.n"]


def test_execution_config_keyed_by_executor_name() -> None:
    @dg.job
    def plain() -> None:
        do_something()

    ops = {"do_something": {"config": {"config_param": "x"}}}
    result = plain.execute_in_process(
        run_config={"ops": ops, "execution": {"in_process": {"config": {"max_concurrent": 2}}}}
    )
    assert result.success
    dg.validate_run_config(
        plain, {"ops": ops, "execution": {"multiprocess": {"config": {"max_concurrent": 4}}}}
    )
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        dg.validate_run_config(
            plain, {"ops": ops, "execution": {"multiprocess": {"config": {"max_concurrent": -1}}}}
        )
    assert caught.value.key_paths == ["execution.config.max_concurrent"]


def test_a_malformed_schema_is_a_definition_error() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="bad_schema"):

        @dg.op(config_schema={"xs": [int, str]})
        def bad_schema() -> None:
            return None


def test_direct_invocation_with_bad_config_raises_dagster_invalid_config_error() -> None:
    @dg.op(config_schema={"n": int})
    def count(context: dg.OpExecutionContext) -> int:
        return int(context.op_config["n"])

    assert count(dg.build_op_context(config={"n": 3})) == 3
    with pytest.raises(dg.DagsterInvalidConfigError):
        count(dg.build_op_context(config={"n": "three"}))


def test_config_mapping_on_a_graph_inside_a_job() -> None:
    @dg.op(config_schema={"threshold": int})
    def filter_rows(context: dg.OpExecutionContext) -> int:
        return int(context.op_config["threshold"])

    @dg.op(config_schema={"threshold": int})
    def count_rows(context: dg.OpExecutionContext) -> int:
        return int(context.op_config["threshold"]) + 1

    @dg.graph(
        config=dg.ConfigMapping(
            config_fn=lambda cfg: {
                "filter_rows": {"config": {"threshold": cfg["max_value"]}},
                "count_rows": {"config": {"threshold": cfg["max_value"] * 10}},
            },
            config_schema={"max_value": int},
        )
    )
    def cleaning() -> None:
        filter_rows()
        count_rows()

    @dg.job
    def pipeline() -> None:
        cleaning()

    run_config = {"ops": {"cleaning": {"config": {"max_value": 3}}}}
    result = pipeline.execute_in_process(run_config=run_config)
    assert result.output_for_node("cleaning.filter_rows") == 3
    assert result.output_for_node("cleaning.count_rows") == 31
    assert run_config == {"ops": {"cleaning": {"config": {"max_value": 3}}}}
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        pipeline.execute_in_process(run_config={"ops": {"cleaning": {"config": {"max": 3}}}})
    assert "ops.cleaning.config.max_value" in caught.value.key_paths


def test_map_config_takes_any_keys_of_its_key_type() -> None:
    @dg.op(config_schema={"weights": dg.Map(str, float, key_label_name="name")})
    def weigh(context: dg.OpExecutionContext) -> float:
        return sum(context.op_config["weights"].values())

    assert _run_one(weigh, {"weights": {"a": 1, "b": 2.5}}) == 3.5
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        _run_one(weigh, {"weights": {"a": "heavy"}})
    assert "ops.weigh.config.weights.a" in caught.value.key_paths

    @dg.op(config_schema=dg.Map(int, str))
    def by_number(context: dg.OpExecutionContext) -> dict[int, str]:
        return dict(context.op_config)

    assert _run_one(by_number, {1: "one"}) == {1: "one"}
    with pytest.raises(dg.DagsterInvalidConfigError, match="key must be Int"):
        _run_one(by_number, {"one": "one"})
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="Map keys"):
        dg.Map(list, int)


def test_scalar_union_takes_the_scalar_or_the_schema() -> None:
    @dg.op(
        config_schema={
            "target": dg.ScalarUnion(
                scalar_type=str, non_scalar_schema={"path": str, "mode": dg.Field(str, "w")}
            )
        }
    )
    def write(context: dg.OpExecutionContext) -> Any:
        return context.op_config["target"]

    assert _run_one(write, {"target": "/tmp/out"}) == "/tmp/out"
    assert _run_one(write, {"target": {"path": "/tmp/out"}}) == {"path": "/tmp/out", "mode": "w"}
    with pytest.raises(dg.DagsterInvalidConfigError, match="expected String"):
        _run_one(write, {"target": 3})
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        _run_one(write, {"target": {"mode": "a"}})
    assert "ops.write.config.target.path" in caught.value.key_paths
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="non_scalar_schema"):
        dg.ScalarUnion(str, int)


def test_config_from_files_and_yaml_strings(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("ops:\n  load:\n    config:\n      table: orders\n      limit: 10\n")
    local = tmp_path / "local.yaml"
    local.write_text("ops:\n  load:\n    config:\n      limit: 5\n")
    expected = {"ops": {"load": {"config": {"table": "orders", "limit": 5}}}}
    assert dg.config_from_files([str(base), str(local)]) == expected
    assert dg.config_from_files([tmp_path / "b*.yaml", local]) == expected
    assert (
        dg.config_from_yaml_strings(
            [
                "ops: {load: {config: {table: orders, limit: 10}}}",
                "ops: {load: {config: {limit: 5}}}",
            ]
        )
        == expected
    )
    with pytest.raises(dg.ConfigError, match="no file matches"):
        dg.config_from_files([str(tmp_path / "missing*.yaml")])
    with pytest.raises(dg.ConfigError, match=r"nope\.yaml"):
        dg.config_from_files([str(tmp_path / "nope.yaml")])
    with pytest.raises(dg.ConfigError, match=r"yaml_strings\[1\].*mapping"):
        dg.config_from_yaml_strings(["ops: {}", "- a list"])


def test_dagster_scalar_type_names_in_config_and_ins() -> None:
    @dg.op(
        config_schema={"factor": dg.Field(dg.Int, default_value=2), "label": dg.String},
        ins={"x": dg.In(dagster_type=dg.Float)},
        out=dg.Out(dg.Float),
    )
    def scale(context: dg.OpExecutionContext, x: float) -> float:
        assert context.op_config["label"] == "scaled"
        return context.op_config["factor"] * x

    @dg.op(config_schema={"on": dg.Bool})
    def source(context: dg.OpExecutionContext) -> float:
        return 1.5 if context.op_config["on"] else 0.0

    @dg.job
    def scaling() -> None:
        scale(source())

    config = {"ops": {"source": {"config": {"on": True}}, "scale": {"config": {"label": "scaled"}}}}
    assert scaling.execute_in_process(run_config=config).output_for_node("scale") == 3.0
    with pytest.raises(dg.DagsterInvalidConfigError, match="factor"):
        bad = {
            **config,
            "ops": {**config["ops"], "scale": {"config": {"label": "x", "factor": "two"}}},
        }
        scaling.execute_in_process(run_config=bad)
