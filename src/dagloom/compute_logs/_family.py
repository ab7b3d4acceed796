"""The `compute_logs` component family and building its manager for an instance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagloom._components import ComponentFamily, build_component
from dagloom.compute_logs.base import ComputeLogManager

if TYPE_CHECKING:
    from dagloom.instance._loader import LoadContext
    from dagloom.instance.config import ComponentConfig

_LOCAL = "dagloom.compute_logs.local:LocalComputeLogManager"
_NOOP = "dagloom.compute_logs.noop:NoOpComputeLogManager"
_S3 = "dagloom.aws.s3:S3ComputeLogManager"
_GCS = "dagloom.gcp.gcs:GCSComputeLogManager"
_AZURE = "dagloom.azure.blob:AzureBlobComputeLogManager"

COMPUTE_LOG_MANAGERS = ComponentFamily(
    section="compute_logs",
    requirement="a ComputeLogManager (dagloom.compute_logs.ComputeLogManager subclass)",
    accepts=lambda cls: issubclass(cls, ComputeLogManager),
    builtins={
        "local": _LOCAL,
        "LocalComputeLogManager": _LOCAL,
        "noop": _NOOP,
        "NoOpComputeLogManager": _NOOP,
        "s3": _S3,
        "S3ComputeLogManager": _S3,
        "gcs": _GCS,
        "GCSComputeLogManager": _GCS,
        "azure": _AZURE,
        "AzureBlobComputeLogManager": _AZURE,
    },
)
"""Compute log managers by short name and class name. A `module` of Dagster's own
(`dagster.core.storage.local_compute_log_manager`, `dagster_obstore.s3.compute_log_manager`,
`dagster_aws.s3.compute_log_manager`, `dagster_gcp.gcs.compute_log_manager`,
`dagster_azure.blob.compute_log_manager`) names the built-in of the same class name."""


def build_compute_log_manager(
    spec: ComponentConfig | None, context: LoadContext, *, ephemeral: bool = False
) -> ComputeLogManager:
    """The manager `spec` describes; without one, `LocalComputeLogManager` under
    `home/compute_logs` (`NoOpComputeLogManager` for an ephemeral instance). `ConfigError`
    names the file and key path of whatever is wrong."""
    if spec is None:
        if ephemeral:
            from dagloom.compute_logs.noop import NoOpComputeLogManager

            return NoOpComputeLogManager()
        from dagloom.compute_logs.local import LocalComputeLogManager

        return LocalComputeLogManager(context.home / "compute_logs")
    manager = build_component(
        COMPUTE_LOG_MANAGERS,
        spec.module,
        spec.class_name,
        spec.config,
        context,
        source=context.source,
    )
    assert isinstance(manager, ComputeLogManager)  # the family accepts no other
    return manager
