"""RetryPolicy: how often and after how long a failed step runs again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from dagloom.errors import DefinitionError


class Backoff(Enum):
    """How the delay grows with each attempt."""

    LINEAR = "LINEAR"
    EXPONENTIAL = "EXPONENTIAL"


class Jitter(Enum):
    """Randomness added to a delay so retries from many steps do not land together."""

    FULL = "FULL"  # anywhere in [0, delay]
    PLUS_MINUS = "PLUS_MINUS"  # delay ± delay


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry a failed step up to `max_retries` times, waiting `delay` seconds (grown by
    `backoff`, scattered by `jitter`) before each attempt."""

    max_retries: int = 1
    delay: float | None = None
    backoff: Backoff | None = None
    jitter: Jitter | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise DefinitionError(f"RetryPolicy.max_retries must be >= 0, got {self.max_retries}")
        if self.delay is not None and self.delay < 0:
            raise DefinitionError(f"RetryPolicy.delay must be >= 0, got {self.delay}")
        if (self.backoff or self.jitter) and not self.delay:
            raise DefinitionError("RetryPolicy with backoff or jitter needs a delay")

    def delay_for(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1 for the first retry)."""
        return calculate_delay(attempt, self.backoff, self.jitter, self.delay or 0.0, rng)


def calculate_delay(
    attempt: int,
    backoff: Backoff | None,
    jitter: Jitter | None,
    base_delay: float,
    rng: random.Random | None = None,
) -> float:
    """The delay before retry `attempt` (from 1): linear is base*attempt, exponential
    base*(2**attempt - 1), as Dagster computes it; jitter then scatters the result."""
    delay: float
    if backoff is Backoff.EXPONENTIAL:
        delay = base_delay * (2**attempt - 1)
    elif backoff is Backoff.LINEAR:
        delay = base_delay * attempt
    else:
        delay = base_delay
    if jitter is None:
        return delay
    draw: float = (rng or random).random()
    if jitter is Jitter.FULL:
        return draw * delay
    return max(0.0, delay + delay * (2 * draw - 1))
