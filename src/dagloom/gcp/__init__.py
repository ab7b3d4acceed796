"""Google Cloud Storage for dagloom, under Dagster's `dagster_gcp` names: `GCSResource` /
`gcs_resource`, `GCSPickleIOManager` / `gcs_pickle_io_manager` and `GCSComputeLogManager`.
Needs the `gcp` extra (`pip install 'dagloom[gcp]'`)."""

from dagloom.gcp.gcs import (
    GCSComputeLogManager,
    GCSPickleIOManager,
    GCSResource,
    ObjectStoreError,
    gcs_pickle_io_manager,
    gcs_resource,
)

__all__ = [
    "GCSComputeLogManager",
    "GCSPickleIOManager",
    "GCSResource",
    "ObjectStoreError",
    "gcs_pickle_io_manager",
    "gcs_resource",
]
