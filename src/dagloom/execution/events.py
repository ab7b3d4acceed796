"""What the executor records besides its event rows (`dagloom.messages.rows`): errors."""

from __future__ import annotations

import traceback

from dagloom.messages import ErrorInfo


def error_info(exc: BaseException) -> ErrorInfo:
    """An exception as a wire-safe ErrorInfo: class, message, stack, and its cause chain."""
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return ErrorInfo(
        cls_name=type(exc).__name__,
        message=str(exc),
        stack="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        cause=error_info(cause) if cause is not None else None,
    )


__all__ = ["error_info"]
