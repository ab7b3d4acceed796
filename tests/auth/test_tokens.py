"""Tokens: made, split, verified against their stored hash, expired and revoked; and the
authenticator's decisions and cache."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagloom.auth import (
    ANONYMOUS,
    Authenticator,
    Operation,
    Role,
    StoredToken,
    bearer_token,
    new_token,
    parse_expiry,
    split_token,
    verify,
)
from dagloom.errors import AuthenticationError, PermissionDeniedError
from dagloom.storage.memory import MemoryScheduleStorage


def test_a_new_token_verifies_and_only_its_hash_is_stored() -> None:
    stored, text = new_token("ci", Role.LAUNCHER, now=100.0)
    token_id, secret = split_token(text)
    assert token_id == stored.token_id
    assert secret not in repr(stored)
    identity = verify(stored, secret, now=101.0)
    assert (identity.name, identity.role, identity.authenticated) == ("ci", Role.LAUNCHER, True)


def test_a_wrong_secret_an_expired_and_a_revoked_token_are_refused() -> None:
    stored, text = new_token("ci", Role.VIEWER, now=100.0, expires_at=200.0)
    _, secret = split_token(text)
    with pytest.raises(AuthenticationError) as wrong:
        verify(stored, secret[:-1] + ("A" if secret[-1] != "A" else "B"), now=150.0)
    assert wrong.value.reason == "unknown"
    with pytest.raises(AuthenticationError) as expired:
        verify(stored, secret, now=200.0)
    assert expired.value.reason == "expired"
    with pytest.raises(AuthenticationError) as revoked:
        verify(stored.revoked(120.0), secret, now=150.0)
    assert revoked.value.reason == "revoked"
    with pytest.raises(AuthenticationError) as unknown:
        verify(None, secret, now=150.0)
    assert unknown.value.reason == "unknown"


@settings(max_examples=200, derandomize=True)
@given(st.text(max_size=120))
def test_any_text_either_splits_as_a_token_or_is_refused_as_malformed(text: str) -> None:
    try:
        token_id, secret = split_token(text)
    except AuthenticationError as exc:
        assert exc.reason == "malformed"
        assert str(exc) == "the token is malformed"  # never echoes what was presented
    else:
        assert len(token_id) == 12 and len(secret) == 43


def test_names_are_kept_plain() -> None:
    with pytest.raises(ValueError, match="token name"):
        new_token("\x1b[31mevil", Role.ADMIN, now=0.0)
    with pytest.raises(ValueError, match="token name"):
        new_token("", Role.ADMIN, now=0.0)


def test_bearer_headers() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer") is None
    assert bearer_token(None) is None


def test_expiry_durations_and_dates() -> None:
    assert parse_expiry("30d", now=1000.0) == 1000.0 + 30 * 86400
    assert parse_expiry("12h", now=0.0) == 12 * 3600
    assert parse_expiry("2030-01-01", now=0.0) == 1893456000.0
    with pytest.raises(ValueError, match="not in the future"):
        parse_expiry("2000-01-01", now=1e9)
    with pytest.raises(ValueError, match="duration"):
        parse_expiry("soon", now=0.0)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _stored(store: MemoryScheduleStorage, role: Role, **kw: float) -> str:
    stored, text = new_token(role.label, role, now=1000.0, **kw)
    await store.add_api_token(stored)
    return text


async def test_the_authenticator_identifies_authorizes_and_forgets_revoked_tokens() -> None:
    store = MemoryScheduleStorage()
    clock = _Clock()
    auth = Authenticator(store, enabled=True, clock=clock, cache_seconds=5.0)
    viewer = await _stored(store, Role.VIEWER)
    launcher = await _stored(store, Role.LAUNCHER, expires_at=2000.0)
    assert (await auth.check(viewer, Operation.READ)).role is Role.VIEWER
    with pytest.raises(PermissionDeniedError, match="launcher role"):
        await auth.check(viewer, Operation.LAUNCH_RUN)
    assert (await auth.check(launcher, Operation.CANCEL_RUN)).name == "launcher"
    with pytest.raises(AuthenticationError) as missing:
        await auth.check(None, Operation.READ)
    assert missing.value.reason == "missing"
    assert (await auth.check(None, Operation.HEALTH)) is ANONYMOUS
    # Revoked: still trusted from the cache for up to cache_seconds, then refused.
    await store.revoke_api_token(split_token(viewer)[0], clock.now)
    await auth.check(viewer, Operation.READ)
    clock.now += 5.0
    with pytest.raises(AuthenticationError, match="revoked"):
        await auth.check(viewer, Operation.READ)
    clock.now = 2000.0
    with pytest.raises(AuthenticationError, match="expired"):
        await auth.check(launcher, Operation.READ)


async def test_a_disabled_authenticator_lets_everyone_do_everything() -> None:
    auth = Authenticator.disabled()
    for op in Operation:
        assert await auth.check(None, op) is ANONYMOUS


def test_stored_token_states() -> None:
    token = StoredToken("a" * 12, "n", Role.ADMIN, "h", 0.0, expires_at=10.0)
    assert [token.state(5.0), token.state(10.0), token.revoked(1.0).state(5.0)] == [
        "active",
        "expired",
        "revoked",
    ]
