"""The lease purge loop: deletes leases long released or expired, so per-run claims (one
lease row per run a loop acted on) do not grow the lease table without bound."""

from __future__ import annotations

from dagloom.storage.base import ScheduleStorage

DEFAULT_RETENTION_SECONDS = 3600.0
"""How long a released or expired lease is kept before it is purged."""


def purge_before(now: float, retention: float) -> float:
    """The expiry time before which leases are purged at `now`: `retention` seconds ago.
    `ValueError` for a negative retention (it would purge leases still held)."""
    if retention < 0:
        raise ValueError(f"lease retention must not be negative, got {retention}")
    return now - retention


class LeasePurgeLoop:
    """Each round deletes the leases released, or expired more than `retention` seconds
    before `now` (`ScheduleStorage.purge_leases`, which keeps fencing tokens from ever
    being handed out twice). Harmless when several daemons do it at once; `purged` is
    how many the last round deleted."""

    name = "lease_purge"

    def __init__(
        self,
        storage: ScheduleStorage,
        *,
        interval: float = 300.0,
        retention: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        purge_before(0.0, retention)  # refuse a bad retention at construction
        self.interval = interval
        self.purged = 0
        self._storage = storage
        self._retention = retention

    async def tick(self, now: float) -> None:
        self.purged = await self._storage.purge_leases(purge_before(now, self._retention))
