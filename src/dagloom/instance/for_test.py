"""`instance_for_test()`: an instance held open for the length of a `with` block, as
Dagster's tests use one across several runs.

An instance is entered once, on one event loop. Here that loop runs on a thread of its own
for the whole block, so blocking calls made in the block (`execute_in_process(instance=)`,
`materialize(instance=)`, any number of them) find it open and reach it from their own loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagloom.errors import DagloomError
from dagloom.instance._instance import DagloomInstance


@contextlib.contextmanager
def held_open(instance: DagloomInstance, *, timeout: float = 60.0) -> Iterator[DagloomInstance]:
    """`instance` entered on a loop of a thread of its own until the block ends, then closed
    there. Raises what entering raised; DagloomError if it did not open within `timeout`."""
    ready = threading.Event()
    failure: list[BaseException] = []
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def hold() -> None:
        finish = asyncio.Event()
        async with instance:
            stop.append((asyncio.get_running_loop(), finish))
            ready.set()
            await finish.wait()

    def main() -> None:
        try:
            asyncio.run(hold())
        except BaseException as exc:  # handed to the caller, which raises it
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=main, name="dagloom test instance", daemon=True)
    thread.start()
    if not ready.wait(timeout):
        raise DagloomError(f"the instance at {instance.home} did not open within {timeout} s")
    if failure:
        thread.join()
        raise failure[0]
    try:
        yield instance
    finally:
        loop, finish = stop[0]
        loop.call_soon_threadsafe(finish.set)
        thread.join()
        if failure:
            raise failure[0]


@contextlib.contextmanager
def instance_for_test(
    overrides: Mapping[str, Any] | None = None, temp_dir: str | Path | None = None
) -> Iterator[DagloomInstance]:
    """An instance in a temporary home (or `temp_dir`), configured as a `dagloom.yaml` would
    be by `overrides` (default: SQLite in that home), open for the block and closed after."""
    with contextlib.ExitStack() as stack:
        home = (
            Path(temp_dir)
            if temp_dir is not None
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dagloom-test-")))
        )
        instance = DagloomInstance.from_config(
            dict(overrides or {}), home=home, temporary_home=temp_dir is None
        )
        yield stack.enter_context(held_open(instance))


__all__ = ["held_open", "instance_for_test"]
