"""`Authenticator`: from a presented token to an `Identity`, and from an identity and an
operation to yes or no."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from dagloom._logging import get_logger
from dagloom.auth._permissions import Operation, allows, required_role, route_allows
from dagloom.auth._tokens import ANONYMOUS, Identity, StoredToken, split_token, verify
from dagloom.errors import AuthenticationError, PermissionDeniedError

CACHE_SECONDS = 5.0
"""How long a verified token is trusted without reading storage again. A revoked token
stops working within this long; a busy client does not cost a storage read per call."""


@runtime_checkable
class TokenStorage(Protocol):
    """Where API tokens are kept (the instance's schedule storage implements it)."""

    async def add_api_token(self, token: StoredToken) -> None:
        """Store a new token; `StorageError` if its id is taken."""

    async def get_api_token(self, token_id: str) -> StoredToken | None: ...

    async def get_api_tokens(self) -> Sequence[StoredToken]:
        """Every token, revoked and expired ones too, oldest first."""

    async def revoke_api_token(self, token_id: str, now: float) -> StoredToken | None:
        """Mark the token revoked at `now` (idempotent: an earlier revocation stands);
        the token as stored afterwards, None if there is no such token."""


class Authenticator:
    """Decides who a call comes from and whether it may do what it asks.

    With `enabled` False every call is `ANONYMOUS`, an admin: auth is off (loopback-only
    development). Otherwise a call needs a token that is known, unexpired and unrevoked;
    verified tokens are remembered for `cache_seconds`. Safe to share between tasks of one
    event loop; never raises anything but `AuthenticationError`, `PermissionDeniedError`
    and the storage's `StorageError`.
    """

    def __init__(
        self,
        store: TokenStorage | None,
        *,
        enabled: bool,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        if enabled and store is None:
            raise ValueError("auth is enabled but there is no token storage")
        self.enabled = enabled
        self._store = store
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, StoredToken]] = {}
        self._log = get_logger("dagloom.auth")

    @classmethod
    def disabled(cls) -> Authenticator:
        """An authenticator that lets everyone do everything."""
        return cls(None, enabled=False)

    async def identify(self, token: str | None) -> Identity:
        """The identity `token` proves; `AuthenticationError` if it proves none."""
        if not self.enabled:
            return ANONYMOUS
        if not token:
            raise AuthenticationError("a token is required", reason="missing")
        token_id, secret = split_token(token)
        now = self._clock()
        stored = await self._stored(token_id, now)
        try:
            return verify(stored, secret, now=now)
        except AuthenticationError as exc:
            self._log.info("auth_refused", reason=exc.reason, token_id=token_id)
            raise

    async def _stored(self, token_id: str, now: float) -> StoredToken | None:
        cached = self._cache.get(token_id)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        assert self._store is not None
        stored = await self._store.get_api_token(token_id)
        if stored is not None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token_id] = (now, stored)
        return stored

    def forget(self, token_id: str) -> None:
        """Drop a cached token (after revoking it here)."""
        self._cache.pop(token_id, None)

    def authorize(self, identity: Identity, operation: Operation) -> None:
        """`PermissionDeniedError` unless `identity` may perform `operation`."""
        if not allows(identity.role, operation):
            needed = required_role(operation)
            assert needed is not None
            raise PermissionDeniedError(
                f"{identity.name!r} ({identity.role.label}) may not {operation.value}; "
                f"it needs the {needed.label} role",
                operation=operation.value,
                role=identity.role.label,
                user=identity.name,
            )

    async def check(self, token: str | None, operation: Operation) -> Identity:
        """`identify` then `authorize`. Operations anyone may perform need no token, and a
        bad one does not stop them (a health check must not fail on a stale header)."""
        if required_role(operation) is None:
            if not self.enabled or not token:
                return ANONYMOUS
            try:
                return await self.identify(token)
            except AuthenticationError:
                return ANONYMOUS
        identity = await self.identify(token)
        self.authorize(identity, operation)
        return identity

    async def check_route(self, token: str | None, route: str) -> Identity | None:
        """As `check`, for a public-API gRPC method named by its `:path`."""
        if route_allows(None, route):
            return None
        identity = await self.identify(token)
        if not route_allows(identity.role, route):
            raise PermissionDeniedError(
                f"{identity.name!r} ({identity.role.label}) may not call {route}",
                operation=route,
                role=identity.role.label,
                user=identity.name,
            )
        return identity
