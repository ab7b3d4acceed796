"""Reading YAML that may be hostile: bounded in file size, nesting depth and the size its
aliases expand to, so no file can hang or exhaust a command before it is validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import Node

from dagloom.errors import ConfigError

MAX_FILE_BYTES = 8 * 2**20
"""8 MiB: a real dagloom.yaml, workspace or run config is a few KiB; a 58 MB file took
more than 90 s to load."""
MAX_DEPTH = 64
"""Nesting levels of mappings and lists; PyYAML's composer recurses per level and would hit
Python's recursion limit near 330."""
MAX_NODES = 200_000
"""Values a document may hold once its aliases are expanded: a 447-byte "billion laughs"
document expands to 10^9, which walking it (environment substitution, validation) never
finishes. Aliases themselves (`<<: *defaults`) stay allowed."""


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing documents nested deeper than `MAX_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.YAMLError(
                    f"nested deeper than {MAX_DEPTH} levels (line {mark.line + 1})"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def expanded_size(data: Any, *, limit: int = MAX_NODES) -> int:
    """How many values `data` holds with shared (aliased) parts counted each time they
    appear; `ValueError` once past `limit` or for a value that contains itself. Each shared
    part is walked once, so this is cheap even for an alias bomb."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(value: Any) -> int:
        if not isinstance(value, dict | list):
            return 1
        key = id(value)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise ValueError("a value refers to itself through an alias")
        open_.add(key)
        children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                raise ValueError(f"expands to more than {limit} values through its aliases")
        open_.discard(key)
        sizes[key] = total
        return total

    return size(data)


def load_yaml(text: str, *, source: str) -> Any:
    """The YAML document in `text`, within the bounds above; `ConfigError` naming `source`
    (and the line and column of a syntax error) otherwise."""
    try:
        data = yaml.load(text, Loader=_BoundedLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML{where}: {problem}", source=source) from exc
    except RecursionError as exc:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", source=source) from exc
    try:
        expanded_size(data)
    except ValueError as exc:
        raise ConfigError(f"refused: the document {exc}", source=source) from exc
    return data


def read_text_bounded(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of `path`, reading at most `max_bytes` (+1, to tell a larger file);
    `ConfigError` naming the file when it is larger, unreadable or not UTF-8."""
    try:
        with path.open("rb") as file:
            raw = file.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc}", source=str(path)) from exc
    if len(raw) > max_bytes:
        raise ConfigError(
            f"the file is larger than the limit of {max_bytes} bytes", source=str(path)
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the file is not UTF-8 text (byte {exc.start} is 0x{raw[exc.start]:02x})",
            source=str(path),
        ) from exc


def read_yaml_path(path: Path) -> Any:
    """`read_text_bounded` then `load_yaml`."""
    return load_yaml(read_text_bounded(path), source=str(path))
