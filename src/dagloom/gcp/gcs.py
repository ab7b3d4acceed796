"""GCS through obstore: `GCSResource` / `gcs_resource`, `GCSPickleIOManager` /
`gcs_pickle_io_manager` and the compute log manager `GCSComputeLogManager`, with the names
and config keys of Dagster's `dagster_gcp.gcs`.

A Dagster definitions file switches by changing its import from `dagster_gcp.gcs` to
`dagloom.gcp`. The value of `gcs_resource` is a `GCSResource` (which hands out obstore
stores), not a `google.cloud.storage.Client`. Credentials not given come from the
environment (`GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT`, or the metadata
server on GCP). `endpoint_url` points at a GCS emulator, reached without credentials.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, ClassVar

from obstore.store import GCSStore
from pydantic import BaseModel, Field

from dagloom._object_store import (
    ConfigurablePickleIOManager,
    ObjectStoreComputeLogConfig,
    ObjectStoreComputeLogManager,
    ObjectStoreError,
    PickleObjectStoreIOManager,
    StoreLocation,
    cached_pickle_manager,
    client_options,
    pickle_io_manager_definition,
    retry_config,
)
from dagloom.compute_logs.local import resolve_dir
from dagloom.definitions.resources import ConfigurableResource, ResourceDefinition
from dagloom.errors import ConfigError

if TYPE_CHECKING:
    from dagloom.instance._loader import LoadContext

__all__ = [
    "GCSComputeLogManager",
    "GCSPickleIOManager",
    "GCSResource",
    "ObjectStoreError",
    "emulator_key",
    "gcs_pickle_io_manager",
    "gcs_resource",
]


def emulator_key(endpoint_url: str) -> str:
    """A service account key that sends every request to `endpoint_url` without signing
    in: how obstore reaches a GCS emulator."""
    return json.dumps(
        {
            "gcs_base_url": endpoint_url.rstrip("/"),
            "disable_oauth": True,
            "client_email": "",
            "private_key": "",
            "private_key_id": "",
        }
    )


def _gcs_store(
    bucket: str,
    *,
    endpoint_url: str | None,
    service_account_key: str | None,
    service_account_path: str | None,
    max_attempts: int,
    timeout_seconds: float,
) -> GCSStore:
    config: Any = {}
    if endpoint_url is not None:
        config["service_account_key"] = emulator_key(endpoint_url)
    elif service_account_key is not None:
        config["service_account_key"] = service_account_key
    elif service_account_path is not None:
        config["service_account_path"] = service_account_path
    return GCSStore(
        bucket,
        config=config,
        client_options=client_options(
            allow_http=(endpoint_url or "").startswith("http://"),
            timeout_seconds=timeout_seconds,
        ),
        retry_config=retry_config(max_attempts, timeout_seconds),
    )


class GCSResource(ConfigurableResource):
    """GCS for one project: `project` (Dagster's one setting; obstore needs no project to
    reach a bucket), credentials as a service account key's JSON text
    (`service_account_key`) or file (`service_account_path`), else the environment's;
    `endpoint_url` for an emulator. Attempts per request (`max_attempts`) and the time for
    all of them (`timeout_seconds`) are bounded, so an unreachable endpoint fails a step in
    seconds."""

    project: str | None = None
    endpoint_url: str | None = None
    service_account_key: str | None = None
    service_account_path: str | None = None
    max_attempts: int = Field(default=3, ge=1)
    timeout_seconds: float = Field(default=30.0, gt=0)

    def get_store(self, bucket: str) -> GCSStore:
        """An obstore store for `bucket` (for use with `obstore.put`, `obstore.get`...)."""
        return _gcs_store(
            bucket,
            endpoint_url=self.endpoint_url,
            service_account_key=self.service_account_key,
            service_account_path=self.service_account_path,
            max_attempts=self.max_attempts,
            timeout_seconds=self.timeout_seconds,
        )

    def location(self, bucket: str, prefix: str = "") -> StoreLocation:
        """`bucket` and a key prefix in it, reached with this resource's settings."""
        return StoreLocation("gs", bucket, prefix, lambda: self.get_store(bucket))


gcs_resource = ResourceDefinition(
    GCSResource.from_resource_context,
    None,
    "Google Cloud Storage: project, endpoint_url, service_account_key, service_account_path",
)
"""Dagster's function-style GCS resource: `gcs_resource.configured({"project": ...})`; its
value is a `GCSResource`."""


class GCSPickleIOManager(ConfigurablePickleIOManager):
    """Pickles outputs to `gs://<gcs_bucket>/<gcs_prefix>/...` (see
    `dagloom._object_store.PickleObjectStoreIOManager` for the keys and errors)."""

    gcs: GCSResource
    gcs_bucket: str
    gcs_prefix: str = "dagster"

    def _manager(self) -> PickleObjectStoreIOManager:
        return cached_pickle_manager(self.gcs, self.gcs_bucket, self.gcs_prefix)


gcs_pickle_io_manager = pickle_io_manager_definition(
    name="gcs_pickle_io_manager",
    resource_key="gcs",
    resource_type=GCSResource,
    bucket_key="gcs_bucket",
    prefix_key="gcs_prefix",
    description="pickles outputs to GCS: gcs_bucket, gcs_prefix; uses the resource 'gcs'",
)
"""Dagster's function-style pickle IO manager: `gcs_pickle_io_manager.configured(
{"gcs_bucket": ..., "gcs_prefix": ...})` beside a `gcs` resource."""


# -- compute logs ------------------------------------------------------------------------------


class GCSComputeLogManagerConfig(ObjectStoreComputeLogConfig):
    """The `compute_logs.config` of `GCSComputeLogManager`, with the names of Dagster's:
    `bucket`, `prefix`, `local_dir`, `upload_interval`, `json_credentials_envvar` (the
    environment variable holding a service account key's JSON) and `show_url_only`
    (accepted; logs are always readable here); `endpoint_url` for an emulator."""

    bucket: str = Field(min_length=1)
    json_credentials_envvar: str | None = None
    endpoint_url: str | None = None
    show_url_only: bool = False


class GCSComputeLogManager(ObjectStoreComputeLogManager):
    """Step logs written locally under `local_dir` while the step runs and uploaded to
    `gs://<bucket>/<prefix>/<run_id>/<step_key>.<attempt>.out|.err` when it ends (and
    every `upload_interval` seconds while it runs, when set); a failed upload is logged
    and the local copy kept."""

    config_model: ClassVar[type[BaseModel]] = GCSComputeLogManagerConfig

    @classmethod
    def from_config(
        cls, config: GCSComputeLogManagerConfig, context: LoadContext
    ) -> GCSComputeLogManager:
        key = None
        if config.json_credentials_envvar is not None:
            key = os.environ.get(config.json_credentials_envvar)
            if not key:
                raise ConfigError(
                    "GCSComputeLogManager credentials",
                    source=context.source,
                    problems=[
                        (
                            ("compute_logs", "config", "json_credentials_envvar"),
                            f"the environment variable {config.json_credentials_envvar!r} "
                            "is not set",
                        )
                    ],
                )

        def build() -> GCSStore:
            return _gcs_store(
                config.bucket,
                endpoint_url=config.endpoint_url,
                service_account_key=key,
                service_account_path=None,
                max_attempts=config.max_attempts,
                timeout_seconds=config.timeout_seconds,
            )

        return cls(
            StoreLocation("gs", config.bucket, config.prefix, build),
            resolve_dir(config.local_dir, context.home),
            max_bytes=config.max_bytes,
            upload_interval=config.upload_interval,
        )
