"""The web UI: the bundle built from `ui/` and committed under `static/`, served at `/`.

Hashed files under `/_ui/` are cached for good (not `/assets/`: that is the UI's own
page of asset keys); any other GET path that is not an API
route answers `index.html`, so the UI's own routes (`/runs/<id>`, …) load on refresh.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
"""Where the built bundle lives (`npm run build` in `ui/` writes it)."""

_IMMUTABLE = "public, max-age=31536000, immutable"


def _missing() -> web.Response:
    return web.Response(
        status=503,
        text=f"the web UI is not built: {STATIC_DIR / 'index.html'} is missing "
        "(run `npm ci && npm run build` in ui/)",
    )


async def _asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = (STATIC_DIR / "_ui" / name).resolve()
    if path.parent != (STATIC_DIR / "_ui").resolve() or not path.is_file():
        raise web.HTTPNotFound(text=f"no UI asset {name!r}")
    return web.FileResponse(path, headers={"Cache-Control": _IMMUTABLE})


async def _index(request: web.Request) -> web.StreamResponse:
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        return _missing()
    return web.FileResponse(index, headers={"Cache-Control": "no-cache"})


def add_ui_routes(app: web.Application) -> None:
    """`/_ui/{name}` and, for every other GET path, the UI's `index.html`. Add after the
    API routes: aiohttp matches routes in the order they were added."""
    app.router.add_get("/_ui/{name}", _asset)
    app.router.add_get("/{tail:.*}", _index)
