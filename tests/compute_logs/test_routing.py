"""The routers that stand in for sys.stdout and sys.stderr, on their own: what they do with
the stream they replaced when it is closed, written from many threads, or replaced again."""

from __future__ import annotations

import gc
import io
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO, cast

import pytest
import structlog

from dagloom.compute_logs.capture import (
    _Router,
    install_routers,
    uninstall_routers,
)


class _OverlapCounter(io.TextIOBase):
    """A console that records how many writes were inside it at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.parts: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0)  # lets other threads run mid-write, as a write to a file does
        self.parts.append(text)
        self.inside -= 1
        return len(text)


@contextmanager
def routed(console: TextIO) -> Iterator[_Router]:
    """Routers in place of `console` (the test runner swaps sys.stdout between a test's
    phases, so this is done inside the test)."""
    saved = sys.stdout
    sys.stdout = console
    install_routers()
    try:
        router = sys.stdout
        assert isinstance(router, _Router)
        yield router
    finally:
        uninstall_routers()
        sys.stdout = saved


def test_writes_from_many_threads_reach_the_console_one_at_a_time() -> None:
    console = _OverlapCounter()
    start = threading.Barrier(8)

    def chatter(n: int) -> None:
        start.wait(timeout=30)
        for i in range(200):
            router.write(f"{n}:{i}\n")

    with routed(cast(TextIO, console)) as router:
        threads = [threading.Thread(target=chatter, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert console.most_inside == 1
    assert len(console.parts) == 8 * 200


def test_a_router_kept_after_its_stream_closed_writes_to_the_process_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replaced = io.StringIO()
    own = io.StringIO()
    monkeypatch.setattr(sys, "stdout", replaced)
    monkeypatch.setattr(sys, "__stdout__", own)
    install_routers()
    kept = sys.stdout
    # A logger configured while routed keeps the router past the capture that it replaced.
    logger = structlog.PrintLogger(file=kept)
    uninstall_routers()
    assert sys.stdout is replaced
    replaced.close()
    logger.msg("after the capture ended")
    kept.write("late\n")
    kept.flush()
    assert own.getvalue() == "after the capture ended\nlate\n"


def test_a_router_without_its_fields_fails_plainly() -> None:
    half_built = _Router.__new__(_Router)
    with pytest.raises(AttributeError):
        half_built.encoding  # noqa: B018
    with pytest.raises(AttributeError):
        half_built._original  # noqa: B018


def test_routers_never_wrap_routers_and_follow_a_replaced_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console = io.StringIO()
    monkeypatch.setattr(sys, "stdout", console)
    install_routers()
    first = sys.stdout
    uninstall_routers()
    assert sys.stdout is console
    # Someone puts a router they kept back (a runner restoring what it saved).
    monkeypatch.setattr(sys, "stdout", first)
    install_routers()
    assert sys.stdout is first
    uninstall_routers()
    assert sys.stdout is console

    # Someone replaces the router while it is installed: the next install routes again.
    install_routers()
    replacement = io.StringIO()
    monkeypatch.setattr(sys, "stdout", replacement)
    install_routers()
    second = sys.stdout
    assert isinstance(second, _Router)
    assert second._original is replacement
    second.write("routed\n")
    uninstall_routers()
    uninstall_routers()
    assert sys.stdout is replacement
    assert replacement.getvalue() == "routed\n"


def test_a_router_taken_off_stays_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """`print()` keeps sys.stdout only as a borrowed reference while the router writes; a
    router freed by another thread's uninstall meanwhile would be written after free."""
    console = io.StringIO()
    monkeypatch.setattr(sys, "stdout", console)
    install_routers()
    router = weakref.ref(sys.stdout)
    uninstall_routers()
    assert sys.stdout is console
    gc.collect()
    kept = router()
    assert isinstance(kept, _Router)
    install_routers()
    assert sys.stdout is kept  # reused for the same stream, not one more per install
    uninstall_routers()
