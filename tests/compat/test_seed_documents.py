"""The code samples of Dagster's architecture write-up (ops and a job, assets and an asset
job, schedules, a sensor, Definitions with configured resources, and a job's executor_def),
written with `import dagloom as dg`; the ops/assets/schedules/sensor samples are
`examples/numbers.py` (tests/execution/test_seed_example.py). The S3 IO manager and the
Kubernetes executor of the write-up are stood in for by the filesystem IO manager and the
multiprocess executor."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagloom.code.loader import load_definitions
from dagloom.definitions.asset_key import AssetKey
from dagloom.execution.multiprocess import close_pools
from dagloom.execution.origin import resolve_job

SAMPLES = """
import dagloom as dg
from dagloom import (
    AssetSelection,
    Definitions,
    ScheduleDefinition,
    asset,
    define_asset_job,
    job,
    multiprocess_executor,
    op,
)


@op(description="Generate a list of numbers from 1 to 10")
def generate_numbers():
    return list(range(1, 11))


@op(description="Filter even numbers from the list")
def filter_even_numbers(numbers):
    return [num for num in numbers if num % 2 == 0]


@op(description="Calculate the sum of the given list of even numbers")
def sum_even_numbers(numbers):
    return sum(numbers)


@job(executor_def=multiprocess_executor)
def process_numbers():
    sum_even_numbers(filter_even_numbers(generate_numbers()))


@asset(group_name="numbers", kinds=["python"])
def generated_numbers():
    return list(range(1, 11))


@asset(group_name="numbers", kinds=["python"])
def summed_numbers(generated_numbers):
    return sum(generated_numbers)


process_numbers_asset_mp = define_asset_job(
    name="process_numbers_asset_mp",
    selection=AssetSelection.groups("numbers"),
    executor_def=multiprocess_executor,
)

process_numbers_every_minute = ScheduleDefinition(job=process_numbers, cron_schedule="* * * * *")


@dg.resource(config_schema={"endpoint_url": str, "use_ssl": bool, "aws_access_key_id": str})
def s3_resource(context):
    return dict(context.resource_config)


def get_io_manager():
    return {
        "io_manager": dg.fs_io_manager.configured({"base_dir": IO_MANAGER_BASE_DIR}),
        "s3": s3_resource.configured({
            "endpoint_url": "http://minio.minio:9000",
            "use_ssl": False,
            "aws_access_key_id": "root",
        }),
    }


defs = Definitions(
    assets=[generated_numbers, summed_numbers],
    jobs=[process_numbers, process_numbers_asset_mp],
    schedules=[process_numbers_every_minute],
    resources=get_io_manager(),
)
"""


@pytest.fixture(autouse=True, scope="module")
def _close_warm_pools() -> Iterator[None]:
    yield None
    close_pools()


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    path = tmp_path / "architecture_samples.py"
    base = tmp_path / "io"
    path.write_text(f"IO_MANAGER_BASE_DIR = {str(base)!r}\n" + textwrap.dedent(SAMPLES))
    return path


def test_a_job_with_executor_def_runs_in_step_processes_with_configured_resources(
    samples: Path,
) -> None:
    defs = load_definitions(python_file=samples)
    job = defs.get_job_def("process_numbers")
    assert job.executor_def.name == "multiprocess"
    result = job.execute_in_process()
    assert result.success
    assert result.output_for_node("sum_even_numbers") == 30
    assert (samples.parent / "io").is_dir()


def test_an_asset_job_keeps_its_executor_def_over_its_assets_and_a_subset(
    samples: Path,
) -> None:
    defs = load_definitions(python_file=samples)
    job = defs.get_job_def("process_numbers_asset_mp")
    assert job.executor_def.name == "multiprocess"
    result = job.execute_in_process()
    assert result.success
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [
        AssetKey("generated_numbers"),
        AssetKey("summed_numbers"),
    ]
    every = resolve_job(
        defs,
        "process_numbers_asset_mp",
        [AssetKey("generated_numbers"), AssetKey("summed_numbers")],
    )
    assert every is job
    subset = resolve_job(defs, "process_numbers_asset_mp", [AssetKey("summed_numbers")])
    assert subset.executor_def.name == "multiprocess"
    assert set(subset.asset_layer.asset_keys) == {AssetKey("summed_numbers")}  # type: ignore[union-attr]
