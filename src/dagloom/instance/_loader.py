"""Building components from `module`/`class`/`config`, for built-ins and users' classes alike.

Storages are one family of `dagloom._components`: a user's class may declare `config_model`,
a pydantic model its `config` is validated with, and a classmethod `from_config(config,
context)` given a `LoadContext`; without `from_config` it is called with the config's fields
as keyword arguments. Built-ins are named by class alone; a `module` of Dagster's own
(`dagster_postgres.run_storage`, `dagster.core.scheduler`) also resolves to the built-in of
the same class name, so a copied dagster.yaml keeps working.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from dagloom._components import (
    ComponentFamily,
    build_component,
    component_class,
    component_config,
    import_target,
    target_of,
)
from dagloom.errors import ConfigError
from dagloom.instance.config import (
    ComponentConfig,
    MemoryStorageConfig,
    PostgresStorageConfig,
    SqliteStorageConfig,
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
        return import_target(target)(database(config, context))

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
"""Built-in storages by class name, with how each is built over its shared database."""


def _storage_family(section: str, expected: type | None) -> ComponentFamily:
    def accepts(cls: type) -> bool:
        if expected is None:
            return True
        try:
            return issubclass(cls, expected)
        except TypeError:  # a protocol with data members: checked on the built object
            return True

    name = expected.__name__ if expected is not None else "a component"
    return ComponentFamily(
        section=section,
        requirement=f"a {name}",
        accepts=accepts,
        builtins={short: b.target for short, b in BUILTINS.items()},
    )


def load_component(
    spec: ComponentConfig,
    *,
    section: str,
    context: LoadContext,
    expected: type | None = None,
) -> object:
    """Build the component `spec` describes; `ConfigError` names the file and key path of
    whatever is wrong (unknown class, unimportable module, bad config, wrong kind).

    The one mechanism of every family (`dagloom._components`), with `context` as what a
    storage's `from_config` gets; a built-in storage over a database shares it with the
    other sections on that database.
    """
    family = _storage_family(section, expected)
    path: tuple[str | int, ...] = (section,)
    cls = component_class(family, spec.module, spec.class_name, path=path, source=context.source)
    builtin = next((b for b in BUILTINS.values() if b.target == target_of(cls)), None)
    if builtin is not None:
        config = component_config(
            builtin.config_model, spec.config, path=path, source=context.source
        )
        component: object = builtin.build(config, context)
    else:
        component = build_component(
            family, spec.module, spec.class_name, spec.config, context, source=context.source
        )
    if expected is not None and not isinstance(component, expected):
        raise ConfigError(
            f"wrong kind of {section}",
            source=context.source,
            problems=[((*path, "class"), f"{cls.__qualname__} is not a {expected.__name__}")],
        )
    return component
