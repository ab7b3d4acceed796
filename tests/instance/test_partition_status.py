"""Partition status: the pure fold over the materialization index and the runs, and the
instance answering it for a daily asset (10,000 partitions from the index), dynamic
partitions kept by the instance."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import dagloom as dg
from dagloom.instance import DagloomInstance
from dagloom.instance.partition_status import PartitionRun, PartitionState, fold_partition_status
from dagloom.messages import RunStatus
from dagloom.storage.base import PartitionMaterialization

KEYS = ["a", "b", "c", "d", "e"]


def test_fold_decides_each_state() -> None:
    status = fold_partition_status(
        KEYS,
        {"a": PartitionMaterialization(1, "r1"), "b": PartitionMaterialization(2, "r1")},
        [
            PartitionRun("r2", RunStatus.FAILURE, 5.0, ["b", "c"]),
            PartitionRun("r3", RunStatus.STARTED, 6.0, ["d"]),
            PartitionRun("r0", RunStatus.FAILURE, 0.5, ["a"]),  # failed before r1 fixed it
        ],
        {"r1": 1.0},
    )
    assert status.materialized == ["a"]
    assert status.failed == ["b", "c"]
    assert status.in_progress == ["d"]
    assert status.missing == ["e"]
    assert status.ranges() == [
        ("a", "a", PartitionState.MATERIALIZED),
        ("b", "c", PartitionState.FAILED),
        ("d", "d", PartitionState.IN_PROGRESS),
        ("e", "e", PartitionState.MISSING),
    ]


@given(
    st.dictionaries(st.sampled_from(KEYS), st.integers(1, 100)),
    st.lists(
        st.tuples(
            st.sampled_from([RunStatus.FAILURE, RunStatus.STARTED, RunStatus.SUCCESS]),
            st.lists(st.sampled_from(KEYS)),
        )
    ),
)
def test_fold_gives_every_key_one_state(done: dict[str, int], runs: list) -> None:
    status = fold_partition_status(
        KEYS,
        {k: PartitionMaterialization(v, f"m{v}") for k, v in done.items()},
        [PartitionRun(f"r{i}", s, float(i), keys) for i, (s, keys) in enumerate(runs)],
        {},
    )
    assert sorted(status.states) == sorted(KEYS)
    assert sum(status.counts().values()) == len(KEYS)
    for key in status.missing:
        assert key not in done


async def test_instance_answers_partition_status(tmp_path: Path) -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-06")

    @dg.asset(partitions_def=daily)
    def days(context: dg.AssetExecutionContext) -> str:
        if context.partition_key == "2024-01-04":
            raise ValueError("no data for the 4th")
        return context.partition_key

    io = {"io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path))}
    async with DagloomInstance.ephemeral() as instance:
        for key in ("2024-01-01", "2024-01-02", "2024-01-04"):
            job = dg.define_asset_job("j").resolve([days], resource_defs=io)
            await job.execute_in_process_async(
                instance=instance, partition_key=key, raise_on_error=False
            )
        status = await instance.get_partition_status(["days"], daily)
        assert status.materialized == ["2024-01-01", "2024-01-02"]
        assert status.failed == ["2024-01-04"]
        assert status.missing == ["2024-01-03", "2024-01-05"]


async def test_ten_thousand_partitions_answer_from_the_index(tmp_path: Path) -> None:
    daily = dg.DailyPartitionsDefinition(start_date="1990-01-01", end_date="2017-05-19")
    keys = daily.get_partition_keys()
    assert len(keys) == 10000
    from tests.storage.contract import materialization

    async with DagloomInstance.open(tmp_path) as instance:  # SQLite
        await instance.event_log_storage.store_events(
            [materialization("r1", ["days"], partition=k) for k in keys[::2]]
        )
        status = await instance.get_partition_status(["days"], daily)
        assert len(status.materialized) == 5000 and len(status.missing) == 5000


async def test_dynamic_partitions_live_in_the_instance(tmp_path: Path) -> None:
    fruits = dg.DynamicPartitionsDefinition(name="fruits")

    @dg.asset(partitions_def=fruits)
    def fruit(context: dg.AssetExecutionContext) -> str:
        return context.partition_key.upper()

    io = {"io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path))}
    async with DagloomInstance.ephemeral() as instance:
        await instance.add_dynamic_partitions("fruits", ["apple", "pear"])
        assert await instance.get_dynamic_partitions("fruits") == ["apple", "pear"]
        assert await instance.has_dynamic_partition("fruits", "pear")
        job = dg.define_asset_job("j").resolve([fruit], resource_defs=io)
        result = await job.execute_in_process_async(instance=instance, partition_key="pear")
        assert result.output_for_node("fruit") == "PEAR"
        with pytest.raises(dg.DagsterUnknownPartitionError, match="kiwi"):
            await job.execute_in_process_async(instance=instance, partition_key="kiwi")
        await instance.delete_dynamic_partition("fruits", "pear")
        assert await instance.get_dynamic_partitions("fruits") == ["apple"]
        with pytest.raises(dg.DagsterInvalidDefinitionError, match="reserved"):
            await instance.add_dynamic_partitions("fruits", ["a|b"])
