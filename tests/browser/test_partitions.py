"""The partition UI in a browser against examples/daily_numbers.py: an asset's partition
status bar filling in as partitions are materialized, a range picked and launched as a
backfill, the backfill's page and its cancel, the Backfills list, and the launchpad's
partition picker.

The node runs without its daemon, so a launched backfill stays requested (nothing submits
it) until the test cancels it; the partitions the bar shows are materialized by runs
launched over GraphQL. (A daemon backfilling the example: tests/integration.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Server, screenshot, serving

DAILY = Path(__file__).resolve().parents[2] / "examples" / "daily_numbers.py"
RUN_TIMEOUT = 60_000
LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }"""


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """A dev node serving the daily example, without a daemon, on its own thread."""
    with serving({"daily": DAILY}) as running:
        yield running


def _materialize(server: Server, partition: str) -> None:
    data = server.graphql(
        LAUNCH,
        {
            "p": {
                "selector": {
                    "repositoryName": "__repository__",
                    "repositoryLocationName": "daily",
                    "jobName": "__ASSET_JOB",
                    "assetSelection": [{"path": ["generated_numbers"]}],
                },
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
            }
        },
    )
    assert data["launchRun"]["__typename"] == "LaunchRunSuccess", data


def test_the_bar_fills_in_and_a_picked_range_is_backfilled_then_canceled(
    page: Any, server: Server
) -> None:
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        _materialize(server, day)
    page.goto("/assets/generated_numbers")
    bar = page.locator("[data-testid=partitions]")
    bar.wait_for()
    # The bar reads the statuses again every few seconds, until the three runs are done.
    page.wait_for_selector(
        "[data-state=materialized][data-count='3']", timeout=RUN_TIMEOUT, state="attached"
    )
    first = page.locator(".pbar .seg").first
    assert first.get_attribute("class") == "seg materialized"
    assert first.get_attribute("data-first") == "2024-01-01"
    assert first.get_attribute("data-last") == "2024-01-03"
    assert page.locator(".pbar .seg.missing").count() == 1
    screenshot(page, "asset-partitions")

    # Two clicks on the bar pick a range; the fields show it.
    box = page.locator(".pbar").bounding_box()
    page.mouse.click(box["x"] + 1, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] - 1, box["y"] + box["height"] / 2)
    nodes = server.graphql(
        '{ assetNodes(assetKeys: [{path: ["generated_numbers"]}]) { partitionKeys } }'
    )["assetNodes"]
    total = len(nodes[0]["partitionKeys"])
    assert page.locator(".selected-range").inner_text() == f"{total} partition(s) selected"

    # A reversed range typed in is the same range; an unknown key is named.
    page.fill("input[name=from]", "2024-01-10")
    page.fill("input[name=to]", "2024-13-01")
    assert page.locator(".selected-range").inner_text() == 'no partition "2024-13-01"'
    page.fill("input[name=to]", "2024-01-04")
    assert page.locator(".selected-range").inner_text() == "7 partition(s) selected"
    page.click("text=Launch backfill")
    page.wait_for_url(re.compile(r"/backfills/[0-9a-f]+$"))
    backfill_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector(".backfill-counts")
    counts = page.locator(".backfill-counts").inner_text()
    assert "7 not submitted" in counts and "of 7" in counts
    assert "2024-01-04 … 2024-01-10 (7)" in page.locator("table.kv").inner_text()
    screenshot(page, "backfill")

    page.click("text=Cancel backfill")
    page.wait_for_selector(".status-canceled")
    assert page.locator("text=Cancel backfill").count() == 0
    stored = server.graphql(
        "query($id: String!) { partitionBackfillOrError(backfillId: $id) {"
        " ... on PartitionBackfill { status } } }",
        {"id": backfill_id},
    )
    assert stored["partitionBackfillOrError"]["status"] == "CANCELED"

    page.click("nav >> text=Backfills")
    page.wait_for_selector(f"tr[data-backfill='{backfill_id}'] .status-canceled")
    screenshot(page, "backfills")


def test_the_launchpad_picks_a_partition_for_a_partitioned_job(page: Any, server: Server) -> None:
    page.goto("/jobs/daily/process_day/launchpad")
    picker = page.locator("select[name=partition]")
    picker.wait_for()
    assert picker.locator("option").nth(1).get_attribute("value") is not None
    picker.select_option("2024-01-01")
    page.wait_for_function(
        "document.querySelector('textarea.tags-input').value.includes('dagster/partition=2024-01-01')"
    )
    tags = page.locator("textarea.tags-input").input_value()
    assert "dagster/partition_set=process_day_partition_set" in tags
    page.wait_for_selector("[data-valid=true]")
    screenshot(page, "launchpad-partition")
    page.click("text=Launch run")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+$"))
    page.wait_for_selector(".status-success", timeout=RUN_TIMEOUT)
    assert "dagster/partition: 2024-01-01" in page.locator(".tags").first.inner_text()
