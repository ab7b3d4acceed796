"""The compute log manager interface: where each step attempt's stdout and stderr are
written while it runs, and how they are read back by byte cursor."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

import anyio.to_thread

from dagloom.compute_logs.capture import (
    STDERR,
    STDOUT,
    IOType,
    StepLog,
    flush_writes,
    log_suffix,
    no_follow,
    stream_of,
)
from dagloom.definitions.asset_key import path_component_problem
from dagloom.definitions.io_manager import contained_path
from dagloom.errors import DagloomError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_READ_BYTES",
    "ComputeLogManager",
    "LocalLogFiles",
    "LogChunk",
    "log_name",
    "parse_log_name",
]

DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
"""Per stream of one step attempt; past it the log is cut with a marker line."""

DEFAULT_READ_BYTES: Final = 1024 * 1024
"""At most this much per `read`; a reader asks again from the returned cursor."""


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Bytes of one log from a cursor on: `data` starts at the cursor asked for and
    `cursor` is the offset to ask for next. `attempt` is the attempt read (None: the step
    has no log yet)."""

    data: bytes
    cursor: int
    attempt: int | None


def log_name(step_key: str, attempt: int, stream: int) -> str:
    """`<step_key>.<attempt>.out` (or `.err`): one attempt's log file or object name."""
    return f"{step_key}.{attempt}{log_suffix(stream)}"


def parse_log_name(name: str) -> tuple[str | None, int]:
    """(step key, attempt) of a `log_name`, or (None, -1) for any other name."""
    if not name.endswith((log_suffix(STDOUT), log_suffix(STDERR))):
        return None, -1
    step_key, _, attempt = name[:-4].rpartition(".")
    if not step_key or not attempt.isdigit():
        return None, -1
    return step_key, int(attempt)


class ComputeLogManager(ABC):
    """Keeps step attempts' captured output. Capturing and finishing are sync (they run on
    the step's own path); reading is async (it may go to the network).

    A manager is shared by every run of the process that built it, and by concurrent steps:
    implementations are thread-safe.
    """

    @property
    def captures(self) -> bool:
        """Whether steps' output is captured at all (False: no routing is installed)."""
        return True

    @abstractmethod
    def open_step(self, run_id: str, step_key: str, attempt: int) -> StepLog:
        """The log one attempt writes. Cheap: nothing is created or checked until it is
        written; output a log cannot keep (a run id or step key that cannot name a file,
        a full disk) is dropped and logged, never raised into the step."""

    def step_finished(self, log: StepLog) -> None:
        """The attempt ended: close its log (and, for a remote store, start its upload).
        Never raises for a failed upload; idempotent."""
        log.close()

    async def wait_uploads(self) -> None:
        """Wait until logs of ended attempts are stored: written to disk (and, for a remote
        store, uploaded or given up)."""
        written = flush_writes()
        if not written.done():  # done already when no step ever wrote: no loop round trip
            await asyncio.wrap_future(written)

    @abstractmethod
    async def attempts(self, run_id: str, step_key: str) -> list[int]:
        """The attempts of the step that have a log, ascending."""

    @abstractmethod
    async def step_keys(self, run_id: str) -> list[str]:
        """The steps of the run that have a log, sorted."""

    @abstractmethod
    async def read_bytes(
        self, run_id: str, step_key: str, attempt: int, stream: int, cursor: int, max_bytes: int
    ) -> bytes:
        """Up to `max_bytes` of one log from byte `cursor` (b"" at its end or when absent)."""

    async def read(
        self,
        run_id: str,
        step_key: str,
        io_type: IOType = "stdout",
        *,
        attempt: int | None = None,
        cursor: int = 0,
        max_bytes: int = DEFAULT_READ_BYTES,
    ) -> LogChunk:
        """Output of the attempt (default: the latest) from byte `cursor` on, at most
        `max_bytes`; an empty chunk when there is none (yet)."""
        stream = stream_of(io_type)
        if cursor < 0:
            raise ValueError(f"cursor must be >= 0, not {cursor}")
        if attempt is None:
            found = await self.attempts(run_id, step_key)
            if not found:
                return LogChunk(b"", cursor, None)
            attempt = found[-1]
        data = await self.read_bytes(run_id, step_key, attempt, stream, cursor, max_bytes)
        return LogChunk(data, cursor + len(data), attempt)

    def log_location(self, run_id: str, step_key: str, attempt: int, stream: int) -> str | None:
        """Where one attempt's log is kept (a path or an object URI), for display; None
        when it is kept nowhere a reader could name."""
        return None

    def describe(self) -> str:
        """One line saying where logs go."""
        return type(self).__name__


class LocalLogFiles:
    """Log files under `base_dir`: `<run_id>/<step_key>.<attempt>.out` and `.err`.

    The run's folder is checked with `contained_path` (once per run, cached: resolving
    costs a syscall per path component) and each file name must be one plain path
    component; files are opened without following a symbolic link in their place
    (`O_NOFOLLOW`), so nothing outside `base_dir` is written or read."""

    __slots__ = ("_run_dirs", "base_dir")

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self._run_dirs: dict[str, Path] = {}

    def run_dir(self, run_id: str) -> Path:
        found = self._run_dirs.get(run_id)
        if found is None:
            found = contained_path(self.base_dir, [run_id], f"compute logs of run {run_id!r}")
            if len(self._run_dirs) >= 1024:  # runs come and go: keep the recent ones
                self._run_dirs.clear()
            self._run_dirs[run_id] = found
        return found

    def paths(self, run_id: str, step_key: str, attempt: int) -> tuple[Path, Path]:
        folder = self.run_dir(run_id)
        names = (log_name(step_key, attempt, STDOUT), log_name(step_key, attempt, STDERR))
        for name in (step_key, *names):
            problem = path_component_problem(name)
            if problem is not None:
                raise DagloomError(
                    f"compute log of step {step_key!r} in run {run_id!r}: {name!r} {problem}; "
                    f"refusing a path that could leave {self.base_dir}"
                )
        return (folder / names[0], folder / names[1])

    def open_step(self, run_id: str, step_key: str, attempt: int, *, limit: int) -> StepLog:
        paths = partial(self.paths, run_id, step_key, attempt)
        return StepLog(run_id, step_key, attempt, paths, limit=limit)

    def _names(self, run_id: str) -> list[str]:
        try:
            return [p.name for p in self.run_dir(run_id).iterdir()]
        except FileNotFoundError:
            return []

    def attempts_now(self, run_id: str, step_key: str) -> list[int]:
        self.paths(run_id, step_key, 0)  # refuses a step key that cannot name a file
        return sorted({a for k, a in map(parse_log_name, self._names(run_id)) if k == step_key})

    def step_keys_now(self, run_id: str) -> list[str]:
        return sorted({k for k, _ in map(parse_log_name, self._names(run_id)) if k is not None})

    def read_now(
        self, run_id: str, step_key: str, attempt: int, stream: int, cursor: int, max_bytes: int
    ) -> bytes | None:
        """The bytes, or None when the file does not exist."""
        path = self.paths(run_id, step_key, attempt)[stream]
        try:
            with open(path, "rb", opener=no_follow) as file:
                file.seek(cursor)
                return file.read(max_bytes)
        except FileNotFoundError:
            return None

    async def attempts(self, run_id: str, step_key: str) -> list[int]:
        return await anyio.to_thread.run_sync(self.attempts_now, run_id, step_key)

    async def step_keys(self, run_id: str) -> list[str]:
        return await anyio.to_thread.run_sync(self.step_keys_now, run_id)

    async def read(
        self, run_id: str, step_key: str, attempt: int, stream: int, cursor: int, max_bytes: int
    ) -> bytes | None:
        return await anyio.to_thread.run_sync(
            self.read_now, run_id, step_key, attempt, stream, cursor, max_bytes
        )
