"""Config: pydantic config for ops and assets from run-config dicts and RunConfig, and the
ConfigError a bad run config raises before the run starts."""

from __future__ import annotations

from typing import Any

import pytest

from dagloom import (
    Config,
    ConfigError,
    ConfigurableResource,
    OpExecutionContext,
    PermissiveConfig,
    RunConfig,
    asset,
    job,
    materialize_to_memory,
    op,
)
from dagloom.execution.run import execute_job_in_process
from dagloom.execution.sink import ListEventSink


class FetchConfig(Config):
    limit: int
    source: str = "api"


class Nested(Config):
    inner: FetchConfig


class Loose(PermissiveConfig):
    known: int = 0


class Greeter(ConfigurableResource):
    greeting: str = "hello"


calls: list[str] = []


@op
def fetch(config: FetchConfig) -> list[int]:
    calls.append("fetch")
    return list(range(config.limit))


@op
def count(context: OpExecutionContext, rows: list[int]) -> int:
    calls.append("count")
    return len(rows)


@job
def fetching():
    count(fetch())


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    calls.clear()


def _config_error(run_config: Any) -> ConfigError:
    """Run `fetching` with a bad config; check nothing ran and no event was recorded."""
    sink = ListEventSink()
    with pytest.raises(ConfigError) as caught:
        fetching.execute_in_process(run_config)
    import anyio

    async def launch() -> None:
        await execute_job_in_process(fetching, run_config=run_config, sink=sink)

    with pytest.raises(ConfigError):
        anyio.run(launch)
    assert sink.rows == []
    assert calls == []
    return caught.value


def test_op_config_from_a_run_config_dict() -> None:
    result = fetching.execute_in_process({"ops": {"fetch": {"config": {"limit": 3}}}})
    assert result.output_for_node("fetch") == [0, 1, 2]
    assert result.output_for_node("count") == 3


def test_op_config_from_run_config_object() -> None:
    result = fetching.execute_in_process(RunConfig(ops={"fetch": FetchConfig(limit=2)}))
    assert result.output_for_node("count") == 2


def test_context_op_config_is_the_validated_config_object() -> None:
    @op
    def echo(context: OpExecutionContext, config: FetchConfig) -> Any:
        return context.op_config

    @job
    def echoing():
        echo()

    result = echoing.execute_in_process({"ops": {"echo": {"config": {"limit": 1}}}})
    assert result.output_for_node("echo") == FetchConfig(limit=1, source="api")


def test_nested_config_models_validate() -> None:
    @op
    def deep(config: Nested) -> int:
        return config.inner.limit

    @job
    def deep_job():
        deep()

    result = deep_job.execute_in_process({"ops": {"deep": {"config": {"inner": {"limit": 4}}}}})
    assert result.output_for_node("deep") == 4
    with pytest.raises(ConfigError) as caught:
        deep_job.execute_in_process({"ops": {"deep": {"config": {"inner": {"limit": "x"}}}}})
    assert caught.value.key_paths == ["ops.deep.config.inner.limit"]


def test_permissive_config_keeps_unknown_keys() -> None:
    @op
    def loose(config: Loose) -> dict[str, Any]:
        return config.model_dump()

    @job
    def loose_job():
        loose()

    result = loose_job.execute_in_process({"ops": {"loose": {"config": {"extra": "yes"}}}})
    assert result.output_for_node("loose") == {"known": 0, "extra": "yes"}


def test_config_with_all_defaults_needs_no_run_config() -> None:
    @op
    def loose(config: Loose) -> int:
        return config.known

    @job
    def loose_job():
        loose()

    assert loose_job.execute_in_process().output_for_node("loose") == 0


def test_missing_config_key_names_its_path_before_any_event() -> None:
    error = _config_error({"ops": {"fetch": {"config": {}}}})
    assert error.key_paths == ["ops.fetch.config.limit"]
    assert "missing" in str(error)


def test_missing_config_for_a_config_op_names_its_path() -> None:
    error = _config_error(None)
    assert error.key_paths == ["ops.fetch.config.limit"]


def test_wrong_config_type_names_its_path_before_any_event() -> None:
    error = _config_error({"ops": {"fetch": {"config": {"limit": "many"}}}})
    assert error.key_paths == ["ops.fetch.config.limit"]
    assert "many" in str(error)


def test_unknown_config_key_names_its_path_before_any_event() -> None:
    error = _config_error({"ops": {"fetch": {"config": {"limit": 1, "limt": 2}}}})
    assert error.key_paths == ["ops.fetch.config.limt"]


def test_unknown_op_names_its_path_before_any_event() -> None:
    error = _config_error({"ops": {"fetch": {"config": {"limit": 1}}, "fecth": {"config": {}}}})
    assert error.key_paths == ["ops.fecth"]
    assert "fetch" in str(error)  # the known ops are listed


def test_config_for_an_op_without_config_is_an_error() -> None:
    error = _config_error(
        {"ops": {"fetch": {"config": {"limit": 1}}, "count": {"config": {"a": 1}}}}
    )
    assert error.key_paths == ["ops.count.config"]


def test_unknown_top_level_key_is_an_error() -> None:
    error = _config_error({"ops": {"fetch": {"config": {"limit": 1}}}, "opps": {}})
    assert error.key_paths == ["opps"]


def test_several_problems_are_reported_together() -> None:
    @op
    def a(config: FetchConfig) -> None: ...

    @op
    def b(config: FetchConfig) -> None: ...

    @job
    def two():
        a()
        b()

    with pytest.raises(ConfigError) as caught:
        two.execute_in_process({"ops": {"a": {"config": {"limit": "x"}}, "b": {"config": {}}}})
    assert caught.value.key_paths == ["ops.a.config.limit", "ops.b.config.limit"]


def test_asset_config_from_run_config_object() -> None:
    @asset
    def limited(config: FetchConfig) -> list[int]:
        return list(range(config.limit))

    result = materialize_to_memory(
        [limited], run_config=RunConfig(ops={"limited": FetchConfig(limit=2)})
    )
    assert result.asset_value("limited") == [0, 1]
    with pytest.raises(ConfigError) as caught:
        materialize_to_memory([limited], run_config={"ops": {"limited": {"config": {}}}})
    assert caught.value.key_paths == ["ops.limited.config.limit"]


def test_resource_config_from_run_config_overrides_fields() -> None:
    @op
    def greet(greeter: Greeter) -> str:
        return greeter.greeting

    @job(resource_defs={"greeter": Greeter()})
    def greeting():
        greet()

    assert greeting.execute_in_process().output_for_node("greet") == "hello"
    result = greeting.execute_in_process({"resources": {"greeter": {"config": {"greeting": "hi"}}}})
    assert result.output_for_node("greet") == "hi"
    result = greeting.execute_in_process(RunConfig(resources={"greeter": Greeter(greeting="yo")}))
    assert result.output_for_node("greet") == "yo"


def test_bad_resource_config_names_its_path() -> None:
    @op
    def greet(greeter: Greeter) -> str:
        return greeter.greeting

    @job(resource_defs={"greeter": Greeter()})
    def greeting():
        greet()

    with pytest.raises(ConfigError) as caught:
        greeting.execute_in_process({"resources": {"greeter": {"config": {"greting": "hi"}}}})
    assert caught.value.key_paths == ["resources.greeter.config.greting"]
    with pytest.raises(ConfigError) as caught:
        greeting.execute_in_process({"resources": {"nope": {"config": {}}}})
    assert caught.value.key_paths == ["resources.nope"]


def test_bad_executor_config_names_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        fetching.execute_in_process(
            {
                "ops": {"fetch": {"config": {"limit": 1}}},
                "execution": {"config": {"max_concurrent": 0}},
            }
        )
    assert caught.value.key_paths == ["execution.config.max_concurrent"]
    assert calls == []


def test_misspelled_node_key_names_its_path() -> None:
    error = _config_error({"ops": {"fetch": {"conifg": {"limit": 1}}}})
    assert error.key_paths == ["ops.fetch.conifg"]


def test_unknown_input_names_its_path() -> None:
    error = _config_error({"ops": {"fetch": {"config": {"limit": 1}, "inputs": {"nope": 1}}}})
    assert error.key_paths == ["ops.fetch.inputs.nope"]


def test_run_config_object_with_a_dict_for_a_graph_op() -> None:
    from dagloom import graph

    @graph
    def wrapper():
        count(fetch())

    @job
    def wrapped():
        wrapper()

    result = wrapped.execute_in_process(
        RunConfig(ops={"wrapper": {"ops": {"fetch": {"config": {"limit": 2}}}}})
    )
    assert result.output_for_node("wrapper.count") == 2


def test_run_config_object_with_a_config_object_for_a_graph_op() -> None:
    from dagloom import graph

    @graph
    def wrapper():
        count(fetch())

    @job
    def wrapped():
        wrapper()

    result = wrapped.execute_in_process(
        RunConfig(ops={"wrapper": {"ops": {"fetch": FetchConfig(limit=2)}}})
    )
    assert result.output_for_node("wrapper.count") == 2


def test_a_config_class_the_op_cannot_see_is_a_clear_definition_error() -> None:
    from dagloom import Config, DefinitionError, op

    class LocalConfig(Config):
        limit: int

    def body(config: LocalConfig) -> int:
        return config.limit

    body.__annotations__["config"] = "LocalConfig"  # as `from __future__ import annotations`
    with pytest.raises(DefinitionError, match="define the Config class at module level"):
        op(body)
