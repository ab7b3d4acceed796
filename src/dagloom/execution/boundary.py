"""The user-code boundary: the one place that decides what user code raising means.

Everything dagloom calls that a user wrote (an op, a resource's setup and teardown, an IO
manager, a schedule or sensor function, a definitions file being imported) runs inside
`user_code(kind, name)`, or, on the executor's hot path where a context manager's ~0.3 µs
per step would show, inside a plain `try` whose `except BaseException` asks
`is_cancellation` first. What user code raises, `SystemExit` and `KeyboardInterrupt`
included, is then a failure of that definition, never the end of the process hosting it.

This module imports only `dagloom.errors`, so `dagloom.definitions` can use it.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from dagloom.errors import DagloomError, UserCodeError

__all__ = ["describe_user_error", "is_cancellation", "user_code"]

# Cancellation is how the runtime stops a task, and a generator being closed is how Python
# ends one; neither is user code failing, so neither is ever caught. (anyio on asyncio
# cancels with asyncio.CancelledError.)
_NEVER_CAUGHT = (asyncio.CancelledError, GeneratorExit)


def is_cancellation(exc: BaseException) -> bool:
    """Whether `exc` stops the task or generator it runs in, rather than reporting a failure:
    such an exception always propagates through the boundary unchanged."""
    return isinstance(exc, _NEVER_CAUGHT)


def describe_user_error(exc: BaseException) -> str:
    """`exc` as a user reads it: `ValueError: bad row`, and for the exits a program asks for,
    what it did (`called sys.exit(3)`), since `SystemExit: 3` says little."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})" if exc.code is not None else "called sys.exit()"
    if isinstance(exc, KeyboardInterrupt):
        return "raised KeyboardInterrupt"
    return f"{type(exc).__name__}: {exc}"


class user_code:
    """Run a block of user code: what it raises becomes `UserCodeError`, raised from it.

    `with user_code("sensor", "my_sensor"):` wraps the call; the error's message names the
    definition's kind and name, and `what` of it ran (`evaluation function`, `setup`,
    `import`...). `SystemExit` and `KeyboardInterrupt` are caught like any exception, so user
    code can never stop the process; cancellation and `GeneratorExit` never are. dagloom's
    own errors (a `DagloomError`, e.g. a result of the wrong shape found inside the block, or
    a `UserCodeError` of a nested boundary) pass through unchanged: they already say what
    went wrong. Reusable and reentrant: it keeps no state between uses.
    """

    __slots__ = ("kind", "name", "what")

    def __init__(self, kind: str, name: str, what: str = "evaluation function") -> None:
        self.kind = kind
        self.name = name
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, DagloomError) or is_cancellation(exc):
            return
        raise UserCodeError(
            f"error in the {self.what} of {self.kind} {self.name!r}: {describe_user_error(exc)}"
        ) from exc
