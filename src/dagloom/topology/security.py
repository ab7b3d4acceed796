"""A node's security settings, from its instance's dagloom.yaml: who may call the API, and
how nodes prove themselves to each other."""

from __future__ import annotations

import ipaddress
import socket
import ssl

from dagloom.auth import Authenticator, TlsConfig, TokenStorage, server_ssl_context
from dagloom.errors import ConfigError
from dagloom.instance import DagloomInstance
from dagloom.transport import ClusterSecurity


def token_storage(instance: DagloomInstance) -> TokenStorage:
    """Where the instance keeps API tokens (its schedule storage); `ConfigError` when that
    storage is a custom one that cannot."""
    storage = instance.schedule_storage
    if not isinstance(storage, TokenStorage):
        raise ConfigError(
            f"the schedule storage ({storage.describe()}) cannot store API tokens",
            source=instance.config_source,
        )
    return storage


def api_authenticator(instance: DagloomInstance) -> Authenticator:
    """The authenticator for the instance's entry points: enabled by `auth.enabled`, tokens
    cached for `auth.token_cache_seconds`."""
    auth = instance.config.auth
    if not auth.enabled:
        return Authenticator.disabled()
    return Authenticator(
        token_storage(instance), enabled=True, cache_seconds=auth.token_cache_seconds
    )


def cluster_security(instance: DagloomInstance) -> ClusterSecurity:
    """The instance's `auth.cluster_secret` and `tls` (paths under `$DAGLOOM_HOME`), else
    what the environment gives (`ClusterSecurity.from_env`): a run worker or code server
    started by a node inherits its settings that way."""
    config = instance.config
    from_env = ClusterSecurity.from_env()
    tls = config.tls.resolved(instance.home) if config.tls is not None else from_env.tls
    return ClusterSecurity(secret=config.auth.cluster_secret or from_env.secret, tls=tls)


def webserver_ssl_context(instance: DagloomInstance) -> ssl.SSLContext | None:
    """The webserver's HTTPS context from the instance's `tls.cert` and `tls.key`; None
    without them. Browsers present no client certificate, so `tls.ca` (mutual TLS between
    nodes) is not required of the webserver's clients."""
    tls = cluster_security(instance).tls
    if tls is None or not (tls.cert and tls.key):
        return None
    return server_ssl_context(TlsConfig(cert=tls.cert, key=tls.key), alpn=("http/1.1",))


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) only ever reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_exposure(
    hosts: list[tuple[str, str]], *, auth_enabled: bool, secured_actors: bool, insecure: bool
) -> None:
    """Refuse to listen beyond loopback without auth: `hosts` is (what, host) per listening
    socket, `what` `api`, `webserver` or `actors`. The API and the webserver need
    `auth.enabled`; actor servers need a cluster secret or mutual TLS. `--insecure`
    (`insecure`) accepts the risk."""
    if insecure:
        return
    for what, host in hosts:
        if is_loopback(host):
            continue
        if what in ("api", "webserver") and not auth_enabled:
            name = "the API" if what == "api" else "the webserver"
            raise ConfigError(
                f"{name} would listen on {host} with auth disabled: anyone who reaches it "
                "could launch and cancel runs; set `auth: {enabled: true}` in dagloom.yaml "
                "or pass --insecure",
                problems=[(("auth", "enabled"), "must be true to listen beyond loopback")],
            )
        if what == "actors" and not secured_actors:
            raise ConfigError(
                f"the actor server would listen on {host} without a cluster secret or "
                "mutual TLS: anyone who reaches it could submit runs past the API; set "
                "`auth: {cluster_secret: {env: DAGLOOM_CLUSTER_SECRET}}` or `tls: {ca: ...}` "
                "in dagloom.yaml, or pass --insecure",
                problems=[(("auth", "cluster_secret"), "required to listen beyond loopback")],
            )
