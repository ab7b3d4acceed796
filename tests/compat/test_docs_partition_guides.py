"""Samples from Dagster's partitions and asset checks guides, run as the docs show them with
only the import changed."""

from __future__ import annotations

from pathlib import Path

import pytest

import dagloom as dg


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Assets materialized here are stored under a temporary DAGLOOM_HOME."""
    monkeypatch.setenv("DAGLOOM_HOME", str(tmp_path / "home"))


# -- asset checks ---------------------------------------------------------------------------


@dg.asset
def orders() -> list[int]:
    return [1, 2]


@dg.asset_check(asset=orders, description="Check for null order ids")
def orders_id_has_no_nulls(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    context.log.info(f"checking {[spec.name for spec in context.check_specs]}")
    return dg.AssetCheckResult(passed=True, metadata={"checks": len(context.check_specs)})


def test_a_check_takes_an_asset_check_execution_context() -> None:
    defs = dg.Definitions(assets=[orders], asset_checks=[orders_id_has_no_nulls])
    result = defs.get_implicit_global_asset_job_def().execute_in_process()
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "orders_id_has_no_nulls" and evaluation.passed
    assert evaluation.metadata["checks"] == dg.MetadataValue.int(1)
