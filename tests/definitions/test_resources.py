"""Resources: ConfigurableResource by parameter or resource key, @resource functions and
generators, their setup and teardown around a run, and resources in unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from dagloom import (
    ConfigurableResource,
    DefinitionError,
    InitResourceContext,
    OpExecutionContext,
    UserCodeError,
    build_init_resource_context,
    build_op_context,
    job,
    op,
    resource,
)
from dagloom.messages import EventType

lifecycle: list[str] = []


class Database(ConfigurableResource):
    url: str = "sqlite://"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        lifecycle.append(f"setup {self.url}")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        lifecycle.append(f"teardown {self.url}")

    def query(self, sql: str) -> str:
        return f"{self.url}: {sql}"


class Plain(ConfigurableResource):
    prefix: str


@pytest.fixture(autouse=True)
def _clear() -> None:
    lifecycle.clear()


def test_configurable_resource_is_passed_by_parameter_name() -> None:
    @op
    def read(db: Database) -> str:
        return db.query("select 1")

    @job(resource_defs={"db": Database(url="pg://x")})
    def reading():
        read()

    assert reading.execute_in_process().output_for_node("read") == "pg://x: select 1"
    assert reading.nodes["read"].op.required_resource_keys == {"db"}


def test_resource_is_reached_through_required_resource_keys_and_context() -> None:
    @op(required_resource_keys={"db"})
    def read(context: OpExecutionContext) -> str:
        return context.resources.db.query("q")

    @job(resource_defs={"db": Database()})
    def reading():
        read()

    assert reading.execute_in_process().output_for_node("read") == "sqlite://: q"


def test_setup_and_teardown_are_called_once_per_run_around_all_steps() -> None:
    @op
    def first(db: Database) -> int:
        lifecycle.append("first")
        return 1

    @op(required_resource_keys={"db"})
    def second(context: OpExecutionContext, x: int) -> int:
        lifecycle.append("second")
        return x

    @job(resource_defs={"db": Database()})
    def using():
        second(first())

    using.execute_in_process()
    assert lifecycle == ["setup sqlite://", "first", "second", "teardown sqlite://"]
    using.execute_in_process()
    assert lifecycle.count("setup sqlite://") == 2
    assert lifecycle.count("teardown sqlite://") == 2


def test_teardown_runs_when_a_step_fails() -> None:
    @op
    def explode(db: Database) -> None:
        raise RuntimeError("boom")

    @job(resource_defs={"db": Database()})
    def failing():
        explode()

    with pytest.raises(RuntimeError, match="boom"):
        failing.execute_in_process()
    assert lifecycle == ["setup sqlite://", "teardown sqlite://"]


def test_resources_given_at_execution_time() -> None:
    @op
    def read(db: Database) -> str:
        return db.url

    @job
    def reading():
        read()

    result = reading.execute_in_process(resources={"db": Database(url="given")})
    assert result.output_for_node("read") == "given"


def test_plain_object_is_a_resource_used_as_it_is() -> None:
    client = {"token": "abc"}

    @op(required_resource_keys={"client"})
    def use(context: OpExecutionContext) -> str:
        return context.resources.client["token"]

    @job(resource_defs={"client": client})
    def using():
        use()

    assert using.execute_in_process().output_for_node("use") == "abc"


def test_resource_decorator_builds_the_value_from_init_context() -> None:
    @resource(config_schema={"prefix": str})
    def prefixer(init_context: InitResourceContext) -> Any:
        prefix = init_context.resource_config["prefix"]
        return lambda s: prefix + s

    @op(required_resource_keys={"prefixer"})
    def name(context: OpExecutionContext) -> str:
        return context.resources.prefixer("x")

    @job(resource_defs={"prefixer": prefixer})
    def naming():
        name()

    result = naming.execute_in_process({"resources": {"prefixer": {"config": {"prefix": "p_"}}}})
    assert result.output_for_node("name") == "p_x"


def test_generator_resource_tears_down_after_the_run() -> None:
    @resource
    def connection() -> Iterator[str]:
        lifecycle.append("open")
        try:
            yield "conn"
        finally:
            lifecycle.append("close")

    @op(required_resource_keys={"conn"})
    def use(context: OpExecutionContext) -> str:
        lifecycle.append("use")
        return context.resources.conn

    @job(resource_defs={"conn": connection})
    def using():
        use()

    assert using.execute_in_process().output_for_node("use") == "conn"
    assert lifecycle == ["open", "use", "close"]


def test_generator_resource_tears_down_when_a_step_fails() -> None:
    @resource
    def connection() -> Iterator[str]:
        lifecycle.append("open")
        yield "conn"
        lifecycle.append("close")

    @op(required_resource_keys={"conn"})
    def explode(context: OpExecutionContext) -> None:
        raise RuntimeError("boom")

    @job(resource_defs={"conn": connection})
    def failing():
        explode()

    result = failing.execute_in_process(raise_on_error=False)
    assert not result.success
    assert lifecycle == ["open", "close"]


def test_resource_that_fails_to_build_fails_the_run_without_running_steps() -> None:
    @resource
    def broken() -> None:
        raise ConnectionError("no server")

    @op(required_resource_keys={"broken"})
    def use(context: OpExecutionContext) -> None:
        lifecycle.append("use")

    @job(resource_defs={"broken": broken})
    def using():
        use()

    with pytest.raises(UserCodeError, match="setup of resource 'broken'") as raised:
        using.execute_in_process()
    assert isinstance(raised.value.__cause__, ConnectionError)
    result = using.execute_in_process(raise_on_error=False)
    assert not result.success
    assert lifecycle == []
    failure = result.get_run_failure_event()
    assert failure.run_failure.error.cls_name == "UserCodeError"
    assert failure.run_failure.error.cause.cls_name == "ConnectionError"
    assert result.filter_events(EventType.STEP_START) == []


def test_resources_in_build_op_context_for_a_unit_test() -> None:
    @op
    def read(context: OpExecutionContext, db: Database) -> str:
        return db.query(context.op_config["sql"])

    with build_op_context(
        resources={"db": Database(url="test")}, op_config={"sql": "s"}
    ) as context:
        # build_op_context sets resources up as a run does; leaving the block tears them down
        assert lifecycle == ["setup test"]
        assert read(context) == "test: s"
    assert lifecycle == ["setup test", "teardown test"]


def test_resource_passed_as_keyword_in_a_direct_call() -> None:
    @op
    def read(db: Database) -> str:
        return db.url

    assert read(db=Database(url="kw")) == "kw"
    assert lifecycle == ["setup kw", "teardown kw"]


def test_direct_call_without_a_needed_resource_is_a_definition_error() -> None:
    @op
    def read(db: Database) -> str:
        return db.url

    with pytest.raises(DefinitionError, match="db"):
        read()


def test_resource_function_called_with_build_init_resource_context() -> None:
    @resource
    def doubled(init_context: InitResourceContext) -> int:
        return init_context.resource_config["n"] * 2

    assert doubled.resource_fn(build_init_resource_context(config={"n": 4})) == 8


def test_resource_called_directly_with_an_init_context() -> None:
    @resource
    def doubled(init_context: InitResourceContext) -> int:
        return init_context.resource_config["n"] * 2

    assert doubled(build_init_resource_context(config={"n": 4})) == 8


def test_configurable_resource_fields_are_required_config() -> None:
    with pytest.raises(pydantic.ValidationError, match="prefix"):
        Plain()  # type: ignore[call-arg]


def test_resources_given_to_execute_in_process_override_the_jobs_own() -> None:
    @op(required_resource_keys={"greeting"})
    def greet(context: OpExecutionContext) -> str:
        return str(context.resources.greeting)

    @job(resource_defs={"greeting": "hello"})
    def greeter() -> None:
        greet()

    assert greeter.execute_in_process().output_for_node("greet") == "hello"
    result = greeter.execute_in_process(resources={"greeting": "bonjour"})
    assert result.output_for_node("greet") == "bonjour"


def test_resource_order_builds_required_keys_first_and_keeps_the_rest_in_order() -> None:
    from dagloom.definitions.resources import ResourceDefinition, resource_order

    def needs(*keys: str) -> ResourceDefinition:
        return ResourceDefinition(lambda _ctx: None, required_resource_keys=set(keys))

    defs = {"api": needs("url", "token"), "plain": 1, "url": needs(), "token": needs("url")}
    assert resource_order(defs) == ["url", "token", "api", "plain"]


def test_resource_order_names_a_cycle() -> None:
    from dagloom.definitions.resources import ResourceDefinition, resource_order
    from dagloom.errors import DagsterInvalidDefinitionError

    defs = {
        "a": ResourceDefinition(lambda _ctx: None, required_resource_keys={"b"}),
        "b": ResourceDefinition(lambda _ctx: None, required_resource_keys={"a"}),
    }
    with pytest.raises(DagsterInvalidDefinitionError, match="a -> b -> a"):
        resource_order(defs)


def test_env_references_turn_env_mappings_into_env_vars() -> None:
    from dagloom.definitions.resources import EnvVar, env_references

    class Settings(pydantic.BaseModel):
        host: str
        port: int

    refs = env_references(Settings, {"host": {"env": "H"}, "port": {"env": "P"}, "x": 1})
    assert isinstance(refs["host"], EnvVar) and refs["host"].env_var_name == "H"
    assert repr(refs["port"]) == "IntEnvVar('P')"
    assert refs["x"] == 1
    assert env_references(Settings, None) == {}


def test_with_stand_ins_replaces_env_vars_by_values_of_the_field_type() -> None:
    from dagloom.definitions.resources import EnvVar, with_stand_ins

    class Settings(pydantic.BaseModel):
        host: str
        port: int

    data = with_stand_ins(Settings, {"host": EnvVar("H"), "port": EnvVar.int("P")})
    assert Settings.model_validate(data) == Settings(host="", port=0)
