"""Versioned schemas: each backend's ordered migrations, from an empty database to the latest.

A database records its version in `dagloom_schema`. Opening one at an older version raises
`SchemaVersionError` asking for `dagloom instance migrate`; a newer one cannot be used by this
code at all. Add a schema change as a new `Migration` at the end of a backend's list; never
edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagloom.storage._sql_storage import SqlConnection

DataStep = Callable[["SqlConnection"], Awaitable[None]]
"""Rewrites stored data inside the migration's transaction, where SQL alone cannot."""


@dataclass(frozen=True, slots=True)
class Migration:
    """What takes a database from `version - 1` to `version`, in one transaction:
    `statements`, then `convert` (when the stored data must be rewritten), then `cleanup`."""

    version: int
    description: str
    statements: tuple[str, ...]
    convert: DataStep | None = None
    cleanup: tuple[str, ...] = ()


def pending(migrations: Sequence[Migration], current: int) -> list[Migration]:
    """The migrations to apply, in order, to a database at version `current`."""
    return [m for m in migrations if m.version > current]


def latest(migrations: Sequence[Migration]) -> int:
    """The version the last migration reaches."""
    return migrations[-1].version


def outdated_message(location: str, found: int, expected: int) -> str:
    """The error text for a database whose schema is not the one this code writes."""
    if found > expected:
        return (
            f"the database schema is at version {found}, newer than this dagloom knows "
            f"(version {expected}); upgrade dagloom to use it"
        )
    return (
        f"the database schema is at version {found}, older than this dagloom needs "
        f"(version {expected}); run `dagloom instance migrate` to upgrade it"
    )
