"""Multi-asset sensors: `multi_asset_sensor`, its evaluation context, and
`build_multi_asset_sensor_context`, with Dagster's names and cursor semantics.

A multi-asset sensor watches the materializations of several assets. Its context keeps one
cursor per asset, the storage id of the last materialization consumed (`advance_cursor`),
plus, for a partitioned asset, the newest materialization of each partition that a later
advance stepped over without consuming: those stay visible to
`latest_materialization_records_by_partition` until consumed. The whole state is the
sensor's cursor, a JSON object `{asset key: [partition, storage id, {partition: storage
id}]}` as Dagster writes it.

The context reads materializations from its instance: on the daemon's ticks the deployment's
(forwarded by the code location that evaluates the tick), in tests the one given to
`build_multi_asset_sensor_context(instance=...)`. A tick whose context has no instance (a
code location served without one) fails, naming the sensor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dagloom.definitions._instigator import HasName, call_user_function
from dagloom.definitions.asset import AssetsDefinition
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.asset_selection import AssetSelection
from dagloom.definitions.sensor import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
)
from dagloom.errors import DagsterUnknownPartitionError, DefinitionError

if TYPE_CHECKING:
    from dagloom.instance.sync import EventLogRecord, InstanceView

__all__ = [
    "MultiAssetSensorDefinition",
    "MultiAssetSensorEvaluationContext",
    "build_multi_asset_sensor_context",
    "multi_asset_sensor",
]

# Records are read newest first, this many at a time, when walking back to a cursor.
_PAGE = 100


@dataclass(slots=True)
class _AssetCursor:
    """Where a multi-asset sensor stands on one asset."""

    partition: str | None = None  # of the last consumed materialization
    storage_id: int | None = None  # of the last consumed materialization
    # partition -> storage id of materializations stepped over, not consumed
    trailing: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> list[Any]:
        return [self.partition, self.storage_id, dict(self.trailing)]

    @staticmethod
    def from_json(value: Any, where: str) -> _AssetCursor:
        if (
            not isinstance(value, list)
            or len(value) != 3
            or not (value[0] is None or isinstance(value[0], str))
            or not (value[1] is None or isinstance(value[1], int))
            or not isinstance(value[2], dict)
        ):
            raise DefinitionError(
                f"{where}: expected [partition, storage id, {{partition: storage id}}], "
                f"got {value!r}"
            )
        return _AssetCursor(value[0], value[1], {str(k): int(v) for k, v in value[2].items()})


def _partition_of(record: EventLogRecord) -> str | None:
    materialization = record.asset_materialization
    return materialization.partition if materialization is not None else None


class MultiAssetSensorEvaluationContext(SensorEvaluationContext):
    """What a multi-asset sensor function sees: the monitored `asset_keys`, the
    materializations of each since its cursor, and the calls that move the cursors.

    Every read goes to `instance` and blocks until storage answers. `advance_cursor` and
    `advance_all_cursors` take effect at once (later reads in the same evaluation see them)
    and update `cursor`. `repository_def` (the `Definitions`) is needed to resolve an
    `AssetSelection`, and for the partitions of assets (`all_partitions_materialized`
    without partitions, `get_downstream_partition_keys`).
    """

    __slots__ = ("_asset_keys", "_consumed", "_state")

    def __init__(
        self,
        *,
        monitored_assets: Sequence[Any] | AssetSelection,
        instance: Any = None,
        cursor: str | None = None,
        repository_name: str | None = None,
        repository_def: Any = None,
        sensor_name: str | None = None,
        resources: Mapping[str, Any] | None = None,
        last_tick_completion_time: float | None = None,
        last_run_key: str | None = None,
        last_sensor_start_time: float | None = None,
    ) -> None:
        super().__init__(
            cursor=cursor,
            last_tick_completion_time=last_tick_completion_time,
            last_run_key=last_run_key,
            instance=instance,
            repository_name=repository_name,
            repository_def=repository_def,
            sensor_name=sensor_name,
            resources=resources,
            last_sensor_start_time=last_sensor_start_time,
        )
        self._asset_keys = _monitored_keys(monitored_assets, repository_def, self._label)
        self._state = self._parse_cursor(cursor)
        self._consumed: set[int] = set()

    @property
    def _label(self) -> str:
        return (
            f"multi-asset sensor {self.sensor_name!r}" if self.sensor_name else "multi-asset sensor"
        )

    def _parse_cursor(self, cursor: str | None) -> dict[AssetKey, _AssetCursor]:
        state = {key: _AssetCursor() for key in self._asset_keys}
        if not cursor:
            return state
        try:
            loaded = json.loads(cursor)
        except ValueError:
            loaded = None
        if not isinstance(loaded, dict):
            raise DefinitionError(
                f"{self._label}: cursor {cursor!r} is not a multi-asset sensor cursor (a JSON "
                "object by asset key)"
            )
        for raw_key, value in loaded.items():
            key = AssetKey.from_user_string(raw_key)
            if key in state:
                state[key] = _AssetCursor.from_json(value, f"{self._label}: cursor of {raw_key!r}")
        return state

    def _store_cursor(self) -> None:
        self.update_cursor(
            json.dumps(
                {key.to_user_string(): self._state[key].to_json() for key in self._asset_keys}
            )
        )

    # -- what is monitored ---------------------------------------------------------------

    @property
    def asset_keys(self) -> list[AssetKey]:
        """The monitored assets, in the order given."""
        return list(self._asset_keys)

    @property
    def assets_defs_by_key(self) -> dict[AssetKey, AssetsDefinition | None]:
        """Each monitored asset's definition in `repository_def` (None when not there)."""
        graph = self._asset_graph(None)
        return {key: graph.by_key.get(key) if graph else None for key in self._asset_keys}

    def _check_monitored(self, key: AssetKey) -> None:
        if key not in self._state:
            raise DefinitionError(
                f"{self._label} does not monitor asset {key.to_user_string()!r}; it monitors "
                f"{[k.to_user_string() for k in self._asset_keys]}"
            )

    def _asset_graph(self, needed_for: str | None) -> Any:
        graph = getattr(self.repository_def, "asset_graph", None)
        if graph is None and needed_for is not None:
            raise DefinitionError(
                f"{self._label}: {needed_for} needs the assets' definitions; build the "
                "context with repository_def= (or definitions=) the Definitions holding them"
            )
        return graph

    def _partitions_def(self, key: AssetKey, needed_for: str) -> Any:
        graph = self._asset_graph(needed_for)
        if key not in graph.by_key:
            raise DefinitionError(
                f"{self._label}: {needed_for}: asset {key.to_user_string()!r} is not defined"
            )
        partitions_def = graph.partitions_def(key)
        if partitions_def is None:
            raise DefinitionError(
                f"{self._label}: {needed_for}: asset {key.to_user_string()!r} is not partitioned"
            )
        return partitions_def

    # -- reading materializations --------------------------------------------------------

    def _instance_view(self) -> InstanceView:
        from dagloom.instance.sync import sync_instance_of

        if self.instance is None:
            raise DefinitionError(
                f"{self._label} reads materializations from its context's instance, and this "
                "context has none; evaluate it through a daemon whose code location has the "
                "instance, or with build_multi_asset_sensor_context(instance=...)"
            )
        return sync_instance_of(self.instance)

    def _records_newer_than(self, key: AssetKey, floor: int | None) -> list[EventLogRecord]:
        """The materializations of `key` with a storage id above `floor`, newest first."""
        from dagloom.instance.sync import AssetRecordsFilter

        instance = self._instance_view()
        found: list[EventLogRecord] = []
        cursor: str | None = None
        while True:
            page = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=key), limit=_PAGE, cursor=cursor
            )
            for record in page.records:
                if floor is not None and record.storage_id <= floor:
                    return found
                found.append(record)
            if not page.has_more:
                return found
            cursor = page.cursor

    def latest_materialization_records_by_key(
        self, asset_keys: Iterable[AssetKey] | None = None
    ) -> dict[AssetKey, EventLogRecord | None]:
        """The newest materialization of each asset (default: every monitored one) after its
        cursor, or None when it has none."""
        keys = list(asset_keys) if asset_keys is not None else self._asset_keys
        out: dict[AssetKey, EventLogRecord | None] = {}
        for key in keys:
            self._check_monitored(key)
            newer = self._records_newer_than(key, self._state[key].storage_id)
            out[key] = newer[0] if newer else None
        return out

    def materialization_records_for_key(
        self, asset_key: AssetKey, limit: int | None = None
    ) -> list[EventLogRecord]:
        """The materializations of `asset_key` after its cursor, oldest first, at most
        `limit` (the oldest ones)."""
        self._check_monitored(asset_key)
        records = list(
            reversed(self._records_newer_than(asset_key, self._state[asset_key].storage_id))
        )
        return records[:limit] if limit is not None else records

    def latest_materialization_records_by_partition(
        self, asset_key: AssetKey, after_cursor_partition: bool = False
    ) -> dict[str, EventLogRecord]:
        """The newest unconsumed materialization of each partition of `asset_key` (after
        its cursor, or stepped over by an earlier advance), ordered by storage id.
        `after_cursor_partition=True` keeps only partitions after the cursor's partition
        in the asset's partitions order."""
        self._check_monitored(asset_key)
        state = self._state[asset_key]
        floor = state.storage_id
        if state.trailing:
            # the floor is exclusive: start just below the oldest record held back
            oldest_held = min(state.trailing.values()) - 1
            floor = oldest_held if floor is None else min(floor, oldest_held)
        trailing_ids = set(state.trailing.values())
        latest: dict[str, EventLogRecord] = {}
        seen: set[str] = set()
        for record in self._records_newer_than(asset_key, floor):
            partition = _partition_of(record)
            if partition is None or partition in seen:
                continue
            # The newest record of a partition decides: consumed (or behind the cursor and
            # not held back) means the partition has nothing new.
            seen.add(partition)
            newer_than_cursor = state.storage_id is None or record.storage_id > state.storage_id
            if (newer_than_cursor or record.storage_id in trailing_ids) and (
                record.storage_id not in self._consumed
            ):
                latest[partition] = record
        if after_cursor_partition and state.partition is not None:
            keys = self._partitions_def(
                asset_key, "latest_materialization_records_by_partition(after_cursor_partition)"
            ).get_partition_keys(dynamic_partitions_store=self._instance_view())
            position = {k: i for i, k in enumerate(keys)}
            start = position.get(state.partition, -1)
            latest = {k: r for k, r in latest.items() if position.get(k, -1) > start}
        return dict(sorted(latest.items(), key=lambda item: item[1].storage_id))

    def latest_materialization_records_by_partition_and_asset(
        self,
    ) -> dict[str, dict[AssetKey, EventLogRecord]]:
        """For each partition, the newest unconsumed materialization of it of each
        monitored asset that has one."""
        out: dict[str, dict[AssetKey, EventLogRecord]] = {}
        for key in self._asset_keys:
            for partition, record in self.latest_materialization_records_by_partition(key).items():
                out.setdefault(partition, {})[key] = record
        return out

    def get_cursor_partition(self, asset_key: AssetKey | None) -> str | None:
        """The partition of the last materialization consumed of `asset_key`."""
        if asset_key is None:
            return None
        self._check_monitored(asset_key)
        return self._state[asset_key].partition

    def all_partitions_materialized(
        self, asset_key: AssetKey, partitions: Sequence[str] | None = None
    ) -> bool:
        """Whether every partition given (default: every partition of the asset) has ever
        been materialized, whatever the cursor."""
        instance = self._instance_view()
        if partitions is None:
            partitions = self._partitions_def(
                asset_key, "all_partitions_materialized"
            ).get_partition_keys(dynamic_partitions_store=instance)
        materialized = instance.get_materialized_partitions(asset_key)
        return all(partition in materialized for partition in partitions)

    def get_downstream_partition_keys(
        self, partition_key: str, from_asset_key: AssetKey, to_asset_key: AssetKey
    ) -> list[str]:
        """The partitions of `to_asset_key` that read `partition_key` of `from_asset_key`,
        through the partition mapping between them (as declared, else the default one)."""
        where = "get_downstream_partition_keys"
        from_def = self._partitions_def(from_asset_key, where)
        to_def = self._partitions_def(to_asset_key, where)
        store = self._instance_view()
        from_def.validate_partition_key(
            partition_key,
            what=f"{self._label}: {where}: asset {from_asset_key.to_user_string()!r}",
            dynamic_partitions_store=store,
        )
        mapping = self._asset_graph(where).partition_mapping(to_asset_key, from_asset_key)
        downstream: list[str] = []
        for key in to_def.get_partition_keys(dynamic_partitions_store=store):
            try:
                upstream = mapping.upstream_partition_keys([key], to_def, from_def, store)
            except DagsterUnknownPartitionError:
                continue  # reads partitions the upstream does not have (yet)
            if partition_key in upstream:
                downstream.append(key)
        return downstream

    # -- moving the cursors --------------------------------------------------------------

    def advance_cursor(
        self, materialization_records_by_key: Mapping[AssetKey, EventLogRecord | None]
    ) -> None:
        """Mark the given materializations consumed and move each asset's cursor to its
        record when that is newer. A partitioned asset's materializations stepped over and
        not consumed stay unconsumed (the newest one per partition)."""
        for key, record in materialization_records_by_key.items():
            if record is None:
                continue
            self._check_monitored(key)
            self._consumed.add(record.storage_id)
            state = self._state[key]
            partition = _partition_of(record)
            if state.storage_id is None or record.storage_id > state.storage_id:
                for skipped in self._records_newer_than(key, state.storage_id):
                    skipped_partition = _partition_of(skipped)
                    if (
                        skipped.storage_id >= record.storage_id
                        or skipped_partition is None
                        or skipped.storage_id in self._consumed
                    ):
                        continue
                    held = state.trailing.get(skipped_partition)
                    if held is None or skipped.storage_id > held:
                        state.trailing[skipped_partition] = skipped.storage_id
                state.storage_id = record.storage_id
                state.partition = partition
            if partition is not None and state.trailing.get(partition, -1) <= record.storage_id:
                state.trailing.pop(partition, None)
            state.trailing = {p: i for p, i in state.trailing.items() if i not in self._consumed}
        self._store_cursor()

    def advance_all_cursors(self) -> None:
        """Move every monitored asset's cursor to its newest materialization, and mark
        every materialization so far consumed."""
        for key, record in self.latest_materialization_records_by_key().items():
            state = self._state[key]
            if record is not None:
                self._consumed.add(record.storage_id)
                state.storage_id = record.storage_id
                state.partition = _partition_of(record)
            state.trailing = {}
        self._store_cursor()


def _monitored_keys(monitored: Any, definitions: Any, label: str) -> list[AssetKey]:
    if isinstance(monitored, AssetSelection):
        graph = getattr(definitions, "asset_graph", None)
        if graph is None:
            raise DefinitionError(
                f"{label}: monitored_assets is an AssetSelection; resolving it needs the "
                "Definitions (repository_def= or definitions=)"
            )
        return sorted(monitored.resolve(graph), key=lambda k: k.to_user_string())
    if isinstance(monitored, str | AssetKey | AssetsDefinition) or not isinstance(
        monitored, Sequence
    ):
        raise DefinitionError(
            f"{label}: monitored_assets must be a list of asset keys or an AssetSelection, "
            f"got {monitored!r}"
        )
    keys: list[AssetKey] = []
    for item in monitored:
        key = item.key if isinstance(item, AssetsDefinition) else AssetKey.from_coercible(item)
        if key not in keys:
            keys.append(key)
    if not keys:
        raise DefinitionError(f"{label}: monitored_assets is empty")
    return keys


def build_multi_asset_sensor_context(
    *,
    monitored_assets: Sequence[Any] | AssetSelection,
    repository_def: Any = None,
    instance: Any = None,
    cursor: str | None = None,
    repository_name: str | None = None,
    cursor_from_latest_materializations: bool = False,
    resources: Mapping[str, Any] | None = None,
    definitions: Any = None,
    sensor_name: str | None = None,
    last_sensor_start_time: float | None = None,
) -> MultiAssetSensorEvaluationContext:
    """A context to invoke or evaluate a multi-asset sensor with, as in tests.
    `cursor_from_latest_materializations=True` starts every cursor at the asset's newest
    materialization (give no `cursor` then). `definitions` is Dagster's newer name for
    `repository_def`; give at most one."""
    if repository_def is not None and definitions is not None:
        raise DefinitionError(
            "build_multi_asset_sensor_context: give repository_def or definitions, not both"
        )
    if cursor_from_latest_materializations and cursor is not None:
        raise DefinitionError(
            "build_multi_asset_sensor_context: give cursor or "
            "cursor_from_latest_materializations=True, not both"
        )
    context = MultiAssetSensorEvaluationContext(
        monitored_assets=monitored_assets,
        instance=instance,
        cursor=cursor,
        repository_name=repository_name,
        repository_def=repository_def if repository_def is not None else definitions,
        sensor_name=sensor_name,
        resources=resources,
        last_sensor_start_time=last_sensor_start_time,
    )
    if cursor_from_latest_materializations:
        context.advance_all_cursors()
    return context


class MultiAssetSensorDefinition(SensorDefinition):
    """A sensor whose function `(context: MultiAssetSensorEvaluationContext)` looks at the
    materializations of several assets (see the module docstring). Targets and the other
    arguments are `SensorDefinition`'s; `request_assets` is its `asset_selection`."""

    def __init__(
        self,
        name: str,
        monitored_assets: Sequence[Any] | AssetSelection,
        job_name: str | None = None,
        asset_materialization_fn: Callable[..., Any] | None = None,
        minimum_interval_seconds: int | None = None,
        description: str | None = None,
        job: HasName | None = None,
        jobs: Sequence[HasName] | None = None,
        default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
        request_assets: Any = None,
        required_resource_keys: set[str] | None = None,
        tags: Mapping[str, str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if asset_materialization_fn is None or not callable(asset_materialization_fn):
            raise DefinitionError(
                f"multi-asset sensor {name!r} needs a callable asset_materialization_fn",
                name=name,
            )
        super().__init__(
            name,
            evaluation_fn=self._evaluate,
            job_name=job_name,
            minimum_interval_seconds=minimum_interval_seconds,
            description=description,
            job=job,
            jobs=jobs,
            default_status=default_status,
            asset_selection=request_assets,
            required_resource_keys=required_resource_keys,
            tags=tags,
            metadata=metadata,
        )
        if not isinstance(monitored_assets, AssetSelection):
            # Checked now, so a bad list fails where the sensor is defined.
            _monitored_keys(monitored_assets, None, f"multi-asset sensor {name!r}")
        self._monitored_assets = monitored_assets
        self._materialization_fn = asset_materialization_fn

    @property
    def _resource_function(self) -> Callable[..., Any]:
        return self._materialization_fn

    @property
    def monitored_assets(self) -> Sequence[Any] | AssetSelection:
        """The assets watched, as given."""
        return self._monitored_assets

    def _evaluate(self, context: SensorEvaluationContext) -> Any:
        if not isinstance(context, MultiAssetSensorEvaluationContext):
            if context.instance is None:
                raise DefinitionError(
                    f"multi-asset sensor {self.name!r} reads materializations from its "
                    "context's instance, and this context has none (its code location serves "
                    "without an instance); evaluate it through a daemon whose code location has "
                    "the instance, or with build_multi_asset_sensor_context(instance=...)",
                    name=self.name,
                )
            outer = context
            context = MultiAssetSensorEvaluationContext(
                monitored_assets=self._monitored_assets,
                instance=outer.instance,
                cursor=outer.cursor,
                repository_name=outer.repository_name,
                repository_def=outer.repository_def,
                sensor_name=self.name,
                last_tick_completion_time=outer.last_tick_completion_time,
                last_run_key=outer.last_run_key,
                last_sensor_start_time=outer.last_sensor_start_time,
            )
            context._share_resources(outer)
            items = self._flatten(
                call_user_function(self._materialization_fn, context, kind="sensor", name=self.name)
            )
            if context.cursor_updated:
                outer.update_cursor(context.cursor)
            return items
        return call_user_function(self._materialization_fn, context, kind="sensor", name=self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Invoke the function directly with a `MultiAssetSensorEvaluationContext` (and
        resources by keyword), returning what it returns; its cursor moves as the function
        advances it. Exceptions from the function propagate unchanged."""
        if len(args) > 1:
            raise DefinitionError(
                f"multi-asset sensor {self.name!r} invoked with {len(args)} positional "
                "arguments; pass only the context positionally",
                name=self.name,
            )
        context = args[0] if args else kwargs.pop("context", None)
        if not isinstance(context, MultiAssetSensorEvaluationContext):
            raise DefinitionError(
                f"multi-asset sensor {self.name!r} is invoked with a context from "
                f"build_multi_asset_sensor_context(...), got {context!r}",
                name=self.name,
            )
        return call_user_function(
            self._materialization_fn, context, kind="sensor", name=self.name, extra_resources=kwargs
        )


def multi_asset_sensor(
    monitored_assets: Sequence[Any] | AssetSelection | None = None,
    *,
    job_name: str | None = None,
    name: str | None = None,
    minimum_interval_seconds: int | None = None,
    description: str | None = None,
    job: HasName | None = None,
    jobs: Sequence[HasName] | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    request_assets: Any = None,
    required_resource_keys: set[str] | None = None,
    tags: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    asset_keys: Sequence[AssetKey] | None = None,
) -> Callable[[Callable[..., Any]], MultiAssetSensorDefinition]:
    """A sensor whose function `(context)` decides on runs from the materializations of
    `monitored_assets` (asset keys, or an AssetSelection; `asset_keys` is Dagster's older
    name). See `MultiAssetSensorEvaluationContext` for what the context offers."""
    if monitored_assets is not None and asset_keys is not None:
        raise DefinitionError("multi_asset_sensor: give monitored_assets or asset_keys, not both")
    monitored = monitored_assets if monitored_assets is not None else asset_keys
    if monitored is None:
        raise DefinitionError("multi_asset_sensor: give monitored_assets")

    def inner(fn: Callable[..., Any]) -> MultiAssetSensorDefinition:
        definition = MultiAssetSensorDefinition(
            name=name or fn.__name__,
            monitored_assets=monitored,
            job_name=job_name,
            asset_materialization_fn=fn,
            minimum_interval_seconds=minimum_interval_seconds,
            description=description,
            job=job,
            jobs=jobs,
            default_status=default_status,
            request_assets=request_assets,
            required_resource_keys=required_resource_keys,
            tags=tags,
            metadata=metadata,
        )
        definition.__doc__ = fn.__doc__
        return definition

    return inner
