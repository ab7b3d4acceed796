"""AssetKey: the path that names an asset, e.g. AssetKey(["warehouse", "orders"])."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Union

from dagloom.errors import DefinitionError

_PART = re.compile(r"^[A-Za-z0-9_\-.]+$")
_SEPARATORS = ("/", "\\")
_LEGACY_SPLIT = re.compile(r"[^A-Za-z0-9_]")


def path_component_problem(part: object) -> str | None:
    """Why `part` cannot be one component of a file path kept under a base folder, or None.

    Refused: a non-string, the empty string, `.` and `..`, NUL, and `/` or `\\` (so no
    absolute path either). Pure; the one rule that asset keys and the filesystem IO manager
    both apply, so no key, run id, step key or output name can name a file outside it.
    """
    if not isinstance(part, str):
        return f"is a {type(part).__name__}, not a string"
    if not part:
        return "is empty"
    if part in (".", ".."):
        return "names a folder itself, not a file in it"
    if "\0" in part:
        return "contains NUL"
    if any(sep in part for sep in _SEPARATORS):
        return "contains a path separator"
    return None


class AssetPath(tuple[str, ...]):
    """An asset key's components: a tuple (hashable, immutable) that also works where
    Dagster's code uses its list, so `context.asset_key.path + [partition_key]` and
    `prefix_list + context.asset_key.path` give lists, and `key.path == ["a", "b"]` holds."""

    __slots__ = ()

    def __add__(self, other: Any) -> Any:
        if isinstance(other, list):
            return [*self, *other]
        return tuple.__add__(self, other)

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, list):
            return [*other, *self]
        if isinstance(other, tuple):
            return tuple.__add__(other, self)
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return list(self) == other
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return repr(list(self))


class AssetKey:
    """An immutable, hashable asset path. `AssetKey("a")`, `AssetKey(["a", "b"])`, or
    `AssetKey.from_user_string("a/b")`."""

    __slots__ = ("_hash", "path")

    path: AssetPath
    _hash: int

    def __init__(self, path: str | Sequence[str]) -> None:
        parts = AssetPath((path,) if isinstance(path, str) else path)
        if not parts:
            raise DefinitionError("an AssetKey needs at least one path component")
        for part in parts:
            problem = path_component_problem(part)
            if problem is None and isinstance(part, str) and not _PART.match(part):
                problem = "has a character other than letters, digits, '_', '-' or '.'"
            if problem is not None:
                raise DefinitionError(
                    f"asset key {list(parts)!r}: component {part!r} {problem}; a component "
                    "is a non-empty string of letters, digits, '_', '-' or '.', and not "
                    "'.' or '..'",
                    name="/".join(str(p) for p in parts),
                )
        object.__setattr__(self, "path", parts)
        object.__setattr__(self, "_hash", hash(parts))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("AssetKey is immutable")

    def __reduce__(self) -> tuple[type[AssetKey], tuple[tuple[str, ...]]]:
        # Pickled (an output value holding keys, a process boundary) as its path, so
        # unpickling goes through __init__ rather than setting the immutable slots.
        return (AssetKey, (self.path,))

    @classmethod
    def from_user_string(cls, text: str) -> AssetKey:
        """Parse `a/b/c` into AssetKey(["a", "b", "c"])."""
        return cls(text.split("/"))

    @classmethod
    def from_coercible(cls, value: CoercibleToAssetKey) -> AssetKey:
        if isinstance(value, AssetKey):
            return value
        if isinstance(value, str):
            return cls.from_user_string(value) if "/" in value else cls(value)
        return cls(value)

    def to_user_string(self) -> str:
        return "/".join(self.path)

    def to_escaped_user_string(self) -> str:
        """The user string; components never hold `/`, so there is nothing to escape."""
        return self.to_user_string()

    @classmethod
    def from_escaped_user_string(cls, text: str) -> AssetKey:
        """The inverse of `to_escaped_user_string` (components never hold `/`)."""
        return cls.from_user_string(text)

    def to_string(self) -> str:
        """The key as a JSON list of its components: `'["a", "b"]'` (Dagster's storage
        form, also `to_db_string`)."""
        return json.dumps(list(self.path))

    def to_db_string(self) -> str:
        return self.to_string()

    @classmethod
    def from_db_string(cls, text: str | None) -> AssetKey | None:
        """The key `to_string` wrote (`'["a", "b"]'`); None for None or "". A string that
        is not a JSON list is split on every character other than letters, digits and `_`,
        as Dagster reads such legacy keys."""
        if not text:
            return None
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return cls(parsed)
        return cls([part for part in _LEGACY_SPLIT.split(text) if part])

    def to_graphql_input(self) -> dict[str, list[str]]:
        return {"path": list(self.path)}

    @classmethod
    def from_graphql_input(cls, value: Mapping[str, Sequence[str]]) -> AssetKey:
        return cls(value["path"])

    def has_prefix(self, prefix: Sequence[str]) -> bool:
        """Whether the key's first components are `prefix`."""
        head = tuple(prefix)
        return self.path[: len(head)] == head

    def with_prefix(self, prefix: str | Sequence[str]) -> AssetKey:
        head = (prefix,) if isinstance(prefix, str) else tuple(prefix)
        return AssetKey(head + self.path)

    def to_python_identifier(self, suffix: str | None = None) -> str:
        name = "__".join(self.path).replace("-", "_").replace(".", "_")
        return f"{name}_{suffix}" if suffix else name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AssetKey) and self.path == other.path

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: AssetKey) -> bool:
        return self.path < other.path

    def __repr__(self) -> str:
        return f"AssetKey({list(self.path)!r})"

    def __str__(self) -> str:
        return self.to_user_string()


CoercibleToAssetKey = Union[AssetKey, str, Sequence[str]]  # noqa: UP007 - runtime alias


__all__ = ["AssetKey", "AssetPath", "CoercibleToAssetKey", "path_component_problem"]
