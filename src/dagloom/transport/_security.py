"""How the nodes of one deployment prove themselves to each other: a shared secret sent
with every actor call, and TLS (mutual when a CA is given) on every actor server and channel."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from ssl import SSLContext

from dagloom.auth import (
    CLUSTER_SECRET_HEADER,
    RequestGuard,
    TlsConfig,
    client_ssl_context,
    cluster_guard,
    server_ssl_context,
)

SECRET_ENV = "DAGLOOM_CLUSTER_SECRET"
TLS_CERT_ENV = "DAGLOOM_TLS_CERT"
TLS_KEY_ENV = "DAGLOOM_TLS_KEY"
TLS_CA_ENV = "DAGLOOM_TLS_CA"


class ClusterSecurity:
    """The shared `secret` (None: none) and `tls` settings (None: plain text) of a node's
    actor servers and channels.

    A server with a secret answers UNAUTHENTICATED to any call without it; a client sends it
    with every call. With TLS the server serves only TLS, and with `tls.ca` it also requires
    a client certificate signed by that CA. Child processes (run workers, code servers)
    get the same settings through `environ()`.
    """

    def __init__(self, *, secret: str | None = None, tls: TlsConfig | None = None) -> None:
        self.secret = secret or None
        self.tls = tls

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClusterSecurity:
        """The settings `environ()` exported (default: this process's environment)."""
        env = os.environ if environ is None else environ
        tls = None
        if env.get(TLS_CERT_ENV) or env.get(TLS_CA_ENV):
            tls = TlsConfig(
                cert=env.get(TLS_CERT_ENV) or None,
                key=env.get(TLS_KEY_ENV) or None,
                ca=env.get(TLS_CA_ENV) or None,
            )
        return cls(secret=env.get(SECRET_ENV) or None, tls=tls)

    def environ(self) -> dict[str, str]:
        """Environment variables giving a child process these settings (`from_env`)."""
        out: dict[str, str] = {}
        if self.secret:
            out[SECRET_ENV] = self.secret
        if self.tls is not None:
            for name, value in (
                (TLS_CERT_ENV, self.tls.cert),
                (TLS_KEY_ENV, self.tls.key),
                (TLS_CA_ENV, self.tls.ca),
            ):
                if value:
                    out[name] = value
        return out

    @property
    def guard(self) -> RequestGuard | None:
        """The check an actor server applies to each call."""
        return cluster_guard(self.secret) if self.secret else None

    def metadata(self) -> dict[str, str]:
        """What a client sends with every call."""
        return {CLUSTER_SECRET_HEADER: self.secret} if self.secret else {}

    @cached_property
    def server_ssl(self) -> SSLContext | None:
        """The servers' TLS context; None without a certificate and key."""
        if self.tls is None or not (self.tls.cert and self.tls.key):
            return None
        return server_ssl_context(self.tls)

    @cached_property
    def client_ssl(self) -> SSLContext | None:
        """The channels' TLS context; None without TLS settings."""
        return None if self.tls is None else client_ssl_context(self.tls)

    def __repr__(self) -> str:
        # Never the secret itself: this object ends up in logs and errors.
        return f"<ClusterSecurity secret={'set' if self.secret else 'unset'} tls={self.tls!r}>"
