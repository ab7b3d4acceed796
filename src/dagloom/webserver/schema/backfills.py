"""Partition backfills over GraphQL, with Dagster's names: `partitionBackfillsOrError`,
`partitionBackfillOrError`, `launchPartitionBackfill` and `cancelPartitionBackfill`.

A backfill launched here is stored like one from `dagloom backfill launch`; the daemon
submits its runs, one per partition (ranges for assets with a `BackfillPolicy`; a job with a
partitioned config gets each run's config from its code when the run is submitted). The
webserver holds no user code: the target and its partitions are checked against the
location's snapshot.
"""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass

import strawberry

from dagloom.daemon._backfills import BACKFILL_ID_TAG, backfill_progress, total_runs
from dagloom.definitions.asset_job import IMPLICIT_ASSET_JOB_NAME
from dagloom.definitions.backfill_policy import BackfillPolicy, partitions_per_run
from dagloom.messages import AssetKeyMessage, Backfill, BackfillStatus, PartitionsSnapshot
from dagloom.messages.rpc import LocationSnapshot
from dagloom.storage.base import RunsFilter
from dagloom.webserver._context import GraphQLContext
from dagloom.webserver._operations import guarded
from dagloom.webserver.schema._unions import named_union
from dagloom.webserver.schema.asset_partitions import (
    definition_of,
    partition_keys,
    partitions_of,
)
from dagloom.webserver.schema.errors import (
    Error,
    PythonError,
    RepositoryNotFoundError,
    UnauthorizedError,
)
from dagloom.webserver.schema.inputs import RepositorySelector
from dagloom.webserver.schema.runs import AssetKey, AssetKeyInput, ExecutionTag, PipelineTag, Run

PARTITION_SET_SUFFIX = "_partition_set"
"""Dagster names a job's partition set `<job>_partition_set`."""
DEFAULT_BACKFILLS_LIMIT = 50
MAX_BACKFILLS_LIMIT = 1000


@strawberry.enum(name="BulkActionStatus")
class BulkActionStatus(enum.Enum):
    REQUESTED = "REQUESTED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


_TO_STORED = {
    BulkActionStatus.REQUESTED: BackfillStatus.REQUESTED,
    BulkActionStatus.COMPLETED: BackfillStatus.COMPLETED,
    BulkActionStatus.FAILED: BackfillStatus.FAILED,
    BulkActionStatus.CANCELED: BackfillStatus.CANCELED,
}
_FROM_STORED = {stored: status for status, stored in _TO_STORED.items()}


def job_of_partition_set(name: str) -> str:
    """The job a partition set name stands for (`<job>_partition_set`, or the job name)."""
    return name.removesuffix(PARTITION_SET_SUFFIX)


@dataclass(frozen=True, slots=True)
class Target:
    """What a backfill runs: the job submitted and the assets selected (none for a job)."""

    job_name: str
    asset_selection: tuple[tuple[str, ...], ...]


def backfill_target(
    snapshot: LocationSnapshot, job_name: str | None, asset_keys: list[list[str]] | None
) -> Target:
    """The target of a backfill of `job_name` or of `asset_keys` in the location of
    `snapshot`; `ValueError` naming what the location does not have, or when both or
    neither are given."""
    if (job_name is None) == (not asset_keys):
        raise ValueError("give a partition set selector or an asset selection, not both")
    if job_name is not None:
        if job_name not in {job.name for job in snapshot.jobs}:
            raise ValueError(f"location {snapshot.location_name!r} has no job {job_name!r}")
        return Target(job_name, ())
    assert asset_keys is not None
    known = {tuple(a.key.path) for a in snapshot.assets if a.key is not None}
    selection = tuple(sorted({tuple(k) for k in asset_keys}))
    missing = ["/".join(k) for k in selection if k not in known]
    if missing:
        raise ValueError(f"location {snapshot.location_name!r} has no asset {', '.join(missing)}")
    return Target(IMPLICIT_ASSET_JOB_NAME, selection)


def target_partitions(snapshot: LocationSnapshot, target: Target) -> PartitionsSnapshot | None:
    """The partitions of the target's assets as the snapshot has them (the assets
    selected, or those of the job); None when none of them is partitioned (an op job)."""
    paths = set(target.asset_selection)
    if not paths:
        position = snapshot.job_partitions_index.get(target.job_name, 0)
        if 0 < position <= len(snapshot.partitions_defs):
            return snapshot.partitions_defs[position - 1]
        job = next((j for j in snapshot.jobs if j.name == target.job_name), None)
        paths = {tuple(k.path) for k in job.asset_keys} if job is not None else set()
    for asset in snapshot.assets:
        if asset.key is not None and tuple(asset.key.path) in paths:
            partitions = partitions_of(snapshot, asset)
            if partitions is not None:
                return partitions
    return None


def target_partitions_per_run(snapshot: LocationSnapshot, target: Target) -> int:
    """Partitions per run of a backfill of `target`, by its assets' backfill policies as
    `dagloom backfill launch` counts them: 0 (one run for all) when every selected asset
    takes a single run, else the smallest limit; 1 for a job (one run per partition)."""
    if not target.asset_selection:
        return 1
    paths = set(target.asset_selection)
    policies: list[BackfillPolicy | None] = []
    for asset in snapshot.assets:
        if asset.key is None or tuple(asset.key.path) not in paths:
            continue
        policy = asset.backfill_policy
        if policy is None:
            policies.append(None)
        elif policy.max_partitions_per_run <= 0:
            policies.append(BackfillPolicy.single_run())
        else:
            policies.append(BackfillPolicy.multi_run(policy.max_partitions_per_run))
    return partitions_per_run(policies)


def partition_names(
    names: list[str] | None, all_partitions: bool | None, known: list[str] | None
) -> list[str]:
    """The partitions asked for, in the order given (every one of `known` with
    `all_partitions`), without repeats. `ValueError` when there are none, when a name is
    not one of `known`, or for `all_partitions` when the partitions are not known."""
    if all_partitions:
        if names:
            raise ValueError("give partitionNames or allPartitions, not both")
        if known is None:
            raise ValueError(
                "allPartitions needs the target's partitions, which its code location's "
                "snapshot does not list (a partitioned op job): name them (partitionNames)"
            )
        keys = list(known)
    else:
        keys = list(dict.fromkeys(names or []))
    if not keys:
        raise ValueError("no partitions to backfill")
    if known is not None:
        have = set(known)
        unknown = [k for k in keys if k not in have]
        if unknown:
            shown = ", ".join(repr(k) for k in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise ValueError(f"the target has no partition {shown}{more}")
    return keys


@strawberry.type
class PartitionStatusCounts:
    runStatus: str
    count: int


@strawberry.type
class PartitionBackfill:
    backfill: strawberry.Private[Backfill]

    @strawberry.field
    def id(self) -> str:
        return self.backfill.backfill_id

    @strawberry.field
    def status(self) -> BulkActionStatus:
        return _FROM_STORED.get(self.backfill.status, BulkActionStatus.FAILED)

    @strawberry.field
    def partitionNames(self) -> list[str]:
        return list(self.backfill.partition_keys)

    @strawberry.field
    def numPartitions(self) -> int:
        return len(self.backfill.partition_keys)

    @strawberry.field(description="Runs of the backfill not yet submitted.")
    def numCancelable(self) -> int:
        if self.backfill.status != BackfillStatus.REQUESTED:
            return 0
        return max(total_runs(self.backfill) - self.backfill.num_submitted, 0)

    @strawberry.field
    def fromFailure(self) -> bool:
        return self.backfill.from_failure

    @strawberry.field
    def isAssetBackfill(self) -> bool:
        return bool(self.backfill.asset_selection)

    @strawberry.field
    def assetSelection(self) -> list[AssetKey] | None:
        keys = [AssetKey(path=list(k.path)) for k in self.backfill.asset_selection]
        return keys or None

    @strawberry.field
    def jobName(self) -> str:
        return self.backfill.job_name

    @strawberry.field
    def partitionSetName(self) -> str | None:
        if self.backfill.asset_selection:
            return None
        return self.backfill.job_name + PARTITION_SET_SUFFIX

    @strawberry.field
    def timestamp(self) -> float:
        return self.backfill.create_time

    @strawberry.field
    def tags(self) -> list[PipelineTag]:
        return [PipelineTag(key=k, value=v) for k, v in sorted(self.backfill.tags.items())]

    @strawberry.field
    def error(self) -> PythonError | None:
        if self.backfill.error is None:
            return None
        return PythonError.from_info(self.backfill.error)

    @strawberry.field(description="The backfill's runs, newest first.")
    async def runs(self, info: strawberry.Info, limit: int | None = None) -> list[Run]:
        runs = await info.context.instance.get_runs_async(
            RunsFilter(tags={BACKFILL_ID_TAG: self.backfill.backfill_id}),
            limit=min(max(limit, 1), MAX_BACKFILLS_LIMIT) if limit is not None else None,
        )
        return [Run(run=r) for r in runs]

    @strawberry.field(
        description="Partitions counted by where they stand: NOT_STARTED (not submitted), "
        "STARTED (queued or running), SUCCESS and FAILURE (failed or canceled)."
    )
    async def partitionStatusCounts(self, info: strawberry.Info) -> list[PartitionStatusCounts]:
        runs = await info.context.instance.get_runs_async(
            RunsFilter(tags={BACKFILL_ID_TAG: self.backfill.backfill_id})
        )
        progress = backfill_progress(self.backfill, runs)
        counts = {
            "NOT_STARTED": progress.not_submitted,
            "STARTED": progress.in_progress,
            "SUCCESS": progress.materialized,
            "FAILURE": progress.failed,
        }
        return [PartitionStatusCounts(runStatus=k, count=v) for k, v in counts.items()]


@strawberry.type
class PartitionBackfills:
    results: list[PartitionBackfill]


@strawberry.type
class BackfillNotFoundError(Error):
    backfillId: str


@strawberry.type
class PartitionSetNotFoundError(Error):
    partitionSetName: str


@strawberry.type
class InvalidBackfillError(Error):
    """The backfill asked for cannot be made (no partitions, an unknown asset, …)."""


@strawberry.type
class LaunchBackfillSuccess:
    backfillId: str
    launchedRunIds: list[str | None] | None = None


@strawberry.type
class CancelBackfillSuccess:
    backfillId: str


@strawberry.input
class PartitionSetSelector:
    partitionSetName: str
    repositorySelector: RepositorySelector


@strawberry.input
class LaunchBackfillParams:
    selector: PartitionSetSelector | None = None
    partitionNames: list[str] | None = None
    assetSelection: list[AssetKeyInput] | None = None
    repositorySelector: RepositorySelector | None = strawberry.field(
        default=None,
        description="The location of an asset backfill (default: the only location).",
    )
    fromFailure: bool | None = strawberry.field(
        default=None,
        description="Only the partitions whose latest run failed (an asset selection).",
    )
    allPartitions: bool | None = None
    tags: list[ExecutionTag] | None = None
    title: str | None = None
    description: str | None = None


PartitionBackfillsOrError = named_union(
    "PartitionBackfillsOrError", (PartitionBackfills, PythonError)
)
PartitionBackfillOrError = named_union(
    "PartitionBackfillOrError", (PartitionBackfill, BackfillNotFoundError, PythonError)
)
LaunchBackfillResult = named_union(
    "LaunchBackfillResult",
    (
        LaunchBackfillSuccess,
        PartitionSetNotFoundError,
        RepositoryNotFoundError,
        InvalidBackfillError,
        UnauthorizedError,
        PythonError,
    ),
)
CancelBackfillResult = named_union(
    "CancelBackfillResult",
    (CancelBackfillSuccess, BackfillNotFoundError, UnauthorizedError, PythonError),
)


@strawberry.type
class BackfillsQuery:
    @strawberry.field(extensions=guarded("view_backfills"))
    async def partitionBackfillsOrError(
        self,
        info: strawberry.Info,
        status: BulkActionStatus | None = None,
        limit: int | None = None,
    ) -> PartitionBackfillsOrError:  # type: ignore[valid-type]
        """Backfills, newest first (of `status`, if given)."""
        size = min(max(limit or DEFAULT_BACKFILLS_LIMIT, 1), MAX_BACKFILLS_LIMIT)
        statuses = [_TO_STORED[status]] if status is not None else []
        stored = await info.context.instance.run_storage.get_backfills(statuses, limit=size)
        return PartitionBackfills(results=[PartitionBackfill(backfill=b) for b in stored])

    @strawberry.field(extensions=guarded("view_backfills"))
    async def partitionBackfillOrError(
        self, info: strawberry.Info, backfillId: str
    ) -> PartitionBackfillOrError:  # type: ignore[valid-type]
        stored = await info.context.instance.run_storage.get_backfill(backfillId)
        if stored is None:
            return _not_found(backfillId)
        return PartitionBackfill(backfill=stored)


def _not_found(backfill_id: str) -> BackfillNotFoundError:
    return BackfillNotFoundError(
        backfillId=backfill_id, message=f"Backfill {backfill_id} could not be found."
    )


async def _location(
    context: GraphQLContext, selector: RepositorySelector | None
) -> LocationSnapshot | RepositoryNotFoundError:
    names = sorted(context.backend.locations)
    if selector is not None:
        name = selector.repositoryLocationName
    elif len(names) == 1:
        name = names[0]
    else:
        return RepositoryNotFoundError(
            repositoryLocationName="",
            repositoryName="",
            message=f"name the location (repositorySelector); there are {len(names)}",
        )
    if name not in context.backend.locations:
        return RepositoryNotFoundError(
            repositoryLocationName=name,
            repositoryName=selector.repositoryName if selector else "",
            message=f"Could not find a repository location named {name}.",
        )
    view = await context.location(name)
    if view.snapshot is None or view.snapshot.load_error is not None:
        reason = view.unavailable or f"code location {name!r} failed to load"
        return RepositoryNotFoundError(
            repositoryLocationName=name, repositoryName="", message=reason
        )
    return view.snapshot


async def _failed_only(
    context: GraphQLContext,
    target: Target,
    partitions: PartitionsSnapshot | None,
    keys: list[str],
) -> list[str]:
    """Those of `keys` that failed for any of the selected assets; `ValueError` when the
    backfill selects no partitioned assets, or when none of `keys` failed."""
    if not target.asset_selection or partitions is None:
        raise ValueError("fromFailure needs an asset selection of partitioned assets")
    failed: set[str] = set()
    for path in target.asset_selection:
        status = await context.instance.get_partition_status(list(path), definition_of(partitions))
        failed.update(status.failed)
    chosen = [k for k in keys if k in failed]
    if not chosen:
        raise ValueError("no partitions to backfill: none of them failed")
    return chosen


@strawberry.type
class BackfillsMutation:
    @strawberry.mutation(extensions=guarded("launch_partition_backfill"))
    async def launchPartitionBackfill(
        self, info: strawberry.Info, backfillParams: LaunchBackfillParams
    ) -> LaunchBackfillResult:  # type: ignore[valid-type]
        """Store a backfill of the named partitions of a job (`selector`) or of assets
        (`assetSelection`); the daemon submits its runs: one per partition, or ranges for
        assets whose BackfillPolicy lets a run take many."""
        params = backfillParams
        context: GraphQLContext = info.context
        repository = params.selector.repositorySelector if params.selector else None
        snapshot = await _location(context, repository or params.repositorySelector)
        if isinstance(snapshot, RepositoryNotFoundError):
            return snapshot
        job_name = (
            job_of_partition_set(params.selector.partitionSetName) if params.selector else None
        )
        assets = [list(k.path) for k in params.assetSelection or []]
        try:
            target = backfill_target(snapshot, job_name, assets)
        except ValueError as exc:
            if params.selector is not None and job_name not in {j.name for j in snapshot.jobs}:
                return PartitionSetNotFoundError(
                    partitionSetName=params.selector.partitionSetName, message=str(exc)
                )
            return InvalidBackfillError(message=str(exc))
        partitions = target_partitions(snapshot, target)
        known = None
        if partitions is not None:
            known = await partition_keys(context.instance, partitions)
        try:
            keys = partition_names(params.partitionNames, params.allPartitions, known)
            if params.fromFailure:
                keys = await _failed_only(context, target, partitions, keys)
        except ValueError as exc:
            return InvalidBackfillError(message=str(exc))
        tags = {t.key: t.value for t in params.tags or []}
        backfill = Backfill(
            backfill_id=uuid.uuid4().hex[:8],
            status=BackfillStatus.REQUESTED,
            location_name=snapshot.location_name,
            job_name=target.job_name,
            asset_selection=[AssetKeyMessage(path=list(k)) for k in target.asset_selection],
            partition_keys=keys,
            partitions_per_run=target_partitions_per_run(snapshot, target),
            tags=tags,
            run_config_json="{}",
            create_time=time.time(),
            from_failure=bool(params.fromFailure),
        )
        await context.instance.run_storage.add_backfill(backfill)
        return LaunchBackfillSuccess(backfillId=backfill.backfill_id, launchedRunIds=[])

    @strawberry.mutation(extensions=guarded("cancel_partition_backfill"))
    async def cancelPartitionBackfill(
        self, info: strawberry.Info, backfillId: str
    ) -> CancelBackfillResult:  # type: ignore[valid-type]
        """Stop submitting the backfill's runs; runs already submitted go on."""
        storage = info.context.instance.run_storage
        stored = await storage.get_backfill(backfillId)
        if stored is None:
            return _not_found(backfillId)
        if stored.status == BackfillStatus.REQUESTED:
            stored.status = BackfillStatus.CANCELED
            await storage.update_backfill(stored)
        return CancelBackfillSuccess(backfillId=backfillId)


__all__ = [
    "BackfillsMutation",
    "BackfillsQuery",
    "BulkActionStatus",
    "PartitionBackfill",
    "backfill_target",
    "job_of_partition_set",
    "partition_names",
    "target_partitions",
    "target_partitions_per_run",
]
