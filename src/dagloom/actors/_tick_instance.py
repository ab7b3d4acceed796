"""The instance a code location's schedule and sensor ticks read, opened on first use.

A tick's `context.instance` is the deployment's instance. A code location in the node that
holds the instance (`dagloom dev`, a topology node) reads that one; a code server on its own
opens the instance of its `$DAGLOOM_HOME` itself, but only when a tick first calls
`context.instance`, so a location whose ticks never read it never connects to storage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.instance.sync import SyncInstance

__all__ = ["TickInstance"]


class TickInstance:
    """The instance ticks read: `instance` itself (entered by its owner, who also closes
    it), or the one `open_instance` makes, opened for synchronous use on the first `view`
    and closed by `aclose`.

    `view` is safe to call from several tasks at once: the instance is opened once.
    """

    def __init__(
        self,
        instance: DagloomInstance | None = None,
        *,
        open_instance: Callable[[], DagloomInstance] | None = None,
    ) -> None:
        if (instance is None) == (open_instance is None):
            raise ValueError("give exactly one of instance and open_instance")
        self._given = instance
        self._open_instance = open_instance
        self._opened: DagloomInstance | None = None
        self._view: SyncInstance | None = None
        self._lock = anyio.Lock()

    @property
    def is_open(self) -> bool:
        """Whether this holder opened its own instance and has not closed it yet."""
        return self._opened is not None

    async def view(self) -> SyncInstance:
        """The instance, seen synchronously (its methods block; call them from a thread).

        Opening it blocks on storage in a worker thread; what opening raises (`ConfigError`,
        `StorageError`) propagates, and the next call tries again.
        """
        from dagloom.instance.sync import SyncInstance

        if self._view is not None:
            return self._view
        async with self._lock:
            if self._view is None:
                if self._given is not None:
                    self._view = SyncInstance(self._given)
                else:
                    assert self._open_instance is not None
                    instance = await anyio.to_thread.run_sync(self._open_instance)
                    await anyio.to_thread.run_sync(instance.open_in_background)
                    self._opened = instance
                    self._view = SyncInstance(instance)
            return self._view

    async def aclose(self) -> None:
        """Close the instance this holder opened, waiting for its writes; idempotent, and
        a later `view` opens a new one. An instance given to it is left to its owner."""
        opened, self._opened = self._opened, None
        if opened is not None:
            self._view = None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(opened.dispose)
