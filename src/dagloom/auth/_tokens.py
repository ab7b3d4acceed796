"""API tokens: how they are made, written, stored (hashed) and checked. Pure, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from dagloom.auth._permissions import Role
from dagloom.errors import AuthenticationError

TOKEN_PREFIX = "dagloom"
"""Every token reads `dagloom_<id>_<secret>`: the id finds the stored row, the secret proves
the holder; only a hash of the secret is stored."""

_TOKEN = re.compile(r"^dagloom_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token as storage keeps it: never the secret, only its SHA-256.

    A SHA-256 suffices (no slow hash): the secret is 256 random bits, not a password, so
    there is nothing to guess. `expires_at` / `revoked_at` are unix times, None for never.
    """

    token_id: str
    name: str
    role: Role
    secret_hash: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None

    def state(self, now: float) -> str:
        """`active`, `expired` or `revoked` at time `now`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def revoked(self, now: float) -> StoredToken:
        return replace(self, revoked_at=now)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a call comes from: the token's name (recorded as `dagloom/user`) and role."""

    name: str
    role: Role
    token_id: str = ""

    @property
    def authenticated(self) -> bool:
        """False for the identity calls get while auth is disabled."""
        return bool(self.token_id)


ANONYMOUS = Identity(name="anonymous", role=Role.ADMIN)
"""Every caller, while auth is disabled (a loopback-only `dagloom dev`)."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def check_name(name: str) -> str:
    """`name` if it is a valid token name (letters, digits, `_.@-`, at most 64); else
    `ValueError`. Names end up in run tags and terminal output, so they are kept plain."""
    if not _NAME.match(name):
        raise ValueError(
            f"token name {name!r} must be 1-64 letters, digits or _.@- and start with a "
            "letter or digit"
        )
    return name


def new_token(
    name: str, role: Role, *, now: float, expires_at: float | None = None
) -> tuple[StoredToken, str]:
    """A fresh token: the row to store, and the text to hand its holder (shown once)."""
    check_name(name)
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    stored = StoredToken(
        token_id=token_id,
        name=name,
        role=role,
        secret_hash=hash_secret(secret),
        created_at=now,
        expires_at=expires_at,
    )
    return stored, f"{TOKEN_PREFIX}_{token_id}_{secret}"


def split_token(text: str) -> tuple[str, str]:
    """(token id, secret) of a token's text; `AuthenticationError` if it is not one."""
    match = _TOKEN.match(text.strip())
    if match is None:
        raise AuthenticationError("the token is malformed", reason="malformed")
    return match.group(1), match.group(2)


def verify(stored: StoredToken | None, secret: str, *, now: float) -> Identity:
    """The identity `secret` proves against `stored`, or `AuthenticationError` saying why
    not. The comparison takes the same time whatever the secret."""
    if stored is None:
        # Compare anyway so an unknown id costs what a wrong secret costs.
        hmac.compare_digest(hash_secret(secret), "0" * 64)
        raise AuthenticationError("the token is not known", reason="unknown")
    if not hmac.compare_digest(hash_secret(secret), stored.secret_hash):
        raise AuthenticationError("the token is not known", reason="unknown")
    state = stored.state(now)
    if state != "active":
        raise AuthenticationError(f"the token {stored.name!r} is {state}", reason=state)
    return Identity(name=stored.name, role=stored.role, token_id=stored.token_id)


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value; None without one."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def parse_expiry(text: str, *, now: float) -> float:
    """The unix time `--expires TEXT` means: a duration from `now` (`30m`, `12h`, `90d`,
    `2w`) or an ISO date or date-time (UTC when it names no zone). `ValueError` otherwise, or
    for a time not after `now`."""
    text = text.strip()
    match = _DURATION.match(text)
    if match is not None:
        at = now + int(match.group(1)) * _SECONDS[match.group(2)]
    else:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"expected a duration like 30d or 12h, or an ISO date, got {text!r}"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        at = when.timestamp()
    if at <= now:
        raise ValueError(f"the expiry {text!r} is not in the future")
    return at
