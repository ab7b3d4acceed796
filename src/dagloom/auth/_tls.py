"""TLS settings (`tls: {cert, key, ca}`) and the `ssl.SSLContext`s built from them, for gRPC
servers and channels (ALPN `h2`) and for the webserver (aiohttp)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from dagloom.errors import ConfigError


class TlsConfig(BaseModel):
    """`cert` and `key`: this node's certificate chain and private key (PEM). `ca`: the
    certificates peers are checked against; when a server has one, it requires clients to
    present a certificate it signed (mutual TLS). Relative paths are resolved against the
    directory of the file that configures them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert: str | None = None
    key: str | None = None
    ca: str | None = None

    def resolved(self, base: Path) -> TlsConfig:
        """The same settings with relative paths made absolute under `base`."""

        def under(path: str | None) -> str | None:
            return None if path is None else str(base / Path(path).expanduser())

        return TlsConfig(cert=under(self.cert), key=under(self.key), ca=under(self.ca))


def _load(action: str, path: str | None, load: Callable[[], object]) -> None:
    try:
        load()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS {action} {path}: {exc}", source=path) from exc


def server_ssl_context(tls: TlsConfig, *, alpn: tuple[str, ...] = ("h2",)) -> ssl.SSLContext:
    """A server's context: its certificate and key, TLS 1.2 or newer, ALPN `alpn` (gRPC
    needs `h2`; pass `("http/1.1",)` for the webserver), and with `ca` set, a client
    certificate signed by it required. `ConfigError` naming the file that cannot be loaded."""
    if not tls.cert or not tls.key:
        raise ConfigError("a TLS server needs both `cert` and `key`", problems=[(("tls",), "")])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load("certificate", tls.cert, lambda: context.load_cert_chain(tls.cert, tls.key))  # type: ignore[arg-type]
    if tls.ca:
        _load("CA", tls.ca, lambda: context.load_verify_locations(cafile=tls.ca))
        context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(list(alpn))
    return context


def client_ssl_context(tls: TlsConfig, *, alpn: tuple[str, ...] = ("h2",)) -> ssl.SSLContext:
    """A client's context: servers checked against `ca` (the system's roots without one),
    hostname included; `cert` and `key`, when set, presented for mutual TLS."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.ca:
        _load("CA", tls.ca, lambda: context.load_verify_locations(cafile=tls.ca))
    if tls.cert and tls.key:
        _load("certificate", tls.cert, lambda: context.load_cert_chain(tls.cert, tls.key))  # type: ignore[arg-type]
    context.set_alpn_protocols(list(alpn))
    return context
