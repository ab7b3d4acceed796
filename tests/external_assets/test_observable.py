"""Observable source assets, external assets from specs, and data version tags, written the
way Dagster's documentation shows them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import dagloom as dg
from dagloom.definitions.outputs import CODE_VERSION_TAG, DATA_VERSION_TAG
from dagloom.instance.sync import SyncInstance


class Files(dg.ConfigurableResource):
    count: int


@pytest.fixture
def instance() -> Iterator[dg.DagloomInstance]:
    with dg.instance_for_test() as inst:
        yield inst


def latest_tags(instance: dg.DagloomInstance, key: str) -> dict[str, str]:
    """The tags of the asset's latest materialization."""
    record = SyncInstance(instance).fetch_materializations(key, limit=1).records[0]
    assert record.asset_materialization is not None
    tags = record.asset_materialization.tags
    assert tags is not None
    return dict(tags)


def test_observable_source_asset_records_its_data_version(
    instance: dg.DagloomInstance,
) -> None:
    @dg.observable_source_asset
    def foo_source_asset() -> dg.DataVersion:
        return dg.DataVersion("v1")

    result = dg.observe([foo_source_asset], instance=instance)

    assert result.success
    [observation] = [
        e.asset_observation_data.asset_observation for e in result.get_asset_observation_events()
    ]
    assert observation.asset_key == dg.AssetKey("foo_source_asset")
    assert observation.tags == {DATA_VERSION_TAG: "v1"}
    [record] = SyncInstance(instance).fetch_observations("foo_source_asset", limit=1).records
    assert record.asset_observation is not None
    assert record.asset_observation.data_version == "v1"


def test_observe_result_carries_metadata_and_context_and_resources(
    instance: dg.DagloomInstance,
) -> None:
    @dg.observable_source_asset(group_name="raw", description="rows in the file")
    def raw_rows(context: dg.OpExecutionContext, files: Files) -> dg.ObserveResult:
        context.log.info("observing")
        return dg.ObserveResult(
            data_version=dg.DataVersion(str(files.count)), metadata={"rows": files.count}
        )

    result = dg.observe([raw_rows], instance=instance, resources={"files": Files(count=7)})

    [record] = SyncInstance(instance).fetch_observations("raw_rows", limit=1).records
    observation = record.asset_observation
    assert result.success and observation is not None
    assert observation.data_version == "7"
    assert observation.metadata is not None and observation.metadata["rows"].value == 7
    assert raw_rows.group_name == "raw" and raw_rows.is_observable


def test_dagsters_scheduling_arguments_are_kept() -> None:
    @dg.observable_source_asset(auto_observe_interval_minutes=30, op_tags={"team": "data"})
    def feed() -> dg.DataVersion:
        return dg.DataVersion("1")

    assert feed.auto_observe_interval_minutes == 30
    assert feed.op_tags == {"team": "data"}
    assert feed.replace_attributes(group_name="g").auto_observe_interval_minutes == 30


def test_multi_observable_source_asset_observes_each_asset_once(
    instance: dg.DagloomInstance,
) -> None:
    calls: list[int] = []

    @dg.multi_observable_source_asset(specs=[dg.AssetSpec("a"), dg.AssetSpec("b")])
    def both() -> Iterator[dg.ObserveResult]:
        calls.append(1)
        yield dg.ObserveResult(asset_key="a", data_version=dg.DataVersion("1"))
        yield dg.ObserveResult(asset_key="b", data_version=dg.DataVersion("2"))

    dg.observe([both], instance=instance)

    assert calls == [1]
    versions = {
        key: SyncInstance(instance)
        .fetch_observations(key, limit=1)
        .records[0]
        .asset_observation.data_version  # type: ignore[union-attr]
        for key in ("a", "b")
    }
    assert versions == {"a": "1", "b": "2"}


def test_an_observation_function_that_raises_fails_its_step_naming_it(
    instance: dg.DagloomInstance,
) -> None:
    @dg.observable_source_asset
    def flaky() -> dg.DataVersion:
        raise RuntimeError("source unreachable")

    result = dg.observe([flaky], instance=instance, raise_on_error=False)

    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and "source unreachable" in failures[0].message + str(
        failures[0].step_failure_data.error
    )
    assert failures[0].step_key == "__observe_flaky"


def test_an_observation_function_returning_something_else_is_named_in_the_error(
    instance: dg.DagloomInstance,
) -> None:
    @dg.observable_source_asset
    def wrong() -> int:
        return 3

    result = dg.observe([wrong], instance=instance, raise_on_error=False)

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "'wrong' returned int" in str(failure.step_failure_data.error)


def test_partitioned_observation_records_one_event_per_partition(
    instance: dg.DagloomInstance,
) -> None:
    @dg.observable_source_asset(partitions_def=dg.StaticPartitionsDefinition(["x", "y"]))
    def parts() -> dg.DataVersionsByPartition:
        return dg.DataVersionsByPartition({"x": "1", "y": dg.DataVersion("2")})

    dg.observe([parts], instance=instance)

    records = SyncInstance(instance).fetch_observations("parts", limit=10).records
    seen = {
        (r.asset_observation.partition, r.asset_observation.data_version)  # type: ignore[union-attr]
        for r in records
    }
    assert seen == {("x", "1"), ("y", "2")}


def test_source_asset_with_observe_fn_and_asset_job_selecting_it(
    instance: dg.DagloomInstance,
) -> None:
    source = dg.SourceAsset(key="logs", observe_fn=lambda: dg.DataVersion("abc"))
    defs = dg.Definitions(
        assets=[source], jobs=[dg.define_asset_job("observe_logs", selection=["logs"])]
    )

    result = defs.get_job_def("observe_logs").execute_in_process(instance=instance)

    assert result.success
    [record] = SyncInstance(instance).fetch_observations("logs", limit=1).records
    assert record.asset_observation is not None
    assert record.asset_observation.data_version == "abc"


def test_external_assets_from_specs_are_in_lineage_but_never_materialized() -> None:
    raw = dg.AssetSpec("raw_events", group_name="external")

    @dg.asset(deps=[raw])
    def cleaned() -> None:
        return None

    defs = dg.Definitions(assets=[*dg.external_assets_from_specs([raw]), cleaned])

    assert dg.AssetKey("raw_events") in defs.asset_graph.external_specs
    assert defs.asset_graph.upstream[dg.AssetKey("cleaned")] == {dg.AssetKey("raw_events")}
    with pytest.raises(dg.DagloomInvalidSelectionError, match=r"external asset.*raw_events"):
        dg.Definitions(
            assets=[raw, cleaned], jobs=[dg.define_asset_job("j", selection=["raw_events"])]
        )
    with pytest.raises(dg.DagloomInvalidSelectionError, match="report-materialization"):
        dg.materialize([raw, cleaned], selection=["raw_events"])


def test_external_assets_from_specs_refuses_anything_else() -> None:
    with pytest.raises(dg.DefinitionError, match="takes AssetSpecs"):
        dg.external_assets_from_specs(["raw"])  # type: ignore[list-item]


def test_materialization_tags_record_code_and_input_data_versions(
    instance: dg.DagloomInstance,
) -> None:
    @dg.asset(code_version="v1")
    def upstream() -> dg.Output[int]:
        return dg.Output(1, data_version=dg.DataVersion("u1"))

    @dg.asset(code_version="v2")
    def downstream(upstream: int) -> int:
        return upstream + 1

    dg.materialize([upstream, downstream], instance=instance)

    tags = latest_tags(instance, "downstream")
    assert tags is not None
    assert tags[CODE_VERSION_TAG] == "v2"
    assert tags["dagster/input_data_version/upstream"] == "u1"
    assert len(tags[DATA_VERSION_TAG]) == 64  # computed: sha256 of code and inputs

    # The same code over the same inputs gives the same data version.
    dg.materialize([upstream, downstream], instance=instance)
    again = latest_tags(instance, "downstream")
    assert again is not None and again[DATA_VERSION_TAG] == tags[DATA_VERSION_TAG]


def test_input_data_version_of_an_observed_source_is_read_before_the_run(
    instance: dg.DagloomInstance,
) -> None:
    @dg.observable_source_asset
    def source() -> dg.DataVersion:
        return dg.DataVersion("s7")

    @dg.asset(deps=[source])
    def reader() -> dg.MaterializeResult:
        return dg.MaterializeResult(data_version="r1")

    dg.observe([source], instance=instance)
    dg.materialize([source, reader], instance=instance, selection=["reader"])

    tags = latest_tags(instance, "reader")
    assert tags is not None
    assert tags["dagster/input_data_version/source"] == "s7"
    assert tags[DATA_VERSION_TAG] == "r1"


def test_log_event_observation_keeps_its_tags(instance: dg.DagloomInstance) -> None:
    @dg.op
    def watcher(context: dg.OpExecutionContext) -> None:
        context.log_event(
            dg.AssetObservation("table", metadata={"n": 1}, tags={DATA_VERSION_TAG: "t9"})
        )

    @dg.job
    def watch() -> None:
        watcher()

    watch.execute_in_process(instance=instance)

    [record] = SyncInstance(instance).fetch_observations("table", limit=1).records
    assert record.asset_observation is not None
    assert record.asset_observation.data_version == "t9"


def test_a_key_with_dashes_and_dots_gets_a_valid_op_name(instance: dg.DagloomInstance) -> None:
    source = dg.SourceAsset(key=["s3", "raw-events.v2"], observe_fn=lambda: dg.DataVersion("1"))

    result = dg.observe([source], instance=instance)

    assert result.success
    [step] = {e.step_key for e in result.get_asset_observation_events()}
    assert step == "__observe_s3__raw_events_v2"


def test_a_multi_asset_observation_must_name_its_keys(instance: dg.DagloomInstance) -> None:
    @dg.multi_observable_source_asset(specs=[dg.AssetSpec("a"), dg.AssetSpec("b")])
    def vague() -> dg.DataVersion:
        return dg.DataVersion("1")

    result = dg.observe([vague], instance=instance, raise_on_error=False)

    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "observes 2 assets" in str(failure.step_failure_data.error)
