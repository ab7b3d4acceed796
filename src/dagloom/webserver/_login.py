"""The login page: `GET /login` shows a form for an API token, `POST /login` checks it and
stores it in the HTTP-only login cookie, `/logout` clears the cookie. Server-rendered, no
scripts; the UI sends a browser here (`/login?next=/path`) when GraphQL answers
`UnauthorizedError`."""

from __future__ import annotations

import html

from aiohttp import web

from dagloom.auth import Authenticator
from dagloom.auth.http import clear_login_cookie, set_login_cookie
from dagloom.errors import AuthenticationError, StorageError

MAX_FORM_BYTES = 4096
"""A login form is a token and a path; anything longer is refused unread."""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dagloom · sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}}
input{{width:100%;padding:.5rem;margin:.5rem 0;box-sizing:border-box;font-family:monospace}}
button{{padding:.5rem 1rem}} .error{{color:#b00020}} .note{{color:#555}}
</style></head><body>
<h1>dagloom</h1>
{message}
<form method="post" action="/login">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="off" required autofocus>
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>
</form>
<p class="note">Create a token with <code>dagloom token create --role viewer --name NAME</code>.</p>
</body></html>
"""


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path on this server, else `/` (never another site:
    `//host` and `\\\\host` are refused)."""
    if not path or not path.startswith("/") or path.startswith(("//", "/\\")):
        return "/"
    if any(c in path for c in "\r\n\\") or any(ord(c) < 32 for c in path):
        return "/"
    return path


def _page(next_path: str, *, error: str = "", status: int = 200) -> web.Response:
    message = f'<p class="error">{html.escape(error)}</p>' if error else ""
    body = _PAGE.format(message=message, next=html.escape(next_path, quote=True))
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def login_routes(authenticator: Authenticator) -> list[web.RouteDef]:
    """`GET /login`, `POST /login`, `GET|POST /logout`."""

    async def show(request: web.Request) -> web.Response:
        return _page(safe_next(request.query.get("next")))

    async def sign_in(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
            return _page("/", error="the form is too large", status=413)
        form = await request.post()
        next_path = safe_next(str(form.get("next") or ""))
        token = str(form.get("token") or "").strip()
        if not authenticator.enabled:
            return _see_other(next_path)
        try:
            await authenticator.identify(token)
        except AuthenticationError as exc:
            return _page(next_path, error=f"Not signed in: {exc}", status=401)
        except StorageError as exc:
            return _page(next_path, error=f"Cannot check the token: {exc}", status=503)
        response = _see_other(next_path)
        set_login_cookie(response, token, secure=request.secure)
        return response

    async def sign_out(request: web.Request) -> web.StreamResponse:
        response = _see_other("/login")
        clear_login_cookie(response)
        return response

    return [
        web.get("/login", show),
        web.post("/login", sign_in),
        web.get("/logout", sign_out),
        web.post("/logout", sign_out),
    ]
