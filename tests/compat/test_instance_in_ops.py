"""`context.instance` inside ops and assets, as Dagster's docs use it: reading an asset's
latest materialization, paging through materializations and observations, and reading and
adding dynamic partitions from a running step. The instance stays open across runs, as a
long-lived instance does; blocking calls run on a worker thread of the test's loop."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

import dagloom as dg


async def blocking(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


@dg.asset
def orders() -> int:
    return 3


@dg.asset(deps=[orders])
def order_report(context: dg.AssetExecutionContext) -> dict[str, object]:
    latest = context.instance.get_latest_materialization_event(dg.AssetKey("orders"))
    assert latest is not None and latest.asset_materialization is not None
    page = context.instance.fetch_materializations(dg.AssetKey("orders"), limit=1)
    return {
        "latest_run": latest.run_id,
        "page": [r.asset_materialization.asset_key for r in page.records],  # type: ignore[union-attr]
        "has_more": page.has_more,
    }


async def test_an_asset_reads_the_latest_materialization_of_another() -> None:
    async with dg.DagsterInstance.ephemeral() as instance:
        first = await blocking(dg.materialize_to_memory, [orders], instance=instance)
        await blocking(dg.materialize_to_memory, [orders], instance=instance)
        result = await blocking(
            dg.materialize_to_memory,
            [orders, order_report],
            instance=instance,
            selection=[order_report],
        )
    report = result.output_for_node("order_report")
    assert report["page"] == [dg.AssetKey("orders")]
    assert report["has_more"] is True
    assert report["latest_run"] != first.run_id


async def test_fetch_materializations_pages_with_the_cursor() -> None:
    seen: list[str] = []

    @dg.op
    def page_through(context: dg.OpExecutionContext) -> list[str]:
        cursor = None
        while True:
            page = context.instance.fetch_materializations("orders", limit=2, cursor=cursor)
            seen.extend(r.run_id for r in page.records)
            if not page.has_more:
                return seen
            cursor = page.cursor

    @dg.job
    def pager() -> None:
        page_through()

    async with dg.DagsterInstance.ephemeral() as instance:
        runs = [
            (await blocking(dg.materialize_to_memory, [orders], instance=instance)).run_id
            for _ in range(3)
        ]
        assert (await blocking(pager.execute_in_process, instance=instance)).success
    assert seen == list(reversed(runs))


async def test_observations_are_fetched() -> None:
    @dg.op
    def observe(context: dg.OpExecutionContext) -> None:
        context.log_event(dg.AssetObservation(asset_key="lake", metadata={"rows": 5}))

    @dg.job
    def watch() -> None:
        observe()

    @dg.op
    def read(context: dg.OpExecutionContext) -> int:
        records = context.instance.fetch_observations(dg.AssetKey("lake"), limit=5).records
        observation = records[0].asset_observation
        assert observation is not None
        return int(observation.metadata["rows"].value)

    @dg.job
    def reader() -> None:
        read()

    async with dg.DagsterInstance.ephemeral() as instance:
        await blocking(watch.execute_in_process, instance=instance)
        result = await blocking(reader.execute_in_process, instance=instance)
    assert result.output_for_node("read") == 5


def test_an_op_adds_dynamic_partitions() -> None:
    instance = dg.DagsterInstance.ephemeral()  # opened for this one run
    regions = dg.DynamicPartitionsDefinition(name="regions")

    @dg.op
    def discover(context: dg.OpExecutionContext) -> list[str]:
        context.instance.add_dynamic_partitions(regions.name, ["eu", "us"])
        context.instance.add_dynamic_partitions("regions", ["us", "apac"])
        return context.instance.get_dynamic_partitions("regions")

    @dg.job
    def discovery() -> None:
        discover()

    result = discovery.execute_in_process(instance=instance)
    assert result.output_for_node("discover") == ["eu", "us", "apac"]


def test_without_an_instance_the_error_says_how_to_give_one() -> None:
    @dg.op
    def needs_instance(context: dg.OpExecutionContext) -> None:
        context.instance.get_dynamic_partitions("regions")

    @dg.job
    def lonely() -> None:
        needs_instance()

    with pytest.raises(dg.DagsterInvalidInvocationError, match="execute_in_process"):
        lonely.execute_in_process()
    context = dg.build_op_context()
    with pytest.raises(dg.DagsterInvalidInvocationError, match="no instance"):
        _ = context.instance


async def test_fetch_takes_asset_records_filters() -> None:
    found: dict[str, int] = {}

    @dg.op
    def count(context: dg.OpExecutionContext) -> None:
        new = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("orders")), limit=10
        )
        old = context.instance.fetch_materializations(
            dg.EventRecordsFilter(
                event_type=dg.DagsterEventType.ASSET_MATERIALIZATION, asset_key="orders"
            ),
            limit=10,
        )
        found["new"], found["old"] = len(new.records), len(old.records)
        with pytest.raises(dg.DagsterInvalidInvocationError, match="asset_partitions"):
            context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key="orders", asset_partitions=["a"]), limit=1
            )

    @dg.job
    def counter() -> None:
        count()

    async with dg.DagsterInstance.ephemeral() as instance:
        await blocking(dg.materialize_to_memory, [orders], instance=instance)
        assert (await blocking(counter.execute_in_process, instance=instance)).success
    assert found == {"new": 1, "old": 1}


def test_instance_for_test_serves_several_blocking_runs() -> None:
    import asyncio

    with dg.instance_for_test() as instance:
        first = dg.materialize([orders], instance=instance)
        second = dg.materialize([orders, order_report], instance=instance)
        assert first.success and second.success
        report = second.output_for_node("order_report")
        assert report["page"] == [dg.AssetKey("orders")]
        stored = asyncio.run(instance.get_materializations(["orders"]))
        assert [r.event.run_id for r in stored if r.event] == [second.run_id, first.run_id]
    assert not instance.is_open


def test_instance_for_test_raises_what_opening_raised(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises((dg.DagloomError, OSError)), dg.instance_for_test(temp_dir=not_a_dir):
        pytest.fail("the block ran with an instance that did not open")


def test_a_step_reads_what_an_earlier_step_of_its_run_recorded() -> None:
    seen: list[str | None] = []

    @dg.asset(deps=[orders])
    def audit(context: dg.AssetExecutionContext) -> None:
        latest = context.instance.get_latest_materialization_event("orders")
        seen.append(latest.run_id if latest is not None else None)

    with dg.instance_for_test() as instance:
        result = dg.materialize([orders, audit], instance=instance)
    assert seen == [result.run_id]
