"""Dagster's REST endpoints for reporting asset events from outside: `POST
/report_asset_materialization/KEY`, `/report_asset_observation/KEY` and
`/report_asset_check/KEY`.

The key is the path after the endpoint (`a/b`); the report's fields (`metadata`,
`description`, `partition`, `data_version`, and for a check `check_name`, `passed`,
`severity`) come as a JSON object body and/or query parameters (the body wins). The answer is
`{}` (200), or `{"error": ...}` with 400 for a bad report. Tokens are checked by the webserver's
auth middleware (the `report_asset_event` operation).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from dagloom.auth.audit import record_audit
from dagloom.auth.http import request_identity
from dagloom.errors import DagloomError
from dagloom.execution.reporting import ReportKind, build_report, parse_asset_key
from dagloom.instance import DagloomInstance

_PATHS = {
    ReportKind.MATERIALIZATION: "/report_asset_materialization/{asset_key:.+}",
    ReportKind.OBSERVATION: "/report_asset_observation/{asset_key:.+}",
    ReportKind.CHECK: "/report_asset_check/{asset_key:.+}",
}


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _fields(request: web.Request) -> dict[str, Any] | str:
    """The report's fields: query parameters, then the JSON body's; a message when the body
    is not a JSON object."""
    fields: dict[str, Any] = dict(request.query)
    body = await request.read()
    if body.strip():
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return f"the body is not JSON: {exc}"
        if not isinstance(parsed, dict):
            return f"the body must be a JSON object, got {type(parsed).__name__}"
        fields.update(parsed)
    return fields


def _handler(kind: ReportKind, instance: DagloomInstance) -> Any:
    async def report(request: web.Request) -> web.Response:
        fields = await _fields(request)
        if isinstance(fields, str):
            return _bad(fields)
        try:
            key = parse_asset_key(request.match_info["asset_key"])
            event = build_report(kind, key, fields)
        except DagloomError as exc:
            return _bad(str(exc))
        await instance.report_runless_asset_event(event)
        identity = request_identity(request)
        if identity.authenticated:
            await record_audit(
                instance,
                identity.name,
                f"report_asset_{kind.value}",
                f"asset:{key.to_user_string()}",
                via="http",
            )
        return web.json_response({})

    return report


def add_report_routes(app: web.Application, instance: DagloomInstance) -> None:
    """Add the three report endpoints (POST only) to `app`, recording into `instance`."""
    for kind, path in _PATHS.items():
        app.router.add_post(path, _handler(kind, instance))


__all__ = ["add_report_routes"]
