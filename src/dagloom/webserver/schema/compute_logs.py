"""Captured compute logs over GraphQL, with Dagster's names: the `capturedLogs` and
`capturedLogsMetadata` queries and the `capturedLogs` subscription.

A log key is `[runId, "compute_logs", stepKey]` (Dagster's form; `[runId, stepKey]` is
accepted too). A cursor names the attempt read and the byte offsets of stdout and stderr:
`"<attempt>:<stdout offset>:<stderr offset>"`; pass it back to read on.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

import anyio
import strawberry

from dagloom.compute_logs import read_compute_log
from dagloom.compute_logs.base import LogChunk
from dagloom.compute_logs.capture import STDERR, STDOUT
from dagloom.errors import DagloomError
from dagloom.instance import DagloomInstance
from dagloom.storage.base import FINISHED_STATUSES
from dagloom.webserver._operations import guarded
from dagloom.webserver.logs import download_url

COMPUTE_LOGS_NAMESPACE = "compute_logs"
MAX_LIMIT = 4 * 1024 * 1024
"""Most bytes of each stream one `capturedLogs` answer carries."""
DEFAULT_LIMIT = 1024 * 1024
POLL_SECONDS = 0.5
"""How often the subscription looks for new output while nothing arrives."""


@dataclass(frozen=True, slots=True)
class LogCursor:
    """Where a reader stands: the attempt read (None: not known yet) and the byte offset
    reached in each stream."""

    attempt: int | None = None
    stdout: int = 0
    stderr: int = 0

    def encode(self) -> str:
        attempt = "" if self.attempt is None else str(self.attempt)
        return f"{attempt}:{self.stdout}:{self.stderr}"

    @classmethod
    def parse(cls, text: str | None) -> LogCursor:
        """The cursor `text` names (None or "": from the start); `DagloomError` saying what
        is wrong otherwise."""
        if not text:
            return cls()
        parts = text.split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            attempt = int(parts[0]) if parts[0] else None
            stdout, stderr = int(parts[1]), int(parts[2])
        except ValueError:
            raise DagloomError(
                f"cursor {text!r} is not ATTEMPT:STDOUT_OFFSET:STDERR_OFFSET"
            ) from None
        if stdout < 0 or stderr < 0 or (attempt is not None and attempt < 0):
            raise DagloomError(f"cursor {text!r} has a negative offset or attempt")
        return cls(attempt, stdout, stderr)


def parse_log_key(log_key: list[str]) -> tuple[str, str]:
    """The run id and step key a log key names; `DagloomError` for any other shape."""
    if len(log_key) == 3 and log_key[1] == COMPUTE_LOGS_NAMESPACE:
        return log_key[0], log_key[2]
    if len(log_key) == 2:
        return log_key[0], log_key[1]
    raise DagloomError(f"log key {log_key!r} is not [runId, {COMPUTE_LOGS_NAMESPACE!r}, stepKey]")


def advance(cursor: LogCursor, stdout: LogChunk, stderr: LogChunk) -> LogCursor:
    """The cursor after reading `stdout` and `stderr` from `cursor`."""
    attempt = next(
        (a for a in (stdout.attempt, stderr.attempt, cursor.attempt) if a is not None), None
    )
    return LogCursor(attempt, stdout.cursor, stderr.cursor)


def restart_for(cursor: LogCursor, latest: int | None) -> LogCursor | None:
    """When a newer attempt than the cursor's has started, the cursor to read it from its
    start; None when the cursor already follows the latest attempt."""
    if latest is None or cursor.attempt is None or latest <= cursor.attempt:
        return None
    return LogCursor(latest, 0, 0)


@strawberry.type(description="Output captured from one step: text read from a cursor on.")
class CapturedLogs:
    logKey: list[str]
    stdout: str | None
    stderr: str | None
    cursor: str | None


@strawberry.type(description="Where a captured log is kept.")
class CapturedLogsMetadata:
    stdoutDownloadUrl: str | None = None
    stdoutLocation: str | None = None
    stderrDownloadUrl: str | None = None
    stderrLocation: str | None = None


def _text(chunk: LogChunk) -> str | None:
    return chunk.data.decode("utf-8", errors="replace") if chunk.data else None


async def _read(
    instance: DagloomInstance, run_id: str, step_key: str, cursor: LogCursor, limit: int
) -> tuple[LogChunk, LogChunk]:
    out = await read_compute_log(
        instance,
        run_id,
        step_key,
        "stdout",
        cursor.stdout,
        attempt=cursor.attempt,
        max_bytes=limit,
    )
    err = await read_compute_log(
        instance,
        run_id,
        step_key,
        "stderr",
        cursor.stderr,
        attempt=cursor.attempt,
        max_bytes=limit,
    )
    return out, err


async def _latest_attempt(instance: DagloomInstance, run_id: str, step_key: str) -> int | None:
    chunk = await read_compute_log(instance, run_id, step_key, "stdout", 0, max_bytes=1)
    return chunk.attempt


def _answer(log_key: list[str], out: LogChunk, err: LogChunk, after: LogCursor) -> CapturedLogs:
    return CapturedLogs(logKey=log_key, stdout=_text(out), stderr=_text(err), cursor=after.encode())


@strawberry.type
class ComputeLogsQuery:
    @strawberry.field(extensions=guarded("view_runs"))
    async def capturedLogs(
        self,
        info: strawberry.Info,
        logKey: list[str],
        cursor: str | None = None,
        limit: int | None = None,
    ) -> CapturedLogs:
        """A step's captured stdout and stderr from `cursor` on (at most `limit` bytes of
        each; default 1 MiB). Without a cursor: the latest attempt from its start."""
        run_id, step_key = parse_log_key(logKey)
        at = LogCursor.parse(cursor)
        size = min(max(limit or DEFAULT_LIMIT, 1), MAX_LIMIT)
        instance: DagloomInstance = info.context.instance
        out, err = await _read(instance, run_id, step_key, at, size)
        return _answer(logKey, out, err, advance(at, out, err))

    @strawberry.field(extensions=guarded("view_runs"))
    async def capturedLogsMetadata(
        self, info: strawberry.Info, logKey: list[str]
    ) -> CapturedLogsMetadata:
        """Where the latest attempt's logs are kept (a path or object URI) and the
        webserver URLs that download them; all null while the step has no log."""
        run_id, step_key = parse_log_key(logKey)
        instance: DagloomInstance = info.context.instance
        attempt = await _latest_attempt(instance, run_id, step_key)
        if attempt is None:
            return CapturedLogsMetadata()
        manager = instance.compute_log_manager
        return CapturedLogsMetadata(
            stdoutDownloadUrl=download_url(run_id, step_key, "stdout"),
            stdoutLocation=manager.log_location(run_id, step_key, attempt, STDOUT),
            stderrDownloadUrl=download_url(run_id, step_key, "stderr"),
            stderrLocation=manager.log_location(run_id, step_key, attempt, STDERR),
        )


@strawberry.type
class ComputeLogsSubscription:
    @strawberry.subscription(extensions=guarded("view_runs"))
    async def capturedLogs(
        self, info: strawberry.Info, logKey: list[str], cursor: str | None = None
    ) -> AsyncGenerator[CapturedLogs, None]:
        """The step's output as it is written, from `cursor` on, until its run has ended and
        both streams are read to their end. When a retry starts, the rest of the previous
        attempt comes first, then the new attempt from its start (the cursor names it)."""
        run_id, step_key = parse_log_key(logKey)
        at = LogCursor.parse(cursor)
        instance: DagloomInstance = info.context.instance
        while True:
            run = await instance.get_run(run_id)
            ended = run is not None and run.status in FINISHED_STATUSES
            out, err = await _read(instance, run_id, step_key, at, DEFAULT_LIMIT)
            after = advance(at, out, err)
            if out.data or err.data:
                yield _answer(logKey, out, err, after)
                at = after
                continue
            at = after
            newer = restart_for(at, await _latest_attempt(instance, run_id, step_key))
            if newer is not None:
                at = newer
                continue
            if ended:
                return
            await anyio.sleep(POLL_SECONDS)


__all__ = [
    "CapturedLogs",
    "CapturedLogsMetadata",
    "ComputeLogsQuery",
    "ComputeLogsSubscription",
    "LogCursor",
    "advance",
    "parse_log_key",
    "restart_for",
]
