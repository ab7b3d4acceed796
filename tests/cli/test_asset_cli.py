"""`dagloom asset list` and `dagloom asset materialize --select`: selections resolved
against the code's assets, and outputs kept in the instance for later subsets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dagloom.cli import app

NUMBERS = str(Path(__file__).resolve().parents[2] / "examples" / "numbers.py")
ALL_SIX = [
    "filtered_even_numbers",
    "filtered_odd_numbers",
    "generated_numbers",
    "summed_even_numbers",
    "summed_odd_numbers",
    "summed_two_sums",
]

runner = CliRunner(env={"COLUMNS": "200"})


pytestmark = pytest.mark.usefixtures("home")


def materialize(selection: str) -> tuple[int, str]:
    result = runner.invoke(app, ["asset", "materialize", "-f", NUMBERS, "--select", selection])
    return result.exit_code, result.output


def selected(output: str) -> list[str]:
    """The asset keys the command said it would materialize."""
    found = re.search(r"Materializing \d+ asset\(s\): (.*)", output)
    assert found, output
    return found.group(1).split(", ")


def test_a_group_materializes_its_six_assets(home: Path) -> None:
    code, output = materialize("group:numbers")

    assert code == 0, output
    assert selected(output) == ALL_SIX
    assert "6 asset(s) materialized" in output
    assert sorted(p.name for p in (home / "storage").iterdir()) == ALL_SIX


def test_star_selects_every_asset() -> None:
    code, output = materialize("*")

    assert code == 0, output
    assert selected(output) == ALL_SIX


def test_a_comma_separated_list_selects_those_keys() -> None:
    code, output = materialize("generated_numbers,filtered_even_numbers")

    assert code == 0, output
    assert selected(output) == ["filtered_even_numbers", "generated_numbers"]
    assert "2 asset(s) materialized" in output


def test_key_plus_selects_the_asset_and_its_children() -> None:
    code, output = materialize("generated_numbers+")

    assert code == 0, output
    assert selected(output) == [
        "filtered_even_numbers",
        "filtered_odd_numbers",
        "generated_numbers",
    ]


def test_a_sink_plus_selects_only_itself_and_loads_its_inputs_from_storage() -> None:
    assert materialize("group:numbers")[0] == 0

    code, output = materialize("summed_two_sums+")

    assert code == 0, output
    assert selected(output) == ["summed_two_sums"]
    assert "1 asset(s) materialized" in output


def test_plus_key_selects_the_asset_and_its_parents() -> None:
    assert materialize("group:numbers")[0] == 0

    code, output = materialize("+summed_two_sums")

    assert code == 0, output
    assert selected(output) == ["summed_even_numbers", "summed_odd_numbers", "summed_two_sums"]
    assert "3 asset(s) materialized" in output


def test_an_input_never_materialized_fails_the_step_naming_it() -> None:
    code, output = materialize("summed_two_sums")

    assert code == 1
    assert "summed_two_sums: " in output
    assert "summed_even_numbers" in output


def test_an_unknown_asset_exits_2_naming_it() -> None:
    code, output = materialize("no_such_asset")

    assert code == 2
    assert "no_such_asset" in output
    assert "unknown asset" in output


def test_an_unknown_group_exits_2_naming_it() -> None:
    code, output = materialize("group:letters")

    assert code == 2
    assert "letters" in output


def test_list_prints_assets_with_group_and_deps() -> None:
    result = runner.invoke(app, ["asset", "list", "-f", NUMBERS])

    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "summed_two_sums" in line)
    assert "numbers" in row
    assert "summed_even_numbers, summed_odd_numbers" in row
    for key in ALL_SIX:
        assert key in result.output
