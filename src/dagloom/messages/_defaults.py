"""Cached field defaults for betterproto2 messages.

betterproto2 (0.10) compares each field with its default while encoding, and builds that
default afresh on every call inside `warnings.catch_warnings()` (to hush the warning a
deprecated field's default may raise). Entering and leaving that context manager copies the
interpreter's warning filters each time: it was a tenth of the API server's time. The
defaults never change, so each is built once per class and field, under the same warning
filter, and reused. Mutable defaults (the empty list of a repeated field, the empty dict of
a map) are built afresh, cheaply, as before: callers must not share one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import betterproto2

_FRESH: dict[type, Callable[[], Any]] = {list: list, dict: dict, bytearray: bytearray}
_defaults: dict[tuple[type, str], tuple[Any, Callable[[], Any] | None]] = {}


def _field_default(self: betterproto2.Message, field_name: str) -> Any:
    key = (type(self), field_name)
    try:
        value, fresh = _defaults[key]
    except KeyError:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            meta: Any = self._betterproto  # type: ignore[arg-type]  # typed too narrowly
            value = meta.default_gen[field_name]()
        fresh = _FRESH.get(type(value))
        _defaults[key] = (value, fresh)
    return value if fresh is None else fresh()


def install() -> None:
    """Make every betterproto2 message use the cached defaults (idempotent)."""
    betterproto2.Message._get_field_default = _field_default  # type: ignore[method-assign]


install()
