"""The object-store helpers that need no server: when compute-log uploads are tried."""

from __future__ import annotations

from dagloom._object_store import UploadBreaker
from dagloom.errors import ObjectStoreError


def _failure() -> ObjectStoreError:
    return ObjectStoreError("writing s3://b/k failed: down", bucket="b", key="k", uri="s3://b/k")


def test_after_a_failure_uploads_wait_out_the_cooldown_then_are_tried_again() -> None:
    now = [100.0]
    breaker = UploadBreaker(cooldown=60, clock=lambda: now[0])
    assert breaker.refusal() is None
    failure = _failure()
    breaker.record(failure)
    now[0] = 159.9
    assert breaker.refusal() is failure
    now[0] = 160.0
    assert breaker.refusal() is None  # tried again


def test_a_success_closes_the_cooldown_at_once() -> None:
    now = [0.0]
    breaker = UploadBreaker(cooldown=60, clock=lambda: now[0])
    breaker.record(_failure())
    breaker.record(None)
    assert breaker.refusal() is None
