"""Browser tests: Debian's chromium, driven by Playwright for Python, against a dev node
serving examples/numbers.py and tests/integration/defs.py, with its webserver (and so the
UI) on a free port.

The node runs on its own thread and event loop, so the tests drive the browser with
Playwright's synchronous API. Screenshots of each page go to `ui-screenshots/` (git-ignored;
`DAGLOOM_UI_SCREENSHOTS` moves it), kept as CI artifacts.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.topology import dev_topology
from dagloom.topology.wiring import RunningNode, run_node

ROOT = Path(__file__).resolve().parents[2]
NUMBERS = ROOT / "examples" / "numbers.py"
EXTRA = ROOT / "tests" / "integration" / "defs.py"
"""A second code location: a job that fails, one that runs until canceled, one with config."""
PRINTING = Path(__file__).resolve().parent / "printing_defs.py"
"""A third code location: a job whose op prints to stdout and stderr."""
CHROMIUM = os.environ.get("DAGLOOM_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("DAGLOOM_UI_SCREENSHOTS", ROOT / "ui-screenshots"))
STATIC_INDEX = ROOT / "src" / "dagloom" / "webserver" / "static" / "index.html"


def _browser_available() -> str | None:
    """Why the browser tests cannot run here, or None. In CI they must run."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    reason = _browser_available()
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.browser)
        if reason is not None:
            if os.environ.get("CI"):
                raise pytest.UsageError(f"browser tests must run in CI: {reason}")
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Server:
    """The dev node on its thread: the webserver's base URL and a GraphQL helper."""

    url: str
    instance: Any = None  # the node's instance, on the node's event loop (`token`)
    token: Any = None

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", body, {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            result: dict[str, Any] = json.loads(response.read())
        assert "errors" not in result, result["errors"]
        data: dict[str, Any] = result["data"]
        return data

    def launch(self, location: str, job: str, assets: list[str] | None = None) -> str:
        """Launch `job` of `location` over GraphQL (with an asset selection, when given);
        its run id."""
        selector: dict[str, Any] = {
            "repositoryName": "__repository__",
            "repositoryLocationName": location,
            "jobName": job,
        }
        if assets is not None:
            selector["assetSelection"] = [{"path": a.split("/")} for a in assets]
        data = self.graphql(
            """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
              __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }""",
            {"p": {"selector": selector}},
        )
        assert data["launchRun"]["__typename"] == "LaunchRunSuccess", data
        run_id: str = data["launchRun"]["run"]["runId"]
        return run_id


@contextmanager
def serving(
    locations: Mapping[str, Path],
    config: Mapping[str, Any] | None = None,
    prepare: Callable[[DagloomInstance], Awaitable[None]] | None = None,
) -> Iterator[Server]:
    """A dev node serving `locations` (name -> definitions file) on its own thread, with
    its webserver on a free port, over an instance of `config` (default: in memory) in a
    temporary home. `prepare` runs on the instance before the node starts (to store tokens,
    say). Stops the node on exit."""
    started: dict[str, Any] = {}
    ready = threading.Event()
    stop: list[anyio.Event] = []
    loop_token: list[Any] = []

    async def serve() -> None:
        topology = dev_topology(
            {name: CodeOrigin(python_file=str(path)) for name, path in locations.items()},
            grpc_port=None,
            api_port=None,
            reload_on_change=False,
            daemon=False,
            webserver_port=0,
        )
        stop.append(anyio.Event())
        loop_token.append(anyio.lowlevel.current_token())
        try:
            # A home, so steps' stdout/stderr are captured (the ephemeral instance captures
            # nothing).
            with tempfile.TemporaryDirectory(prefix="dagloom-ui-") as home:
                instance = DagloomInstance.from_config(
                    dict(config or {"storage": {"memory": {}}}), home=home
                )
                async with instance, anyio.create_task_group() as tg:
                    if prepare is not None:
                        await prepare(instance)
                    node: RunningNode = await tg.start(
                        functools.partial(run_node, topology, "dev", instance=instance)
                    )
                    started["address"] = node.webserver_address
                    started["instance"] = instance
                    ready.set()
                    await stop[0].wait()
                    tg.cancel_scope.cancel()
        except BaseException as exc:
            started["error"] = exc
            raise
        finally:
            ready.set()

    thread = threading.Thread(target=lambda: anyio.run(serve), name="dev-node", daemon=True)
    thread.start()
    assert ready.wait(60), "the dev node did not start within 60 s"
    if "error" in started:
        raise started["error"]
    try:
        yield Server(f"http://{started['address']}", started["instance"], loop_token[0])
    finally:
        anyio.from_thread.run_sync(stop[0].set, token=loop_token[0])
        thread.join(30)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serving({"numbers": NUMBERS, "extra": EXTRA, "printing": PRINTING}) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    assert STATIC_INDEX.is_file(), f"{STATIC_INDEX} is missing: `npm ci && npm run build` in ui/"
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=server.url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
        assert errors == [], f"the page raised: {errors}"
    finally:
        context.close()


def screenshot(page: Any, name: str) -> None:
    """Save the page as ui-screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
