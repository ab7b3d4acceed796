"""ADLS Gen2 (and any Azure Blob Storage account) through obstore, with the names of
Dagster's `dagster_azure.adls2`: `ADLS2Resource` / `adls2_resource` with the credentials
`ADLS2Key`, `ADLS2SASToken`, `ADLS2DefaultAzureCredential`, and `ADLS2PickleIOManager` /
`adls2_pickle_io_manager`.

The value of `adls2_resource` is an `ADLS2Resource` (which hands out obstore stores), not
an Azure SDK client. `endpoint_url` points at a local server such as Azurite.
"""

from __future__ import annotations

import functools
from typing import Any

from obstore.store import AzureStore
from pydantic import Field, field_validator

from dagloom._object_store import (
    ConfigurablePickleIOManager,
    PickleObjectStoreIOManager,
    StoreLocation,
    pickle_io_manager_definition,
)
from dagloom.azure._store import azure_store, container_root
from dagloom.definitions.config import Config
from dagloom.definitions.resources import ConfigurableResource, ResourceDefinition

__all__ = [
    "ADLS2DefaultAzureCredential",
    "ADLS2Key",
    "ADLS2PickleIOManager",
    "ADLS2Resource",
    "ADLS2SASToken",
    "adls2_pickle_io_manager",
    "adls2_resource",
]


class ADLS2Key(Config):
    """Sign in with the storage account's key."""

    key: str


class ADLS2SASToken(Config):
    """Sign in with a shared access signature."""

    token: str


class ADLS2DefaultAzureCredential(Config):
    """Sign in with the environment's credentials (service principal variables, managed
    identity...). `kwargs` is accepted for Dagster's configs; obstore reads the
    environment itself."""

    kwargs: dict[str, Any] = Field(default_factory=dict)


ADLS2Credential = ADLS2Key | ADLS2SASToken | ADLS2DefaultAzureCredential


def _credential_from_dagster(value: Any) -> Any:
    """Dagster's function-style forms `{"key": ...}`, `{"sas": ...}`,
    `{"DefaultAzureCredential": {...}}` as the credential classes."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, inner),) = value.items()
        if name == "sas":
            return ADLS2SASToken(token=inner)
        if name == "DefaultAzureCredential":
            return ADLS2DefaultAzureCredential(kwargs=inner or {})
    return value


class ADLS2Resource(ConfigurableResource):
    """An Azure storage account: `storage_account`, `credential` (`ADLS2Key`,
    `ADLS2SASToken` or `ADLS2DefaultAzureCredential`; Dagster's `{"key": ...}` and
    `{"sas": ...}` forms too), `endpoint_url` for a local server. Attempts per request
    (`max_attempts`) and the time for all of them (`timeout_seconds`) are bounded, so an
    unreachable endpoint fails a step in seconds."""

    storage_account: str
    credential: ADLS2Credential = Field(default_factory=ADLS2DefaultAzureCredential)
    endpoint_url: str | None = None
    max_attempts: int = Field(default=3, ge=1)
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("credential", mode="before")
    @classmethod
    def _dagster_forms(cls, value: Any) -> Any:
        return _credential_from_dagster(value)

    def get_store(self, file_system: str) -> AzureStore:
        """An obstore store for the container (file system) `file_system`."""
        credential = self.credential
        return azure_store(
            file_system,
            account=self.storage_account,
            endpoint_url=self.endpoint_url,
            account_key=credential.key if isinstance(credential, ADLS2Key) else None,
            sas_token=credential.token if isinstance(credential, ADLS2SASToken) else None,
            max_attempts=self.max_attempts,
            timeout_seconds=self.timeout_seconds,
        )

    def location(self, file_system: str, prefix: str = "") -> StoreLocation:
        """`file_system` and a key prefix in it, reached with this resource's settings."""
        root = container_root(self.storage_account, file_system, self.endpoint_url, "dfs")
        return StoreLocation(
            "abfss", file_system, prefix, lambda: self.get_store(file_system), root=root
        )


adls2_resource = ResourceDefinition(
    ADLS2Resource.from_resource_context,
    None,
    "ADLS Gen2 / Azure Blob Storage: storage_account, credential ({key} or {sas}), endpoint_url",
)
"""Dagster's function-style ADLS2 resource: `adls2_resource.configured({"storage_account":
..., "credential": {"key": ...}})`; its value is an `ADLS2Resource`."""


class ADLS2PickleIOManager(ConfigurablePickleIOManager):
    """Pickles outputs to `<adls2_file_system>/<adls2_prefix>/...` (see
    `dagloom._object_store.PickleObjectStoreIOManager` for the keys and errors).
    `lease_duration` is accepted for Dagster's configs; each object is written whole, in
    one request, so no lease is taken."""

    adls2: ADLS2Resource
    adls2_file_system: str
    adls2_prefix: str = "dagster"
    lease_duration: int = 60

    def _manager(self) -> PickleObjectStoreIOManager:
        return _pickle_manager(
            self.adls2.model_dump_json(), self.adls2_file_system, self.adls2_prefix
        )


@functools.lru_cache(maxsize=64)
def _pickle_manager(settings: str, file_system: str, prefix: str) -> PickleObjectStoreIOManager:
    """One manager (and so one store and its connection pool) per settings, container and
    prefix, rather than a new client per output."""
    resource = ADLS2Resource.model_validate_json(settings)
    return PickleObjectStoreIOManager(resource.location(file_system, prefix))


adls2_pickle_io_manager = pickle_io_manager_definition(
    name="adls2_pickle_io_manager",
    resource_key="adls2",
    resource_type=ADLS2Resource,
    bucket_key="adls2_file_system",
    prefix_key="adls2_prefix",
    description="pickles outputs to ADLS Gen2: adls2_file_system, adls2_prefix; uses the "
    "resource 'adls2'",
)
"""Dagster's function-style pickle IO manager: `adls2_pickle_io_manager.configured(
{"adls2_file_system": ..., "adls2_prefix": ...})` beside an `adls2` resource."""
