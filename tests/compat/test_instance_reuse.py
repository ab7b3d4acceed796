"""One instance used synchronously across several calls, as Dagster's docs and tests use
`DagsterInstance.ephemeral()`: dynamic partitions added and read without `await`, then
`materialize(partition_key=..., instance=instance)` more than once; the async API of the
same instance keeps working."""

from __future__ import annotations

import anyio
import pytest

import dagloom as dg
from dagloom.instance import DagloomInstance

fruits = dg.DynamicPartitionsDefinition(name="fruits")


@dg.asset(partitions_def=fruits)
def fruit_stock(context: dg.AssetExecutionContext) -> str:
    return f"stock of {context.partition_key}"


@dg.asset
def plain() -> int:
    return 1


def test_dynamic_partitions_then_materialize_twice_on_one_ephemeral_instance() -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("fruits", ["apple", "banana"])
    assert instance.get_dynamic_partitions("fruits") == ["apple", "banana"]
    assert instance.has_dynamic_partition("fruits", "apple")

    result = dg.materialize([fruit_stock], partition_key="apple", instance=instance)
    assert result.success
    assert result.output_for_node("fruit_stock") == "stock of apple"
    result = dg.materialize([fruit_stock], partition_key="banana", instance=instance)
    assert result.success

    # Both runs were recorded by the same instance, readable through its async API from
    # another event loop.
    keys = anyio.run(instance.get_materialized_partition_keys, ["fruit_stock"])
    assert keys == {"apple", "banana"}
    instance.delete_dynamic_partition("fruits", "banana")
    assert instance.get_dynamic_partitions("fruits") == ["apple"]
    instance.dispose()
    assert not instance.home.exists()
    with pytest.raises(dg.DagsterError, match="closed"):
        instance.get_dynamic_partitions("fruits")


def test_a_partition_not_added_is_refused_by_name() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("fruits", ["apple"])
        with pytest.raises(dg.DagsterError, match="cherry"):
            dg.materialize([fruit_stock], partition_key="cherry", instance=instance)


def test_materialize_without_partitions_reuses_the_instance() -> None:
    with DagloomInstance.ephemeral() as instance:
        for _ in range(2):
            assert dg.materialize([plain], instance=instance).success
        records = anyio.run(instance.get_materializations, ["plain"])
        assert len(records) == 2
    assert not instance.is_open


def test_a_bad_dynamic_partition_key_is_refused_synchronously() -> None:
    with dg.DagsterInstance.ephemeral() as instance, pytest.raises(dg.DagsterError, match="fruits"):
        instance.add_dynamic_partitions("fruits", ["a,b"])


async def test_the_async_api_still_awaits() -> None:
    async with DagloomInstance.ephemeral() as instance:
        await instance.add_dynamic_partitions("fruits", ["kiwi"])
        assert await instance.get_dynamic_partitions("fruits") == ["kiwi"]
        assert await instance.has_dynamic_partition("fruits", "kiwi")
        await instance.delete_dynamic_partition("fruits", "kiwi")
        assert await instance.get_dynamic_partitions("fruits") == []


async def test_async_with_on_an_instance_opened_for_synchronous_use_leaves_it_open() -> None:
    instance = DagloomInstance.ephemeral().open_in_background()
    try:
        async with instance:
            await instance.add_dynamic_partitions("fruits", ["fig"])
        assert instance.is_open
        assert await instance.get_dynamic_partitions("fruits") == ["fig"]
    finally:
        await anyio.to_thread.run_sync(instance.dispose)
    assert not instance.is_open


async def test_an_instance_entered_with_async_with_is_not_also_opened_in_the_background() -> None:
    async with DagloomInstance.ephemeral() as instance:
        with pytest.raises(dg.DagsterError, match="async with"):
            await anyio.to_thread.run_sync(instance.open_in_background)
