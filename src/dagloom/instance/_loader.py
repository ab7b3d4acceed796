"""Building components from `module`/`class`/`config`, for built-ins and users' classes alike.

A user's class may declare `config_model`, a pydantic model its `config` is validated with,
and a classmethod `from_config(config, context)`; without `from_config` it is called with the
config's fields as keyword arguments. Built-ins are named by class alone; a `module` of
Dagster's own (`dagster_postgres.run_storage`, `dagster.core.scheduler`) also resolves to the
built-in of the same class name, so a copied dagster.yaml keeps working.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dagloom.errors import ConfigError
from dagloom.instance.config import (
    ComponentConfig,
    MemoryStorageConfig,
    PostgresStorageConfig,
    SqliteStorageConfig,
    problems_of,
)

T = TypeVar("T")


@dataclass(slots=True)
class LoadContext:
    """What a component's `from_config` may use: the instance home, the config file, and a
    cache so components over one database share it."""

    home: Path
    source: str | None = None
    _shared: dict[Hashable, object] = field(default_factory=dict)

    def shared(self, key: Hashable, factory: Callable[[], T]) -> T:
        """The object made for `key` by the first caller's `factory`."""
        if key not in self._shared:
            self._shared[key] = factory()
        return self._shared[key]  # type: ignore[return-value]  # stored by the same key


# -- built-in storages -----------------------------------------------------------------------


def sqlite_database(config: SqliteStorageConfig, context: LoadContext) -> Any:
    from dagloom.storage.sqlite import SqliteDatabase

    path = config.file(context.home).resolve()
    return context.shared(
        ("sqlite", path),
        lambda: SqliteDatabase(
            path,
            readers=config.readers,
            busy_timeout=config.busy_timeout_seconds,
            poll_interval=config.poll_interval_seconds,
            retry_timeout=config.retry_timeout_seconds,
        ),
    )


def postgres_database(config: PostgresStorageConfig, context: LoadContext) -> Any:
    from dagloom.storage.postgres import PostgresDatabase

    dsn = config.dsn()
    return context.shared(
        ("postgres", dsn, config.db_schema),
        lambda: PostgresDatabase(
            dsn,
            schema=config.db_schema,
            min_size=config.pool_min_size,
            max_size=config.pool_max_size,
            poll_interval=config.poll_interval_seconds,
            connect_timeout=config.connect_timeout_seconds,
            command_timeout=config.command_timeout_seconds,
            retry_timeout=config.retry_timeout_seconds,
            application_name=config.application_name,
        ),
    )


def memory_database(_config: MemoryStorageConfig, context: LoadContext) -> Any:
    from dagloom.storage.memory import MemoryDatabase

    return context.shared(("memory",), MemoryDatabase)


@dataclass(frozen=True, slots=True)
class Builtin:
    """A built-in component: where its class lives, its config model, and how to build it."""

    target: str
    config_model: type[BaseModel]
    build: Callable[[Any, LoadContext], object]


def _over(database: Callable[[Any, LoadContext], Any], target: str) -> Callable[..., object]:
    def build(config: Any, context: LoadContext) -> object:
        return _import(target)(database(config, context))

    return build


def _storage(target: str, model: type[BaseModel], db: Callable[[Any, LoadContext], Any]) -> Builtin:
    return Builtin(target, model, _over(db, target))


BUILTINS: dict[str, Builtin] = {
    "SqliteRunStorage": _storage(
        "dagloom.storage.sqlite:SqliteRunStorage", SqliteStorageConfig, sqlite_database
    ),
    "SqliteEventLogStorage": _storage(
        "dagloom.storage.sqlite:SqliteEventLogStorage", SqliteStorageConfig, sqlite_database
    ),
    "SqliteScheduleStorage": _storage(
        "dagloom.storage.sqlite:SqliteScheduleStorage", SqliteStorageConfig, sqlite_database
    ),
    "PostgresRunStorage": _storage(
        "dagloom.storage.postgres:PostgresRunStorage", PostgresStorageConfig, postgres_database
    ),
    "PostgresEventLogStorage": _storage(
        "dagloom.storage.postgres:PostgresEventLogStorage",
        PostgresStorageConfig,
        postgres_database,
    ),
    "PostgresScheduleStorage": _storage(
        "dagloom.storage.postgres:PostgresScheduleStorage",
        PostgresStorageConfig,
        postgres_database,
    ),
    "MemoryRunStorage": _storage(
        "dagloom.storage.memory:MemoryRunStorage", MemoryStorageConfig, memory_database
    ),
    "MemoryEventLogStorage": _storage(
        "dagloom.storage.memory:MemoryEventLogStorage", MemoryStorageConfig, memory_database
    ),
    "MemoryScheduleStorage": _storage(
        "dagloom.storage.memory:MemoryScheduleStorage", MemoryStorageConfig, memory_database
    ),
}
"""Built-in components by short name. Owners of other component families add theirs here."""


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _is_dagster_module(module: str) -> bool:
    return module == "dagster" or module.startswith(("dagster.", "dagster_"))


def load_component(
    spec: ComponentConfig,
    *,
    section: str,
    context: LoadContext,
    expected: type | None = None,
) -> object:
    """Build the component `spec` describes; `ConfigError` names the file and key path of
    whatever is wrong (unknown class, unimportable module, bad config, wrong kind)."""
    path: tuple[str | int, ...] = (section,)
    builtin: Builtin | None = None
    if spec.module is None or _is_dagster_module(spec.module):
        builtin = BUILTINS.get(spec.class_name)
        if builtin is None:
            known = ", ".join(sorted(BUILTINS))
            raise ConfigError(
                "unknown component",
                source=context.source,
                problems=[
                    (
                        (*path, "class"),
                        f"{spec.class_name!r} is not a built-in class (built-ins: {known}); "
                        "give `module` to load your own",
                    )
                ],
            )
        cls = _import(builtin.target)
    else:
        try:
            module = importlib.import_module(spec.module)
        except ImportError as exc:
            raise ConfigError(
                "cannot load component",
                source=context.source,
                problems=[((*path, "module"), f"cannot import {spec.module!r}: {exc}")],
            ) from exc
        cls = getattr(module, spec.class_name, None)
        if not isinstance(cls, type):
            raise ConfigError(
                "cannot load component",
                source=context.source,
                problems=[
                    ((*path, "class"), f"module {spec.module!r} has no class {spec.class_name!r}")
                ],
            )
        builtin = next(
            (b for b in BUILTINS.values() if b.target == f"{cls.__module__}:{cls.__name__}"),
            None,
        )
    component = _build(cls, builtin, spec.config, path, context)
    if expected is not None and not isinstance(component, expected):
        raise ConfigError(
            "wrong kind of component",
            source=context.source,
            problems=[((*path, "class"), f"{cls.__qualname__} is not a {expected.__name__}")],
        )
    return component


def _build(
    cls: type,
    builtin: Builtin | None,
    raw: dict[str, Any],
    path: tuple[str | int, ...],
    context: LoadContext,
) -> object:
    model = builtin.config_model if builtin is not None else getattr(cls, "config_model", None)
    config: Any = raw
    if isinstance(model, type) and issubclass(model, BaseModel):
        try:
            config = model.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(
                "invalid component config",
                source=context.source,
                problems=problems_of(exc, (*path, "config")),
            ) from exc
    if builtin is not None:
        return builtin.build(config, context)
    from_config = getattr(cls, "from_config", None)
    if callable(from_config):
        return from_config(config, context)
    fields = config.model_dump() if isinstance(config, BaseModel) else dict(config)
    try:
        return cls(**fields)
    except TypeError as exc:
        raise ConfigError(
            "invalid component config",
            source=context.source,
            problems=[((*path, "config"), f"{cls.__qualname__} does not accept it: {exc}")],
        ) from exc
