"""Reloading a code location when a file of it changes, as `dagloom dev` does.

`watch_paths` says which files are a location's (pure but for looking at the filesystem);
`LocationWatcher` watches them with `watchfiles` and asks the location actor to `Reload`.
A worker beside that actor runs the reloaded definitions from then on; a worker that
imported the code itself imports it again before a run validated against the new code
(`dagloom.actors.job_source`), so a change reaches every worker before its next run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import TaskStatus
from watchfiles import PythonFilter, awatch

from dagloom.errors import ActorUnavailableError
from dagloom.execution.origin import CodeOrigin
from dagloom.messages.rpc import LocationSnapshot, ReloadRequest
from dagloom.transport import ActorRef

__all__ = ["CodeFilter", "LocationWatcher", "watch_paths"]

READY_WITHIN_MS = 500
"""How often the watching thread wakes without changes; the first wake-up reports the
watcher ready, so startup waits at most this long (two wake-ups a second cost nothing)."""


class CodeFilter(PythonFilter):
    """Python files, but not those of installed packages: a definitions file's folder often
    holds a virtualenv (of any name), whose files change on every `pip install`."""

    ignore_dirs = (
        *PythonFilter.ignore_dirs,
        "site-packages",
        "dist-packages",
        "venv",
        ".nox",
        ".ruff_cache",
    )


def watch_paths(origin: CodeOrigin) -> list[Path]:
    """The files and folders whose changes reload `origin`'s location.

    A file's folder (the definitions file and the modules beside it it may import); a
    module's top-level package folder (or its one file), found under its working directory
    or on `sys.path` without importing it. Empty when the module cannot be found.
    """
    if origin.python_file is not None:
        return [Path(origin.python_file).resolve().parent]
    assert origin.module_name is not None
    top = origin.module_name.partition(".")[0]
    if origin.working_directory is not None:
        base = Path(origin.working_directory)
        for candidate in (base / top, base / f"{top}.py"):
            if candidate.exists():
                return [candidate.resolve()]
    # A top-level name's spec is found without executing any module.
    spec = importlib.util.find_spec(top)
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [Path(p).resolve() for p in spec.submodule_search_locations]
    if spec.origin is not None and spec.has_location:
        return [Path(spec.origin).resolve()]
    return []


class LocationWatcher:
    """Asks a code location to reload whenever a Python file of it changes.

    `run` reports ready once the files are watched (a change after that is never missed),
    then reloads the location once per burst of changes until cancelled; a location that
    does not answer is logged and tried again on the next change. `reloads` counts the
    reloads asked and answered; `wait_reloaded` blocks until it passes a count.
    """

    def __init__(
        self,
        location_name: str,
        location: ActorRef[Any, Any],
        origin: CodeOrigin,
        *,
        reload_timeout: float = 60.0,
    ) -> None:
        self.location_name = location_name
        self.paths = watch_paths(origin)
        self.reloads = 0
        self._location = location
        self._timeout = reload_timeout
        self._reloaded = anyio.Event()
        self._log = structlog.get_logger("dagloom.code").bind(location=location_name)

    async def wait_reloaded(self, count: int) -> None:
        """Block until more than `count` reloads happened (at once if they have)."""
        while self.reloads <= count:
            await self._reloaded.wait()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Watch and reload until cancelled; ready once watching (within about half a
        second). With nothing to watch it reports ready and waits to be cancelled."""
        if not self.paths:
            self._log.warning("code_location_not_watched", reason="its files were not found")
            task_status.started()
            await anyio.sleep_forever()
        ready = False
        async for changes in awatch(
            *self.paths,
            watch_filter=CodeFilter(),
            rust_timeout=READY_WITHIN_MS,
            yield_on_timeout=True,
        ):
            if not ready:
                ready = True
                task_status.started()
            if changes:
                await self._reload(sorted(path for _, path in changes))

    async def _reload(self, changed: list[str]) -> None:
        self._log.info("code_location_files_changed", files=changed)
        try:
            reply = await self._location.ask(ReloadRequest(), timeout=self._timeout)
        except (ActorUnavailableError, TimeoutError) as exc:
            self._log.warning("code_location_reload_failed", error=str(exc))
            return
        assert isinstance(reply, LocationSnapshot)
        self.reloads += 1
        self._reloaded.set()
        self._reloaded = anyio.Event()
