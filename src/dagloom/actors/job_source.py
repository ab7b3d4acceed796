"""Where a run worker gets its jobs: the `JobSource` protocol and its two implementations.

`DefinitionsJobSource` serves Definitions already loaded in this process (a code location
living beside the worker); `LoaderJobSource` imports each location's code itself, as a
worker in its own process does, and imports it again when a run was validated against code
it does not have. Every source picks a run's job with the code location's own rule
(`resolve_job`) and checks it against the run's job snapshot id with `run_snapshot_id`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from dagloom.definitions.asset_key import AssetKey
from dagloom.errors import DefinitionError, SnapshotMismatchError
from dagloom.execution.origin import CodeOrigin, resolve_job

if TYPE_CHECKING:
    from dagloom.actors.code_location import LoadedLocation
    from dagloom.definitions.asset_checks import AssetCheckKey
    from dagloom.definitions.definitions import Definitions
    from dagloom.definitions.job import JobDefinition


@runtime_checkable
class JobSource(Protocol):
    """Gives a worker the job of a run, by code location and job name.

    `get_job` may block while user code imports, so a run worker calls it on the run's own
    thread, never on a loop serving actors. It raises `DefinitionError` (or its
    `CodeLocationLoadError`) naming what is missing; it never returns None. With a
    `snapshot_id` (the one stored on the run) the job must have that snapshot id: a source
    that imports code itself imports it again once when its loaded code has another id (or
    lacks the job), then raises `SnapshotMismatchError` naming both ids.
    """

    def get_job(
        self,
        location_name: str,
        job_name: str,
        asset_selection: Sequence[Sequence[str]] = (),
        *,
        snapshot_id: str = "",
        asset_check_selection: Sequence[AssetCheckKey] = (),
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


def checked_job(
    definitions: Definitions,
    job_snapshot_ids: Mapping[str, str],
    *,
    location_name: str,
    job_name: str,
    asset_selection: Sequence[Sequence[str]] = (),
    snapshot_id: str = "",
    asset_check_selection: Sequence[AssetCheckKey] = (),
) -> JobDefinition:
    """The job of a run (`resolve_job`), checked against the run's `snapshot_id` when it has
    one; `SnapshotMismatchError` names both ids when they differ. Blocks while user code
    builds the job."""
    keys = [AssetKey(list(path)) for path in asset_selection]
    job = resolve_job(definitions, job_name, keys, asset_check_selection)
    if snapshot_id:
        # Imported here: the code location module loads the gRPC stubs, which a run in this
        # process from definitions already loaded does not need.
        from dagloom.actors.code_location import run_snapshot_id

        actual = run_snapshot_id(job, [*keys, *asset_check_selection], job_snapshot_ids)
        if actual != snapshot_id:
            raise SnapshotMismatchError(
                location=location_name, job_name=job.name, expected=snapshot_id, actual=actual
            )
    return job


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
        self,
        location_name: str,
        job_name: str,
        asset_selection: Sequence[Sequence[str]] = (),
        *,
        snapshot_id: str = "",
        asset_check_selection: Sequence[AssetCheckKey] = (),
    ) -> JobDefinition:
        """The job from the in-process Definitions, which never reload; does not import."""
        name = pick_location(location_name, self._locations)
        defs = self._locations.get(name)
        if defs is None:
            raise unknown_location(location_name, self._locations)
        return checked_job(
            defs,
            {},
            location_name=name,
            job_name=job_name,
            asset_selection=asset_selection,
            snapshot_id=snapshot_id,
            asset_check_selection=asset_check_selection,
        )

    def code_origin(self, location_name: str) -> CodeOrigin | None:
        return self._origins.get(pick_location(location_name, self._locations))


class LoaderJobSource:
    """Jobs from code this source imports itself, per location, on first use.

    `load_all` imports every location now (a warm worker calls it before it serves). A
    location that failed to import is tried again on the next call, so fixing the file
    helps without a restart. A run validated against other code than the one loaded (its
    snapshot id differs, or the job is missing) makes the location import again, fresh,
    before the run executes: that is how a reloaded code location reaches this worker.
    Thread-safe: callers on several threads import a location once, one import at a time.
    """

    def __init__(self, origins: Mapping[str, CodeOrigin]) -> None:
        self._origins = dict(origins)
        self._loaded: dict[str, LoadedLocation] = {}
        # Runs load on threads of their own: two asking at once import a location once.
        self._loading = threading.Lock()

    def load_all(self) -> None:
        """Import every location now; blocks; raises `CodeLocationLoadError` on the first
        that does not import."""
        for name in self._origins:
            self._location(name)

    def reload(self, location_name: str) -> None:
        """Import `location_name` again, fresh; blocks. On failure the code loaded before
        keeps serving and `CodeLocationLoadError` is raised."""
        name = pick_location(location_name, self._origins)
        origin = self._origins.get(name)
        if origin is None:
            raise unknown_location(location_name, self._origins)
        from dagloom.actors.code_location import load_location

        with self._loading:
            self._loaded[name] = load_location(
                origin, location_name=name, loaded_at=time.time(), fresh=True
            )

    def _location(self, name: str) -> LoadedLocation:
        loaded = self._loaded.get(name)
        if loaded is None:
            origin = self._origins.get(name)
            if origin is None:
                raise unknown_location(name, self._origins)
            from dagloom.actors.code_location import load_location

            with self._loading:
                loaded = self._loaded.get(name)
                if loaded is None:
                    loaded = self._loaded[name] = load_location(
                        origin, location_name=name, loaded_at=time.time()
                    )
        return loaded

    def get_job(
        self,
        location_name: str,
        job_name: str,
        asset_selection: Sequence[Sequence[str]] = (),
        *,
        snapshot_id: str = "",
        asset_check_selection: Sequence[AssetCheckKey] = (),
    ) -> JobDefinition:
        """The job, importing its location first if needed (blocks while importing)."""
        name = pick_location(location_name, self._origins)

        def attempt() -> JobDefinition:
            loaded = self._location(name)
            return checked_job(
                loaded.definitions,
                loaded.job_snapshot_ids,
                location_name=name,
                job_name=job_name,
                asset_selection=asset_selection,
                snapshot_id=snapshot_id,
                asset_check_selection=asset_check_selection,
            )

        try:
            return attempt()
        except (SnapshotMismatchError, DefinitionError):
            if not snapshot_id or name not in self._loaded:
                raise
        # The run was validated against code this worker has not loaded: load it again.
        self.reload(name)
        return attempt()

    def code_origin(self, location_name: str) -> CodeOrigin | None:
        return self._origins.get(pick_location(location_name, self._origins))
