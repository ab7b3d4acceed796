"""The webserver's auth rules without a server: guard names to operations, where a
websocket's token is read from, and where the login page may send a browser."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dagloom.auth import Operation
from dagloom.webserver import GRAPHQL_OPERATIONS, graphql_operation
from dagloom.webserver._auth import _connection_token, http_operation
from dagloom.webserver._login import safe_next


def test_reads_are_read_and_unknown_names_have_no_rule() -> None:
    assert graphql_operation("view_runs") == Operation.READ
    assert graphql_operation("view_anything_new") == Operation.READ
    assert graphql_operation("wipe_everything") is None
    assert graphql_operation("edit_sensor") == Operation.TOGGLE_INSTIGATOR
    assert set(GRAPHQL_OPERATIONS.values()) <= set(Operation)


def test_a_websockets_token_comes_from_its_connection_init_payload() -> None:
    assert _connection_token({"Authorization": "Bearer abc"}) == "abc"
    assert _connection_token({"authorization": "Bearer abc"}) == "abc"
    assert _connection_token({"headers": {"Authorization": "Bearer abc"}}) == "abc"
    assert _connection_token({"token": "abc"}) == "abc"
    for nothing in (None, [], "Bearer abc", {"token": 5}, {"Authorization": "Basic x"}, {}):
        assert _connection_token(nothing) is None


def test_routes_need_a_viewer_except_the_public_ones() -> None:
    class Request:
        def __init__(self, path: str) -> None:
            self.path = path

    guarded = http_operation(metrics_public=False)
    public = http_operation(metrics_public=True)
    for path in ("/health", "/login", "/logout", "/graphql"):
        assert guarded(Request(path)) is None  # type: ignore[arg-type]
    assert guarded(Request("/metrics")) == Operation.READ_METRICS  # type: ignore[arg-type]
    assert public(Request("/metrics")) is None  # type: ignore[arg-type]
    assert guarded(Request("/runs/abc")) == Operation.READ  # type: ignore[arg-type]


@given(st.text(max_size=60))
def test_the_login_page_only_sends_a_browser_to_a_path_here(path: str) -> None:
    target = safe_next(path)
    assert target.startswith("/")
    assert not target.startswith(("//", "/\\"))
    assert not any(ord(c) < 32 for c in target)
    assert target in (path, "/")


def test_the_login_page_refuses_other_sites() -> None:
    for hostile in ("//evil.example", "/\\evil.example", "https://evil.example", "evil", ""):
        assert safe_next(hostile) == "/"
    assert safe_next("/runs?x=1") == "/runs?x=1"
