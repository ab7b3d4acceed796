"""The web UI's routes: index.html at `/` and at every page's address, the hashed bundle
under `/_ui/` cached for good, and the API routes untouched."""

from __future__ import annotations

import re

from tests.webserver.conftest import Web


async def test_every_page_address_answers_the_ui(web: Web) -> None:
    for path in (
        "/",
        "/assets",
        "/assets/a/b",
        "/runs/some-run",
        "/jobs/numbers/x/launchpad",
        "/backfills",
        "/backfills/abc123",
    ):
        async with web.session.get(f"{web.url}{path}") as response:
            assert response.status == 200, path
            assert response.content_type == "text/html"
            assert response.headers["Cache-Control"] == "no-cache"
            assert '<div id="app"></div>' in await response.text()


async def test_the_bundle_is_served_and_cached_for_good(web: Web) -> None:
    async with web.session.get(f"{web.url}/") as response:
        index = await response.text()
    scripts = re.findall(r'(?:src|href)="(/_ui/[^"]+)"', index)
    assert any(s.endswith(".js") for s in scripts) and any(s.endswith(".css") for s in scripts)
    for src in scripts:
        async with web.session.get(f"{web.url}{src}") as response:
            assert response.status == 200, src
            assert "immutable" in response.headers["Cache-Control"]
            # Its gzip copy, to a client that accepts gzip (aiohttp's does).
            assert response.headers["Content-Encoding"] == "gzip"
            assert len(await response.read()) > 0
    async with web.session.get(f"{web.url}/_ui/missing.js") as response:
        assert response.status == 404


async def test_api_routes_are_not_the_ui(web: Web) -> None:
    async with web.session.get(f"{web.url}/health") as response:
        assert response.content_type == "application/json"
    data = await web.data("{ version }")
    assert data["version"]
