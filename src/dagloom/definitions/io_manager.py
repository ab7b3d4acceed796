"""IO managers: how an op's outputs are stored and loaded as downstream inputs.

`InMemoryIOManager` keeps values in a dict (the default for `execute_in_process`);
`FilesystemIOManager` pickles them under a base directory (`$DAGLOOM_HOME/storage` unless
configured) — assets at their key path, op outputs under `<run_id>/<step_key>/<output>`.
Every path it reads or writes is checked to lie inside that directory.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import pickle
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagloom.definitions.asset_key import AssetKey, path_component_problem
from dagloom.definitions.dagster_type import resolve_dagster_type
from dagloom.definitions.resources import (
    ConfigurableResource,
    ConfigurableResourceFactory,
    InitResourceContext,
    ResourceDefinition,
    Resources,
)
from dagloom.errors import DagloomError, DagsterInvalidDefinitionError

# Where an IO manager's `context.log` writes when the run hands it no logger of its own.
_LOGGER_NAME = "dagloom.io_manager"
# Looked up once: `logging.getLogger` takes the logging module's lock on every call, and a
# step makes one context per input and output.
_DEFAULT_LOG = logging.getLogger(_LOGGER_NAME)


class _PartitionFields:
    """The partition fields of an IO manager context (Dagster's names).

    `partition_key` is the run's partition; `asset_partition_keys` the partitions of the
    asset this context stores or loads (for an input, the upstream partitions its mapping
    picks). Unpartitioned, `has_asset_partitions` is False and the accessors raise.
    """

    __slots__ = ("_asset_partition_keys", "_run_partition_key", "asset_partitions_def")

    name: str

    @property
    def has_partition_key(self) -> bool:
        return self._run_partition_key is not None

    @property
    def partition_key(self) -> str:
        """The run's partition key; a MultiPartitionKey when the asset is multi-partitioned."""
        from dagloom.definitions.partitions import MultiPartitionsDefinition

        if self._run_partition_key is None:
            raise DagloomError(f"{self.name!r}: the run is not for one partition")
        if isinstance(self.asset_partitions_def, MultiPartitionsDefinition):
            return self.asset_partitions_def.get_partition_key_from_str(self._run_partition_key)
        return self._run_partition_key

    @property
    def has_asset_partitions(self) -> bool:
        return self._asset_partition_keys is not None

    @property
    def asset_partition_keys(self) -> list[str]:
        if self._asset_partition_keys is None:
            raise DagloomError(f"{self.name!r}: the asset is not partitioned")
        return list(self._asset_partition_keys)

    @property
    def asset_partition_key(self) -> str:
        keys = self.asset_partition_keys
        if len(keys) != 1:
            raise DagloomError(
                f"{self.name!r} covers {len(keys)} partitions; use asset_partition_keys"
            )
        return keys[0]

    @property
    def asset_partition_key_range(self) -> Any:
        from dagloom.definitions.partitions import PartitionKeyRange

        keys = self.asset_partition_keys
        return PartitionKeyRange(keys[0], keys[-1])

    @property
    def asset_partitions_time_window(self) -> Any:
        from dagloom.definitions.partitions import (
            MultiPartitionsDefinition,
            TimeWindow,
            TimeWindowPartitionsDefinition,
        )

        part = self.asset_partitions_def
        keys = self.asset_partition_keys if part is not None else []
        if isinstance(part, MultiPartitionsDefinition) and part.time_window_dimension:
            # a multi-partitioned asset's window is that of its time dimension
            dim = part.time_window_dimension
            keys = [part.get_partition_key_from_str(k).keys_by_dimension[dim.name] for k in keys]
            part = dim.partitions_def
        if not isinstance(part, TimeWindowPartitionsDefinition):
            raise DagloomError(f"{self.name!r}: the asset is not partitioned by time windows")
        first = part.time_window_for_partition_key(keys[0])
        last = part.time_window_for_partition_key(keys[-1])
        return TimeWindow(first.start, last.end)

    def set_partitions(
        self,
        asset_partition_keys: Sequence[str] | None,
        asset_partitions_def: Any,
        run_partition_key: str | None,
    ) -> None:
        """Record the partitions this context is for (the step runner calls this)."""
        self._asset_partition_keys = (
            None if asset_partition_keys is None else tuple(asset_partition_keys)
        )
        self.asset_partitions_def = asset_partitions_def
        self._run_partition_key = run_partition_key


class OutputContext(_PartitionFields):
    """What an IO manager knows about an output it stores."""

    __slots__ = (
        "_definition_metadata",
        "_user_metadata",
        "asset_key",
        "config",
        "dagster_type",
        "job_name",
        "log",
        "mapping_key",
        "name",
        "resources",
        "run_id",
        "step_key",
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
        # Both made on first read when empty: a run keeps every output's context, and two
        # empty dicts each are 128 bytes a step.
        self._definition_metadata: Mapping[str, Any] | None = definition_metadata or None
        self.resources = resources
        self.log = log if log is not None else _DEFAULT_LOG
        self._user_metadata: dict[str, Any] | None = None
        self.config: Any = None
        self.dagster_type: Any = None
        self._asset_partition_keys: tuple[str, ...] | None = None
        self._run_partition_key: str | None = None
        self.asset_partitions_def: Any = None

    @property
    def definition_metadata(self) -> Mapping[str, Any]:
        """The metadata the output was declared with (`Out(metadata=...)`)."""
        found = self._definition_metadata
        if found is None:
            found = self._definition_metadata = {}
        return found

    @definition_metadata.setter
    def definition_metadata(self, value: Mapping[str, Any]) -> None:
        self._definition_metadata = value

    @property
    def user_metadata(self) -> dict[str, Any]:
        """The metadata the IO manager added while storing the output."""
        found = self._user_metadata
        if found is None:
            found = self._user_metadata = {}
        return found

    @user_metadata.setter
    def user_metadata(self, value: dict[str, Any]) -> None:
        self._user_metadata = value

    @property
    def has_asset_key(self) -> bool:
        return self.asset_key is not None

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The metadata the output was declared with (`Out(metadata=...)`)."""
        return self.definition_metadata

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


class InputContext(_PartitionFields):
    """What an IO manager knows about an input it loads: the output it comes from, if any."""

    __slots__ = (
        "asset_key",
        "config",
        "dagster_type",
        "definition_metadata",
        "log",
        "name",
        "resource_config",
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
        self.log = log if log is not None else _DEFAULT_LOG
        self.config: Any = None
        self.dagster_type: Any = None
        self.resource_config: Any = None
        self._asset_partition_keys: tuple[str, ...] | None = None
        self._run_partition_key: str | None = None
        self.asset_partitions_def: Any = None

    @property
    def has_asset_key(self) -> bool:
        return self.asset_key is not None

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The metadata the input was declared with (`In(metadata=...)`)."""
        return self.definition_metadata

    def get_identifier(self) -> list[str]:
        """Where the upstream output this input reads lives (see OutputContext's)."""
        if self.upstream_output is None:
            raise DagloomError(f"input {self.name!r} has no upstream output")
        return self.upstream_output.get_identifier()

    def get_asset_identifier(self) -> list[str]:
        if self.asset_key is None:
            raise DagloomError(f"input {self.name!r} is not an asset")
        return list(self.asset_key.path)


def build_output_context(
    step_key: str | None = None,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    mapping_key: str | None = None,
    config: Any = None,
    dagster_type: Any = None,
    resources: Mapping[str, Any] | None = None,
    asset_key: AssetKey | str | Sequence[str] | None = None,
    job_name: str | None = None,
    partition_key: str | None = None,
) -> OutputContext:
    """An OutputContext for calling an IO manager's `handle_output` in a unit test; every
    argument is optional, an asset key may be a string."""
    context = OutputContext(
        step_key or "",
        name or "result",
        run_id or "",
        mapping_key=mapping_key,
        asset_key=None if asset_key is None else AssetKey.from_coercible(asset_key),
        job_name=job_name,
        definition_metadata=metadata,
        resources=Resources(resources),
    )
    context.config = config
    context.dagster_type = resolve_dagster_type(dagster_type)
    if partition_key is not None:
        context.set_partitions([partition_key], None, partition_key)
    return context


def build_input_context(
    name: str | None = None,
    config: Any = None,
    metadata: Mapping[str, Any] | None = None,
    upstream_output: OutputContext | None = None,
    dagster_type: Any = None,
    resources: Mapping[str, Any] | None = None,
    asset_key: AssetKey | str | Sequence[str] | None = None,
    step_key: str | None = None,
    partition_key: str | None = None,
    asset_partition_key_range: Any = None,
) -> InputContext:
    """An InputContext for calling an IO or input manager's `load_input` in a unit test;
    every argument is optional, an asset key may be a string."""
    context = InputContext(
        name or "input",
        step_key,
        upstream_output,
        asset_key=None if asset_key is None else AssetKey.from_coercible(asset_key),
        definition_metadata=metadata,
        resources=Resources(resources),
    )
    context.config = config
    context.dagster_type = resolve_dagster_type(dagster_type)
    if asset_partition_key_range is not None:
        ends = [asset_partition_key_range.start, asset_partition_key_range.end]
        context.set_partitions(list(dict.fromkeys(ends)), None, partition_key)
    elif partition_key is not None:
        context.set_partitions([partition_key], None, partition_key)
    return context


class InputManager(ABC):
    """Loads an input (`In(input_manager_key=...)`), called inside the run's step, so what it
    raises fails that step."""

    @abstractmethod
    def load_input(self, context: InputContext) -> Any: ...


class IOManager(InputManager):
    """Stores outputs and loads inputs. Both methods are called inside the run's step, so
    what they raise fails that step."""

    @abstractmethod
    def handle_output(self, context: OutputContext, obj: Any) -> None: ...


class ConfigurableIOManager(ConfigurableResource, IOManager):
    """An IO manager whose fields are its config."""


class ConfigurableIOManagerFactory(ConfigurableResourceFactory[IOManager]):
    """An IO manager whose fields are its config and which builds the IO manager a run uses
    with `create_io_manager` (called once per run, after `setup_for_execution`)."""

    def create_io_manager(self, context: InitResourceContext) -> IOManager:
        """The IO manager for this run."""
        raise DagsterInvalidDefinitionError(
            f"{type(self).__name__} must override create_io_manager", name=type(self).__name__
        )

    def create_resource(self, context: InitResourceContext) -> IOManager:
        return self.create_io_manager(context)


class IOManagerDefinition(ResourceDefinition):
    """A resource definition that builds an IOManager; `input_config_schema` and
    `output_config_schema` describe the config its contexts carry."""

    __slots__ = ("input_config_schema", "output_config_schema")

    def __init__(
        self,
        resource_fn: Callable[..., Any],
        config_schema: Any = None,
        description: str | None = None,
        required_resource_keys: Any = None,
        input_config_schema: Any = None,
        output_config_schema: Any = None,
    ) -> None:
        super().__init__(resource_fn, config_schema, description, required_resource_keys)
        self.input_config_schema = input_config_schema
        self.output_config_schema = output_config_schema

    @staticmethod
    def hardcoded_io_manager(
        value: InputManager, description: str | None = None
    ) -> IOManagerDefinition:
        """A definition whose every run uses the IO manager object `value`."""
        return IOManagerDefinition(lambda _ctx: value, None, description)


class InputManagerDefinition(IOManagerDefinition):
    """A resource definition that builds an InputManager."""

    __slots__ = ()


def _manager_definition(
    cls: type[IOManagerDefinition],
    func: Callable[..., Any],
    config_schema: Any,
    description: str | None,
    required_resource_keys: Any,
    input_config_schema: Any,
    output_config_schema: Any,
) -> IOManagerDefinition:
    base = ResourceDefinition.from_function(
        func, config_schema, description, required_resource_keys
    )
    return cls(
        base.resource_fn,
        config_schema,
        base.description,
        required_resource_keys,
        input_config_schema=input_config_schema,
        output_config_schema=output_config_schema,
    )


def io_manager(
    fn: Callable[..., IOManager] | None = None,
    *,
    config_schema: Any = None,
    description: str | None = None,
    output_config_schema: Any = None,
    input_config_schema: Any = None,
    required_resource_keys: Any = None,
    version: str | None = None,
) -> Any:
    """Declare an IO manager from a function of an InitResourceContext (or of nothing);
    `output_config_schema` and `input_config_schema` describe per-output and per-input
    config."""

    def wrap(func: Callable[..., IOManager]) -> IOManagerDefinition:
        return _manager_definition(
            IOManagerDefinition,
            func,
            config_schema,
            description,
            required_resource_keys,
            input_config_schema,
            output_config_schema,
        )

    return wrap(fn) if fn is not None else wrap


def input_manager(
    fn: Callable[..., Any] | None = None,
    *,
    config_schema: Any = None,
    description: str | None = None,
    input_config_schema: Any = None,
    required_resource_keys: Any = None,
    version: str | None = None,
) -> Any:
    """Declare an input manager, as Dagster does: the function is called each time an input
    with `In(input_manager_key=...)` loads, with that input's `InputContext` (or with no
    argument), and its return value is the input; if it returns an `InputManager`, that
    manager's `load_input` gives the value. `context.resource_config` holds the manager's
    validated config."""

    def wrap(func: Callable[..., Any]) -> IOManagerDefinition:
        takes_context = bool(inspect.signature(func).parameters)

        def build(init: InitResourceContext) -> InputManager:
            return _FunctionInputManager(func, takes_context, init.resource_config)

        return InputManagerDefinition(
            build,
            config_schema,
            description or func.__doc__,
            required_resource_keys,
            input_config_schema=input_config_schema,
        )

    return wrap(fn) if fn is not None else wrap


class _FunctionInputManager(InputManager):
    """The input manager `@input_manager` builds from a load function."""

    def __init__(self, load_fn: Callable[..., Any], takes_context: bool, config: Any) -> None:
        self._load_fn = load_fn
        self._takes_context = takes_context
        self._config = config

    def load_input(self, context: InputContext) -> Any:
        context.resource_config = self._config
        value = self._load_fn(context) if self._takes_context else self._load_fn()
        if isinstance(value, InputManager):
            return value.load_input(context)
        return value


_ABSENT = object()


def _memory_key(context: OutputContext) -> tuple[str, ...]:
    if context.asset_key is not None:
        return ("asset", *context.asset_key.path)
    if context.mapping_key is None:
        return (context.run_id, context.step_key, context.name)
    return (context.run_id, context.step_key, context.name, context.mapping_key)


class InMemoryIOManager(IOManager):
    """Keeps every value in a dict for the life of this object (one run, unless shared).

    A step's plain output (no asset, no mapping key) is kept in its run's own dict, under
    the step key for output "result" and (step key, output) otherwise: no key tuple is made
    per value. Assets' and mapped outputs' values are in `values`, under `_memory_key`."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, ...], Any] = {}
        self._runs: dict[str, dict[str | tuple[str, str], Any]] = {}

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if context.asset_key is None and context.mapping_key is None:
            self.handle_plain(context.run_id, context.step_key, context.name, obj)
        else:
            self.values[_memory_key(context)] = obj

    def handle_plain(self, run_id: str, step_key: str, name: str, obj: Any) -> None:
        """What `handle_output` does with a plain output (no asset key, no mapping key)."""
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = {}
        run[step_key if name == "result" else (step_key, name)] = obj

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is not None:
            return self.value_of(upstream, context.name)
        if context.asset_key is None:
            raise DagloomError(f"input {context.name!r} has no upstream output to load")
        return self._stored(("asset", *context.asset_key.path), context.name)

    def value_of(self, upstream: OutputContext, input_name: str) -> Any:
        """What `load_input` gives input `input_name` reading `upstream`: this manager reads
        nothing else of its context, so the executor calls this without building one."""
        if upstream.asset_key is None and upstream.mapping_key is None:  # the common case
            run = self._runs.get(upstream.run_id)
            if run is not None:
                name = upstream.name
                found = run.get(
                    upstream.step_key if name == "result" else (upstream.step_key, name), _ABSENT
                )
                if found is not _ABSENT:
                    return found
        return self._stored(_memory_key(upstream), input_name)

    def _stored(self, key: tuple[str, ...], input_name: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise DagloomError(
                f"no value stored in memory for {'/'.join(key)!r} (input {input_name!r})"
            ) from None


def default_storage_dir() -> Path:
    """`$DAGLOOM_HOME/storage`, with `$DAGLOOM_HOME` defaulting to `./.dagloom`."""
    return Path(os.environ.get("DAGLOOM_HOME", ".dagloom")) / "storage"


@functools.lru_cache(maxsize=64)
def _resolved(base: str) -> Path:
    """An absolute `base` resolved, once per process: a storage folder that later becomes
    a link elsewhere only makes the paths below it resolve outside it, which is refused."""
    return Path(base).resolve()


def _below(root: Path, parts: Sequence[str]) -> Path:
    """`root/parts…` resolved, for a resolved `root` and plain components: looked at one
    component at a time (a link among them: resolved in full), not from `/` down."""
    path = root
    for index, part in enumerate(parts):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:  # nothing below a missing folder can be a link
            return path.joinpath(*parts[index + 1 :])
        except OSError:
            return root.joinpath(*parts).resolve()
        if stat.S_ISLNK(mode):
            return root.joinpath(*parts).resolve()
    return path


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
    root = _resolved(str(base)) if base.is_absolute() else base.resolve()
    path = _below(root, parts)
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

    def _partition_path(self, key: AssetKey, partition: str) -> Path:
        # A multi-partition key "a|b" is stored as directories a/b, one per dimension.
        parts = getattr(partition, "keys_by_dimension", None)
        tail = list(parts.values()) if parts else [partition]
        return contained_path(
            self._root(),
            [*key.path, *tail],
            f"asset {key.to_user_string()!r} partition {partition!r}",
        )

    def _path(self, context: OutputContext) -> Path:
        if context.asset_key is not None:
            if context.has_asset_partitions:
                return self._partition_path(context.asset_key, context.asset_partition_key)
            return self._asset_path(context.asset_key)
        return contained_path(
            self._root(),
            context.get_identifier(),
            f"output {context.name!r} of step {context.step_key!r} in run {context.run_id!r}",
        )

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        """Store `obj`: one file per asset, per partition of a partitioned asset (a run of
        several partitions hands a dict of partition key -> value)."""
        if context.asset_key is not None and context.has_asset_partitions:
            keys = context.asset_partition_keys
            if len(keys) > 1:
                if not isinstance(obj, Mapping) or set(obj) != set(keys):
                    raise DagloomError(
                        f"asset {context.asset_key.to_user_string()!r}: a run of "
                        f"{len(keys)} partitions must output a dict keyed by those partitions"
                    )
                for key in keys:
                    self._write(self._partition_path(context.asset_key, key), obj[key])
                return
        path = self._path(context)
        self._write(path, obj)
        from dagloom.definitions.metadata import MetadataValue

        context.add_output_metadata({"path": MetadataValue.path(str(path))})

    def _write(self, path: Path, obj: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # readers never see a half-written file

    def load_input(self, context: InputContext) -> Any:
        """Load what the input reads; from a partitioned asset, its one mapped partition's
        value, a dict of partition key -> value when the mapping picks several, or None when
        it picks none (the first partition of an asset reading its previous one)."""
        if context.asset_key is not None and context.has_asset_partitions:
            keys = context.asset_partition_keys
            paths = {k: self._partition_path(context.asset_key, k) for k in keys}
            if not keys:
                return None
            if len(keys) == 1:
                return self._read(context, paths[keys[0]])
            return {k: self._read(context, p) for k, p in paths.items()}
        upstream = context.upstream_output
        if upstream is not None:
            path = self._path(upstream)
        elif context.asset_key is not None:
            path = self._asset_path(context.asset_key)
        else:
            raise DagloomError(f"input {context.name!r} has no upstream output to load")
        return self._read(context, path)

    def _read(self, context: InputContext, path: Path) -> Any:
        try:
            with path.open("rb") as handle:
                return pickle.load(handle)
        except FileNotFoundError:
            raise DagloomError(
                f"input {context.name!r}: nothing stored at {path} (was it materialized?)"
            ) from None


class UPathIOManager(IOManager):
    """An IO manager that stores each value in a file of its own under `base_path`, written
    by `dump_to_path` and read by `load_from_path`, which subclasses give.

    An asset is stored at `base_path/<key path>`, an op output at `base_path/<run id>/<step
    key>/<output>`, each with `extension` appended (`".parquet"`). `base_path` is a `str`
    or `Path` (default `$DAGLOOM_HOME/storage`), whose files must stay inside it, or any
    path object with `/` and `open` (a `upath.UPath`). Handling an output adds its `path`
    and `get_metadata(context, obj)` to the output's metadata.
    """

    extension: str = ""

    def __init__(self, base_path: Any = None) -> None:
        if base_path is None:
            base_path = default_storage_dir()
        self._base_path: Any = Path(base_path) if isinstance(base_path, str) else base_path

    @property
    def base_path(self) -> Any:
        return self._base_path

    @abstractmethod
    def dump_to_path(self, context: OutputContext, obj: Any, path: Any) -> None:
        """Write `obj` to `path`."""

    @abstractmethod
    def load_from_path(self, context: InputContext, path: Any) -> Any:
        """Read the value stored at `path`."""

    def get_metadata(self, context: OutputContext, obj: Any) -> dict[str, Any]:
        """Metadata to record for `obj` beside its path; none by default."""
        return {}

    def path_exists(self, path: Any) -> bool:
        return bool(path.exists())

    def make_directory(self, path: Any) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def unlink(self, path: Any) -> None:
        path.unlink()

    def _join(self, parts: Sequence[str], what: str) -> Any:
        base = self._base_path
        if isinstance(base, Path):
            path: Any = contained_path(base, list(parts), what)
        else:
            path = base.joinpath(*parts)
        return path.with_name(path.name + self.extension) if self.extension else path

    def get_asset_path(self, asset_key: AssetKey) -> Any:
        return self._join(asset_key.path, f"asset {asset_key.to_user_string()!r}")

    def _get_path(self, context: OutputContext) -> Any:
        if context.asset_key is not None:
            return self.get_asset_path(context.asset_key)
        return self._join(
            context.get_identifier(),
            f"output {context.name!r} of step {context.step_key!r} in run {context.run_id!r}",
        )

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        path = self._get_path(context)
        self.make_directory(path.parent)
        self.dump_to_path(context, obj, path)
        from dagloom.definitions.metadata import MetadataValue

        context.add_output_metadata(
            {"path": MetadataValue.path(str(path)), **self.get_metadata(context, obj)}
        )

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is not None:
            path = self._get_path(upstream)
        elif context.asset_key is not None:
            path = self.get_asset_path(context.asset_key)
        else:
            raise DagloomError(f"input {context.name!r} has no upstream output to load")
        if not self.path_exists(path):
            raise DagloomError(
                f"input {context.name!r}: nothing stored at {path} (was it materialized?)"
            )
        return self.load_from_path(context, path)


mem_io_manager = IOManagerDefinition(lambda _ctx: InMemoryIOManager(), None, "in-memory")


def _fs_from_context(ctx: Any) -> IOManager:
    config = dict(ctx.resource_config or {})
    return FilesystemIOManager(base_dir=config.get("base_dir"))


fs_io_manager = IOManagerDefinition(_fs_from_context, None, "filesystem (pickle)")


__all__ = [
    "ConfigurableIOManager",
    "ConfigurableIOManagerFactory",
    "FilesystemIOManager",
    "IOManager",
    "IOManagerDefinition",
    "InMemoryIOManager",
    "InputContext",
    "InputManager",
    "InputManagerDefinition",
    "OutputContext",
    "UPathIOManager",
    "build_input_context",
    "build_output_context",
    "fs_io_manager",
    "input_manager",
    "io_manager",
    "mem_io_manager",
]
