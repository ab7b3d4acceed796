"""Azure storage for dagloom, under Dagster's `dagster_azure` names: `ADLS2Resource` /
`adls2_resource`, `ADLS2PickleIOManager` / `adls2_pickle_io_manager` and
`AzureBlobComputeLogManager`. Needs the `azure` extra (`pip install 'dagloom[azure]'`)."""

from dagloom._object_store import ObjectStoreError
from dagloom.azure.adls2 import (
    ADLS2DefaultAzureCredential,
    ADLS2Key,
    ADLS2PickleIOManager,
    ADLS2Resource,
    ADLS2SASToken,
    adls2_pickle_io_manager,
    adls2_resource,
)
from dagloom.azure.blob import AzureBlobComputeLogManager

__all__ = [
    "ADLS2DefaultAzureCredential",
    "ADLS2Key",
    "ADLS2PickleIOManager",
    "ADLS2Resource",
    "ADLS2SASToken",
    "AzureBlobComputeLogManager",
    "ObjectStoreError",
    "adls2_pickle_io_manager",
    "adls2_resource",
]
