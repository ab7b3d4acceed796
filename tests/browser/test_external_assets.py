"""The UI on examples/external_assets.py: external assets are marked, and an asset whose
upstream external asset was reported after it shows as stale, with the cause on its page."""

from __future__ import annotations

import functools
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.topology import dev_topology
from dagloom.topology.wiring import RunningNode, run_node
from tests.browser.conftest import ROOT, Server, screenshot

EXAMPLE = ROOT / "examples" / "external_assets.py"


@pytest.fixture(scope="module")
def external_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started: dict[str, Any] = {}
    ready = threading.Event()
    stop: list[anyio.Event] = []
    token: list[Any] = []

    async def serve() -> None:
        topology = dev_topology(
            {"external": CodeOrigin(python_file=str(EXAMPLE))},
            grpc_port=None,
            api_port=None,
            reload_on_change=False,
            daemon=False,
            webserver_port=0,
        )
        stop.append(anyio.Event())
        token.append(anyio.lowlevel.current_token())
        try:
            with tempfile.TemporaryDirectory(prefix="dagloom-ui-ext-") as home:
                instance = DagloomInstance.from_config({"storage": {"memory": {}}}, home=home)
                async with instance, anyio.create_task_group() as tg:
                    node: RunningNode = await tg.start(
                        functools.partial(run_node, topology, "dev", instance=instance)
                    )
                    started["address"] = node.webserver_address
                    ready.set()
                    await stop[0].wait()
                    tg.cancel_scope.cancel()
        except BaseException as exc:
            started["error"] = exc
            raise
        finally:
            ready.set()

    thread = threading.Thread(target=lambda: anyio.run(serve), name="ext-node", daemon=True)
    thread.start()
    assert ready.wait(60), "the dev node did not start within 60 s"
    if "error" in started:
        raise started["error"]
    try:
        yield Server(f"http://{started['address']}")
    finally:
        anyio.from_thread.run_sync(stop[0].set, token=token[0])
        thread.join(30)


@pytest.fixture
def external_page(browser: Any, external_server: Server) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, base_url=external_server.url
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
        assert errors == [], f"the page raised: {errors}"
    finally:
        context.close()


def _report(server: Server, key: str) -> None:
    request = urllib.request.Request(
        f"{server.url}/report_asset_materialization/{key}", b"{}", method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_external_assets_are_marked_and_a_report_makes_downstream_stale(
    external_page: Any, external_server: Server
) -> None:
    page = external_page
    # The summary as if materialized, then a new load of the raw orders after it.
    _report(external_server, "orders_summary")
    _report(external_server, "raw_orders")

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
