"""IO managers: how an op's outputs are stored and loaded as downstream inputs.

`InMemoryIOManager` keeps values in a dict (the default for `execute_in_process`);
`FilesystemIOManager` pickles them under a base directory (`$DAGLOOM_HOME/storage` unless
configured) — assets at their key path, op outputs under `<run_id>/<step_key>/<output>`.
Every path it reads or writes is checked to lie inside that directory.
"""

from __future__ import annotations

import os
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagloom.definitions.asset_key import AssetKey, path_component_problem
from dagloom.definitions.resources import ConfigurableResource, ResourceDefinition
from dagloom.errors import DagloomError


class OutputContext:
    """What an IO manager knows about an output it stores."""

    __slots__ = (
        "asset_key",
        "definition_metadata",
        "job_name",
        "log",
        "mapping_key",
        "name",
        "resources",
        "run_id",
        "step_key",
        "user_metadata",
    )

    def __init__(
        self,
        step_key: str,
        name: str,
        run_id: str,
        *,
        mapping_key: str | None = None,
        asset_key: AssetKey | None = None,
        job_name: str | None = None,
        definition_metadata: Mapping[str, Any] | None = None,
        resources: Any = None,
        log: Any = None,
    ) -> None:
        self.step_key = step_key
        self.name = name
        self.run_id = run_id
        self.mapping_key = mapping_key
        self.asset_key = asset_key
        self.job_name = job_name
        self.definition_metadata = definition_metadata or {}
        self.resources = resources
        self.log = log
        self.user_metadata: dict[str, Any] = {}

    @property
    def has_asset_key(self) -> bool:
        return self.asset_key is not None

    def add_output_metadata(self, metadata: Mapping[str, Any]) -> None:
        self.user_metadata.update(metadata)

    def get_identifier(self) -> list[str]:
        """Where an op output lives: run id, step key, output name (and mapping key)."""
        parts = [self.run_id, self.step_key, self.name]
        if self.mapping_key is not None:
            parts.append(self.mapping_key)
        return parts

    def get_asset_identifier(self) -> list[str]:
        if self.asset_key is None:
            raise DagloomError(f"output {self.name!r} of step {self.step_key!r} is not an asset")
        return list(self.asset_key.path)


class InputContext:
    """What an IO manager knows about an input it loads: the output it comes from, if any."""

    __slots__ = (
        "asset_key",
        "definition_metadata",
        "log",
        "name",
        "resources",
        "step_key",
        "upstream_output",
    )

    def __init__(
        self,
        name: str,
        step_key: str | None,
        upstream_output: OutputContext | None,
        *,
        asset_key: AssetKey | None = None,
        definition_metadata: Mapping[str, Any] | None = None,
        resources: Any = None,
        log: Any = None,
    ) -> None:
        self.name = name
        self.step_key = step_key
        self.upstream_output = upstream_output
        self.asset_key = asset_key
        self.definition_metadata = definition_metadata or {}
        self.resources = resources
        self.log = log

    @property
    def has_asset_key(self) -> bool:
        return self.asset_key is not None

    def get_asset_identifier(self) -> list[str]:
        if self.asset_key is None:
            raise DagloomError(f"input {self.name!r} is not an asset")
        return list(self.asset_key.path)


class IOManager(ABC):
    """Stores outputs and loads inputs. Both methods are called inside the run's step, so
    what they raise fails that step."""

    @abstractmethod
    def handle_output(self, context: OutputContext, obj: Any) -> None: ...

    @abstractmethod
    def load_input(self, context: InputContext) -> Any: ...


class ConfigurableIOManager(ConfigurableResource, IOManager):
    """An IO manager whose fields are its config."""


class IOManagerDefinition(ResourceDefinition):
    """A resource definition that builds an IOManager."""

    __slots__ = ()


def io_manager(
    fn: Callable[..., IOManager] | None = None,
    *,
    config_schema: Any = None,
    description: str | None = None,
) -> Any:
    """Declare an IO manager from a function of an InitResourceContext."""

    def wrap(func: Callable[..., IOManager]) -> IOManagerDefinition:
        return IOManagerDefinition.from_function(func, config_schema, description)

    return wrap(fn) if fn is not None else wrap


def _memory_key(context: OutputContext) -> tuple[str, ...]:
    if context.asset_key is not None:
        return ("asset", *context.asset_key.path)
    if context.mapping_key is None:
        return (context.run_id, context.step_key, context.name)
    return (context.run_id, context.step_key, context.name, context.mapping_key)


class InMemoryIOManager(IOManager):
    """Keeps every value in a dict for the life of this object (one run, unless shared)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, ...], Any] = {}

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        self.values[_memory_key(context)] = obj

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is None:
            if context.asset_key is None:
                raise DagloomError(f"input {context.name!r} has no upstream output to load")
            key: tuple[str, ...] = ("asset", *context.asset_key.path)
        else:
            key = _memory_key(upstream)
        try:
            return self.values[key]
        except KeyError:
            raise DagloomError(
                f"no value stored in memory for {'/'.join(key)!r} (input {context.name!r})"
            ) from None


def default_storage_dir() -> Path:
    """`$DAGLOOM_HOME/storage`, with `$DAGLOOM_HOME` defaulting to `./.dagloom`."""
    return Path(os.environ.get("DAGLOOM_HOME", ".dagloom")) / "storage"


def contained_path(base: Path, parts: Sequence[str], what: str) -> Path:
    """The file `base/parts[0]/…/parts[-1]`, resolved, after proving it lies inside `base`.

    Each part must be one plain path component (see `path_component_problem`), and the
    resolved path (symlinks followed, so a link inside `base` pointing out is caught too)
    must be strictly below the resolved `base`; otherwise `DagloomError` names `what` and
    the offending part. Pure apart from reading symlinks; creates nothing.
    """
    for part in parts:
        problem = path_component_problem(part)
        if problem is not None:
            raise DagloomError(
                f"{what}: path component {part!r} of {list(parts)!r} {problem}; refusing "
                f"a path that could leave the storage folder {base}"
            )
    root = base.resolve()
    path = root.joinpath(*parts).resolve()
    if path == root or not path.is_relative_to(root):
        raise DagloomError(
            f"{what}: {'/'.join(parts)!r} resolves to {path}, outside the storage folder {root}"
        )
    return path


class FilesystemIOManager(ConfigurableIOManager):
    """Pickles values to files under `base_dir` (default `$DAGLOOM_HOME/storage`).

    Every path it writes or unpickles is resolved and must lie inside `base_dir`: a key,
    run id, step key, output or mapping key that would lead out of it (`..`, separators,
    NUL, a symlink pointing out) is refused with `DagloomError` before any file is touched,
    so values are only ever read from this manager's own storage.
    """

    base_dir: str | None = None

    def _root(self) -> Path:
        return Path(self.base_dir) if self.base_dir else default_storage_dir()

    def _asset_path(self, key: AssetKey) -> Path:
        return contained_path(self._root(), key.path, f"asset {key.to_user_string()!r}")

    def _path(self, context: OutputContext) -> Path:
        if context.asset_key is not None:
            return self._asset_path(context.asset_key)
        return contained_path(
            self._root(),
            context.get_identifier(),
            f"output {context.name!r} of step {context.step_key!r} in run {context.run_id!r}",
        )

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # readers never see a half-written file
        context.add_output_metadata({"path": str(path)})

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is not None:
            path = self._path(upstream)
        elif context.asset_key is not None:
            path = self._asset_path(context.asset_key)
        else:
            raise DagloomError(f"input {context.name!r} has no upstream output to load")
        try:
            with path.open("rb") as handle:
                return pickle.load(handle)
        except FileNotFoundError:
            raise DagloomError(
                f"input {context.name!r}: nothing stored at {path} (was it materialized?)"
            ) from None


mem_io_manager = IOManagerDefinition(lambda _ctx: InMemoryIOManager(), None, "in-memory")


def _fs_from_context(ctx: Any) -> IOManager:
    config = dict(ctx.resource_config or {})
    return FilesystemIOManager(base_dir=config.get("base_dir"))


fs_io_manager = IOManagerDefinition(_fs_from_context, None, "filesystem (pickle)")


__all__ = [
    "ConfigurableIOManager",
    "FilesystemIOManager",
    "IOManager",
    "IOManagerDefinition",
    "InMemoryIOManager",
    "InputContext",
    "OutputContext",
    "fs_io_manager",
    "io_manager",
    "mem_io_manager",
]
