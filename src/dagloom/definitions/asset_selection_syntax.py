"""Dagster's asset selection syntax: `key:"raw_*"+ and not tag:"pii"`, parsed to an
AssetSelection. Pure.

Grammar, loosest binding first (operators in either case):

    expr      := and_expr ("or" and_expr)*
    and_expr  := not_expr ("and" not_expr)*
    not_expr  := "not" not_expr | layered
    layered   := [DIGITS] "+" primary ["+" [DIGITS]] | primary ["+" [DIGITS]]
    primary   := "*" | "(" expr ")" | ("sinks" | "roots") "(" expr ")" | filter
    filter    := ("key" | "group" | "owner" | "kind") ":" value
               | "tag" ":" value ["=" value]

A value is quoted (`"a/b"`) or a bare word; a key value may hold `*` wildcards and `/`
between its components. `+` alone takes every layer upstream (before) or downstream
(after); `2+` / `+2` take that many.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dagloom.definitions.asset import AssetSpec
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.asset_selection import AssetGraph, AssetSelection
from dagloom.errors import DagloomInvalidSelectionError

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<punct>[()+=:])|(?P<word>[^\s()+=:"]+))'
)
_FILTERS = frozenset({"key", "group", "owner", "kind", "tag"})


class SelectionSyntaxError(DagloomInvalidSelectionError):
    """The text is not in the selection syntax (it may still be in the older form)."""


def parse_selection_syntax(text: str) -> AssetSelection:
    """The selection `text` describes. SelectionSyntaxError says where it stops parsing."""
    parser = _Parser(text, _tokens(text))
    selection = parser.expr()
    if parser.peek() is not None:
        parser.fail("unexpected text")
    return selection


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, offset) of each token: `string` (unquoted), `punct`, `word`."""
    out: list[tuple[str, str, int]] = []
    at = 0
    text = text.rstrip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise SelectionSyntaxError(f"asset selection {text!r}: cannot read {text[at:]!r}")
        kind = match.lastgroup or "word"
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append((kind, value, match.start(kind)))
        at = match.end()
    return out


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str, int]]) -> None:
        self.text = text
        self.tokens = tokens
        self.at = 0

    def peek(self, ahead: int = 0) -> tuple[str, str, int] | None:
        index = self.at + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def fail(self, what: str) -> None:
        token = self.peek()
        where = f"at {self.text[token[2] :]!r}" if token is not None else "at its end"
        raise SelectionSyntaxError(f"asset selection {self.text!r}: {what} {where}")

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            self.fail(f"expected {value or kind!r}")
        assert token is not None
        self.at += 1
        return token[1]

    def is_operator(self, name: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].lower() == name

    def is_punct(self, value: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token is not None and token[0] == "punct" and token[1] == value

    def expr(self) -> AssetSelection:
        selection = self.and_expr()
        while self.is_operator("or"):
            self.at += 1
            selection = selection | self.and_expr()
        return selection

    def and_expr(self) -> AssetSelection:
        selection = self.not_expr()
        while self.is_operator("and"):
            self.at += 1
            selection = selection & self.not_expr()
        return selection

    def not_expr(self) -> AssetSelection:
        if self.is_operator("not"):
            self.at += 1
            return AssetSelection.all() - self.not_expr()
        return self.layered()

    def layered(self) -> AssetSelection:
        up: int | None = -1  # -1: no upstream layers; None: all of them
        token = self.peek()
        if (
            token is not None
            and token[0] == "word"
            and token[1].isdigit()
            and self.is_punct("+", 1)
        ):
            up = int(token[1])
            self.at += 2
        elif self.is_punct("+"):
            up = None
            self.at += 1
        base = self.primary()
        selection = base if up == -1 else base.upstream(up)
        if self.is_punct("+"):
            self.at += 1
            down: int | None = None
            token = self.peek()
            if token is not None and token[0] == "word" and token[1].isdigit():
                down = int(token[1])
                self.at += 1
            selection = selection | base.downstream(down)
        return selection

    def primary(self) -> AssetSelection:
        token = self.peek()
        if token is None:
            self.fail("expected a selection")
        assert token is not None
        kind, value, _ = token
        if kind == "word" and value == "*":
            self.at += 1
            return AssetSelection.all()
        if self.is_punct("("):
            self.at += 1
            inner = self.expr()
            self.take("punct", ")")
            return inner
        if kind == "word" and value.lower() in ("sinks", "roots") and self.is_punct("(", 1):
            self.at += 2
            inner = self.expr()
            self.take("punct", ")")
            return inner.sinks() if value.lower() == "sinks" else inner.roots()
        if kind == "word" and value in _FILTERS and self.is_punct(":", 1):
            self.at += 2
            return self.filter(value)
        self.fail("expected key:, tag:, owner:, group:, kind:, *, ( or a function")
        raise AssertionError("unreachable")

    def value(self) -> str:
        token = self.peek()
        if token is None or token[0] not in ("string", "word"):
            self.fail("expected a value")
        assert token is not None
        self.at += 1
        return token[1]

    def filter(self, name: str) -> AssetSelection:
        value = self.value()
        if name == "key":
            if "*" in value:
                return _KeyPattern(value)
            return AssetSelection.keys(AssetKey.from_user_string(value))
        if name == "group":
            return AssetSelection.groups(value)
        if name == "owner":
            return AssetSelection.owner(value)
        if name == "kind":
            return AssetSelection.kind(value)
        if self.is_punct("="):
            self.at += 1
            return AssetSelection.tag(value, self.value())
        return _TagKey(value)


@dataclass(frozen=True)
class _KeyPattern(AssetSelection):
    """The assets whose `a/b` key text matches a pattern where `*` is any text."""

    pattern: str

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        regex = re.compile(".*".join(re.escape(part) for part in self.pattern.split("*")))
        return {key for key in graph.keys if regex.fullmatch(key.to_user_string())}


@dataclass(frozen=True)
class _TagKey(AssetSelection):
    """The assets with tag `name`, whatever its value."""

    name: str

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return {key for key in graph.keys if _has_tag(graph.by_key[key].spec_for(key), self.name)}


def _has_tag(spec: AssetSpec, name: str) -> bool:
    if name.startswith("dagster/kind/"):
        return name.removeprefix("dagster/kind/") in spec.kinds
    return name in (spec.tags or {})


__all__ = ["SelectionSyntaxError", "parse_selection_syntax"]
