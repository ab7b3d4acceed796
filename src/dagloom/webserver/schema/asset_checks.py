"""Asset check results over GraphQL, with Dagster's names: `assetCheckExecutions`, the
recorded evaluations of one check of an asset, newest first."""

from __future__ import annotations

import enum

import strawberry

from dagloom.messages import AssetCheckEvaluationData, Event, EventRecord
from dagloom.webserver._operations import guarded
from dagloom.webserver.schema.runs import AssetKey, AssetKeyInput, MetadataEntry, metadata_entries

MAX_EXECUTIONS = 1000


def _event(record: EventRecord) -> Event:
    return record.event if record.event is not None else Event()


def _data(record: EventRecord) -> AssetCheckEvaluationData | None:
    return _event(record).asset_check_evaluation


@strawberry.enum(name="AssetCheckExecutionResolvedStatus")
class AssetCheckExecutionResolvedStatus(enum.Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@strawberry.enum(name="AssetCheckSeverity")
class AssetCheckSeverity(enum.Enum):
    WARN = "WARN"
    ERROR = "ERROR"


@strawberry.type
class AssetCheckEvaluation:
    record: strawberry.Private[EventRecord]

    @strawberry.field
    def timestamp(self) -> float:
        return _event(self.record).timestamp

    @strawberry.field
    def checkName(self) -> str:
        data = _data(self.record)
        return data.check_name if data is not None else ""

    @strawberry.field
    def assetKey(self) -> AssetKey:
        data = _data(self.record)
        key = data.asset_key if data is not None else None
        return AssetKey(path=list(key.path) if key is not None else [])

    @strawberry.field
    def success(self) -> bool:
        data = _data(self.record)
        return data is not None and data.passed

    @strawberry.field
    def severity(self) -> AssetCheckSeverity:
        data = _data(self.record)
        return (
            AssetCheckSeverity.WARN
            if data and data.severity == "WARN"
            else AssetCheckSeverity.ERROR
        )

    @strawberry.field
    def description(self) -> str | None:
        data = _data(self.record)
        return (data.description or None) if data is not None else None

    @strawberry.field
    def partition(self) -> str | None:
        data = _data(self.record)
        return (data.partition or None) if data is not None else None

    @strawberry.field
    def metadataEntries(self) -> list[MetadataEntry]:
        data = _data(self.record)
        return metadata_entries(dict(data.metadata)) if data is not None else []


@strawberry.type
class AssetCheckExecution:
    record: strawberry.Private[EventRecord]

    @strawberry.field(description="The evaluation's storage id: pass it as `cursor` to page.")
    def id(self) -> str:
        return str(self.record.storage_id)

    @strawberry.field
    def runId(self) -> str:
        return _event(self.record).run_id

    @strawberry.field
    def stepKey(self) -> str | None:
        return _event(self.record).step_key or None

    @strawberry.field
    def timestamp(self) -> float:
        return _event(self.record).timestamp

    @strawberry.field
    def status(self) -> AssetCheckExecutionResolvedStatus:
        data = _data(self.record)
        passed = data is not None and data.passed
        return (
            AssetCheckExecutionResolvedStatus.SUCCEEDED
            if passed
            else AssetCheckExecutionResolvedStatus.FAILED
        )

    @strawberry.field
    def evaluation(self) -> AssetCheckEvaluation | None:
        return AssetCheckEvaluation(record=self.record)


def executions_of(
    records: list[EventRecord], check_name: str, limit: int, before: int | None
) -> list[EventRecord]:
    """The evaluations of `check_name` among `records` (newest first) older than storage id
    `before`, at most `limit`."""
    out: list[EventRecord] = []
    for record in records:
        data = _data(record)
        if data is None or data.check_name != check_name:
            continue
        if before is not None and record.storage_id >= before:
            continue
        out.append(record)
        if len(out) >= limit:
            break
    return out


@strawberry.type
class AssetChecksQuery:
    @strawberry.field(extensions=guarded("view_assets"))
    async def assetCheckExecutions(
        self,
        info: strawberry.Info,
        assetKey: AssetKeyInput,
        checkName: str,
        limit: int,
        cursor: str | None = None,
    ) -> list[AssetCheckExecution]:
        """The recorded results of the asset's check `checkName`, newest first; `cursor`
        (an execution's id) pages to older ones."""
        try:
            before = int(cursor) if cursor else None
        except ValueError:
            raise ValueError(f"cursor {cursor!r} is not an execution id") from None
        records = await info.context.instance.get_asset_check_evaluations(assetKey.path)
        size = min(max(limit, 1), MAX_EXECUTIONS)
        return [
            AssetCheckExecution(record=r) for r in executions_of(records, checkName, size, before)
        ]


__all__ = ["AssetCheckExecution", "AssetChecksQuery", "executions_of"]
