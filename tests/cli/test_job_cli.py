"""`dagloom job list` and `dagloom job execute`: loading code, run config, exit codes, and
the run recorded in the instance."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from dagloom.cli import app
from dagloom.instance import DagloomInstance
from dagloom.messages import Run, RunStatus

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NUMBERS = str(EXAMPLES / "numbers.py")
NUMBER_STEPS = [
    "generate_numbers",
    "filter_even_numbers",
    "filter_odd_numbers",
    "sum_even_numbers",
    "sum_odd_numbers",
    "sum_two_sums",
]

runner = CliRunner(env={"COLUMNS": "200"})


pytestmark = pytest.mark.usefixtures("home")


def write(directory: Path, name: str, source: str) -> str:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return str(path)


def stored_runs(home: Path) -> list[Run]:
    async def main() -> list[Run]:
        async with DagloomInstance.open(home) as instance:
            return await instance.get_runs()

    return anyio.run(main)


FAILING = """
    import dagloom as dg

    @dg.op
    def start():
        return 1

    @dg.op
    def explode(value):
        raise ValueError(f"cannot handle {value}")

    @dg.op
    def after(value):
        return value

    @dg.op
    def fine(value):
        return value

    @dg.job
    def fragile():
        value = start()
        after(explode(value))
        fine(value)
"""

CONFIGURED = """
    import dagloom as dg

    class LimitConfig(dg.Config):
        limit: int
        label: str = "n"

    @dg.op
    def limited(config: LimitConfig):
        print(f"limit is {config.limit}")
        return config.limit

    @dg.job
    def with_config():
        limited()
"""


def test_executes_the_numbers_job_and_records_the_run(home: Path) -> None:
    result = runner.invoke(app, ["job", "execute", "-f", NUMBERS, "-j", "process_numbers"])

    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output
    for step in NUMBER_STEPS:
        assert step in result.output
    runs = stored_runs(home)
    assert [(r.job_name, r.status) for r in runs] == [("process_numbers", RunStatus.SUCCESS)]
    assert runs[0].run_id in result.output


def test_output_is_plain_when_not_on_a_terminal() -> None:
    result = runner.invoke(app, ["job", "execute", "-f", NUMBERS, "-j", "process_numbers"])

    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.output
    assert "✓ sum_two_sums succeeded" in result.output


def test_a_failing_op_exits_1_naming_the_step_and_its_error(tmp_path: Path, home: Path) -> None:
    path = write(tmp_path, "fragile.py", FAILING)

    result = runner.invoke(app, ["job", "execute", "-f", path, "-j", "fragile"])

    assert result.exit_code == 1, result.output
    assert "explode: ValueError: cannot handle 1" in result.output
    assert "after skipped" in result.output
    assert "failed" in result.output
    runs = stored_runs(home)
    assert [(r.job_name, r.status) for r in runs] == [("fragile", RunStatus.FAILURE)]


def test_an_unknown_job_exits_2_listing_the_jobs() -> None:
    result = runner.invoke(app, ["job", "execute", "-f", NUMBERS, "-j", "nope"])

    assert result.exit_code == 2
    assert "no job named 'nope'" in result.output
    assert "process_numbers, process_numbers_asset" in result.output


def test_bad_run_config_exits_2_with_the_key_path_and_file(tmp_path: Path, home: Path) -> None:
    path = write(tmp_path, "configured.py", CONFIGURED)
    good = write(tmp_path, "good.yaml", "ops: {limited: {config: {limit: 3}}}\n")
    bad = write(tmp_path, "bad.yaml", "ops: {limited: {config: {limit: many}}}\n")

    result = runner.invoke(
        app, ["job", "execute", "-f", path, "-j", "with_config", "-c", good, "-c", bad]
    )

    assert result.exit_code == 2, result.output
    assert f"ops.limited.config.limit (in {bad})" in result.output
    assert not stored_runs(home)


def test_an_unknown_key_in_config_json_is_reported_as_coming_from_it(tmp_path: Path) -> None:
    path = write(tmp_path, "configured.py", CONFIGURED)
    good = write(tmp_path, "good.yaml", "ops: {limited: {config: {limit: 3}}}\n")

    result = runner.invoke(
        app,
        [
            "job",
            "execute",
            "-f",
            path,
            "-j",
            "with_config",
            "-c",
            good,
            "--config-json",
            '{"ops": {"limited": {"config": {"typo": 1}}}}',
        ],
    )

    assert result.exit_code == 2, result.output
    assert "ops.limited.config.typo (in --config-json)" in result.output


def test_missing_required_config_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "configured.py", CONFIGURED)

    result = runner.invoke(app, ["job", "execute", "-f", path, "-j", "with_config"])

    assert result.exit_code == 2
    assert "ops.limited.config.limit" in result.output


def test_later_config_files_and_json_override_earlier_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "configured.py", CONFIGURED)
    first = write(tmp_path, "first.yaml", "ops: {limited: {config: {limit: 3}}}\n")
    second = write(tmp_path, "second.yaml", "ops: {limited: {config: {limit: 4}}}\n")

    from_files = runner.invoke(
        app, ["job", "execute", "-f", path, "-j", "with_config", "-c", first, "-c", second]
    )
    from_json = runner.invoke(
        app,
        [
            "job",
            "execute",
            "-f",
            path,
            "-j",
            "with_config",
            "-c",
            first,
            "--config-json",
            '{"ops": {"limited": {"config": {"limit": 5}}}}',
        ],
    )

    assert from_files.exit_code == 0, from_files.output
    assert "limit is 4" in from_files.output
    assert from_json.exit_code == 0, from_json.output
    assert "limit is 5" in from_json.output


def test_a_config_file_that_is_not_yaml_exits_2_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "configured.py", CONFIGURED)
    broken = write(tmp_path, "broken.yaml", "ops: [unclosed\n")

    result = runner.invoke(app, ["job", "execute", "-f", path, "-j", "with_config", "-c", broken])

    assert result.exit_code == 2
    assert broken in result.output


def test_tags_are_stored_on_the_run(home: Path) -> None:
    result = runner.invoke(
        app,
        [
            "job",
            "execute",
            "-f",
            NUMBERS,
            "-j",
            "process_numbers",
            "--tags",
            '{"team": "data", "attempt": 2}',
        ],
    )

    assert result.exit_code == 0, result.output
    (run,) = stored_runs(home)
    assert run.tags["team"] == "data"
    assert run.tags["attempt"] == "2"
    assert run.tags["domain"] == "numbers"  # the job's own tags are kept


def test_tags_that_are_not_a_json_object_exit_2() -> None:
    result = runner.invoke(
        app, ["job", "execute", "-f", NUMBERS, "-j", "process_numbers", "--tags", "[1]"]
    )

    assert result.exit_code == 2
    assert "--tags must be a JSON object" in result.output


def test_code_that_does_not_load_exits_2_with_its_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", "import dagloom\nraise RuntimeError('no database')\n")

    result = runner.invoke(app, ["job", "execute", "-f", path, "-j", "anything"])

    assert result.exit_code == 2
    assert f"could not load {path}: RuntimeError: no database" in result.output
    assert "Traceback (most recent call last):" in result.output


def test_a_file_or_a_module_is_required() -> None:
    result = runner.invoke(app, ["job", "execute", "-j", "process_numbers"])

    assert result.exit_code == 2
    assert "-f/--python-file" in result.output


def test_executes_a_job_from_a_module(tmp_path: Path) -> None:
    write(tmp_path, "my_location_for_cli.py", FAILING)

    result = runner.invoke(
        app,
        ["job", "execute", "-m", "my_location_for_cli", "-d", str(tmp_path), "-j", "fragile"],
    )

    assert result.exit_code == 1
    assert "explode" in result.output


def test_without_dagloom_home_runs_are_recorded_under_dot_dagloom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGLOOM_HOME")
    monkeypatch.chdir(tmp_path)

    result = runner.invoke(app, ["job", "execute", "-f", NUMBERS, "-j", "process_numbers"])

    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["run", "list"])
    assert listed.exit_code == 0, listed.output
    assert "process_numbers" in listed.output
    assert (tmp_path / ".dagloom").is_dir()


def test_list_prints_the_jobs() -> None:
    result = runner.invoke(app, ["job", "list", "-f", NUMBERS])

    assert result.exit_code == 0, result.output
    assert "process_numbers " in result.output
    assert "process_numbers_asset" in result.output
    assert "Process numbers" in result.output


INSTANCE_READER = """
    import dagloom as dg

    @dg.asset
    def orders():
        return 3

    @dg.asset(deps=[orders])
    def report(context):
        context.instance.add_dynamic_partitions("regions", ["eu"])
        latest = context.instance.get_latest_materialization_event("orders")
        context.log.info(f"regions {context.instance.get_dynamic_partitions('regions')}")
        context.log.info(f"orders from run {latest.run_id}")

    defs = dg.Definitions(
        assets=[orders, report], jobs=[dg.define_asset_job("all", selection="*")]
    )
"""


def test_ops_reach_the_instance_through_the_context(tmp_path: Path, home: Path) -> None:
    source = write(tmp_path, "reader.py", INSTANCE_READER)
    first = runner.invoke(app, ["job", "execute", "-f", source, "-j", "all"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["job", "execute", "-f", source, "-j", "all"])
    assert second.exit_code == 0, second.output
    run_id = stored_runs(home)[0].run_id
    logs = runner.invoke(app, ["run", "logs", run_id])
    assert "regions ['eu']" in logs.output
    # The step reads the materialization an earlier step of its own run recorded.
    assert f"orders from run {run_id}" in logs.output
