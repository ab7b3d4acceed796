"""The lease purge loop: released and long-expired leases go, held ones stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagloom.daemon._run_claims import RunClaims, run_claim_name
from dagloom.daemon.lease_purge_loop import LeasePurgeLoop, purge_before

from ._stores import BACKENDS, open_instance

T0 = 1_000_000.0


def test_purge_before_is_retention_seconds_ago() -> None:
    assert purge_before(T0, 3600) == T0 - 3600
    assert purge_before(T0, 0) == T0
    with pytest.raises(ValueError, match="must not be negative"):
        purge_before(T0, -1)
    with pytest.raises(ValueError, match="must not be negative"):
        LeasePurgeLoop(object(), retention=-5)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_per_run_claims_do_not_accumulate(backend: str, tmp_path: Path) -> None:
    async with open_instance(backend, tmp_path) as instance:
        storage = instance.schedule_storage
        claims = RunClaims(instance, "daemon-a/run_monitoring", duration=60)
        for i in range(20):
            async with claims.claim(f"r{i}", now=T0 + i) as fence:
                assert fence is not None
        held = await storage.acquire_lease("scheduler", "daemon-a", duration=60, now=T0 + 100)
        assert held is not None
        loop = LeasePurgeLoop(storage, retention=10)
        await loop.tick(T0 + 105)
        # Every released claim went; the scheduler's lease is held (and has the greatest
        # token, the floor of new ones), so it stays.
        assert loop.purged == 20
        assert await storage.get_lease("scheduler") == held
        again = await storage.acquire_lease(run_claim_name("r0"), "daemon-b", duration=60, now=T0)
        assert again is not None and again.token > held.token
        await loop.tick(T0 + 105)
        assert loop.purged == 0
