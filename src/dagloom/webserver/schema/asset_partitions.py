"""An asset's partitions and checks over GraphQL, with Dagster's names: the `AssetNode`
fields `isPartitioned`, `partitionDefinition`, `partitionKeys`, `assetPartitionStatuses`
and `assetChecksOrError`.

The webserver holds no user code: partitions come from the location's snapshot (the keys
it had when the code was loaded; dynamic partitions are read from the instance), and each
key's status from the materializations and runs in storage.
"""

from __future__ import annotations

import enum

import strawberry

from dagloom.definitions.partitions import (
    DynamicPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
)
from dagloom.instance import DagloomInstance
from dagloom.messages import PartitionsSnapshot
from dagloom.messages.rpc import AssetSnapshot, LocationSnapshot
from dagloom.webserver.schema._unions import named_union
from dagloom.webserver.schema.runs import AssetKey


@strawberry.enum(name="PartitionDefinitionType")
class PartitionDefinitionType(enum.Enum):
    TIME_WINDOW = "TIME_WINDOW"
    STATIC = "STATIC"
    MULTIPARTITIONED = "MULTIPARTITIONED"
    DYNAMIC = "DYNAMIC"


_TYPES = {
    "time_window": PartitionDefinitionType.TIME_WINDOW,
    "static": PartitionDefinitionType.STATIC,
    "multi": PartitionDefinitionType.MULTIPARTITIONED,
    "dynamic": PartitionDefinitionType.DYNAMIC,
}


@strawberry.type
class PartitionDefinition:
    description: str
    type: PartitionDefinitionType
    name: str | None = strawberry.field(
        default=None, description="Dynamic partitions: the instance's name for them."
    )


@strawberry.type(description="Each partition key of the asset, grouped by its status.")
class DefaultPartitionStatuses:
    materializedPartitions: list[str]
    failedPartitions: list[str]
    unmaterializedPartitions: list[str]
    materializingPartitions: list[str]


@strawberry.type
class AssetCheck:
    name: str
    description: str | None
    blocking: bool
    assetKey: AssetKey


@strawberry.type
class AssetChecks:
    checks: list[AssetCheck]


AssetChecksOrError = named_union("AssetChecksOrError", (AssetChecks,))


def partitions_of(location: LocationSnapshot, asset: AssetSnapshot) -> PartitionsSnapshot | None:
    """The asset's partitions definition in its location's snapshot; None: not partitioned."""
    position = asset.partitions_index
    if position <= 0 or position > len(location.partitions_defs):
        return None
    return location.partitions_defs[position - 1]


def definition_of(partitions: PartitionsSnapshot) -> PartitionsDefinition:
    """A definition with the snapshot's keys, to read statuses with: the instance's dynamic
    partitions for a dynamic one, else the keys the snapshot lists, in its order."""
    if partitions.dynamic_name:
        return DynamicPartitionsDefinition(name=partitions.dynamic_name)
    return StaticPartitionsDefinition(list(partitions.keys))


async def partition_keys(instance: DagloomInstance, partitions: PartitionsSnapshot) -> list[str]:
    if partitions.dynamic_name:
        store = await instance.dynamic_partitions_snapshot([partitions.dynamic_name])
        return list(store.get_dynamic_partitions(partitions.dynamic_name))
    return list(partitions.keys)


@strawberry.type
class AssetNodePartitions:
    """The partition and check fields of `AssetNode` (which inherits them)."""

    snapshot: strawberry.Private[AssetSnapshot]
    location_name: strawberry.Private[str]

    async def _partitions(self, info: strawberry.Info) -> PartitionsSnapshot | None:
        if self.snapshot.partitions_index <= 0:
            return None
        view = await info.context.location(self.location_name)
        return partitions_of(view.snapshot, self.snapshot) if view.snapshot else None

    @strawberry.field
    def isPartitioned(self) -> bool:
        return self.snapshot.partitions_index > 0

    @strawberry.field
    async def partitionDefinition(self, info: strawberry.Info) -> PartitionDefinition | None:
        partitions = await self._partitions(info)
        if partitions is None:
            return None
        return PartitionDefinition(
            description=partitions.description,
            type=_TYPES.get(partitions.type, PartitionDefinitionType.STATIC),
            name=partitions.dynamic_name or None,
        )

    @strawberry.field(description="The asset's partition keys, in order.")
    async def partitionKeys(self, info: strawberry.Info) -> list[str]:
        partitions = await self._partitions(info)
        if partitions is None:
            return []
        return await partition_keys(info.context.instance, partitions)

    @strawberry.field(
        description="Each partition's status: materialized, failed (its latest run failed "
        "after its latest materialization), materializing (a run is under way) or not "
        "materialized. None for an asset without partitions."
    )
    async def assetPartitionStatuses(
        self, info: strawberry.Info
    ) -> DefaultPartitionStatuses | None:
        partitions = await self._partitions(info)
        if partitions is None or self.snapshot.key is None:
            return None
        instance: DagloomInstance = info.context.instance
        status = await instance.get_partition_status(
            list(self.snapshot.key.path), definition_of(partitions)
        )
        settled = {*status.materialized, *status.failed, *status.in_progress}
        return DefaultPartitionStatuses(
            materializedPartitions=status.materialized,
            failedPartitions=status.failed,
            unmaterializedPartitions=[k for k in status.keys if k not in settled],
            materializingPartitions=status.in_progress,
        )

    @strawberry.field(description="The checks defined for the asset.")
    def assetChecksOrError(self) -> AssetChecksOrError:  # type: ignore[valid-type]
        path = list(self.snapshot.key.path) if self.snapshot.key is not None else []
        return AssetChecks(
            checks=[
                AssetCheck(
                    name=c.name,
                    description=c.description or None,
                    blocking=c.blocking,
                    assetKey=AssetKey(path=path),
                )
                for c in self.snapshot.checks
            ]
        )


__all__ = ["AssetNodePartitions", "definition_of", "partition_keys", "partitions_of"]
