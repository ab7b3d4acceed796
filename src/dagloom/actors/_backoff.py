"""Exponential backoff: how long to wait before the next attempt after consecutive failures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays `initial * multiplier**attempt`, capped at `maximum` (attempt counts from 0).

    Pure and sync, so supervisors and reconnecting refs share it and tests check it without a
    clock. The defaults suit a local peer: 0.1 s, 0.2 s, ... up to 30 s after eight failures.
    """

    initial: float = 0.1
    maximum: float = 30.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.multiplier < 1:
            raise ValueError(
                f"backoff needs 0 <= initial <= maximum and multiplier >= 1, got {self!r}"
            )

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt` (0 = the first retry)."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        # Cap the exponent: 2.0**2000 overflows to inf and a float power that large is waste.
        return min(self.maximum, self.initial * self.multiplier ** min(attempt, 64))
