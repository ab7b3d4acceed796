"""Samples from Dagster's guides on resources, run configuration, IO managers, metadata and
assets, run as the docs show them with only the import changed."""

# ruff: noqa: RUF005 - the docs concatenate lists with `+`; that is what these samples test

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field, PrivateAttr

import dagloom as dg


class CredentialsResource(dg.ConfigurableResource):
    username: str
    password: str


class FileStoreBucket(dg.ConfigurableResource):
    credentials: CredentialsResource
    region: str

    def write(self, data: str) -> tuple[str, str, str]:
        return (self.credentials.username, self.region, data)


@dg.asset
def bucket_asset(bucket: FileStoreBucket) -> tuple[str, str, str]:
    return bucket.write("hi")


def test_a_nested_resource_configured_at_launch_takes_its_top_level_run_config() -> None:
    """The resources guide: the same `configure_at_launch()` object is given at the top level
    and as a field of another resource; run config for its key reaches the field."""
    credentials = CredentialsResource.configure_at_launch()
    defs = dg.Definitions(
        assets=[bucket_asset],
        resources={
            "credentials": credentials,
            "bucket": FileStoreBucket(credentials=credentials, region="us-east-1"),
        },
    )
    job = defs.get_implicit_global_asset_job_def()
    result = job.execute_in_process(
        run_config={"resources": {"credentials": {"config": {"username": "u", "password": "p"}}}}
    )
    assert result.output_for_node("bucket_asset") == ("u", "us-east-1", "hi")
    result = job.execute_in_process(
        run_config=dg.RunConfig(
            resources={"credentials": CredentialsResource(username="u2", password="p")}
        )
    )
    assert result.output_for_node("bucket_asset")[0] == "u2"
    with pytest.raises(dg.DagsterInvalidConfigError, match="credentials"):
        job.execute_in_process()


def test_a_nested_resource_configured_at_launch_but_not_given_at_the_top_is_named() -> None:
    credentials = CredentialsResource.configure_at_launch()
    bucket = FileStoreBucket(credentials=credentials, region="us-east-1")
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'credentials' of resource"):
        dg.materialize([bucket_asset], resources={"bucket": bucket})


SETUPS: list[str] = []


class Counted(dg.ConfigurableResource):
    name: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        SETUPS.append(self.name)


class CountedUser(dg.ConfigurableResource):
    inner: Counted


def test_a_resource_object_given_at_the_top_and_nested_is_built_once() -> None:
    @dg.asset
    def both(counted: Counted, user: CountedUser) -> bool:
        return counted is user.inner

    SETUPS.clear()
    shared = Counted(name="c")
    result = dg.materialize(
        [both], resources={"counted": shared, "user": CountedUser(inner=shared)}
    )
    assert result.output_for_node("both") is True
    assert SETUPS == ["c"]


class MyContextResource(dg.ConfigurableResource):
    base_path: str | None = None

    def effective_base_path(self) -> str:
        if self.base_path:
            return self.base_path
        instance = self.get_resource_context().instance
        assert instance
        return str(instance.storage_directory())


def test_get_resource_context_in_a_unit_test_and_in_a_run() -> None:
    """The resources testing guide: `with_resource_context` gives a resource the context a
    run would, and a run gives it its instance."""
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_init_resource_context(instance=instance)
        resource = MyContextResource(base_path=None).with_resource_context(context)
        assert resource.effective_base_path() == instance.storage_directory()

        @dg.asset
        def where(res: MyContextResource) -> str:
            return res.effective_base_path()

        result = dg.materialize([where], resources={"res": MyContextResource()}, instance=instance)
        assert result.output_for_node("where") == instance.storage_directory()
    with pytest.raises(dg.DagsterInvalidInvocationError, match="no resource context"):
        MyContextResource().get_resource_context()


STORE: dict[str, Any] = {}


class PrefixIOManager(dg.ConfigurableIOManager):
    path_prefix: list[str] = []

    def _get_path(self, context: Any) -> str:
        return "/".join(self.path_prefix + context.asset_key.path)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        STORE[self._get_path(context)] = obj

    def load_input(self, context: dg.InputContext) -> Any:
        return STORE[self._get_path(context)]


class PartitionedIOManager(dg.IOManager):
    def _get_path(self, context: Any) -> str:
        if context.has_partition_key:
            return "/".join(context.asset_key.path + [context.asset_partition_key])
        return "/".join(context.asset_key.path)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        STORE[self._get_path(context)] = obj

    def load_input(self, context: dg.InputContext) -> Any:
        return STORE[self._get_path(context)]


def test_io_manager_guide_joins_a_list_prefix_with_the_asset_key_path() -> None:
    """The IO manager guide's samples add lists to `context.asset_key.path`, a list in
    Dagster, on either side."""

    @dg.asset
    def upstream() -> list[int]:
        return [1, 2]

    @dg.asset
    def downstream(upstream: list[int]) -> list[int]:
        return upstream + [3]

    STORE.clear()
    defs = dg.Definitions(
        assets=[upstream, downstream], resources={"io_manager": PrefixIOManager(path_prefix=["a"])}
    )
    defs.get_implicit_global_asset_job_def().execute_in_process()
    assert STORE == {"a/upstream": [1, 2], "a/downstream": [1, 2, 3]}

    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    @dg.asset(partitions_def=daily)
    def p_up(context: dg.AssetExecutionContext) -> str:
        return context.partition_key

    @dg.asset(partitions_def=daily)
    def p_down(p_up: str) -> str:
        return p_up + "!"

    dg.materialize(
        [p_up, p_down],
        resources={"io_manager": PartitionedIOManager()},
        partition_key="2024-01-02",
    )
    assert STORE["p_down/2024-01-02"] == "2024-01-02!"


def test_an_asset_key_path_compares_equal_to_its_list_and_stays_hashable() -> None:
    key = dg.AssetKey(["a", "b"])
    assert key.path == ["a", "b"]
    assert key.path == ("a", "b")
    assert key.path != ["a"]
    assert ["x"] + key.path == ["x", "a", "b"]
    assert key.path + ["c"] == ["a", "b", "c"]
    assert ("x",) + key.path == ("x", "a", "b")
    assert {key.path: 1}[("a", "b")] == 1
    assert key.with_prefix("p") == dg.AssetKey(["p", "a", "b"])


def test_filesystem_io_manager_records_the_path_as_path_metadata(tmp_path: Path) -> None:
    @dg.asset
    def stored() -> int:
        return 1

    result = dg.materialize(
        [stored], resources={"io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path))}
    )
    metadata = result.asset_materializations_for_node("stored")[0].metadata
    assert metadata["path"] == dg.MetadataValue.path(str(tmp_path / "stored"))


def test_subsetting_a_multi_asset_reads_selected_output_names_off_op_execution_context() -> None:
    """The multi-asset guide's subsetting sample, with outs and with skippable specs."""

    @dg.multi_asset(
        outs={"a": dg.AssetOut(is_required=False), "b": dg.AssetOut(is_required=False)},
        can_subset=True,
    )
    def split_actions(context: dg.AssetExecutionContext) -> Any:
        if "a" in context.op_execution_context.selected_output_names:
            yield dg.Output(value=123, output_name="a")
        if "b" in context.op_execution_context.selected_output_names:
            yield dg.Output(value=456, output_name="b")

    result = dg.materialize([split_actions], selection=["b"])
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [dg.AssetKey("b")]

    @dg.multi_asset(
        specs=[dg.AssetSpec("c1", skippable=True), dg.AssetSpec("c2", skippable=True)],
        can_subset=True,
    )
    def from_specs(context: dg.AssetExecutionContext) -> Any:
        for key in context.selected_asset_keys:
            yield dg.MaterializeResult(asset_key=key)

    result = dg.materialize([from_specs], selection=["c2"])
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [dg.AssetKey("c2")]
    assert from_specs.get_asset_spec("c1").skippable


def test_add_asset_metadata_and_asset_key_for_input() -> None:
    @dg.asset
    def source() -> int:
        return 1

    @dg.multi_asset(specs=[dg.AssetSpec("one", deps=[source]), dg.AssetSpec("two")])
    def pair(context: dg.AssetExecutionContext, source: int) -> Any:
        context.add_asset_metadata({"read": context.asset_key_for_input("source").path[-1]}, "one")
        context.add_asset_metadata(metadata={"n": 2}, asset_key=dg.AssetKey("two"))
        yield dg.MaterializeResult(asset_key="one")
        yield dg.MaterializeResult(asset_key="two")

    result = dg.materialize([source, pair])
    by_key = {
        e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert by_key[dg.AssetKey("one")]["read"] == dg.MetadataValue.text("source")
    assert by_key[dg.AssetKey("two")]["n"] == dg.MetadataValue.int(2)

    @dg.asset
    def wrong(context: dg.AssetExecutionContext) -> None:
        context.add_asset_metadata({"x": 1}, asset_key="elsewhere")

    with pytest.raises(dg.DagsterInvalidInvocationError, match="elsewhere"):
        dg.materialize([wrong])


def test_asset_jobs_select_by_tag_kind_owner_and_selection_strings() -> None:
    @dg.asset(group_name="sales", tags={"priority": "high"}, owners=["team:sales"])
    def s1() -> int:
        return 1

    @dg.asset(group_name="sales", kinds={"python"})
    def s2(s1: int) -> int:
        return s1 + 1

    @dg.asset(group_name="finance", kinds={"python", "snowflake"})
    def f1(s2: int) -> int:
        return s2 + 1

    @dg.asset(group_name="finance", tags={"dagster/kind/snowflake": ""})
    def f2(f1: int) -> int:
        return f1 + 1

    assets = [s1, s2, f1, f2]
    expected = {
        dg.AssetSelection.tag("priority", "high"): {"s1"},
        dg.AssetSelection.tag_string("priority=high"): {"s1"},
        dg.AssetSelection.kind("python"): {"s2", "f1"},
        dg.AssetSelection.tag("dagster/kind/snowflake", ""): {"f1", "f2"},
        dg.AssetSelection.kind("snowflake"): {"f1", "f2"},
        dg.AssetSelection.owner("team:sales"): {"s1"},
        dg.AssetSelection.key_substring("1"): {"s1", "f1"},
        dg.AssetSelection.kind("python") - dg.AssetSelection.groups("finance"): {"s2"},
        dg.AssetSelection.from_string("tag:priority=high"): {"s1"},
        dg.AssetSelection.from_string("kind:snowflake"): {"f1", "f2"},
        dg.AssetSelection.from_string("owner:team:sales+"): {"s1", "s2"},
    }
    for selection, names in expected.items():
        assert {k.path[-1] for k in selection.resolve(assets)} == names, selection

    job = dg.define_asset_job("high", selection="tag:priority=high")
    defs = dg.Definitions(assets=assets, jobs=[job])
    result = defs.get_job_def("high").execute_in_process()
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [dg.AssetKey("s1")]


class GreetingConfig(dg.Config):
    person_name: str
    times: int = 1


class OuterConfig(dg.Config):
    greeting: GreetingConfig


def test_op_config_fields_read_env_references_from_run_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The run configuration guide: `person_name: {env: PERSON_NAME}` in run config reads
    the variable for a Config field, as for a resource's."""

    @dg.op
    def print_greeting(config: GreetingConfig) -> str:
        return f"hello {config.person_name}" * config.times

    @dg.op
    def nested(config: OuterConfig) -> str:
        return config.greeting.person_name

    @dg.job
    def greeting_job() -> None:
        print_greeting()
        nested()

    monkeypatch.setenv("PERSON_NAME", "Env")
    monkeypatch.setenv("TIMES", "2")
    result = greeting_job.execute_in_process(
        run_config={
            "ops": {
                "print_greeting": {
                    "config": {"person_name": {"env": "PERSON_NAME"}, "times": {"env": "TIMES"}}
                },
                "nested": {"config": {"greeting": {"person_name": {"env": "PERSON_NAME"}}}},
            }
        }
    )
    assert result.output_for_node("print_greeting") == "hello Envhello Env"
    assert result.output_for_node("nested") == "Env"

    monkeypatch.delenv("PERSON_NAME")
    with pytest.raises(dg.DagsterInvalidConfigError, match="PERSON_NAME") as caught:
        greeting_job.execute_in_process(
            run_config={
                "ops": {
                    "print_greeting": {"config": {"person_name": {"env": "PERSON_NAME"}}},
                    "nested": {"config": {"greeting": {"person_name": "x"}}},
                }
            }
        )
    assert "ops.print_greeting.config.person_name" in str(caught.value)


class Cat(dg.Config):
    pet_type: Literal["cat"] = "cat"
    meows: int


class Dog(dg.Config):
    pet_type: Literal["dog"] = "dog"
    barks: float


class ConfigWithUnion(dg.Config):
    pet: Cat | Dog = Field(discriminator="pet_type")


def test_a_discriminated_union_is_given_in_run_config_as_a_selector() -> None:
    """The advanced config types guide: a union field is given as a Config object, or in
    run config keyed by the member's discriminator value."""

    @dg.asset
    def pet_stats(config: ConfigWithUnion) -> str:
        if isinstance(config.pet, Cat):
            return f"Cat meows {config.pet.meows} times"
        return f"Dog barks {config.pet.barks} times"

    result = dg.materialize(
        [pet_stats], run_config=dg.RunConfig({"pet_stats": ConfigWithUnion(pet=Cat(meows=10))})
    )
    assert result.output_for_node("pet_stats") == "Cat meows 10 times"
    result = dg.materialize(
        [pet_stats], run_config={"ops": {"pet_stats": {"config": {"pet": {"dog": {"barks": 2}}}}}}
    )
    assert result.output_for_node("pet_stats") == "Dog barks 2.0 times"
    with pytest.raises(dg.DagsterInvalidConfigError, match=r"ops\.pet_stats\.config\.pet"):
        dg.materialize(
            [pet_stats], run_config={"ops": {"pet_stats": {"config": {"pet": {"cow": {}}}}}}
        )


CLIENT_LOG: list[str] = []


class ClientResource(dg.ConfigurableResource):
    """A resource whose client exists only between setup and teardown, as the resources
    guide writes one with a PrivateAttr."""

    token: str
    _client: dict[str, str] | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = {"token": self.token}
        CLIENT_LOG.append("setup")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        CLIENT_LOG.append("teardown")

    def fetch(self) -> str:
        assert self._client is not None, "used before setup"
        return self._client["token"]


@dg.asset
def fetched(client: ClientResource) -> str:
    return client.fetch()


@dg.resource
def answer_resource(context: dg.InitResourceContext) -> int:
    return 42


def test_testing_an_asset_builds_the_resources_it_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The testing guide calls assets with resources as arguments or through
    build_asset_context / build_op_context: resources are set up (EnvVars read) as in a
    run, and torn down afterwards."""
    monkeypatch.setenv("API_TOKEN", "secret")
    CLIENT_LOG.clear()
    assert fetched(client=ClientResource(token=dg.EnvVar("API_TOKEN"))) == "secret"
    assert CLIENT_LOG == ["setup", "teardown"]

    CLIENT_LOG.clear()
    with dg.build_asset_context(resources={"client": ClientResource(token="t")}) as context:
        assert context.resources.client.fetch() == "t"
    assert CLIENT_LOG == ["setup", "teardown"]

    @dg.op(required_resource_keys={"answer"})
    def uses_answer(context: dg.OpExecutionContext) -> int:
        return context.resources.answer

    assert uses_answer(dg.build_op_context(resources={"answer": answer_resource})) == 42

    @dg.resource(config_schema={"n": int})
    def configured(context: dg.InitResourceContext) -> int:
        return context.resource_config["n"]

    context = dg.build_op_context(
        resources={"answer": configured}, resources_config={"answer": {"config": {"n": 7}}}
    )
    assert uses_answer(context) == 7


def test_loading_asset_values_outside_a_run(tmp_path: Path) -> None:
    """The assets guide loads stored values in a notebook with `load_asset_value` and
    `get_asset_value_loader`, also one partition's."""
    colors = dg.StaticPartitionsDefinition(["red", "blue"])

    @dg.asset
    def asset1() -> list[int]:
        return [1, 2]

    @dg.asset(partitions_def=colors)
    def asset2(context: dg.AssetExecutionContext) -> str:
        return context.partition_key

    defs = dg.Definitions(
        assets=[asset1, asset2],
        resources={"io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path))},
    )
    dg.materialize(
        [asset1, asset2], resources=defs.resources, partition_key="blue", selection=[asset2]
    )
    dg.materialize([asset1], resources=defs.resources)
    with defs.get_asset_value_loader() as loader:
        assert loader.load_asset_value(dg.AssetKey("asset1")) == [1, 2]
        assert loader.load_asset_value("asset2", partition_key="blue") == "blue"
    assert defs.load_asset_value("asset2", partition_key="blue") == "blue"
    with pytest.raises(dg.DagsterError, match="no asset 'nope'"):
        defs.load_asset_value("nope")


class ColumnsIOManager(dg.ConfigurableIOManager):
    """Loads only the columns an input asks for in its metadata, as the warehouse IO
    managers' guides select columns with `AssetIn(metadata={"columns": [...]})`."""

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        STORE["/".join(context.get_identifier())] = obj

    def load_input(self, context: dg.InputContext) -> Any:
        table = STORE["/".join(context.get_identifier())]
        if not isinstance(table, dict):
            return table
        columns = context.definition_metadata.get("columns") or list(table)
        return {name: table[name] for name in columns}


def test_input_metadata_reaches_the_io_manager_loading_the_input() -> None:
    @dg.asset
    def iris() -> dict[str, list[int]]:
        return {"sepal": [1], "petal": [2], "species": [3]}

    @dg.asset(ins={"iris": dg.AssetIn(metadata={"columns": ["sepal", "species"]})})
    def sepal_data(iris: dict[str, list[int]]) -> list[str]:
        return sorted(iris)

    @dg.op(ins={"table": dg.In(metadata={"columns": ["petal"]})})
    def petal_op(table: dict[str, list[int]]) -> list[str]:
        return sorted(table)

    @dg.op
    def make_table() -> dict[str, list[int]]:
        return {"sepal": [1], "petal": [2]}

    @dg.job(resource_defs={"io_manager": ColumnsIOManager()})
    def petal_job() -> None:
        petal_op(make_table())

    STORE.clear()
    result = dg.materialize([iris, sepal_data], resources={"io_manager": ColumnsIOManager()})
    assert result.output_for_node("sepal_data") == ["sepal", "species"]
    assert petal_job.execute_in_process().output_for_node("petal_op") == ["petal"]


def test_map_asset_specs_adds_attributes_to_assets_and_specs() -> None:
    @dg.asset(owners=["team:a"])
    def orders() -> int:
        return 1

    @dg.multi_asset(
        specs=[dg.AssetSpec("x"), dg.AssetSpec("y", deps=["x"])],
        internal_asset_deps={"y": {dg.AssetKey("x")}},
    )
    def xy() -> Any:
        yield dg.MaterializeResult(asset_key="x")
        yield dg.MaterializeResult(asset_key="y")

    raw = dg.AssetSpec("raw")
    mapped = dg.map_asset_specs(
        lambda spec: spec.merge_attributes(tags={"team": "data"}, owners=["team:data"]),
        [orders, xy, raw],
    )
    tagged = [
        spec
        for item in mapped
        for spec in (item.specs if isinstance(item, dg.AssetsDefinition) else [item])
    ]
    assert {spec.key.path[-1]: dict(spec.tags or {}) for spec in tagged} == {
        key: {"team": "data"} for key in ["orders", "x", "y", "raw"]
    }
    new_orders = mapped[0]
    assert isinstance(new_orders, dg.AssetsDefinition)
    assert new_orders.get_asset_spec().owners == ("team:a", "team:data")
    result = dg.materialize([new_orders, mapped[1]])
    assert result.output_for_node("orders") == 1
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="changed its key"):
        dg.map_asset_specs(lambda spec: spec.replace_attributes(key="other"), [orders])


def _selection_graph() -> list[dg.AssetsDefinition]:
    @dg.asset(group_name="ingest", kinds={"s3"})
    def raw_data_a() -> None: ...

    @dg.asset(group_name="ingest", tags={"pii": ""}, owners=["alice@example.com"])
    def raw_data_b() -> None: ...

    @dg.asset(deps=[raw_data_a, raw_data_b], tags={"stage": "clean"})
    def cleaned() -> None: ...

    @dg.asset(deps=[cleaned], group_name="sales")
    def summary_stats_1() -> None: ...

    @dg.asset(deps=[cleaned], group_name="sales", tags={"stage": "report"})
    def summary_stats_2() -> None: ...

    @dg.asset(deps=[summary_stats_2], group_name="sales")
    def b_c_for_sales() -> None: ...

    return [raw_data_a, raw_data_b, cleaned, summary_stats_1, summary_stats_2, b_c_for_sales]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (
            'key:"raw_data_b"+ and +key:"summary_stats_2"',
            {"raw_data_b", "cleaned", "summary_stats_2"},
        ),
        (
            '(key:"raw_data_a" or key:"raw_data_b")+ and +key:"b_c_for_sales"',
            {"raw_data_a", "raw_data_b", "cleaned", "summary_stats_2", "b_c_for_sales"},
        ),
        ('key:"raw_*"', {"raw_data_a", "raw_data_b"}),
        ('key:"summary_stats_2"+1', {"summary_stats_2", "b_c_for_sales"}),
        ('1+key:"summary_stats_2"', {"summary_stats_2", "cleaned"}),
        ("2+key:summary_stats_2", {"summary_stats_2", "cleaned", "raw_data_a", "raw_data_b"}),
        ('group:"sales" and not tag:"stage"="report"', {"summary_stats_1", "b_c_for_sales"}),
        ('tag:"stage"', {"cleaned", "summary_stats_2"}),
        ('tag:"pii" or kind:"s3"', {"raw_data_a", "raw_data_b"}),
        ('owner:"alice@example.com"', {"raw_data_b"}),
        ('sinks(group:"sales")', {"summary_stats_1", "b_c_for_sales"}),
        ("roots(*)", {"raw_data_a", "raw_data_b"}),
        ("NOT group:ingest AND NOT group:sales", {"cleaned"}),
        ("+cleaned", {"cleaned", "raw_data_a", "raw_data_b"}),
        ("summary_stats_1,summary_stats_2", {"summary_stats_1", "summary_stats_2"}),
    ],
)
def test_asset_selection_syntax_from_the_selection_guide(text: str, names: set[str]) -> None:
    assets = _selection_graph()
    resolved = dg.AssetSelection.from_string(text).resolve(assets)
    assert {key.path[-1] for key in resolved} == names


def test_define_asset_job_takes_a_selection_syntax_string() -> None:
    job = dg.define_asset_job(
        "raw_data_b_summary_stats_2_job",
        selection='key:"raw_data_b"+ and +key:"summary_stats_2"',
    )
    defs = dg.Definitions(assets=_selection_graph(), jobs=[job])
    result = defs.get_job_def("raw_data_b_summary_stats_2_job").execute_in_process()
    assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} == {
        "raw_data_b",
        "cleaned",
        "summary_stats_2",
    }
    with pytest.raises(dg.DagsterError, match=r"expected '\)'"):
        dg.AssetSelection.from_string('(key:"a" or key:"b"')


class TypeRecordingIOManager(dg.IOManager):
    """Stores by asset key and records the Python type each context names, as IO managers
    that store each type differently read `context.dagster_type.typing_type`."""

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        STORE[context.asset_key.to_user_string()] = obj
        STORE[f"out type {context.name}"] = context.dagster_type.typing_type

    def load_input(self, context: dg.InputContext) -> Any:
        STORE[f"in type {context.name}"] = context.dagster_type.typing_type
        return STORE[context.asset_key.to_user_string()]


def test_io_manager_contexts_name_the_python_type_of_inputs_and_outputs() -> None:
    @dg.asset
    def numbers() -> list[int]:
        return [1, 2]

    @dg.asset
    def total(numbers: list[int]) -> int:
        return sum(numbers)

    @dg.asset
    def untyped(total):
        return total

    STORE.clear()
    dg.materialize([numbers, total, untyped], resources={"io_manager": TypeRecordingIOManager()})
    assert STORE["in type numbers"] == list[int]
    assert STORE["in type total"] is Any
    assert STORE["out type result"] is Any  # the last output stored: untyped's
    dg.materialize([numbers], resources={"io_manager": TypeRecordingIOManager()})
    assert STORE["out type result"] == list[int]
    context = dg.build_output_context(dagster_type=int)
    assert context.dagster_type.typing_type is int


def test_an_op_logs_materializations_and_observations_of_external_assets() -> None:
    """The metadata guide's op logging AssetMaterialization and AssetObservation events."""

    @dg.op
    def persist(context: dg.OpExecutionContext) -> str:
        context.log_event(
            dg.AssetMaterialization(
                asset_key="my_dataset",
                description="Persisted result to storage",
                metadata={
                    "path": dg.MetadataValue.path("/tmp/my_dataset"),
                    "dashboard_url": dg.MetadataValue.url("http://mycoolsite.com/my_data"),
                    "size (bytes)": 12,
                },
            )
        )
        context.log_event(dg.AssetObservation(asset_key="my_dataset", metadata={"rows": 3}))
        return "/tmp/my_dataset"

    @dg.job
    def persist_job() -> None:
        persist()

    result = persist_job.execute_in_process()
    (materialization,) = result.asset_materializations_for_node("persist")
    assert materialization.asset_key == dg.AssetKey("my_dataset")
    assert materialization.metadata["size (bytes)"] == dg.MetadataValue.int(12)
    (observation,) = result.asset_observations_for_node("persist")
    assert observation.metadata["rows"] == dg.MetadataValue.int(3)


API_LOG: list[str] = []


class UsersAPI(dg.ConfigurableResource):
    api_key: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        API_LOG.append(f"setup {self.api_key}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        API_LOG.append("teardown")

    def fetch_users(self) -> list[str]:
        return [f"{self.api_key}-1", f"{self.api_key}-2"]


class Unused(dg.ConfigurableResource):
    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        API_LOG.append("unused built")


@dg.op
def process_user() -> None: ...


@dg.job
def process_user_job() -> None:
    process_user()


@dg.sensor(job=process_user_job)
def process_new_users_sensor(
    context: dg.SensorEvaluationContext, users_api: UsersAPI
) -> dg.SensorResult:
    users = users_api.fetch_users()
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=user) for user in users])


@dg.schedule(job=process_user_job, cron_schedule="0 0 * * *", required_resource_keys={"users_api"})
def users_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(tags={"first": context.resources.users_api.fetch_users()[0]})


def test_sensors_and_schedules_get_their_resources_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """The resources guide's sensor and schedule using a resource configured from the
    environment: the resource is built (EnvVar read, set up) for the evaluation, the
    location's other resources are not, and it is torn down after."""
    from dagloom.actors.code_location import evaluate_schedule, evaluate_sensor
    from dagloom.messages.rpc import EvaluateScheduleRequest, EvaluateSensorRequest

    monkeypatch.setenv("USERS_API_KEY", "k")
    defs = dg.Definitions(
        jobs=[process_user_job],
        sensors=[process_new_users_sensor],
        schedules=[users_schedule],
        resources={"users_api": UsersAPI(api_key=dg.EnvVar("USERS_API_KEY")), "unused": Unused()},
    )
    API_LOG.clear()
    tick = evaluate_sensor(defs, EvaluateSensorRequest(sensor_name="process_new_users_sensor"))
    assert not tick.error, tick.error
    assert [r.run_key for r in tick.run_requests] == ["k-1", "k-2"]
    assert API_LOG == ["setup k", "teardown"]

    API_LOG.clear()
    tick = evaluate_schedule(
        defs, EvaluateScheduleRequest(schedule_name="users_schedule"), now=1_700_000_000.0
    )
    assert not tick.error, tick.error
    assert API_LOG == ["setup k", "teardown"]

    API_LOG.clear()
    with dg.build_sensor_context(resources={"users_api": UsersAPI(api_key="t")}) as context:
        result = process_new_users_sensor(context)
    assert [r.run_key for r in result.run_requests] == ["t-1", "t-2"]
    result = process_new_users_sensor(
        dg.build_sensor_context(), users_api=UsersAPI(api_key=dg.EnvVar("USERS_API_KEY"))
    )
    assert [r.run_key for r in result.run_requests] == ["k-1", "k-2"]
    assert API_LOG == ["setup t", "teardown", "setup k", "teardown"]


def test_an_assets_definition_lists_owners_and_code_versions_by_key() -> None:
    @dg.asset(owners=["richard.hendricks@hooli.com", "team:data-eng"], code_version="1")
    def owned() -> None: ...

    assert owned.owners_by_key == {
        dg.AssetKey("owned"): ["richard.hendricks@hooli.com", "team:data-eng"]
    }
    assert owned.code_versions_by_key == {dg.AssetKey("owned"): "1"}


def test_validate_loadable_names_a_resource_no_one_provides() -> None:
    """The testing guide checks definitions load with `Definitions.validate_loadable`; an
    asset's resource or IO manager missing from them is named there, not at the first run."""

    @dg.asset
    def needs_conn(my_conn: CredentialsResource) -> None: ...

    @dg.asset(io_manager_key="s3_io_manager")
    def stored_in_s3() -> int:
        return 1

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'my_conn' required by op"):
        dg.Definitions.validate_loadable(dg.Definitions(assets=[needs_conn]))
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'s3_io_manager'"):
        dg.Definitions.validate_loadable(dg.Definitions(assets=[stored_in_s3]))
    dg.Definitions.validate_loadable(
        dg.Definitions(
            assets=[needs_conn, stored_in_s3],
            resources={
                "my_conn": CredentialsResource(username="u", password="p"),
                "s3_io_manager": dg.InMemoryIOManager(),
            },
        )
    )


@dg.resource(
    config_schema={"region": str, "use_unsigned_session": dg.Field(bool, default_value=True)}
)
def s3_session(init_context: dg.InitResourceContext) -> tuple[str, bool]:
    config = init_context.resource_config
    return (config["region"], config["use_unsigned_session"])


east_unsigned_s3_session = s3_session.configured(
    {"region": "us-east-1", "use_unsigned_session": False}
)


@dg.configured(s3_session)
def west_unsigned_s3_session(_init_context: Any) -> dict[str, Any]:
    return {"region": "us-west-1", "use_unsigned_session": False}


@dg.configured(s3_session, config_schema={"region": str})
def unsigned_s3_session(config: dict[str, Any]) -> dict[str, Any]:
    return {"region": config["region"]}


@dg.op(config_schema={"iterations": int, "word": str})
def example(context: dg.OpExecutionContext) -> str:
    return context.op_config["word"] * context.op_config["iterations"]


@dg.configured(example, config_schema={"times": dg.Field(int)})
def configured_example(config: dict[str, Any]) -> dict[str, Any]:
    return {"iterations": config["times"], "word": "ab"}


class ComplexConfig(dg.Config):
    a_bool: bool
    an_int: int


class SimpleConfig(dg.Config):
    an_int: int


@dg.op
def complex_op(config: ComplexConfig) -> int:
    return config.an_int if config.a_bool else -1


@dg.configured(complex_op)
def simpler_op(config: SimpleConfig) -> ComplexConfig:
    return ComplexConfig(a_bool=True, an_int=config.an_int)


def test_the_configured_api_fixes_or_maps_config() -> None:
    """The configured API guide: resources and ops with fixed config, or config mapped by a
    function from a smaller schema (a dict schema or a Config class)."""

    @dg.op(required_resource_keys={"east", "west", "unsigned"})
    def sessions(context: dg.OpExecutionContext) -> list[tuple[str, bool]]:
        return [context.resources.east, context.resources.west, context.resources.unsigned]

    another_configured_example = example.configured(
        {"iterations": 2, "word": "wheat"}, name="another_example"
    )

    @dg.job(
        resource_defs={
            "east": east_unsigned_s3_session,
            "west": west_unsigned_s3_session,
            "unsigned": unsigned_s3_session,
        }
    )
    def configured_job() -> None:
        sessions()
        configured_example()
        another_configured_example()
        simpler_op()

    result = configured_job.execute_in_process(
        run_config={
            "resources": {"unsigned": {"config": {"region": "eu-west-1"}}},
            "ops": {
                "configured_example": {"config": {"times": 3}},
                "simpler_op": {"config": {"an_int": 7}},
            },
        }
    )
    assert result.output_for_node("sessions") == [
        ("us-east-1", False),
        ("us-west-1", False),
        ("eu-west-1", True),
    ]
    assert result.output_for_node("configured_example") == "ababab"
    assert result.output_for_node("another_example") == "wheatwheat"
    assert result.output_for_node("simpler_op") == 7
    with pytest.raises(dg.DagsterInvalidConfigError, match="times"):
        configured_job.execute_in_process(
            run_config={
                "resources": {"unsigned": {"config": {"region": "eu-west-1"}}},
                "ops": {
                    "configured_example": {"config": {}},
                    "simpler_op": {"config": {"an_int": 1}},
                },
            }
        )


def test_a_multi_asset_takes_its_partitions_from_its_specs() -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    @dg.multi_asset(
        specs=[
            dg.AssetSpec("first", partitions_def=daily),
            dg.AssetSpec("second", partitions_def=daily),
        ]
    )
    def both(context: dg.AssetExecutionContext) -> Any:
        yield dg.MaterializeResult(asset_key="first", metadata={"day": context.partition_key})
        yield dg.MaterializeResult(asset_key="second")

    assert both.partitions_def == daily
    result = dg.materialize([both], partition_key="2024-01-05")
    assert {e.materialization.partition for e in result.get_asset_materialization_events()} == {
        "2024-01-05"
    }
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'mixed'"):

        @dg.multi_asset(
            specs=[
                dg.AssetSpec("x", partitions_def=daily),
                dg.AssetSpec("y", partitions_def=dg.StaticPartitionsDefinition(["a"])),
            ]
        )
        def mixed() -> None: ...
