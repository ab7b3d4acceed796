"""What the daemon runs: one loop per duty, each ticked on its own interval."""

from __future__ import annotations

from typing import Protocol


class DaemonLoop(Protocol):
    """One duty of the daemon (scheduler, sensors, run_queue, run_monitoring, run_retries).

    `tick(now)` does one round of the duty and returns; the daemon calls it every
    `interval` seconds, records a heartbeat for `name` after each round, and records what a
    round raised as the loop's last error (the loop goes on). A round must be safe to run
    concurrently with the same loop in another daemon (claims through storage).
    """

    name: str
    interval: float

    async def tick(self, now: float) -> None: ...
