"""Samples from Dagster's guides on resources, run configuration, IO managers, metadata and
assets, run as the docs show them with only the import changed."""

from __future__ import annotations

import pytest

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
