"""`dagloom asset report-*`, `asset list` (stale column) and `asset show` on
examples/external_assets.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dagloom.cli import app

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "external_assets.py")
runner = CliRunner(env={"COLUMNS": "200"})

pytestmark = pytest.mark.usefixtures("home")


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def status_of(asset: str) -> str:
    output = run("asset", "list", "-f", EXAMPLE)
    row = next(line for line in output.splitlines() if f" {asset} " in line)
    return next(s for s in ("MISSING", "STALE", "FRESH") if s in row)


def test_a_reported_materialization_makes_the_downstream_asset_stale(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "raw_orders.json").write_text(json.dumps([{"amount": 5}, {"amount": 7}]))

    assert status_of("orders_summary") == "MISSING"
    run("asset", "report-materialization", "raw_orders", "--metadata", '{"rows": 2}')
    run("asset", "materialize", "-f", EXAMPLE, "--select", "orders_summary")
    assert status_of("orders_summary") == "FRESH"

    out = run(
        "asset",
        "report-materialization",
        "raw_orders",
        "--data-version",
        "8",
        "--description",
        "nightly load",
    )
    assert "Reported materialization of asset raw_orders" in out

    assert status_of("orders_summary") == "STALE"
    shown = run("asset", "show", "orders_summary", "-f", EXAMPLE)
    assert "status: STALE" in shown
    assert "orders_summary (raw_orders): has been updated" in shown


def test_list_shows_external_assets_and_show_names_their_kind() -> None:
    output = run("asset", "list", "-f", EXAMPLE)

    assert "raw_orders (external)" in output
    assert "exchange_rates (external)" in output
    assert "(external, observable)" in run("asset", "show", "exchange_rates", "-f", EXAMPLE)


def test_an_observed_change_of_rates_makes_priced_orders_stale(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rates.json").write_text('{"EUR": 1.1}')
    run("job", "execute", "-f", EXAMPLE, "-j", "observe_rates")
    run("asset", "materialize", "-f", EXAMPLE, "--select", "orders_summary,priced_orders")
    assert status_of("priced_orders") == "FRESH"

    (data / "rates.json").write_text('{"EUR": 1.2}')
    run("job", "execute", "-f", EXAMPLE, "-j", "observe_rates")

    assert status_of("priced_orders") == "STALE"
    assert "has a new data version" in run("asset", "show", "priced_orders", "-f", EXAMPLE)


def test_a_report_observation_and_check_are_recorded() -> None:
    run("asset", "report-observation", "raw_orders", "--data-version", "3")
    run("asset", "report-check", "raw_orders", "--check-name", "not_empty", "--failed")

    checks = run("asset", "checks", "--select", "raw_orders")
    assert "not_empty" in checks and "failed" in checks


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report-materialization", "raw_orders", "--metadata", "{nope"], "not valid JSON"),
        (["report-materialization", "raw_orders", "--metadata", "[1]"], "must be a JSON object"),
        (["report-materialization", "/"], "the asset key is empty"),
        (
            ["report-check", "raw_orders", "--check-name", "c", "--passed", "--severity", "BAD"],
            "severity must be ERROR or WARN",
        ),
    ],
)
def test_bad_reports_exit_2_naming_the_field(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["asset", *args])

    assert result.exit_code == 2
    assert message in result.output


def test_materializing_an_external_asset_is_refused() -> None:
    result = runner.invoke(app, ["asset", "materialize", "-f", EXAMPLE, "--select", "raw_orders"])

    assert result.exit_code == 2
    assert "external asset(s) ['raw_orders']" in result.output
    assert "report-materialization raw_orders" in result.output


def test_observe_runs_the_observation_functions(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rates.json").write_text('{"EUR": 1.1}')

    out = run("asset", "observe", "-f", EXAMPLE, "--select", "*")

    assert "Observing 1 asset(s): exchange_rates" in out
    assert "observed: data version" in run("asset", "show", "exchange_rates", "-f", EXAMPLE)
    refused = runner.invoke(app, ["asset", "observe", "-f", EXAMPLE, "--select", "raw_orders"])
    assert refused.exit_code == 2
    assert "not an observable source asset" in refused.output


def test_list_still_prints_when_the_instance_cannot_be_read(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "dagloom.yaml").write_text("storage: {nonsense: {}}\n")

    result = runner.invoke(app, ["asset", "list", "-f", EXAMPLE])

    assert result.exit_code == 0, result.output
    assert "stale status unknown" in result.output
    assert "orders_summary" in result.output


def test_a_report_error_names_the_asset_and_the_field() -> None:
    from dagloom.errors import AssetReportError
    from dagloom.execution.reporting import ReportKind, build_report, parse_asset_key

    key = parse_asset_key("warehouse/orders")
    with pytest.raises(AssetReportError, match="'warehouse/orders': unknown field") as caught:
        build_report(ReportKind.MATERIALIZATION, key, {"rows": 3})
    assert caught.value.asset_key == "warehouse/orders"


PARTITIONED = str(Path(__file__).with_name("partitioned_defs.py"))


def test_show_with_a_partition_gives_that_partitions_staleness() -> None:
    for partition in ("a", "b"):
        run("asset", "materialize", "-f", PARTITIONED, "--select", "*", "--partition", partition)
    run("asset", "materialize", "-f", PARTITIONED, "--select", "letters_up", "--partition", "b")
    fresh = run("asset", "show", "letters_down", "-f", PARTITIONED, "--partition", "a")
    assert "partition: a" in fresh and "status: FRESH" in fresh
    shown = run("asset", "show", "letters_down", "-f", PARTITIONED, "--partition", "b")
    assert "status: STALE" in shown
    assert "letters_down[b] (letters_up[b]): has a new data version" in shown
    missing = run("asset", "show", "letters_down", "-f", PARTITIONED, "--partition", "c")
    assert "status: MISSING" in missing
    refused = runner.invoke(
        app, ["asset", "show", "letters_down", "-f", PARTITIONED, "--partition", "z"]
    )
    assert refused.exit_code != 0 and "no partition 'z'" in refused.output
