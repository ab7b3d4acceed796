"""The asset graph marks each asset's status and redraws it as runs go: missing, then
materialized, stale once a parent is newer, failed when its run fails, in progress while a
run targets it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Server, screenshot, serving

STATES = Path(__file__).resolve().parent / "states_defs.py"
RUN_TIMEOUT = 60_000


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serving({"states": STATES}) as running:
        yield running


def _wait_for_status(page: Any, asset: str, status: str) -> None:
    page.wait_for_selector(
        f"[data-node='{asset}'] rect[data-status='{status}']", timeout=RUN_TIMEOUT
    )


def test_statuses_are_marked_and_redrawn_as_runs_end(page: Any, server: Server) -> None:
    page.goto("/assets")
    page.wait_for_selector("svg.graph-svg[data-drawn=true]")
    for asset in ("source", "derived", "broken", "endless"):
        _wait_for_status(page, asset, "missing")
    assert page.locator("[data-node=derived] .node-sub").text_content() == "Never materialized"

    # The page stays open: each mark below arrives without a reload.
    server.launch("states", "__ASSET_JOB", ["source", "derived"])
    _wait_for_status(page, "source", "materialized")
    _wait_for_status(page, "derived", "materialized")

    server.launch("states", "__ASSET_JOB", ["source"])
    _wait_for_status(page, "derived", "stale")
    assert page.locator("[data-node=derived] .node-sub").text_content().startswith("Stale · ")
    _wait_for_status(page, "source", "materialized")

    server.launch("states", "__ASSET_JOB", ["broken"])
    _wait_for_status(page, "broken", "failed")

    endless = server.launch("states", "__ASSET_JOB", ["endless"])
    _wait_for_status(page, "endless", "in-progress")
    screenshot(page, "asset-states")
    data = server.graphql(
        "mutation($id: String!) { terminateRun(runId: $id) { __typename } }", {"id": endless}
    )
    assert data["terminateRun"]["__typename"] == "TerminateRunSuccess"
    _wait_for_status(page, "endless", "missing")
