"""`dagloom asset materialize --partition / --partition-range` and `dagloom asset
partitions`: partitions checked before a run starts, one file per partition, and the status
the instance records."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dagloom.cli import app

DAILY = str(Path(__file__).resolve().parents[2] / "examples" / "daily_numbers.py")
runner = CliRunner(env={"COLUMNS": "200"})

pytestmark = pytest.mark.usefixtures("home")


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_a_partition_materializes_one_file_per_asset(home: Path) -> None:
    code, output = invoke(
        "asset",
        "materialize",
        "-f",
        DAILY,
        "--select",
        "generated_numbers,filtered_even_numbers,summed_even_numbers",
        "--partition",
        "2024-01-03",
    )
    assert code == 0, output
    assert (home / "storage" / "generated_numbers" / "2024-01-03").is_file()
    assert (home / "storage" / "summed_even_numbers" / "2024-01-03").is_file()


def test_an_unknown_partition_exits_2_naming_it() -> None:
    code, output = invoke(
        "asset",
        "materialize",
        "-f",
        DAILY,
        "--select",
        "generated_numbers",
        "--partition",
        "2024-02-30",
    )
    assert code == 2
    assert "'2024-02-30' is not a partition" in output


def test_a_reversed_range_exits_2() -> None:
    code, output = invoke(
        "asset",
        "materialize",
        "-f",
        DAILY,
        "--select",
        "generated_numbers",
        "--partition-range",
        "2024-01-05...2024-01-03",
    )
    assert code == 2
    assert "is reversed" in output


def test_partitions_shows_materialized_failed_and_missing() -> None:
    for day in ("2024-01-01", "2024-01-02"):
        code, output = invoke(
            "asset",
            "materialize",
            "-f",
            DAILY,
            "--select",
            "group:daily_numbers",
            "--partition",
            day,
        )
        assert code == 0, output
    # The trailing week reads days before the 5th that were never materialized: it fails.
    code, _ = invoke(
        "asset",
        "materialize",
        "-f",
        DAILY,
        "--select",
        "trailing_week_total",
        "--partition",
        "2024-01-05",
    )
    assert code == 1
    code, output = invoke("asset", "partitions", "-f", DAILY, "--select", "summed_two_sums")
    assert code == 0, output
    assert "2 materialized" in output
    assert "2024-01-01...2024-01-02 │ materialized" in output
    code, output = invoke("asset", "partitions", "-f", DAILY, "--select", "trailing_week_total")
    assert "1 failed" in output
    assert "2024-01-05              │ failed" in output


def test_partitions_of_an_unpartitioned_or_unknown_asset_exit_2() -> None:
    code, output = invoke("asset", "partitions", "-f", DAILY, "--select", "nope")
    assert code == 2 and "no asset 'nope'" in output


def test_checks_shows_the_recorded_results_of_an_assets_checks() -> None:
    code, output = invoke("asset", "checks", "--select", "summed_two_sums")
    assert code == 0 and "no check results" in output
    code, output = invoke(
        "asset",
        "materialize",
        "-f",
        DAILY,
        "--select",
        "group:daily_numbers",
        "--partition",
        "2024-01-01",
    )
    assert code == 0, output
    code, output = invoke("asset", "checks", "--select", "summed_two_sums")
    assert code == 0, output
    assert "total_is_positive" in output and "passed" in output and "2024-01-01" in output
    code, positional = invoke("asset", "checks", "summed_two_sums")
    assert code == 0 and "total_is_positive" in positional


def test_checks_takes_the_asset_once() -> None:
    code, output = invoke("asset", "checks", "a", "--select", "b")
    assert code == 2 and "one of them" in output
    code, output = invoke("asset", "checks")
    assert code == 2 and "KEY" in output


JOB = """
from datetime import datetime
import dagloom as dg

@dg.op(config_schema={"date": str})
def process_day(context):
    return context.op_config["date"]

@dg.daily_partitioned_config(start_date=datetime(2024, 1, 1))
def day_config(start, _end):
    return {"ops": {"process_day": {"config": {"date": start.strftime("%Y-%m-%d")}}}}

@dg.job(config=day_config)
def process_job():
    process_day()

defs = dg.Definitions(jobs=[process_job])
"""


def test_job_execute_a_partition_takes_the_partitioned_config(tmp_path: Path) -> None:
    source = tmp_path / "pjob.py"
    source.write_text(JOB)
    code, output = invoke(
        "job", "execute", "-f", str(source), "-j", "process_job", "--partition", "2024-01-05"
    )
    assert code == 0, output
    code, output = invoke(
        "job", "execute", "-f", str(source), "-j", "process_job", "--partition", "2023-01-05"
    )
    assert code == 2 and "'2023-01-05' is not a partition" in output
