"""Downloading a step's captured stdout or stderr over HTTP:
`/logs/<run_id>/compute_logs/<step_key>/out|err` (`?attempt=N`, default the latest), the
URLs `capturedLogsMetadata` hands out. Needs a viewer's token like every non-public route."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from dagloom.compute_logs.base import DEFAULT_READ_BYTES, log_name
from dagloom.compute_logs.capture import STDERR, STDOUT, IOType, stream_of
from dagloom.errors import DagloomError, RunNotFoundError
from dagloom.instance import DagloomInstance

__all__ = ["STREAM_SUFFIXES", "add_log_routes", "download_url", "parse_attempt"]

STREAM_SUFFIXES: dict[str, IOType] = {"out": "stdout", "err": "stderr"}
"""The last path component of a download URL and the stream it names."""

_ROUTE = "/logs/{run_id}/compute_logs/{step_key}/{stream}"


def download_url(run_id: str, step_key: str, io_type: IOType) -> str:
    """The path that downloads the step's `io_type` (latest attempt), each part quoted."""
    suffix = "out" if stream_of(io_type) == STDOUT else "err"
    return f"/logs/{quote(run_id, safe='')}/compute_logs/{quote(step_key, safe='')}/{suffix}"


def parse_attempt(text: str | None) -> int | None:
    """The `attempt` query parameter: None when absent; `DagloomError` unless a whole
    number >= 0."""
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise DagloomError(f"attempt {text!r} is not a whole number >= 0")
    return int(text)


def add_log_routes(app: web.Application, instance: DagloomInstance) -> None:
    """Serve `/logs/<run_id>/compute_logs/<step_key>/out|err` from `instance`'s compute
    log manager. Add before any catch-all route."""

    async def download(request: web.Request) -> web.StreamResponse:
        run_id = request.match_info["run_id"]
        step_key = request.match_info["step_key"]
        io_type = STREAM_SUFFIXES.get(request.match_info["stream"])
        if io_type is None:
            raise web.HTTPNotFound(text="the last path part is 'out' or 'err'")
        manager = instance.compute_log_manager
        try:
            attempt = parse_attempt(request.query.get("attempt"))
            if await instance.get_run(run_id) is None:
                raise RunNotFoundError(run_id)
            attempts = await manager.attempts(run_id, step_key)
        except RunNotFoundError as exc:
            raise web.HTTPNotFound(text=str(exc)) from exc
        except DagloomError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        chosen = attempts[-1] if attempt is None and attempts else attempt
        if chosen is None or chosen not in attempts:
            which = "" if attempt is None else f" attempt {attempt}"
            raise web.HTTPNotFound(text=f"step {step_key!r} of run {run_id!r}{which} has no log")
        stream = STDERR if io_type == "stderr" else STDOUT
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/plain; charset=utf-8",
                "Content-Disposition": (
                    f"attachment; filename*=UTF-8''{quote(log_name(step_key, chosen, stream))}"
                ),
            }
        )
        await response.prepare(request)
        cursor = 0
        while True:
            data = await manager.read_bytes(
                run_id, step_key, chosen, stream, cursor, DEFAULT_READ_BYTES
            )
            if not data:
                break
            await response.write(data)
            cursor += len(data)
        await response.write_eof()
        return response

    app.router.add_get(_ROUTE, download)
