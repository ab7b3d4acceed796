"""Where a run worker gets its jobs: the `JobSource` protocol and its two implementations.

`DefinitionsJobSource` serves Definitions already loaded in this process (a code location
living beside the worker); `LoaderJobSource` imports each location's code itself, once, as a
worker in its own process does.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from dagloom.errors import DefinitionError
from dagloom.execution.origin import CodeOrigin, job_from_definitions

if TYPE_CHECKING:
    from dagloom.definitions.definitions import Definitions
    from dagloom.definitions.job import JobDefinition


@runtime_checkable
class JobSource(Protocol):
    """Gives a worker the job of a run, by code location and job name.

    `get_job` may block while user code imports (the first time), so a run worker calls it
    on the run's own thread, never on a loop serving actors. It raises `DefinitionError` (or its
    `CodeLocationLoadError`) naming what is missing; it never returns None.
    """

    def get_job(
        self, location_name: str, job_name: str, asset_selection: Sequence[Sequence[str]] = ()
    ) -> JobDefinition: ...


@runtime_checkable
class OriginSource(Protocol):
    """A job source that can say where a location's code is, so other processes (step
    processes, worker processes) can import it too."""

    def code_origin(self, location_name: str) -> CodeOrigin | None: ...


def pick_location(location_name: str, known: Collection[str]) -> str:
    """The location a request means: `location_name`, or, when it is empty and `known` has
    exactly one location, that one. Whether the name is known is the caller's check."""
    if not location_name and len(known) == 1:
        return next(iter(known))
    return location_name


def unknown_location(location_name: str, known: Iterable[str]) -> DefinitionError:
    """The error for a location name that none of `known` answers to."""
    return DefinitionError(
        f"no code location named {location_name!r}; locations are {sorted(known)}",
        name=location_name,
    )


class DefinitionsJobSource:
    """Jobs from Definitions objects already in this process, by location name.

    An empty location name is accepted when there is exactly one location. `origins`
    optionally tells where each location's code lives (for the multiprocess executor).
    """

    def __init__(
        self,
        locations: Mapping[str, Definitions],
        *,
        origins: Mapping[str, CodeOrigin] | None = None,
    ) -> None:
        self._locations = dict(locations)
        self._origins = dict(origins or {})

    def get_job(
        self, location_name: str, job_name: str, asset_selection: Sequence[Sequence[str]] = ()
    ) -> JobDefinition:
        """The job from the in-process Definitions; does not block."""
        defs = self._locations.get(pick_location(location_name, self._locations))
        if defs is None:
            raise unknown_location(location_name, self._locations)
        return job_from_definitions(defs, job_name, asset_selection)

    def code_origin(self, location_name: str) -> CodeOrigin | None:
        return self._origins.get(pick_location(location_name, self._locations))


class LoaderJobSource:
    """Jobs from code this source imports itself, once per location, on first use.

    `load_all` imports every location now (a warm worker calls it before it serves). A
    location that failed to import is tried again on the next call, so fixing the file
    helps without a restart. Thread-safe: callers on several threads import a location
    once, one import at a time.
    """

    def __init__(self, origins: Mapping[str, CodeOrigin]) -> None:
        self._origins = dict(origins)
        self._loaded: dict[str, Definitions] = {}
        # Runs load on threads of their own: two asking at once import a location once.
        self._loading = threading.Lock()

    def load_all(self) -> None:
        """Import every location now; blocks; raises `CodeLocationLoadError` on the first
        that does not import."""
        for name in self._origins:
            self._definitions(name)

    def _definitions(self, name: str) -> Definitions:
        defs = self._loaded.get(name)
        if defs is None:
            origin = self._origins.get(name)
            if origin is None:
                raise unknown_location(name, self._origins)
            with self._loading:
                defs = self._loaded.get(name)
                if defs is None:
                    defs = self._loaded[name] = origin.load()
        return defs

    def get_job(
        self, location_name: str, job_name: str, asset_selection: Sequence[Sequence[str]] = ()
    ) -> JobDefinition:
        """The job, importing its location first if needed (blocks while importing)."""
        defs = self._definitions(pick_location(location_name, self._origins))
        return job_from_definitions(defs, job_name, asset_selection)

    def code_origin(self, location_name: str) -> CodeOrigin | None:
        return self._origins.get(pick_location(location_name, self._origins))
