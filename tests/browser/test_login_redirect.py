"""With auth on, a signed-out browser goes to `/login?next=<page>` and comes back after
signing in: asked for a page by the server, and by the UI when GraphQL refuses it (its login
cookie gone while the UI is open)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dagloom.auth import Role, new_token
from dagloom.instance import DagloomInstance
from dagloom.topology.security import token_storage
from tests.browser.conftest import NUMBERS, Server, serving

TOKENS: dict[str, str] = {}


async def _store_viewer(instance: DagloomInstance) -> None:
    stored, TOKENS["viewer"] = new_token("browser", Role.VIEWER, now=time.time())
    await token_storage(instance).add_api_token(stored)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    config = {
        "storage": {"memory": {}},
        "auth": {"enabled": True, "cluster_secret": "cluster-secret-for-browser-tests"},
    }
    with serving({"numbers": NUMBERS}, config, _store_viewer) as running:
        yield running


def _login_for(next_path: str) -> Callable[[str], bool]:
    """Whether a URL is the login page coming back to `next_path`."""

    def matches(url: str) -> bool:
        parts = urlsplit(url)
        return parts.path == "/login" and parse_qs(parts.query).get("next") == [next_path]

    return matches


def _sign_in(page: Any) -> None:
    page.fill("input[name=token]", TOKENS["viewer"])
    page.click("button[type=submit]")


def test_signed_out_pages_and_graphql_refusals_go_to_login(page: Any) -> None:
    page.goto("/runs")
    assert _login_for("/runs")(page.url), page.url
    _sign_in(page)
    page.wait_for_url("**/runs")
    page.wait_for_selector("h1:text('Runs')")

    # The cookie is gone (expired, or cleared): the next page the UI draws asks GraphQL,
    # is refused, and sends the browser to sign in again, coming back to that page.
    page.context.clear_cookies()
    page.click("nav >> text=Jobs")
    page.wait_for_url(_login_for("/jobs"))
    _sign_in(page)
    page.wait_for_url("**/jobs")
    page.wait_for_selector("text=process_numbers")
