"""The UI on examples/external_assets.py: external assets are marked, and an asset whose
upstream external asset was reported after it shows as stale, with the cause on its page."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import ROOT, Server, screenshot, serving

EXAMPLE = ROOT / "examples" / "external_assets.py"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """A dev node serving the external-assets example (the conftest's `page` opens it)."""
    with serving({"external": EXAMPLE}) as running:
        yield running


def _report(server: Server, key: str) -> None:
    request = urllib.request.Request(
        f"{server.url}/report_asset_materialization/{key}", b"{}", method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_external_assets_are_marked_and_a_report_makes_downstream_stale(
    page: Any, server: Server
) -> None:
    # The summary as if materialized, then a new load of the raw orders after it.
    _report(server, "orders_summary")
    _report(server, "raw_orders")

    page.goto("/")
    page.wait_for_selector("svg.graph-svg[data-drawn=true]")
    raw = page.locator("[data-node='raw_orders']")
    assert "External" in (raw.text_content() or "")
    summary = page.locator("[data-node='orders_summary'] rect.asset-stale")
    assert summary.count() == 1
    screenshot(page, "external-assets")

    page.goto("/assets/orders_summary")
    status = page.locator("td.stale-mark")
    status.wait_for()
    assert "stale" in status.inner_text()
    assert "raw_orders: has been updated" in status.inner_text()
