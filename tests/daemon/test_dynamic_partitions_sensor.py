"""A sensor that adds dynamic partitions and requests runs for them, as Dagster's docs show:
the daemon adds the keys to the instance before it submits the runs, each tagged with its
partition; a delete request removes keys."""

from __future__ import annotations

from typing import Any, cast

import dagloom as dg
from dagloom.daemon.sensors import SensorLoop
from dagloom.definitions import Definitions
from dagloom.instance import DagloomInstance

from ._fakes import InProcessLocation, storing_coordinator

T0 = 1_800_000_000.0

fruits = dg.DynamicPartitionsDefinition(name="fruits")


@dg.asset(partitions_def=fruits)
def fruit(context: dg.AssetExecutionContext) -> str:
    return context.partition_key


fruit_job = dg.define_asset_job("fruit_job", selection=[fruit], partitions_def=fruits)


@dg.sensor(job=fruit_job, default_status=dg.DefaultSensorStatus.RUNNING)
def new_fruit(context: Any) -> dg.SensorResult:
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=k, partition_key=k) for k in ("apple", "pear")],
        dynamic_partitions_requests=[fruits.build_add_request(["apple", "pear"])],
    )


@dg.sensor(job=fruit_job, default_status=dg.DefaultSensorStatus.RUNNING)
def gone_fruit(context: Any) -> dg.SensorResult:
    return dg.SensorResult(dynamic_partitions_requests=[fruits.build_delete_request(["pear"])])


def loop(instance: DagloomInstance, coordinator: Any, defs: Definitions) -> SensorLoop:
    location = InProcessLocation("here", defs)
    return SensorLoop(instance, {"here": cast(Any, location)}, coordinator, owner="d")


async def test_a_sensor_adds_partitions_then_runs_them() -> None:
    defs = Definitions(assets=[fruit], jobs=[fruit_job], sensors=[new_fruit])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        await loop(instance, coord, defs).tick(T0)
        assert await instance.get_dynamic_partitions("fruits") == ["apple", "pear"]
        runs = await instance.get_runs()
        assert sorted(r.tags["dagster/partition"] for r in runs) == ["apple", "pear"]


async def test_a_sensor_deletes_partitions() -> None:
    defs = Definitions(assets=[fruit], jobs=[fruit_job], sensors=[gone_fruit])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        await instance.add_dynamic_partitions("fruits", ["apple", "pear"])
        await loop(instance, coord, defs).tick(T0)
        assert await instance.get_dynamic_partitions("fruits") == ["apple"]
        assert await instance.get_runs() == []


def test_a_sensor_result_refuses_other_objects_as_partition_requests() -> None:
    import pytest

    with pytest.raises(dg.DefinitionError, match="dynamic_partitions_requests"):
        dg.SensorResult(dynamic_partitions_requests=["apple"])
