"""`get_logger`: a structlog logger that imports structlog when it first logs.

Importing structlog costs more than the rest of a short run (it loads its console renderer,
and rich and pygments with it); modules on the path of `dagloom job execute` and of an
in-process run take their loggers from here, so a run that logs nothing never pays for it.
"""

from __future__ import annotations

from typing import Any


class LazyLogger:
    """Stands for `structlog.get_logger(name).bind(**context)` until a method other than
    `bind` is used; then it is that logger (configuration is read as structlog reads it)."""

    __slots__ = ("_context", "_logger", "_name")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}
        self._logger: Any = None

    def bind(self, **context: Any) -> Any:
        if self._logger is not None:
            return self._logger.bind(**context)
        return LazyLogger(self._name, {**self._context, **context})

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        if self._logger is None:
            import structlog

            logger = structlog.get_logger(self._name)
            self._logger = logger.bind(**self._context) if self._context else logger
        return getattr(self._logger, attribute)


def get_logger(name: str) -> Any:
    """The logger `structlog.get_logger(name)` gives, importing structlog on first use."""
    return LazyLogger(name)
