"""Building obstore's Azure store from account, endpoint and credential settings."""

from __future__ import annotations

from typing import Any

from obstore.store import AzureStore

from dagloom._object_store import client_options, retry_config


def azure_store(
    container: str,
    *,
    account: str,
    endpoint_url: str | None,
    account_key: str | None = None,
    sas_token: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    tenant_id: str | None = None,
    max_attempts: int,
    timeout_seconds: float,
) -> AzureStore:
    """A store for `container` in `account`: signed with the account key, a SAS token or
    a service principal (client id, secret, tenant), whichever is given first; with none,
    obstore's environment credentials (`AZURE_CLIENT_ID`, managed identity, ...).
    `endpoint_url` (`http://127.0.0.1:10000/devstoreaccount1` for Azurite) replaces
    `https://<account>.blob.core.windows.net`."""
    config: Any = {"account_name": account}
    if endpoint_url is not None:
        config["endpoint"] = endpoint_url.rstrip("/")
    if account_key is not None:
        config["account_key"] = account_key
    elif sas_token is not None:
        config["sas_key"] = sas_token.lstrip("?")
    elif client_id is not None:
        config.update(client_id=client_id, client_secret=client_secret, tenant_id=tenant_id)
    return AzureStore(
        container,
        config=config,
        client_options=client_options(
            allow_http=(endpoint_url or "").startswith("http://"),
            timeout_seconds=timeout_seconds,
        ),
        retry_config=retry_config(max_attempts, timeout_seconds),
    )


def container_root(account: str, container: str, endpoint_url: str | None, host: str) -> str:
    """Where a container's objects are named: `<endpoint_url>/<container>`, else Azure's
    own form (`abfss://<container>@<account>.dfs.core.windows.net` for ADLS Gen2,
    `https://<account>.blob.core.windows.net/<container>` for Blob Storage)."""
    if endpoint_url is not None:
        return f"{endpoint_url.rstrip('/')}/{container}"
    if host == "dfs":
        return f"abfss://{container}@{account}.dfs.core.windows.net"
    return f"https://{account}.blob.core.windows.net/{container}"
