"""Resources, written as Dagster's resource docs show: Pythonic ConfigurableResources with
EnvVar, nested resources and launch-time config, factories, ResourceParam, function
resources with dependencies and teardown, build_resources, with_resources, and the errors
bad resource wiring gets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

import dagloom as dg


class Credentials(dg.ConfigurableResource):
    username: str
    password: str


class Warehouse(dg.ConfigurableResource):
    credentials: Credentials
    schema_name: str = "public"

    def describe(self) -> str:
        return f"{self.credentials.username}@{self.schema_name}"


class Port(dg.ConfigurableResource):
    port: int


class Client:
    def __init__(self, url: str) -> None:
        self.url = url


class ClientFactory(dg.ConfigurableResourceFactory[Client]):
    url: str

    def create_resource(self, context: dg.InitResourceContext) -> Client:
        return Client(self.url)


class Tracked(dg.ConfigurableResource):
    name: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        LOG.append(f"setup {self.name}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        LOG.append(f"teardown {self.name}")


class WriterResource(dg.ConfigurableResource):
    prefix: str

    def create_resource(self, context: dg.InitResourceContext) -> Client:
        return Client(self.prefix)


class Holder(dg.ConfigurableResource):
    inner: dg.ResourceDependency[str]


LOG: list[str] = []


@pytest.fixture(autouse=True)
def _clear_log() -> Iterator[None]:
    LOG.clear()
    yield
    LOG.clear()


def test_env_var_is_read_when_the_run_builds_the_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @dg.asset
    def login(credentials: Credentials) -> str:
        return credentials.password

    creds = Credentials(username="ada", password=dg.EnvVar("DB_PASSWORD"))
    assert "s3cret" not in repr(creds)  # declared before the variable is even set
    monkeypatch.setenv("DB_PASSWORD", "s3cret")
    result = dg.materialize_to_memory([login], resources={"credentials": creds})
    assert result.output_for_node("login") == "s3cret"
    assert repr(creds.password) == "EnvVar('DB_PASSWORD')"
    assert all("s3cret" not in str(event.message) for event in result.all_events)


def test_env_var_int_is_converted_for_an_int_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PORT", "8080")

    @dg.op
    def read_port(port: Port) -> int:
        return port.port

    @dg.job(resource_defs={"port": Port(port=dg.EnvVar.int("APP_PORT"))})
    def serve() -> None:
        read_port()

    assert serve.execute_in_process().output_for_node("read_port") == 8080


def test_an_unset_env_var_is_a_config_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISSING_PASSWORD", raising=False)

    @dg.asset
    def login(credentials: Credentials) -> str:
        return credentials.password

    creds = Credentials(username="ada", password=dg.EnvVar("MISSING_PASSWORD"))
    with pytest.raises(dg.DagloomError) as info:
        dg.materialize_to_memory([login], resources={"credentials": creds})
    assert "MISSING_PASSWORD" in str(info.value)
    assert "credentials" in str(info.value)


def test_nested_resources_are_set_up_and_reachable() -> None:
    @dg.asset
    def who(warehouse: Warehouse) -> str:
        return warehouse.describe()

    warehouse = Warehouse(credentials=Credentials(username="ada", password="pw"))
    result = dg.materialize_to_memory([who], resources={"warehouse": warehouse})
    assert result.output_for_node("who") == "ada@public"


def test_configure_at_launch_takes_config_from_run_config() -> None:
    @dg.asset
    def who(credentials: Credentials) -> str:
        return credentials.username

    result = dg.materialize_to_memory(
        [who],
        resources={"credentials": Credentials.configure_at_launch()},
        run_config={"resources": {"credentials": {"config": {"username": "bob", "password": "x"}}}},
    )
    assert result.output_for_node("who") == "bob"


def test_configure_at_launch_without_run_config_names_the_missing_key() -> None:
    @dg.asset
    def who(credentials: Credentials) -> str:
        return credentials.username

    with pytest.raises(dg.DagsterInvalidConfigError) as info:
        dg.materialize_to_memory(
            [who], resources={"credentials": Credentials.configure_at_launch()}
        )
    assert "resources.credentials.config.username" in info.value.key_paths


def test_run_config_resources_accepts_a_resource_object() -> None:
    @dg.op
    def who(credentials: Credentials) -> str:
        return credentials.username

    @dg.job(resource_defs={"credentials": Credentials.configure_at_launch()})
    def report() -> None:
        who()

    result = report.execute_in_process(
        run_config=dg.RunConfig(
            resources={"credentials": Credentials(username="eve", password="p")}
        )
    )
    assert result.output_for_node("who") == "eve"


def test_configurable_resource_factory_gives_ops_what_create_resource_returns() -> None:
    @dg.op
    def fetch(client: dg.ResourceParam[Client]) -> str:
        return client.url

    @dg.job(resource_defs={"client": ClientFactory(url="https://example.test")})
    def pipeline() -> None:
        fetch()

    assert pipeline.execute_in_process().output_for_node("fetch") == "https://example.test"


def test_configurable_resource_create_resource_vends_another_object() -> None:
    @dg.asset
    def use_writer(writer: dg.ResourceParam[Client]) -> str:
        return writer.url

    result = dg.materialize_to_memory(
        [use_writer], resources={"writer": WriterResource(prefix="w")}
    )
    assert result.output_for_node("use_writer") == "w"


def test_run_config_env_reference_is_read_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_USER", "from-env")
    monkeypatch.setenv("APP_PORT", "9000")

    @dg.asset
    def who(credentials: Credentials, port: Port) -> str:
        return f"{credentials.username}:{port.port}"

    result = dg.materialize_to_memory(
        [who],
        resources={
            "credentials": Credentials.configure_at_launch(password="p"),
            "port": Port.configure_at_launch(),
        },
        run_config={
            "resources": {
                "credentials": {"config": {"username": {"env": "DB_USER"}}},
                "port": {"config": {"port": {"env": "APP_PORT"}}},
            }
        },
    )
    assert result.output_for_node("who") == "from-env:9000"


def test_resource_param_passes_a_plain_object() -> None:
    @dg.asset
    def size(things: dg.ResourceParam[dict[str, int]]) -> int:
        return len(things)

    result = dg.materialize_to_memory([size], resources={"things": {"a": 1, "b": 2}})
    assert result.output_for_node("size") == 2


def test_resource_dependency_field_holds_a_function_resource() -> None:
    @dg.resource
    def token(_: dg.InitResourceContext) -> str:
        return "tok"

    @dg.op
    def read(holder: Holder) -> str:
        return holder.inner

    @dg.job(resource_defs={"holder": Holder(inner=token)})
    def pipeline() -> None:
        read()

    assert pipeline.execute_in_process().output_for_node("read") == "tok"


def test_setup_and_teardown_bracket_the_run_even_when_it_fails() -> None:
    @dg.op
    def boom(tracked: Tracked) -> None:
        LOG.append("op")
        raise ValueError("no")

    @dg.job(resource_defs={"tracked": Tracked(name="t")})
    def pipeline() -> None:
        boom()

    result = pipeline.execute_in_process(raise_on_error=False)
    assert not result.success
    assert LOG == ["setup t", "op", "teardown t"]


def test_generator_and_context_manager_resources_are_torn_down_after_a_failed_run() -> None:
    @dg.resource
    def connection(_: dg.InitResourceContext) -> Iterator[str]:
        LOG.append("open connection")
        try:
            yield "conn"
        finally:
            LOG.append("close connection")

    @contextlib.contextmanager
    def session() -> Iterator[str]:
        LOG.append("open session")
        yield "session"
        LOG.append("close session")

    @dg.resource
    def session_resource(_: dg.InitResourceContext) -> Any:
        return session()

    @dg.op(required_resource_keys={"connection", "session"})
    def use(context: dg.OpExecutionContext) -> None:
        LOG.append(f"use {context.resources.connection} {context.resources.session}")
        raise RuntimeError("fail after use")

    @dg.job(resource_defs={"connection": connection, "session": session_resource})
    def pipeline() -> None:
        use()

    result = pipeline.execute_in_process(raise_on_error=False)
    assert not result.success
    assert LOG == [
        "open connection",
        "open session",
        "use conn session",
        "close session",
        "close connection",
    ]


def test_resource_required_resource_keys_are_built_first() -> None:
    @dg.resource(required_resource_keys={"base_url"})
    def api(context: dg.InitResourceContext) -> str:
        return f"{context.resources.base_url}/api"

    @dg.op(required_resource_keys={"api"})
    def call(context: dg.OpExecutionContext) -> str:
        return str(context.resources.api)

    # Declared before the resource it needs: the order of the mapping does not matter.
    @dg.job(resource_defs={"api": api, "base_url": dg.ResourceDefinition.hardcoded_resource("h")})
    def pipeline() -> None:
        call()

    assert pipeline.execute_in_process().output_for_node("call") == "h/api"


def test_a_missing_required_resource_key_is_a_definition_error_naming_both() -> None:
    @dg.resource(required_resource_keys={"base_url"})
    def api(context: dg.InitResourceContext) -> str:
        return f"{context.resources.base_url}/api"

    with pytest.raises(dg.DagsterInvalidDefinitionError) as info, dg.build_resources({"api": api}):
        pass
    assert "'api'" in str(info.value)
    assert "'base_url'" in str(info.value)


def test_build_resources_builds_configures_and_tears_down() -> None:
    @dg.resource(config_schema={"prefix": str})
    def namer(context: dg.InitResourceContext) -> Iterator[str]:
        LOG.append("up")
        yield context.resource_config["prefix"] + "-x"
        LOG.append("down")

    with dg.build_resources(
        {"namer": namer, "creds": Credentials(username="u", password="p")},
        resource_config={"namer": {"config": {"prefix": "p"}}},
    ) as resources:
        assert resources.namer == "p-x"
        assert resources.creds.username == "u"
        assert LOG == ["up"]
    assert LOG == ["up", "down"]


def test_build_resources_rejects_bad_config() -> None:
    @dg.resource(config_schema={"prefix": str})
    def namer(context: dg.InitResourceContext) -> str:
        return str(context.resource_config["prefix"])

    bad = {"namer": {"config": {}}}
    with (
        pytest.raises(dg.DagsterInvalidConfigError) as info,
        dg.build_resources({"namer": namer}, resource_config=bad),
    ):
        pass
    assert "resources.namer.config.prefix" in info.value.key_paths


def test_build_init_resource_context_calls_a_resource_function() -> None:
    @dg.resource(config_schema={"host": str}, required_resource_keys={"port"})
    def address(context: dg.InitResourceContext) -> str:
        return f"{context.resource_config['host']}:{context.resources.port}"

    context = dg.build_init_resource_context(config={"host": "db"}, resources={"port": 5432})
    assert address(context) == "db:5432"


def test_with_resources_binds_resources_to_assets() -> None:
    @dg.asset(required_resource_keys={"greeting"})
    def hello(context: dg.AssetExecutionContext) -> str:
        return str(context.resources.greeting)

    @dg.resource(config_schema={"word": str})
    def greeting(context: dg.InitResourceContext) -> str:
        return str(context.resource_config["word"])

    [bound] = dg.with_resources(
        [hello],
        {"greeting": greeting},
        resource_config_by_key={"greeting": {"config": {"word": "hi"}}},
    )
    assert dg.materialize_to_memory([bound]).output_for_node("hello") == "hi"


def test_with_resources_config_for_an_unknown_key_is_rejected() -> None:
    @dg.asset
    def hello() -> int:
        return 1

    with pytest.raises(dg.DagsterInvalidDefinitionError) as info:
        dg.with_resources([hello], {}, resource_config_by_key={"nope": {"config": {}}})
    assert "'nope'" in str(info.value)


def test_execute_in_process_resources_override_the_job() -> None:
    @dg.op
    def who(credentials: Credentials) -> str:
        return credentials.username

    @dg.job(resource_defs={"credentials": Credentials(username="prod", password="p")})
    def report() -> None:
        who()

    result = report.execute_in_process(
        resources={"credentials": Credentials(username="test", password="p")}
    )
    assert result.output_for_node("who") == "test"


def test_resources_in_definitions_reach_assets() -> None:
    @dg.asset
    def who(credentials: Credentials) -> str:
        return credentials.username

    defs = dg.Definitions(
        assets=[who],
        resources={"credentials": Credentials(username="ada", password="p")},
    )
    job = defs.get_implicit_global_asset_job_def()
    assert job.execute_in_process().output_for_node("who") == "ada"


def test_string_and_mock_resources() -> None:
    @dg.op(required_resource_keys={"label", "client"})
    def use(context: dg.OpExecutionContext) -> str:
        context.resources.client.send("x")
        context.resources.client.send.assert_called_once_with("x")
        return str(context.resources.label)

    @dg.job(
        resource_defs={
            "label": dg.ResourceDefinition.string_resource(),
            "client": dg.ResourceDefinition.mock_resource(),
        }
    )
    def pipeline() -> None:
        use()

    result = pipeline.execute_in_process(run_config={"resources": {"label": {"config": "tag"}}})
    assert result.output_for_node("use") == "tag"


def test_from_resource_context_builds_a_configurable_resource_in_a_resource_function() -> None:
    @dg.resource(config_schema={"username": str, "password": str})
    def legacy(context: dg.InitResourceContext) -> Credentials:
        return Credentials.from_resource_context(context)  # type: ignore[no-any-return]

    built = legacy(dg.build_init_resource_context(config={"username": "u", "password": "p"}))
    assert built == Credentials(username="u", password="p")


class Pooled(dg.ConfigurableResource):
    """Holds a connection pool open for the whole run, as `yield_for_execution` allows."""

    size: int

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[Pooled]:
        LOG.append(f"open pool of {self.size}")
        try:
            yield self
        finally:
            LOG.append("close pool")


class Shelf(dg.ConfigurableResource):
    pool: Pooled


def test_yield_for_execution_holds_the_resource_open_around_a_failed_run() -> None:
    @dg.op
    def query(pool: Pooled) -> None:
        LOG.append(f"query with {pool.size}")
        raise RuntimeError("query failed")

    @dg.job(resource_defs={"pool": Pooled(size=4)})
    def pipeline() -> None:
        query()

    result = pipeline.execute_in_process(raise_on_error=False)
    assert not result.success
    assert LOG == ["open pool of 4", "query with 4", "close pool"]


def test_default_yield_for_execution_runs_setup_create_and_teardown() -> None:
    tracked = Tracked(name="x")
    with tracked.yield_for_execution(dg.build_init_resource_context()) as value:
        assert value is tracked
        assert LOG == ["setup x"]
    assert LOG == ["setup x", "teardown x"]


def test_nested_resource_yield_for_execution_and_build_resources() -> None:
    with dg.build_resources({"shelf": Shelf(pool=Pooled(size=2))}) as resources:
        assert resources.shelf.pool.size == 2
        assert LOG == ["open pool of 2"]
    assert LOG == ["open pool of 2", "close pool"]


def test_a_failing_yield_for_execution_is_a_user_code_error_naming_the_resource() -> None:
    class Broken(dg.ConfigurableResource):
        @contextlib.contextmanager
        def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[Broken]:
            raise ConnectionError("refused")
            yield self

    with (
        pytest.raises(dg.UserCodeError, match="broken") as caught,
        dg.build_resources({"broken": Broken()}),
    ):
        pass
    assert isinstance(caught.value.__cause__, ConnectionError)
