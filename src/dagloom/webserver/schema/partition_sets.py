"""A partitioned job's partition set over GraphQL, with Dagster's names: `partitionSetOrError`
gives `<job>_partition_set`, its partitions, and one partition's run config and tags.

The webserver holds no user code: the partition keys come from the location's snapshot,
and a partition's run config (a job with a partitioned config) from its code location,
asked through `ValidateRun` with the partition's tag.
"""

from __future__ import annotations

import orjson
import strawberry
import yaml

from dagloom.errors import ActorUnavailableError
from dagloom.execution.partitions import PARTITION_SET_TAG, PARTITION_TAG
from dagloom.messages import PartitionsSnapshot
from dagloom.messages.rpc import LocationSnapshot, ValidateRunReply, ValidateRunRequest
from dagloom.webserver._context import GraphQLContext
from dagloom.webserver._operations import guarded
from dagloom.webserver.schema._unions import named_union
from dagloom.webserver.schema.asset_partitions import partition_keys
from dagloom.webserver.schema.backfills import (
    PARTITION_SET_SUFFIX,
    PartitionSetNotFoundError,
    _location,
    job_of_partition_set,
)
from dagloom.webserver.schema.errors import PythonError, RepositoryNotFoundError
from dagloom.webserver.schema.inputs import RepositorySelector
from dagloom.webserver.schema.runs import PipelineTag

MAX_PARTITIONS = 100_000


def job_partitions(snapshot: LocationSnapshot, job_name: str) -> PartitionsSnapshot | None:
    """The partitions of the job `job_name` in `snapshot`; None: it is not partitioned."""
    position = snapshot.job_partitions_index.get(job_name, 0)
    if 0 < position <= len(snapshot.partitions_defs):
        return snapshot.partitions_defs[position - 1]
    return None


def config_yaml(run_config_json: str) -> str:
    """A run config (JSON text, empty for none) as the YAML a launchpad edits."""
    value = orjson.loads(run_config_json) if run_config_json else {}
    return str(yaml.safe_dump(value, sort_keys=False)) if value else ""


@strawberry.type
class PartitionRunConfig:
    yaml: str


@strawberry.type
class PartitionTags:
    results: list[PipelineTag]


PartitionRunConfigOrError = named_union(
    "PartitionRunConfigOrError", (PartitionRunConfig, PythonError)
)
PartitionTagsOrError = named_union("PartitionTagsOrError", (PartitionTags, PythonError))


@strawberry.type
class Partition:
    name: str
    location_name: strawberry.Private[str]
    job_name: strawberry.Private[str]

    async def _ask(self, info: strawberry.Info) -> ValidateRunReply | PythonError:
        context: GraphQLContext = info.context
        request = ValidateRunRequest(job_name=self.job_name, tags={PARTITION_TAG: self.name})
        try:
            reply = await context.backend.locations[self.location_name].ask(
                request, timeout=context.backend.timeout
            )
        except (ActorUnavailableError, TimeoutError) as exc:
            return PythonError.from_exception(exc)
        assert isinstance(reply, ValidateRunReply)
        if not reply.valid:
            return PythonError(message=reply.error or "the partition's run config is invalid")
        return reply

    @strawberry.field(description="The run config a run of this partition takes (YAML).")
    async def runConfigOrError(self, info: strawberry.Info) -> PartitionRunConfigOrError:  # type: ignore[valid-type]
        reply = await self._ask(info)
        if isinstance(reply, PythonError):
            return reply
        return PartitionRunConfig(yaml=config_yaml(reply.partition_run_config_json))

    @strawberry.field(description="The tags a run of this partition takes.")
    async def tagsOrError(self, info: strawberry.Info) -> PartitionTagsOrError:  # type: ignore[valid-type]
        reply = await self._ask(info)
        if isinstance(reply, PythonError):
            return reply
        tags = {
            **reply.partition_tags,
            PARTITION_TAG: self.name,
            PARTITION_SET_TAG: self.job_name + PARTITION_SET_SUFFIX,
        }
        return PartitionTags(results=[PipelineTag(key=k, value=v) for k, v in tags.items()])


@strawberry.type
class Partitions:
    results: list[Partition]


PartitionsOrError = named_union("PartitionsOrError", (Partitions, PythonError))


@strawberry.type
class PartitionSet:
    name: str
    pipelineName: str
    location_name: strawberry.Private[str]
    partitions: strawberry.Private[PartitionsSnapshot]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(f"{self.location_name}:{self.name}")

    @strawberry.field
    def mode(self) -> str:
        return "default"

    def _partition(self, name: str) -> Partition:
        return Partition(name=name, location_name=self.location_name, job_name=self.pipelineName)

    @strawberry.field(description="The job's partitions, in order (`limit` of them).")
    async def partitionsOrError(
        self, info: strawberry.Info, limit: int | None = None, reverse: bool | None = None
    ) -> PartitionsOrError:  # type: ignore[valid-type]
        keys = await partition_keys(info.context.instance, self.partitions)
        if reverse:
            keys.reverse()
        keys = keys[: min(limit, MAX_PARTITIONS) if limit is not None else MAX_PARTITIONS]
        return Partitions(results=[self._partition(k) for k in keys])

    @strawberry.field(description="One partition, or None when the job has no such partition.")
    async def partition(self, info: strawberry.Info, partitionName: str) -> Partition | None:
        keys = await partition_keys(info.context.instance, self.partitions)
        return self._partition(partitionName) if partitionName in keys else None


PartitionSetOrError = named_union(
    "PartitionSetOrError", (PartitionSet, PartitionSetNotFoundError, PythonError)
)


@strawberry.type
class PartitionSetsQuery:
    @strawberry.field(
        description="A partitioned job's partition set, `<job>_partition_set`.",
        extensions=guarded("view_workspace"),
    )
    async def partitionSetOrError(
        self,
        info: strawberry.Info,
        partitionSetName: str,
        repositorySelector: RepositorySelector | None = None,
    ) -> PartitionSetOrError:  # type: ignore[valid-type]
        snapshot = await _location(info.context, repositorySelector)
        if isinstance(snapshot, RepositoryNotFoundError):
            return PythonError(message=snapshot.message)
        job_name = job_of_partition_set(partitionSetName)
        partitions = job_partitions(snapshot, job_name)
        if partitions is None:
            return PartitionSetNotFoundError(
                partitionSetName=partitionSetName,
                message=f"location {snapshot.location_name!r} has no partitioned job {job_name!r}",
            )
        return PartitionSet(
            name=job_name + PARTITION_SET_SUFFIX,
            pipelineName=job_name,
            location_name=snapshot.location_name,
            partitions=partitions,
        )


__all__ = ["PartitionSetsQuery", "config_yaml", "job_partitions"]
