"""A run of a job with a partitioned config, submitted with only a `dagster/partition` tag (a
backfill's run, a launch from the UI's partition picker), takes that partition's run config
and tags from the code; the location snapshot says which partitions each job has."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
import orjson

import dagloom as dg
from dagloom.actors.code_location import partition_run_config, validate_run
from dagloom.actors.run_coordinator import submit_run
from dagloom.code.snapshot import location_snapshot
from dagloom.instance import DagloomInstance
from dagloom.messages import RunStatus
from dagloom.messages.rpc import SubmitRunRequest, ValidateRunRequest

from ._runs import definitions_stack, wait_for_end


@dg.op(config_schema={"date": str})
def process_day(context: dg.OpExecutionContext) -> str:
    return str(context.op_config["date"])


@dg.daily_partitioned_config(
    start_date=datetime(2024, 1, 1),
    end_offset=0,
    tags_for_partition_fn=lambda start, _end: {"weekday": start.strftime("%A")},
)
def day_config(start: datetime, _end: datetime) -> dict[str, Any]:
    return {"ops": {"process_day": {"config": {"date": start.strftime("%Y-%m-%d")}}}}


@dg.job(config=day_config)
def process_job() -> None:
    process_day()


@dg.job
def plain() -> None:
    process_day()


DEFS = dg.Definitions(jobs=[process_job, plain])
DAY_CONFIG = {"ops": {"process_day": {"config": {"date": "2024-01-03"}}}}


def test_a_partition_tag_picks_the_partitions_config_and_tags() -> None:
    derived = partition_run_config(process_job, "", {"dagster/partition": "2024-01-03"})
    assert derived is not None
    config_json, tags = derived
    assert orjson.loads(config_json) == DAY_CONFIG
    assert tags == {"weekday": "Wednesday"}


def test_no_partition_or_a_config_of_its_own_leaves_the_run_as_given() -> None:
    assert partition_run_config(process_job, "{}", {}) is None
    own = orjson.dumps({"ops": {"process_day": {"config": {"date": "x"}}}}).decode()
    assert partition_run_config(process_job, own, {"dagster/partition": "2024-01-03"}) is None
    assert partition_run_config(plain, "{}", {"dagster/partition": "2024-01-03"}) is None


def test_validation_returns_the_partitions_config_and_refuses_unknown_keys() -> None:
    reply = validate_run(
        DEFS, ValidateRunRequest(job_name="process_job", tags={"dagster/partition": "2024-01-03"})
    )
    assert reply.valid and reply.job_snapshot_id
    assert orjson.loads(reply.partition_run_config_json) == DAY_CONFIG
    assert dict(reply.partition_tags) == {"weekday": "Wednesday"}
    refused = validate_run(
        DEFS, ValidateRunRequest(job_name="process_job", tags={"dagster/partition": "2023-12-31"})
    )
    assert not refused.valid and "'2023-12-31'" in refused.error and "process_job" in refused.error


def test_the_snapshot_names_each_partitioned_jobs_partitions() -> None:
    snapshot = location_snapshot(DEFS, location_name="here", loaded_at=0.0)
    index = dict(snapshot.job_partitions_index)
    assert set(index) == {"process_job"}
    partitions = snapshot.partitions_defs[index["process_job"] - 1]
    assert partitions.type == "time_window" and partitions.keys[:2] == ["2024-01-01", "2024-01-02"]


async def test_a_submitted_partition_run_stores_and_runs_with_its_config() -> None:
    with anyio.fail_after(30):
        async with (
            DagloomInstance.ephemeral() as instance,
            definitions_stack(instance, DEFS) as coordinator,
        ):
            run = await submit_run(
                coordinator,
                SubmitRunRequest(job_name="process_job", tags={"dagster/partition": "2024-01-03"}),
            )
            ended = await wait_for_end(instance, run.run_id)
    assert ended.status == RunStatus.SUCCESS
    assert orjson.loads(ended.run_config_json) == DAY_CONFIG
    assert ended.tags["weekday"] == "Wednesday"
    assert ended.tags["dagster/partition"] == "2024-01-03"
