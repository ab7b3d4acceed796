"""AttemptOutput: an attempt's writes go to a log opened on its first write."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dagloom.compute_logs.capture import STDERR, STDOUT, AttemptOutput, StepLog


class _Opener:
    """Opens StepLogs that keep what they are given in memory, and counts the opens."""

    def __init__(self, *, available: bool = True, echo: bool = False) -> None:
        self.opened: list[StepLog] = []
        self.available = available
        self.echo = echo
        self.kept: list[tuple[int, bytes]] = []

    def __call__(self, step_key: str, attempt: int) -> StepLog | None:
        if not self.available:
            return None
        kept = self.kept

        class _Kept(StepLog):
            __slots__ = ()

            def _keep(self, stream: int, data: bytes) -> None:
                kept.append((stream, data))

        log = _Kept("run", step_key, attempt, (Path("out"), Path("err")), limit=1000)
        log.echo = self.echo
        self.opened.append(log)
        return log


def test_an_attempt_that_writes_nothing_opens_no_log() -> None:
    opener = _Opener()
    output = AttemptOutput(opener, "step", 0)
    assert output.end() is None
    assert opener.opened == []


def test_the_first_write_opens_the_log_once_and_every_write_reaches_it() -> None:
    opener = _Opener()
    output = AttemptOutput(opener, "step", 2)
    output.write(STDOUT, "one\n")
    output.write_bytes(STDERR, b"two\n")
    assert len(opener.opened) == 1
    log = opener.opened[0]
    assert (log.step_key, log.attempt) == ("step", 2)
    assert opener.kept == [(STDOUT, b"one\n"), (STDERR, b"two\n")]
    assert output.echo is False  # the log's own
    assert output.end() is log


def test_writes_after_the_attempt_ended_are_dropped_and_open_nothing() -> None:
    opener = _Opener()
    output = AttemptOutput(opener, "step", 0)
    output.end()
    output.write(STDOUT, "late\n")
    assert opener.opened == []
    assert output.end() is None  # idempotent


@pytest.mark.parametrize("available", [True, False])
def test_concurrent_first_writes_open_one_log(available: bool) -> None:
    opener = _Opener(available=available)
    output = AttemptOutput(opener, "step", 0)
    start = threading.Barrier(8)

    def write() -> None:
        start.wait()
        output.write(STDOUT, "x")

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opener.opened) == (1 if available else 0)
    assert len(opener.kept) == (8 if available else 0)


def test_without_a_log_writes_go_to_the_console() -> None:
    """An attempt whose log cannot be opened echoes everything, as an unrouted write."""
    output = AttemptOutput(_Opener(available=False), "step", 0)
    output.write(STDOUT, "x")
    assert output.echo is True
