"""Samples from Dagster's testing guides and ops/jobs/graphs guides, run as the docs show
them with only the import changed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import dagloom as dg


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Assets materialized here are stored under a temporary DAGLOOM_HOME."""
    monkeypatch.setenv("DAGLOOM_HOME", str(tmp_path / "home"))


@dg.op(out={"a_num": dg.Out(dagster_type=int)})
def emit_events_op() -> Iterator[Any]:
    a_num = 2
    yield dg.ExpectationResult(
        success=a_num > 0, label="positive", description="A num must be positive"
    )
    yield dg.AssetMaterialization(
        asset_key="persisted_string",
        description="Let us pretend we persisted the string somewhere",
    )
    yield dg.Output(value=a_num, output_name="a_num")


@dg.graph
def emit_events() -> None:
    emit_events_op()


def test_event_stream_of_an_op_reads_its_expectation_and_materialization() -> None:
    job_result = emit_events.to_job().execute_in_process()
    assert job_result.success
    assert job_result.output_for_node("emit_events_op", output_name="a_num") == 2
    events_for_step = job_result.events_for_node("emit_events_op")
    assert [se.event_type for se in events_for_step] == [
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_EXPECTATION_RESULT,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.STEP_OUTPUT,
        dg.DagsterEventType.HANDLED_OUTPUT,
        dg.DagsterEventType.STEP_SUCCESS,
    ]
    _, expectation_event, materialization_event, *_ = events_for_step
    expectation_result = expectation_event.event_specific_data.expectation_result
    assert isinstance(expectation_result, dg.ExpectationResult)
    assert expectation_result.success
    assert expectation_result.label == "positive"
    materialization = materialization_event.event_specific_data.materialization
    assert isinstance(materialization, dg.AssetMaterialization)
    assert materialization.label == "persisted_string"


def test_asset_event_labels_and_the_default_expectation_label() -> None:
    assert dg.AssetMaterialization(["warehouse", "orders"]).label == "warehouse orders"
    assert dg.AssetObservation("orders").label == "orders"
    assert dg.ExpectationResult(success=True).label == "result"
    by_key = dg.AssetMaterialization.file("/tmp/out.csv", asset_key=["lake", "out"])
    assert by_key.asset_key == dg.AssetKey(["lake", "out"])
    assert by_key.metadata == {"path": dg.MetadataValue.path("/tmp/out.csv")}
    assert dg.AssetMaterialization.file("out.csv").asset_key == dg.AssetKey("out.csv")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["core", "fix", "index_metadata"], deps=["instruments", "weights"]),
        dg.AssetSpec(["core", "fix", "index_weights"], deps=["instruments", "weights"]),
    ]
)
def index_multi_asset(instruments: list[int], weights: list[int]) -> Iterator[Any]:
    yield dg.MaterializeResult(
        asset_key=["core", "fix", "index_metadata"], metadata={"num_rows": len(instruments)}
    )
    yield dg.MaterializeResult(
        asset_key=["core", "fix", "index_weights"], metadata={"num_rows": len(weights)}
    )


class MockDataIOManager(dg.IOManager):
    def __init__(self, instruments_df: list[int], weights_df: list[int]) -> None:
        self.instruments_df = instruments_df
        self.weights_df = weights_df

    def load_input(self, context: dg.InputContext) -> list[int]:
        asset_key_path = context.asset_key.path
        if asset_key_path == ["instruments"]:
            return self.instruments_df
        elif asset_key_path == ["weights"]:
            return self.weights_df
        raise ValueError(f"Unexpected asset key: {asset_key_path}")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        pass


def test_multi_asset_reads_source_assets_through_a_mocked_io_manager() -> None:
    """The guide's IO manager compares `context.asset_key.path` with a list."""
    defs = dg.Definitions(
        assets=[
            dg.SourceAsset(key="instruments"),
            dg.SourceAsset(key="weights"),
            index_multi_asset,
        ],
        resources={"io_manager": MockDataIOManager(instruments_df=[1, 2, 3], weights_df=[4])},
    )
    job = defs.get_implicit_global_asset_job_def()
    result = job.execute_in_process(
        asset_selection=[
            dg.AssetKey(["core", "fix", "index_metadata"]),
            dg.AssetKey(["core", "fix", "index_weights"]),
        ]
    )
    assert result.success
    rows = {
        m.asset_key.to_user_string(): m.metadata["num_rows"].value
        for m in result.asset_materializations_for_node("index_multi_asset")
    }
    assert rows == {"core/fix/index_metadata": 3, "core/fix/index_weights": 1}


def test_an_asset_key_path_equals_and_extends_with_lists() -> None:
    path = dg.AssetKey(["core", "fix"]).path
    assert path == ["core", "fix"] and path == ("core", "fix") and path != ["core"]
    # concatenation, as code written for Dagster builds paths (hence the RUF005 ignores)
    assert dg.AssetKey(path + ["x"]) == dg.AssetKey(["core", "fix", "x"])  # noqa: RUF005
    assert ["db"] + path == ["db", "core", "fix"]  # noqa: RUF005


@dg.op
def one() -> int:
    return 1


@dg.op
def add(a: int, b: int) -> int:
    return a + b


@dg.op
def add_ten(x: int) -> int:
    return x + 10


@dg.op
def fails(x: int) -> int:
    raise ValueError("no value")


@dg.op
def total(values: list[int]) -> int:
    return sum(values)


@dg.op(out=dg.DynamicOut())
def dynamic_values() -> Iterator[dg.DynamicOutput[int]]:
    for i in range(2):
        yield dg.DynamicOutput(i, mapping_key=f"num_{i}")


@dg.job
def other_arg() -> None:
    non_dynamic = one()
    dynamic_values().map(lambda val: add(val, non_dynamic))


@dg.job
def other_arg_ready_after_the_mapping() -> None:
    # `add_ten` ends after `dynamic_values` has fanned out: the mapped steps wait for it.
    non_dynamic = add_ten(one())
    total(dynamic_values().map(lambda val: add(val, non_dynamic)).collect())


@dg.job
def other_arg_that_fails() -> None:
    non_dynamic = fails(one())
    dynamic_values().map(lambda val: add(val, non_dynamic))


def test_a_mapped_op_also_reads_an_output_outside_the_mapping() -> None:
    result = other_arg.execute_in_process()
    assert result.success
    assert result.output_for_node("add") == {"num_0": 1, "num_1": 2}
    later = other_arg_ready_after_the_mapping.execute_in_process()
    assert later.output_for_node("total") == 11 + 12


def test_mapped_steps_are_skipped_when_the_output_outside_the_mapping_fails() -> None:
    result = other_arg_that_fails.execute_in_process(raise_on_error=False)
    assert not result.success
    skipped = {
        e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SKIPPED
    }
    assert skipped == {"add[num_0]", "add[num_1]"}


@dg.op(out={"int_out": dg.Out(), "str_out": dg.Out()})
def my_multiple_generic_output_op() -> tuple[dg.Output[int], dg.Output[str]]:
    return (dg.Output(5), dg.Output("foo", metadata={"size": 3}))


def test_a_returned_tuple_of_unnamed_outputs_fills_the_outputs_in_order() -> None:
    @dg.job
    def outputs() -> None:
        my_multiple_generic_output_op()

    result = outputs.execute_in_process()
    assert result.output_for_node("my_multiple_generic_output_op", "int_out") == 5
    assert result.output_for_node("my_multiple_generic_output_op", "str_out") == "foo"
    (str_out,) = [
        e
        for e in result.all_events
        if e.is_successful_output and e.step_output_data.output_name == "str_out"
    ]
    assert str_out.step_output_data.metadata == {"size": dg.IntMetadataValue(3)}


def my_op_factory(name: str = "default_name", ins: Any = None, **kwargs: Any) -> Any:
    @dg.op(name=name, ins=ins or {"start": dg.In(dg.Nothing)}, **kwargs)
    def my_inner_op(**kwargs: Any) -> Any:
        return kwargs

    return my_inner_op


def test_the_op_factory_pattern_takes_its_ins_through_kwargs() -> None:
    first = my_op_factory(name="first", description="the first", tags={"team": "a"})
    second = my_op_factory(name="second", ins={"x": dg.In(int), "y": dg.In(int)})

    @dg.job
    def factory_job() -> None:
        first()
        second(x=one(), y=add_ten(one()))

    result = factory_job.execute_in_process()
    assert result.output_for_node("first") == {}
    assert result.output_for_node("second") == {"x": 1, "y": 11}
    assert first.description == "the first" and first.tags == {"team": "a"}
    assert second(1, y=2) == {"x": 1, "y": 2}


class AddNConfig(dg.Config):
    n: float


@dg.op
def add_n(config: AddNConfig, number: float) -> float:
    return number + config.n


class MultiplyByMConfig(dg.Config):
    m: float


@dg.op
def multiply_by_m(config: MultiplyByMConfig, number: float) -> float:
    return number * config.m


class ToFahrenheitConfig(dg.Config):
    from_unit: str


@dg.config_mapping
def generate_config(config_in: ToFahrenheitConfig) -> dict[str, Any]:
    if config_in.from_unit == "celsius":
        n = 32.0
    elif config_in.from_unit == "kelvin":
        n = -459.67
    else:
        raise ValueError()
    return {"multiply_by_m": {"config": {"m": 1.8}}, "add_n": {"config": {"n": n}}}


@dg.graph(config=generate_config)
def to_fahrenheit(number: float) -> Any:
    return multiply_by_m(add_n(number))


@dg.op
def return_fifty() -> float:
    return 50.0


class DoSomethingConfig(dg.Config):
    config_param: str


@dg.op
def do_something(context: dg.OpExecutionContext, config: DoSomethingConfig) -> str:
    context.log.info("config_param: " + config.config_param)
    return config.config_param


class SimplifiedConfig(dg.Config):
    simplified_param: str


@dg.config_mapping
def simplified_config(val: SimplifiedConfig) -> dg.RunConfig:
    return dg.RunConfig(ops={"do_something": DoSomethingConfig(config_param=val.simplified_param)})


@dg.job(config=simplified_config)
def do_it_all_with_simplified_config() -> None:
    do_something()


def test_the_config_mapping_decorator_on_a_graph_and_on_a_job() -> None:
    @dg.job
    def to_f_job() -> None:
        to_fahrenheit(return_fifty())

    result = to_f_job.execute_in_process(
        run_config={"ops": {"to_fahrenheit": {"config": {"from_unit": "kelvin"}}}}
    )
    assert result.output_for_node("to_fahrenheit") == (50.0 - 459.67) * 1.8
    simplified = do_it_all_with_simplified_config.execute_in_process(
        run_config={"simplified_param": "stuff"}
    )
    assert simplified.output_for_node("do_something") == "stuff"

    @dg.config_mapping(config_schema={"param": str})
    def with_schema(val: dict[str, Any]) -> dict[str, Any]:
        return {"ops": {"do_something": {"config": {"config_param": val["param"]}}}}

    assert isinstance(with_schema, dg.ConfigMapping)
    schema_job = dg.GraphDefinition(name="g", node_defs=[do_something]).to_job(config=with_schema)
    assert (
        schema_job.execute_in_process(run_config={"param": "x"}).output_for_node("do_something")
        == "x"
    )


@dg.op
def return_one(context: dg.OpExecutionContext) -> int:
    return 1


@dg.op
def add_one(context: dg.OpExecutionContext, number: int) -> int:
    return number + 1


def test_graph_definition_built_from_node_defs_and_dependencies() -> None:
    one_plus_one_from_constructor = dg.GraphDefinition(
        name="one_plus_one",
        node_defs=[return_one, add_one],
        dependencies={"add_one": {"number": dg.DependencyDefinition("return_one")}},
    ).to_job()
    assert one_plus_one_from_constructor.execute_in_process().output_for_node("add_one") == 2


@dg.op
def op_with_input(x: int) -> int:
    return x * 10


@dg.graph
def wires_input(x: int) -> None:
    op_with_input(x)


def test_a_graphs_inputs_are_the_jobs_inputs() -> None:
    the_job = wires_input.to_job(input_values={"x": 5})
    graph_result = wires_input.execute_in_process(input_values={"x": 5})
    assert graph_result.output_for_node("op_with_input") == 50
    job_result = the_job.execute_in_process(input_values={"x": 6})  # overrides the job's
    assert job_result.output_for_node("op_with_input") == 60
    assert the_job.execute_in_process().output_for_node("op_with_input") == 50
    from_config = wires_input.to_job().execute_in_process(
        run_config={"inputs": {"x": {"value": 7}}}
    )
    assert from_config.output_for_node("op_with_input") == 70

    @dg.job
    def my_job(x: int) -> None:
        op_with_input(x)

    assert (
        my_job.execute_in_process(run_config={"inputs": {"x": 2}}).output_for_node("op_with_input")
        == 20
    )


def test_a_missing_or_unknown_job_input_is_named() -> None:
    with pytest.raises(dg.DagsterInvalidConfigError, match=r"inputs\.x: missing"):
        wires_input.to_job().execute_in_process()
    with pytest.raises(dg.DagsterInvalidConfigError, match=r"inputs\.y: unknown input"):
        wires_input.to_job().execute_in_process(run_config={"inputs": {"x": 1, "y": 2}})
    with pytest.raises(dg.DefinitionError, match="'y'"):
        wires_input.to_job(input_values={"y": 1})
    with pytest.raises(dg.DagsterInvalidInvocationError, match="'y'"):
        wires_input.to_job().execute_in_process(input_values={"y": 1})


def test_job_metadata_values_are_metadata_values() -> None:
    @dg.graph
    def my_graph() -> None:
        return_fifty()

    job = my_graph.to_job(
        metadata={"owner": "api team", "docs": dg.MetadataValue.url("https://docs.dagster.io")}
    )
    assert job.metadata == {
        "owner": dg.MetadataValue.text("api team"),
        "docs": dg.MetadataValue.url("https://docs.dagster.io"),
    }


@dg.resource
def my_resource(_: dg.InitResourceContext) -> str:
    return "foo"


opened: list[str] = []


@dg.resource
def my_cm_resource(_: dg.InitResourceContext) -> Iterator[str]:
    opened.append("open")
    try:
        yield "foo"
    finally:
        opened.append("close")


@dg.resource(config_schema={"suffix": str})
def configured_resource(init_context: dg.InitResourceContext) -> str:
    return "foo" + init_context.resource_config["suffix"]


@dg.op(required_resource_keys={"foo"})
def op_requires_resources(context: dg.OpExecutionContext) -> str:
    return context.resources.foo


def test_build_op_context_sets_up_resource_definitions() -> None:
    context = dg.build_op_context(resources={"foo": my_resource})
    assert op_requires_resources(context) == "foo"
    configured = configured_resource.configured({"suffix": "bar"})
    assert op_requires_resources(dg.build_op_context(resources={"foo": configured})) == "foobar"
    mocked = dg.build_op_context(resources={"foo": "a plain value"})
    assert op_requires_resources(mocked) == "a plain value"


def test_build_op_context_as_a_context_manager_tears_resources_down() -> None:
    opened.clear()
    with dg.build_op_context(resources={"foo": my_cm_resource}) as context:
        assert op_requires_resources(context) == "foo"
        assert opened == ["open"]
    assert opened == ["open", "close"]
    with dg.build_asset_context(resources={"foo": my_cm_resource}) as asset_context:
        assert asset_context.resources.foo == "foo"
    assert opened == ["open", "close", "open", "close"]


@dg.asset
def upstream_numbers() -> list[int]:
    return [1, 2, 3]


@dg.asset
def summed(upstream_numbers: list[int]) -> int:
    return sum(upstream_numbers)


def test_an_ephemeral_instance_answers_dagsters_synchronous_reads() -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([upstream_numbers, summed], instance=instance)
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.is_success and run.run_id == result.run_id
    assert instance.get_run_by_id("no-such-run") is None
    latest = instance.get_latest_materialization_event(dg.AssetKey("summed"))
    assert latest is not None and latest.run_id == result.run_id
    assert latest.asset_materialization.asset_key == dg.AssetKey("summed")
    assert instance.get_latest_materialization_event("nothing_here") is None
    types = [entry.dagster_event.event_type for entry in instance.all_logs(result.run_id)]
    assert types.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 2
    assert types[-1] == dg.DagsterEventType.RUN_SUCCESS


@dg.op
def add_one_to(input_num: int) -> int:
    return input_num + 1


@dg.asset
def upstream_asset() -> int:
    return 1


@dg.graph
def middle_asset(upstream_asset: int) -> Any:
    return add_one_to(upstream_asset)


@dg.asset
def downstream_asset(middle_asset: int) -> int:
    return middle_asset + 1


@dg.op(out={"one": dg.Out(), "two": dg.Out()})
def two_outputs(upstream: int) -> Iterator[dg.Output[int]]:
    yield dg.Output(output_name="one", value=upstream)
    yield dg.Output(output_name="two", value=upstream * 2)


@dg.graph(out={"one": dg.GraphOut(), "two": dg.GraphOut()})
def return_one_and_two(zero: int) -> Any:
    one, two = two_outputs(zero)
    return {"one": one, "two": two}


def test_assets_definition_from_graph() -> None:
    middle = dg.AssetsDefinition.from_graph(middle_asset)
    assert middle.key == dg.AssetKey("middle_asset")
    result = dg.materialize([upstream_asset, middle, downstream_asset])
    assert result.asset_value("downstream_asset") == 3
    explicit = dg.AssetsDefinition.from_graph(
        return_one_and_two,
        keys_by_input_name={"zero": dg.AssetKey("upstream_asset")},
        keys_by_output_name={"one": dg.AssetKey("asset_one"), "two": dg.AssetKey("asset_two")},
        group_name="numbers",
    )
    assert explicit.keys == {dg.AssetKey("asset_one"), dg.AssetKey("asset_two")}
    assert explicit.group_names_by_key[dg.AssetKey("asset_two")] == "numbers"
    result = dg.materialize([upstream_asset, explicit])
    assert result.asset_value("asset_two") == 2
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'three'"):
        dg.AssetsDefinition.from_graph(return_one_and_two, keys_by_output_name={"three": "x"})


def test_assets_definition_from_op() -> None:
    assets = dg.AssetsDefinition.from_op(
        two_outputs,
        keys_by_input_name={"upstream": dg.AssetKey("upstream_asset")},
        key_prefix="lake",
    )
    assert assets.keys == {dg.AssetKey(["lake", "one"]), dg.AssetKey(["lake", "two"])}
    result = dg.materialize([upstream_asset, assets])
    assert result.asset_value(dg.AssetKey(["lake", "two"])) == 2


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


captured = _Records()


@dg.logger(
    {
        "log_level": dg.Field(str, is_required=False, default_value="INFO"),
        "name": dg.Field(str, is_required=False, default_value="dagster"),
    },
    description="A JSON-formatted console logger",
)
def json_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    level = init_context.logger_config["log_level"]
    name = init_context.logger_config["name"]
    klass = logging.getLoggerClass()
    logger_ = klass(name, level=level)
    handler = logging.StreamHandler()

    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return json.dumps({"msg": record.getMessage(), "level": record.levelname})

    handler.setFormatter(JsonFormatter())
    logger_.addHandler(handler)
    logger_.addHandler(captured)
    return logger_


@dg.op
def hello_logs(context: dg.OpExecutionContext) -> None:
    context.log.info("Hello, world!")
    context.log.debug("quiet")


@dg.job(logger_defs={"my_json_logger": json_console_logger})
def demo_job() -> None:
    hello_logs()


def test_a_custom_logger_receives_the_runs_events() -> None:
    captured.records.clear()
    result = demo_job.execute_in_process(
        run_config={"loggers": {"my_json_logger": {"config": {"log_level": "INFO"}}}}
    )
    assert result.success
    hello = [r for r in captured.records if r.getMessage() == "Hello, world!"]
    assert len(hello) == 1 and hello[0].levelno == logging.INFO
    assert hello[0].run_id == result.run_id and hello[0].step_key == "hello_logs"
    assert "quiet" not in [r.getMessage() for r in captured.records]
    # The run's own events are logged at DEBUG, as Dagster logs them.
    captured.records.clear()
    demo_job.execute_in_process(
        run_config={"loggers": {"my_json_logger": {"config": {"log_level": "DEBUG"}}}}
    )
    assert "quiet" in [r.getMessage() for r in captured.records]
    kinds = {r.dagster_event_type for r in captured.records}
    assert {"RUN_START", "STEP_SUCCESS", "RUN_SUCCESS"} <= kinds
    with pytest.raises(dg.DagsterInvalidConfigError, match=r"loggers\.other: unknown logger"):
        demo_job.execute_in_process(run_config={"loggers": {"other": {}}})


def test_a_logger_function_is_called_directly_in_a_unit_test() -> None:
    logger_ = json_console_logger(None)
    assert logger_.level == 20
    assert logger_.name == "dagster"
    logger_ = json_console_logger(dg.build_init_logger_context(logger_config={"name": "my_logger"}))
    assert logger_.level == 20
    assert logger_.name == "my_logger"


def test_definitions_loggers_are_the_loggers_of_its_jobs() -> None:
    @dg.asset
    def some_asset() -> int:
        get_dagster_logger_message()
        return 1

    defs = dg.Definitions(
        jobs=[dg.define_asset_job("the_job", selection="*")],
        assets=[some_asset],
        loggers={"json_logger": json_console_logger},
    )
    captured.records.clear()
    assert defs.get_job_def("the_job").execute_in_process().success
    assert "from get_dagster_logger" in [r.getMessage() for r in captured.records]
    local_logs = dg.GraphDefinition(name="g", node_defs=[hello_logs]).to_job(
        name="local_logs", logger_defs={"console": dg.colored_console_logger}
    )
    assert local_logs.execute_in_process().success


def get_dagster_logger_message() -> None:
    dg.get_dagster_logger().info("from get_dagster_logger")


class FiveIOManager(dg.IOManager):
    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        raise AssertionError("loading only")

    def load_input(self, context: dg.InputContext) -> int:
        return 5


def test_asset_values_load_through_the_io_manager_bound_to_the_assets() -> None:
    @dg.asset
    def asset1() -> None: ...

    @dg.asset
    def asset2() -> None: ...

    assets = dg.with_resources(
        [asset1, asset2],
        resource_defs={"io_manager": dg.IOManagerDefinition.hardcoded_io_manager(FiveIOManager())},
    )
    defs = dg.Definitions(assets=assets)
    assert defs.load_asset_value(dg.AssetKey("asset1")) == 5
    with defs.get_asset_value_loader() as loader:
        assert loader.load_asset_value(dg.AssetKey("asset1")) == 5
        assert loader.load_asset_value(dg.AssetKey("asset2")) == 5


def test_observations_reported_by_a_node_are_read_from_the_result() -> None:
    @dg.op
    def observes(context: dg.OpExecutionContext) -> None:
        context.log_event(dg.AssetObservation(asset_key="my_dataset", metadata={"rows": 7}))

    @dg.job
    def observing() -> None:
        observes()

    (observation,) = observing.execute_in_process().asset_observations_for_node("observes")
    assert observation.asset_key == dg.AssetKey("my_dataset")
    assert observation.metadata == {"rows": dg.IntMetadataValue(7)}


@dg.asset
def total_population_meta(state_population_file: list[dict[str, str]]) -> dg.MaterializeResult:
    total = sum(int(x["Population"]) for x in state_population_file)
    return dg.MaterializeResult(metadata={"total_population": total})


@dg.asset
def total_population_meta_yield(
    state_population_file: list[dict[str, str]],
) -> Iterator[dg.MaterializeResult]:
    total = sum(int(x["Population"]) for x in state_population_file)
    yield dg.MaterializeResult(metadata={"total_population": total})


def test_an_asset_returning_or_yielding_a_materialize_result_called_directly() -> None:
    rows = [{"Population": "10"}, {"Population": "5"}]
    expected = dg.MaterializeResult(asset_key=None, metadata={"total_population": 15})
    assert total_population_meta(rows) == expected
    assert total_population_meta_yield(rows).__next__() == expected


@dg.daily_partitioned_config(start_date=datetime(2020, 1, 1), minute_offset=15)
def my_offset_partitioned_config(start: datetime, _end: datetime) -> dict[str, Any]:
    return {
        "ops": {
            "process_data": {
                "config": {
                    "start": start.strftime("%Y-%m-%d-%H:%M"),
                    "end": _end.strftime("%Y-%m-%d-%H:%M"),
                }
            }
        }
    }


@dg.op(config_schema={"start": str, "end": str})
def process_data(context: dg.OpExecutionContext) -> str:
    return str(context.op_config["start"])


@dg.job(config=my_offset_partitioned_config)
def partitioned_op_job() -> None:
    process_data()


def test_the_partition_keys_and_run_config_of_a_partitioned_config() -> None:
    keys = my_offset_partitioned_config.get_partition_keys()
    assert keys[0] == "2020-01-01"
    assert keys[1] == "2020-01-02"
    run_config = my_offset_partitioned_config.get_run_config_for_partition_key(keys[0])
    assert dg.validate_run_config(partitioned_op_job, run_config)
    assert run_config == {
        "ops": {
            "process_data": {"config": {"start": "2020-01-01-00:15", "end": "2020-01-02-00:15"}}
        }
    }


def test_define_asset_job_takes_hooks_and_metadata() -> None:
    seen: list[str] = []

    @dg.success_hook
    def note_success(context: dg.HookContext) -> None:
        seen.append(context.op.name)

    defs = dg.Definitions(
        assets=[upstream_numbers, summed],
        jobs=[dg.define_asset_job("hooked", hooks={note_success}, metadata={"owner": "data team"})],
    )
    job = defs.get_job_def("hooked")
    assert job.metadata == {"owner": dg.MetadataValue.text("data team")}
    assert job.execute_in_process().success
    assert sorted(seen) == ["summed", "upstream_numbers"]


def test_a_test_instance_answers_run_and_materialization_queries_synchronously() -> None:
    with dg.instance_for_test() as instance:
        dg.materialize([upstream_numbers], instance=instance)
        result = dg.materialize([upstream_numbers], instance=instance)
        assert len(instance.get_runs()) == 2
        assert instance.get_runs_count() == 2
        assert instance.has_run(result.run_id) and not instance.has_run("no-such-run")
        page = instance.fetch_materializations(dg.AssetKey("upstream_numbers"), limit=1)
        assert [r.run_id for r in page.records] == [result.run_id] and page.has_more
        rest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("upstream_numbers")),
            limit=5,
            cursor=page.cursor,
        )
        assert len(rest.records) == 1 and not rest.has_more
        with pytest.raises(dg.DagsterInvalidInvocationError, match="ascending"):
            instance.fetch_materializations(dg.AssetKey("upstream_numbers"), 1, ascending=True)


@dg.op
def my_asset_op(context: dg.OpExecutionContext) -> list[int]:
    context.log_event(dg.AssetMaterialization(asset_key="my_asset", description="stored"))
    context.log_event(dg.ExpectationResult(success=True, description="has rows"))
    context.add_output_metadata({"rows": 3})
    return [1, 2, 3]


def test_a_built_context_keeps_the_events_and_output_metadata_an_op_logs() -> None:
    context = dg.build_op_context()
    assert my_asset_op(context) == [1, 2, 3]
    materialization, expectation = context.get_events()
    assert materialization.asset_key == dg.AssetKey("my_asset")
    assert expectation.success and expectation.label == "result"
    assert context.get_output_metadata("result") == {"rows": 3}
    assert dg.build_op_context().get_events() == []


failing = {"flaky": True}


@dg.op
def first_step() -> int:
    return 1


@dg.op
def flaky_step(x: int) -> int:
    if failing["flaky"]:
        raise ValueError("flaky failed")
    return x + 1


@dg.op
def last_step(y: int) -> int:
    return y * 10


def test_execute_job_and_reexecute_a_failed_run_from_failure(tmp_path: Path) -> None:
    @dg.job(resource_defs={"io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path))})
    def flaky_job() -> None:
        last_step(flaky_step(first_step()))

    with dg.instance_for_test() as instance:
        failing["flaky"] = True
        with dg.execute_job(dg.reconstructable(flaky_job), instance=instance) as result:
            assert not result.success  # a failed step does not raise
        failing["flaky"] = False
        options = dg.ReexecutionOptions.from_failure(result.run_id, instance)
        assert sorted(options.step_selection) == ["flaky_step", "last_step"]
        again = dg.execute_job(
            dg.reconstructable(flaky_job), instance=instance, reexecution_options=options
        )
        assert again.success and again.output_for_node("last_step") == 20
        started = [
            e.step_key for e in again.all_events if e.event_type == dg.DagsterEventType.STEP_START
        ]
        assert started == ["flaky_step", "last_step"]  # first_step's output is reused
        assert again.dagster_run.tags["dagster/parent_run_id"] == result.run_id
        with pytest.raises(dg.DagsterInvalidInvocationError, match="only a failed run"):
            dg.ReexecutionOptions.from_failure(again.run_id, instance)


def test_reconstructable_refuses_what_is_not_a_job() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="takes a job"):
        dg.reconstructable(lambda: "not a job")


def test_a_graph_given_to_definitions_as_a_job_is_made_one() -> None:
    @dg.graph
    def do_stuff() -> None:
        first_step()

    defs = dg.Definitions(jobs=[do_stuff])
    assert defs.get_job_def("do_stuff").execute_in_process().success


def test_a_tagged_or_hooked_op_called_outside_a_job_runs_directly() -> None:
    @dg.op
    def basic_op_to_hook() -> int:
        return 5

    @dg.op
    def basic_op_with_tag(context: dg.OpExecutionContext) -> str | None:
        assert context.has_tag("foo")
        return context.get_tag("foo")

    assert basic_op_to_hook.with_hooks(set())() == 5
    assert basic_op_with_tag.tag({"foo": "bar"})(None) == "bar"
    assert basic_op_with_tag.alias("other").tag({"foo": "baz"})(dg.build_op_context()) == "baz"
