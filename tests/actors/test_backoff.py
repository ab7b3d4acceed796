"""Backoff delays double from `initial` up to `maximum`."""

from __future__ import annotations

import pytest

from dagloom.actors import Backoff


def test_delays_grow_exponentially_and_stop_at_the_maximum() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, multiplier=2.0)
    assert [backoff.delay(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert backoff.delay(10_000) == 1.0


@pytest.mark.parametrize(
    "kwargs", [{"initial": -1.0}, {"initial": 2.0, "maximum": 1.0}, {"multiplier": 0.5}]
)
def test_nonsense_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_a_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError):
        Backoff().delay(-1)
