"""`AzureBlobComputeLogManager`: step logs in Azure Blob Storage, with the names and config
keys of Dagster's `dagster_azure.blob.compute_log_manager`."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from obstore.store import AzureStore
from pydantic import BaseModel, ConfigDict, Field

from dagloom._object_store import (
    ObjectStoreComputeLogConfig,
    ObjectStoreComputeLogManager,
    StoreLocation,
)
from dagloom.azure._store import azure_store, container_root
from dagloom.compute_logs.local import resolve_dir

if TYPE_CHECKING:
    from dagloom.instance._loader import LoadContext

__all__ = ["AzureBlobComputeLogManager", "SecretCredential"]


class SecretCredential(BaseModel):
    """A service principal, as Dagster's `secret_credential`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str
    client_secret: str
    tenant_id: str


class AzureBlobComputeLogManagerConfig(ObjectStoreComputeLogConfig):
    """The `compute_logs.config` of `AzureBlobComputeLogManager`, with Dagster's names:
    `storage_account`, `container`, `prefix`, `local_dir`, `upload_interval`, the
    credential as `access_key_or_sas_token` (a SAS token has a `sig=` part), or
    `secret_credential` (client_id, client_secret, tenant_id), or `default_azure_credential`
    (the environment's); `show_url_only` is accepted (logs are always readable here);
    `endpoint_url` for a local server such as Azurite."""

    storage_account: str = Field(min_length=1)
    container: str = Field(min_length=1)
    access_key_or_sas_token: str | None = None
    secret_credential: SecretCredential | None = None
    default_azure_credential: dict[str, str] | None = None
    endpoint_url: str | None = None
    show_url_only: bool = False


class AzureBlobComputeLogManager(ObjectStoreComputeLogManager):
    """Step logs written locally under `local_dir` while the step runs and uploaded to
    `<container>/<prefix>/<run_id>/<step_key>.<attempt>.out|.err` when it ends (and every
    `upload_interval` seconds while it runs, when set); a failed upload is logged and the
    local copy kept."""

    config_model: ClassVar[type[BaseModel]] = AzureBlobComputeLogManagerConfig

    @classmethod
    def from_config(
        cls, config: AzureBlobComputeLogManagerConfig, context: LoadContext
    ) -> AzureBlobComputeLogManager:
        secret = config.access_key_or_sas_token
        is_sas = secret is not None and "sig=" in secret
        principal = config.secret_credential

        def build() -> AzureStore:
            return azure_store(
                config.container,
                account=config.storage_account,
                endpoint_url=config.endpoint_url,
                account_key=None if is_sas else secret,
                sas_token=secret if is_sas else None,
                client_id=principal.client_id if principal else None,
                client_secret=principal.client_secret if principal else None,
                tenant_id=principal.tenant_id if principal else None,
                max_attempts=config.max_attempts,
                timeout_seconds=config.timeout_seconds,
            )

        root = container_root(config.storage_account, config.container, config.endpoint_url, "blob")
        return cls(
            StoreLocation("azure", config.container, config.prefix, build, root=root),
            resolve_dir(config.local_dir, context.home),
            max_bytes=config.max_bytes,
            upload_interval=config.upload_interval,
        )
