"""Loading user code: import a Python file or module and find the Definitions it exposes."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
import types
from pathlib import Path
from typing import Any

from dagloom._gc import full_collections_deferred
from dagloom.definitions.asset import AssetsDefinition, AssetSpec
from dagloom.definitions.asset_job import UnresolvedAssetJobDefinition
from dagloom.definitions.definitions import Definitions
from dagloom.definitions.job import JobDefinition
from dagloom.definitions.observable import MultiObservableSourceAsset
from dagloom.definitions.partitioned_schedule import UnresolvedPartitionedAssetScheduleDefinition
from dagloom.definitions.schedule import ScheduleDefinition
from dagloom.definitions.sensor import SensorDefinition
from dagloom.errors import CodeLocationLoadError, DefinitionError
from dagloom.execution.boundary import describe_user_error, is_cancellation

LOCATION_PACKAGE = "__dagloom_location__"
"""The package under which files are imported, so that a file never takes the name of an
installed or standard-library module (`examples/numbers.py` is not `numbers`)."""


def load_definitions(
    python_file: str | os.PathLike[str] | None = None,
    module_name: str | None = None,
    attribute: str | None = None,
    working_directory: str | os.PathLike[str] | None = None,
) -> Definitions:
    """Import user code and return its Definitions.

    Give exactly one of `python_file` and `module_name`. A file is imported as
    `__dagloom_location__.<stem>` and its directory is *appended* to `sys.path`, so sibling
    modules import while the standard library and installed packages keep priority. A module
    is imported by name with `working_directory` (default: the current directory) appended to
    `sys.path`. The `sys.path` entries stay, because user code may import lazily while it runs.

    The Definitions is `attribute` when given (a job there is wrapped in a Definitions),
    else the module's single module-level Definitions, else one built from its module-level
    jobs, assets, schedules and sensors, as Dagster loads files without a Definitions.

    Raises `CodeLocationLoadError` naming the file or module, with the traceback in
    `traceback_text`, when importing raises (syntax errors, `sys.exit()` and
    `KeyboardInterrupt` included: user code never stops the process), when the module
    exposes nothing to load, or when it has several Definitions and no `attribute`.
    Importing a file again re-executes it.
    """
    if (python_file is None) == (module_name is None):
        raise CodeLocationLoadError(
            "give exactly one of a Python file or a module name",
            location=str(python_file or module_name or "<nothing>"),
        )
    # Importing user code builds every definition it holds, all kept: defer full collections.
    with full_collections_deferred():
        if python_file is not None:
            path = Path(python_file).resolve()
            location = str(python_file)
            module = _import_file(path, location)
        else:
            assert module_name is not None
            location = module_name
            module = _import_module(module_name, Path(working_directory or os.getcwd()).resolve())
        return definitions_from_module(module, attribute, location=location)


def definitions_from_module(
    module: types.ModuleType, attribute: str | None = None, *, location: str
) -> Definitions:
    """The Definitions `module` exposes (see `load_definitions` for the rules)."""
    if attribute is not None:
        try:
            value = getattr(module, attribute)
        except AttributeError:
            raise CodeLocationLoadError(
                f"{location} has no attribute {attribute!r}", location=location
            ) from None
        if isinstance(value, Definitions):
            return value
        if isinstance(value, JobDefinition | UnresolvedAssetJobDefinition):
            return _build(location, jobs=[value])
        raise CodeLocationLoadError(
            f"{location}: {attribute!r} is a {type(value).__name__}, not a Definitions or a job",
            location=location,
        )

    found = _module_level(module, Definitions)
    if len(found) == 1:
        only: Definitions = next(iter(found.values()))
        return only
    if len(found) > 1:
        names = ", ".join(found)
        raise CodeLocationLoadError(
            f"{location} defines several Definitions ({names}); choose one with -a/--attribute",
            location=location,
        )

    jobs = list(_module_level(module, JobDefinition, UnresolvedAssetJobDefinition).values())
    assets = list(
        _module_level(module, AssetsDefinition, AssetSpec, MultiObservableSourceAsset).values()
    )
    schedules = list(
        _module_level(
            module, ScheduleDefinition, UnresolvedPartitionedAssetScheduleDefinition
        ).values()
    )
    sensors = list(_module_level(module, SensorDefinition).values())
    if not (jobs or assets or schedules or sensors):
        raise CodeLocationLoadError(
            f"{location} defines no Definitions, jobs, assets, schedules or sensors",
            location=location,
        )
    return _build(location, jobs=jobs, assets=assets, schedules=schedules, sensors=sensors)


def _module_level(module: types.ModuleType, *kinds: type) -> dict[str, Any]:
    """Module attributes that are instances of `kinds`, by first name; an object bound to two
    names counts once."""
    out: dict[str, Any] = {}
    seen: set[int] = set()
    for name, value in vars(module).items():
        if isinstance(value, kinds) and id(value) not in seen:
            seen.add(id(value))
            out[name] = value
    return out


def _build(location: str, **parts: Any) -> Definitions:
    try:
        return Definitions(**parts)
    except DefinitionError as exc:
        raise CodeLocationLoadError(
            f"{location}: {exc}", location=location, traceback_text=_user_traceback(exc)
        ) from exc


def _import_file(path: Path, location: str) -> types.ModuleType:
    if not path.is_file():
        raise CodeLocationLoadError(f"{location}: no such file", location=location)
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.append(directory)
    if LOCATION_PACKAGE not in sys.modules:
        package = types.ModuleType(LOCATION_PACKAGE, "Files loaded by dagloom as code locations.")
        package.__path__ = []
        sys.modules[LOCATION_PACKAGE] = package
    name = f"{LOCATION_PACKAGE}.{_module_name_for(path)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CodeLocationLoadError(f"{location}: not a Python file", location=location)
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    # Registered before it runs, as `import` does: dataclasses and pickling look it up there.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # the user-code boundary: whatever the file raises is reported
        if is_cancellation(exc):
            raise
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
        raise _load_error(location, exc) from exc
    return module


def _module_name_for(path: Path) -> str:
    """The stem, unless another file already took it; then the stem and a hash of the path,
    so that two locations with one stem never replace each other's module."""
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in path.stem) or "_"
    taken = sys.modules.get(f"{LOCATION_PACKAGE}.{stem}")
    if taken is None or getattr(taken, "__file__", None) == str(path):
        return stem
    return f"{stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


def _import_module(module_name: str, working_directory: Path) -> types.ModuleType:
    if str(working_directory) not in sys.path:
        sys.path.append(str(working_directory))
    try:
        return importlib.import_module(module_name)
    except BaseException as exc:  # the user-code boundary: whatever the module raises is reported
        if is_cancellation(exc):
            raise
        raise _load_error(module_name, exc) from exc


def _load_error(location: str, exc: BaseException) -> CodeLocationLoadError:
    if isinstance(exc, ModuleNotFoundError):
        what = str(exc)
    elif isinstance(exc, SyntaxError):
        what = f"syntax error at line {exc.lineno}: {exc.msg}"
    elif isinstance(exc, SystemExit | KeyboardInterrupt):
        what = f"it {describe_user_error(exc)} while being imported"
    else:
        what = describe_user_error(exc)
    return CodeLocationLoadError(
        f"could not load {location}: {what}",
        location=location,
        traceback_text=_user_traceback(exc),
    )


def _user_traceback(exc: BaseException) -> str:
    """The traceback of `exc` without the frames of this module and importlib."""
    ours = {__file__, importlib.__file__}
    tb = exc.__traceback__
    while tb is not None and (
        tb.tb_frame.f_code.co_filename in ours
        or tb.tb_frame.f_code.co_filename.startswith("<frozen importlib")
    ):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


__all__ = ["LOCATION_PACKAGE", "definitions_from_module", "load_definitions"]
