"""Component families: every swappable part is built from `{module, class, config}`.

A family (the storages, run coordinators, run launchers, executors) is named by its config
section, says what its members must be, and names its built-ins by short name and class
name. `build_component` resolves the class, checks that it belongs to the family,
validates `config` with the class's own pydantic `config_model`, and builds it with the
classmethod `from_config(config, context)` (without one, the config's fields are its
keyword arguments). `context` is the family's: what a member needs besides its config (the
instance, a launcher ref, the code locations...).

A class is resolved from a short name or a built-in's class name when `module` is absent
or is Dagster's own (`dagster.core.run_coordinator`, so a copied dagster.yaml keeps
working), else by importing `module`. Every problem is one `ConfigError` naming the file
and the key path: `run_launcher.module`, `run_launcher.class`, `run_launcher.config.size`.
This module imports only pydantic and `dagloom.errors`, so every layer can use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from dagloom.errors import ConfigError, DagloomError, format_key_path

__all__ = [
    "ComponentFamily",
    "KeyPath",
    "build_component",
    "component_class",
    "component_config",
    "import_target",
    "target_of",
]

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ComponentFamily:
    """One family of components: its config `section`, what a member must be (`accepts`,
    described by `requirement` in errors) and its built-ins, by short name and by class
    name, as `module:Class` targets."""

    section: str
    requirement: str
    accepts: Callable[[type], bool]
    builtins: Mapping[str, str]


def import_target(target: str) -> Any:
    """The object a `module:Name` target names; imports the module."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def target_of(cls: type) -> str:
    """`cls` as a `module:Class` target."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _is_dagster_module(module: str) -> bool:
    return module == "dagster" or module.startswith(("dagster.", "dagster_"))


def _error(message: str, source: str | None, path: KeyPath, text: str) -> ConfigError:
    return ConfigError(message, source=source, problems=[(path, text)])


def component_class(
    family: ComponentFamily,
    module: str | None,
    class_name: str,
    *,
    path: KeyPath | None = None,
    source: str | None = None,
) -> type:
    """The class `module`/`class_name` names in `family`; imports it.

    `ConfigError` (under `path`, default the family's section) when it is not a built-in,
    its module does not import, the module has no such class, or the class is not one of
    the family's.
    """
    where: KeyPath = path if path is not None else (family.section,)
    if module is None or _is_dagster_module(module):
        target = family.builtins.get(class_name)
        if target is None:
            known = ", ".join(sorted(family.builtins))
            raise _error(
                f"unknown {family.section}",
                source,
                (*where, "class"),
                f"{class_name!r} is not a built-in class (built-ins: {known}); "
                "give `module` to load your own",
            )
        cls = import_target(target)
    else:
        try:
            loaded = importlib.import_module(module)
        except ImportError as exc:
            raise _error(
                f"cannot load {family.section}",
                source,
                (*where, "module"),
                f"cannot import {module!r}: {exc}",
            ) from exc
        cls = getattr(loaded, class_name, None)
    if not isinstance(cls, type):
        raise _error(
            f"cannot load {family.section}",
            source,
            (*where, "class"),
            f"module {module!r} has no class {class_name!r}",
        )
    if not family.accepts(cls):
        raise _error(
            f"wrong kind of {family.section}",
            source,
            (*where, "class"),
            f"{cls.__qualname__} is not {family.requirement}",
        )
    return cls


def component_config(
    model: object, raw: Mapping[str, Any], *, path: KeyPath, source: str | None = None
) -> Any:
    """`raw` validated by `model` (a pydantic model class; anything else leaves `raw` as
    it is); `ConfigError` naming each problem under `path` + `config`."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return dict(raw)
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        from dagloom.instance.config import problems_of

        raise ConfigError(
            f"invalid {format_key_path(path)} config",
            source=source,
            problems=problems_of(exc, (*path, "config")),
        ) from exc


def build_component(
    family: ComponentFamily,
    module: str | None,
    class_name: str,
    config: Mapping[str, Any] | None,
    context: object,
    *,
    path: KeyPath | None = None,
    source: str | None = None,
) -> object:
    """Build the member of `family` that `{module, class, config}` describes, for `context`.

    The class's `config_model` validates `config`; its `from_config(config, context)` (or
    its constructor, given the config's fields) builds it. Raises `ConfigError` naming
    `source` and the key path (under `path`, default the family's section) of whatever is
    wrong, including a constructor that refuses the config or builds something outside the
    family. Errors dagloom raises while
    building pass through; anything else the class raises is its bug and propagates.
    """
    where: KeyPath = path if path is not None else (family.section,)
    cls = component_class(family, module, class_name, path=where, source=source)
    validated = component_config(
        getattr(cls, "config_model", None), config or {}, path=where, source=source
    )
    from_config = getattr(cls, "from_config", None)
    try:
        if callable(from_config):
            component = from_config(validated, context)
        else:
            fields = validated.model_dump() if isinstance(validated, BaseModel) else dict(validated)
            component = cls(**fields)
    except DagloomError:
        raise
    except (TypeError, ValueError) as exc:
        raise _error(
            f"invalid {family.section} config",
            source,
            (*where, "config"),
            f"{cls.__qualname__} does not accept it: {exc}",
        ) from exc
    if not family.accepts(type(component)):
        raise _error(
            f"wrong kind of {family.section}",
            source,
            (*where, "class"),
            f"{cls.__qualname__} built a {type(component).__qualname__}, which is not "
            f"{family.requirement}",
        )
    return component
