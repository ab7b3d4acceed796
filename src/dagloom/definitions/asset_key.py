"""AssetKey: the path that names an asset, e.g. AssetKey(["warehouse", "orders"])."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Union

from dagloom.errors import DefinitionError

_PART = re.compile(r"^[A-Za-z0-9_\-.]+$")


class AssetKey:
    """An immutable, hashable asset path. `AssetKey("a")`, `AssetKey(["a", "b"])`, or
    `AssetKey.from_user_string("a/b")`."""

    __slots__ = ("_hash", "path")

    path: tuple[str, ...]
    _hash: int

    def __init__(self, path: str | Sequence[str]) -> None:
        parts = (path,) if isinstance(path, str) else tuple(path)
        if not parts:
            raise DefinitionError("an AssetKey needs at least one path component")
        for part in parts:
            if not isinstance(part, str) or not _PART.match(part):
                raise DefinitionError(
                    f"asset key component {part!r} in {list(parts)!r} must be a non-empty "
                    "string of letters, digits, '_', '-' or '.'"
                )
        object.__setattr__(self, "path", parts)
        object.__setattr__(self, "_hash", hash(parts))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("AssetKey is immutable")

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


__all__ = ["AssetKey", "CoercibleToAssetKey"]
