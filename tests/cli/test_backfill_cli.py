"""`dagloom backfill launch|list|show|cancel`: a backfill stored with its partitions and
runs per run, the partitions checked first, progress from the runs, cancel stopping it."""

from __future__ import annotations

import re
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


def launch(*extra: str) -> tuple[int, str]:
    return invoke("backfill", "launch", "-f", DAILY, "--select", "generated_numbers", *extra)


def test_launch_stores_a_backfill_the_list_and_show_report() -> None:
    code, output = launch("--partitions", "2024-01-01...2024-01-30")
    assert code == 0, output
    found = re.search(r"Backfill ([0-9a-f]{8}) requested: 30 partition\(s\)", output)
    assert found, output
    backfill_id = found.group(1)
    code, output = invoke("backfill", "list")
    assert code == 0 and backfill_id in output and "0/30" in output and "requested" in output
    code, output = invoke("backfill", "show", backfill_id)
    assert code == 0
    assert re.search(r"not submitted\s+│?\s*30", output), output
    code, output = invoke("backfill", "cancel", backfill_id)
    assert code == 0 and "canceled" in output
    code, output = invoke("backfill", "show", backfill_id)
    assert "canceled" in output


def test_bad_partitions_exit_2_naming_them() -> None:
    code, output = launch("--partitions", "2024-01-30...2024-01-01")
    assert code == 2 and "is reversed" in output
    code, output = launch("--partitions", "2024-01-01...2024-13-01")
    assert code == 2 and "'2024-13-01'" in output
    code, output = launch()
    assert code == 2 and "--partitions" in output


def test_from_failure_with_nothing_failed_has_nothing_to_do() -> None:
    code, output = launch("--all", "--from-failure")
    assert code == 2 and "no partitions" in output


def test_show_an_unknown_backfill_exits_1() -> None:
    code, output = invoke("backfill", "show", "nope")
    assert code == 1 and "no backfill 'nope'" in output


def test_a_job_with_partitioned_config_backfills_one_run_per_partition(tmp_path: Path) -> None:
    # Each run's config comes from the code when it is submitted (see
    # tests/actors/test_partitioned_config_runs.py).
    from tests.cli.test_partitions_cli import JOB

    source = tmp_path / "pjob.py"
    source.write_text(JOB)
    code, output = invoke(
        "backfill",
        "launch",
        "-f",
        str(source),
        "--job",
        "process_job",
        "--partitions",
        "2024-01-01...2024-01-03",
    )
    assert code == 0, output
    assert "3 partition(s) 2024-01-01...2024-01-03 in 3 run(s)" in output
    code, output = invoke(
        "backfill", "launch", "-f", str(source), "--job", "process_job", "--partitions", "x...y"
    )
    assert code == 2 and "'x'" in output
