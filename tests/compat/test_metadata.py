"""Metadata and observations, written as Dagster's metadata docs show: `MetadataValue.*`,
table schemas and records attached through `MaterializeResult`, `Output` and
`context.add_output_metadata`, `AssetObservation` logged with `context.log_event`; read back
from the run's events and from an instance's storage."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

import dagloom as dg

SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(
            "id",
            "int",
            description="order id",
            constraints=dg.TableColumnConstraints(nullable=False, unique=True),
        ),
        dg.TableColumn("customer", "string", tags={"pii": "true"}),
    ],
    constraints=dg.TableConstraints(other=["id > 0"]),
)

EVERY_KIND: dict[str, Any] = {
    "text": dg.MetadataValue.text("hello"),
    "url": dg.MetadataValue.url("https://example.com/orders"),
    "path": dg.MetadataValue.path(Path("/data/orders.csv")),
    "json": dg.MetadataValue.json({"a": [1, 2]}),
    "md": dg.MetadataValue.md("# Orders"),
    "int": dg.MetadataValue.int(3),
    "float": dg.MetadataValue.float(0.5),
    "bool": dg.MetadataValue.bool(True),
    "table": dg.MetadataValue.table(
        records=[dg.TableRecord({"id": 1, "customer": "ada"}), dg.TableRecord(id=2, customer=None)],
        schema=SCHEMA,
    ),
    "table_schema": dg.MetadataValue.table_schema(SCHEMA),
    "run": dg.MetadataValue.dagster_run("run-123"),
    "asset": dg.MetadataValue.asset(dg.AssetKey(["sales", "orders"])),
    "null": dg.MetadataValue.null(),
    "timestamp": dg.MetadataValue.timestamp(datetime(2024, 5, 1, 12, tzinfo=UTC)),
    "notebook": dg.MetadataValue.notebook("notebooks/orders.ipynb"),
}


@dg.asset
def orders() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=EVERY_KIND)


def test_every_metadata_kind_reads_back_as_it_was_written() -> None:
    result = dg.materialize([orders])
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata == EVERY_KIND
    assert all(isinstance(value, dg.MetadataValue) for value in metadata.values())
    assert isinstance(metadata["text"], dg.TextMetadataValue)
    assert metadata["text"].text == "hello"
    assert metadata["path"].value == "/data/orders.csv"
    assert metadata["json"].data == {"a": [1, 2]}
    assert metadata["run"].run_id == "run-123"
    assert metadata["asset"].asset_key == dg.AssetKey(["sales", "orders"])
    assert metadata["timestamp"].value == datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()
    assert metadata["null"].value is None
    table = metadata["table"]
    assert isinstance(table, dg.TableMetadataValue)
    assert [r.data for r in table.records] == [
        {"id": 1, "customer": "ada"},
        {"id": 2, "customer": None},
    ]
    assert table.schema == SCHEMA
    schema = metadata["table_schema"].schema
    assert schema.columns[0].constraints.unique
    assert not schema.columns[0].constraints.nullable
    assert schema.columns[1].tags == {"pii": "true"}
    assert schema.constraints.other == ("id > 0",)


def test_plain_values_are_typed_as_dagster_types_them() -> None:
    @dg.asset
    def counted() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            metadata={
                "rows": 3,
                "ratio": 0.25,
                "ok": False,
                "owner": "data",
                "dagster/column_schema": SCHEMA,
                "upstream": dg.AssetKey("raw"),
                "config": {"limit": 10},
                "nothing": None,
            }
        )

    (event,) = dg.materialize([counted]).get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["rows"] == dg.IntMetadataValue(3)
    assert metadata["ratio"] == dg.FloatMetadataValue(0.25)
    assert metadata["ok"] == dg.BoolMetadataValue(False)
    assert metadata["owner"] == dg.TextMetadataValue("data")
    assert metadata["dagster/column_schema"] == dg.TableSchemaMetadataValue(SCHEMA)
    assert metadata["upstream"] == dg.DagsterAssetMetadataValue(dg.AssetKey("raw"))
    assert metadata["config"] == dg.JsonMetadataValue({"limit": 10})
    assert metadata["nothing"] == dg.NullMetadataValue()


def test_add_output_metadata_and_output_metadata_reach_the_materialization() -> None:
    @dg.asset
    def preview(context: dg.AssetExecutionContext) -> list[int]:
        rows = [1, 2, 3]
        context.add_output_metadata(
            metadata={
                "num_records": len(rows),
                "preview": dg.MetadataValue.md("| n |\n|---|\n| 1 |"),
            }
        )
        return rows

    @dg.asset
    def wrapped() -> dg.Output[int]:
        return dg.Output(7, metadata={"sample": dg.MetadataValue.table([dg.TableRecord(n=7)])})

    result = dg.materialize([preview, wrapped])
    by_key = {
        e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert by_key[dg.AssetKey("preview")]["num_records"].value == 3
    assert by_key[dg.AssetKey("preview")]["preview"] == dg.MarkdownMetadataValue(
        "| n |\n|---|\n| 1 |"
    )
    sample = by_key[dg.AssetKey("wrapped")]["sample"]
    assert sample.records == (dg.TableRecord({"n": 7}),)
    assert sample.schema == dg.TableSchema([dg.TableColumn("n", "int")])
    assert result.output_for_node("wrapped") == 7


def test_asset_observation_logged_and_yielded_is_an_observation_event() -> None:
    @dg.op
    def observe_orders(context: dg.OpExecutionContext) -> None:
        context.log_event(
            dg.AssetObservation(asset_key="orders", metadata={"num_rows": 10, "source": "s3"})
        )

    @dg.op
    def observe_customers() -> Any:
        yield dg.AssetObservation(asset_key=["crm", "customers"], description="nightly count")
        yield dg.Output(None)

    @dg.job
    def observing() -> None:
        observe_orders()
        observe_customers()

    result = observing.execute_in_process()
    events = result.get_asset_observation_events()
    assert {e.asset_key for e in events} == {
        dg.AssetKey("orders"),
        dg.AssetKey(["crm", "customers"]),
    }
    first = next(e for e in events if e.asset_key == dg.AssetKey("orders"))
    assert first.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    assert first.is_asset_observation and not first.is_asset_materialization
    observation = first.asset_observation_data.asset_observation
    assert isinstance(observation, dg.AssetObservation)
    assert observation.metadata["num_rows"] == dg.IntMetadataValue(10)
    assert first.event_specific_data.asset_observation == observation
    with pytest.raises(AttributeError):
        _ = first.materialization
    assert result.get_asset_materialization_events() == []
    assert result.asset_materializations_for_node("observe_orders") == []


async def test_metadata_and_observations_are_stored_and_queried_from_the_instance(
    tmp_path: Path,
) -> None:
    @dg.asset
    def table_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        context.log_event(
            dg.AssetObservation(asset_key="table_asset", metadata={"seen": dg.MetadataValue.int(1)})
        )
        return dg.MaterializeResult(metadata=EVERY_KIND)

    job = dg.define_asset_job("store", selection=[table_asset])
    defs = dg.Definitions(assets=[table_asset], jobs=[job])
    with anyio.fail_after(60):
        async with dg.DagloomInstance.from_config(
            {"storage": {"sqlite": {}}}, home=tmp_path
        ) as instance:
            result = await defs.get_job_def("store").execute_in_process_async(instance=instance)
            assert result.success
            (record,) = await instance.get_materializations(["table_asset"])
            (observed,) = await instance.get_observations(["table_asset"])
            assert await instance.get_observations(["other"]) == []
    entry = dg.EventLogEntry.of(record)
    assert entry.asset_materialization is not None
    assert entry.asset_materialization.metadata == EVERY_KIND
    assert entry.asset_observation is None
    seen = dg.EventLogEntry.of(observed)
    assert seen.asset_materialization is None
    assert seen.asset_observation is not None
    assert seen.asset_observation.metadata == {"seen": dg.IntMetadataValue(1)}


async def test_observations_in_memory_storage_newest_first() -> None:
    @dg.op
    def observe(context: dg.OpExecutionContext) -> None:
        for n in range(3):
            context.log_event(dg.AssetObservation("gauge", metadata={"n": n}))

    @dg.job
    def gauge_job() -> None:
        observe()

    with anyio.fail_after(60):
        async with dg.DagsterInstance.ephemeral() as instance:
            await gauge_job.execute_in_process_async(instance=instance)
            records = await instance.get_observations(["gauge"], limit=2)
    values = [dg.EventLogEntry.of(r).asset_observation.metadata["n"].value for r in records]
    assert values == [2, 1]


def test_bad_metadata_values_name_what_is_wrong() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="column 'when'"):
        dg.TableRecord({"when": datetime.now(tz=UTC)})
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="no timezone"):
        dg.MetadataValue.timestamp(datetime(2024, 1, 1))
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="TableRecords"):
        dg.MetadataValue.table([{"a": 1}])  # type: ignore[list-item]
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="TableColumn name"):
        dg.TableColumn("")


def test_table_schema_from_name_type_dict() -> None:
    schema = dg.TableSchema.from_name_type_dict({"id": "int", "name": "string"})
    assert [(c.name, c.type) for c in schema.columns] == [("id", "int"), ("name", "string")]
    assert schema.columns[0].constraints == dg.TableColumnConstraints()
