"""Ready-made asset checks (metadata bounds, column schema changes, freshness) and the loaders
that collect the checks a module defines, as Dagster's `build_*_checks` and
`load_asset_checks_from_*`.

Each built check reads what the instance has stored of its asset (its latest
materializations, or its materialized partitions), never the asset's value, so it runs in
the run that materializes the asset (after it) or alone.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from dagloom.definitions._cron import cron_problem, iter_cron_ticks, load_timezone
from dagloom.definitions.asset_checks import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    _asset_key_of,
    multi_asset_check,
)
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.asset_loading import _package_modules, calling_module
from dagloom.definitions.metadata import TableSchema
from dagloom.errors import DagsterInvalidDefinitionError
from dagloom.execution.boundary import user_code

COLUMN_SCHEMA_METADATA_KEY = "dagster/column_schema"


# -- loaders ----------------------------------------------------------------------------------


def load_asset_checks_from_modules(
    modules: Iterable[ModuleType], asset_key_prefix: str | Sequence[str] | None = None
) -> list[AssetChecksDefinition]:
    """Every `AssetChecksDefinition` bound to a name in `modules`, each once, in module
    order; `asset_key_prefix` prefixes the keys of the assets they check (and read), as
    `load_assets_from_modules(key_prefix=)` prefixes the assets'."""
    found: dict[int, AssetChecksDefinition] = {}
    for module in modules:
        for value in list(vars(module).values()):
            if isinstance(value, AssetChecksDefinition):
                found.setdefault(id(value), value)
    checks = list(found.values())
    if asset_key_prefix is None:
        return checks
    return [_with_prefix(c, asset_key_prefix) for c in checks]


def load_asset_checks_from_package_module(
    package_module: ModuleType, asset_key_prefix: str | Sequence[str] | None = None
) -> list[AssetChecksDefinition]:
    """`load_asset_checks_from_modules` over a package and every module below it."""
    return load_asset_checks_from_modules(_package_modules(package_module), asset_key_prefix)


def load_asset_checks_from_package_name(
    package_name: str, asset_key_prefix: str | Sequence[str] | None = None
) -> list[AssetChecksDefinition]:
    """`load_asset_checks_from_package_module` for the package imported by name."""
    with user_code("module", package_name, "import"):
        package = importlib.import_module(package_name)
    return load_asset_checks_from_package_module(package, asset_key_prefix)


def load_asset_checks_from_current_module(
    asset_key_prefix: str | Sequence[str] | None = None,
) -> list[AssetChecksDefinition]:
    """`load_asset_checks_from_modules` over the module that calls it."""
    module = calling_module(
        "load_asset_checks_from_current_module", "load_asset_checks_from_modules"
    )
    return load_asset_checks_from_modules([module], asset_key_prefix)


def _with_prefix(
    checks: AssetChecksDefinition, prefix: str | Sequence[str]
) -> AssetChecksDefinition:
    def move(key: AssetKey) -> AssetKey:
        return key.with_prefix(prefix)

    specs = [
        AssetCheckSpec(
            s.name,
            asset=move(s.asset_key),
            description=s.description,
            blocking=s.blocking,
            additional_deps=[move(d) for d in s.additional_deps],
            metadata=s.metadata,
            automation_condition=s.automation_condition,
        )
        for s in checks.specs
    ]
    return AssetChecksDefinition(
        op=checks.op,
        specs=specs,
        keys_by_input={name: move(k) for name, k in checks.keys_by_input.items()},
        resource_defs=checks.resource_defs,
        can_subset=checks.can_subset,
    )


# -- building ---------------------------------------------------------------------------------


def _asset_keys(assets: Sequence[Any], builder: str) -> list[AssetKey]:
    """The keys of `assets` (AssetsDefinitions, AssetSpecs, SourceAssets or keys), each once:
    every key of a multi-asset."""
    from dagloom.definitions.asset import AssetsDefinition

    keys: list[AssetKey] = []
    for asset in assets:
        if isinstance(asset, AssetsDefinition):
            keys.extend(asset.keys)
        else:
            keys.append(_asset_key_of(asset))
    if not keys:
        raise DagsterInvalidDefinitionError(f"{builder} needs at least one asset in `assets`")
    return list(dict.fromkeys(keys))


def _op_name(prefix: str, keys: Sequence[AssetKey]) -> str:
    """A name for the check op of `keys`: stable, and distinct for distinct asset sets."""
    if len(keys) == 1:
        return f"{keys[0].to_python_identifier()}_{prefix}"
    import hashlib

    digest = hashlib.sha1(
        "|".join(k.to_user_string() for k in keys).encode(), usedforsecurity=False
    ).hexdigest()[:8]
    return f"{prefix}_{digest}"


def build_metadata_bounds_checks(
    *,
    assets: Sequence[Any],
    metadata_key: str,
    severity: AssetCheckSeverity = AssetCheckSeverity.WARN,
    min_value: float | None = None,
    max_value: float | None = None,
    exclusive_min: bool = False,
    exclusive_max: bool = False,
) -> list[AssetChecksDefinition]:
    """One check per asset, named `<metadata_key>_bounds_check`: the numeric metadata entry
    `metadata_key` of the asset's latest materialization lies between `min_value` and
    `max_value` (inclusive unless `exclusive_*`). It fails when the asset has no
    materialization or the entry is missing or not a number."""
    builder = "build_metadata_bounds_checks"
    if min_value is None and max_value is None:
        raise DagsterInvalidDefinitionError(f"{builder} needs min_value or max_value")
    if min_value is not None and max_value is not None and min_value > max_value:
        raise DagsterInvalidDefinitionError(
            f"{builder}: min_value {min_value} is greater than max_value {max_value}"
        )
    keys = _asset_keys(assets, builder)
    name = f"{metadata_key}_bounds_check"
    bounds = [
        "" if min_value is None else f"{'>' if exclusive_min else '>='} {min_value}",
        "" if max_value is None else f"{'<' if exclusive_max else '<='} {max_value}",
    ]
    wanted = " and ".join(b for b in bounds if b)
    specs = [
        AssetCheckSpec(name, asset=k, description=f"Checks that {metadata_key} is {wanted}")
        for k in keys
    ]

    def in_bounds(value: float) -> bool:
        if min_value is not None and (value <= min_value if exclusive_min else value < min_value):
            return False
        return max_value is None or (value < max_value if exclusive_max else value <= max_value)

    @multi_asset_check(specs=specs, name=_op_name(name, keys), can_subset=True)
    def _bounds(context: Any) -> Iterator[AssetCheckResult]:
        for key in keys:
            event = context.instance.get_latest_materialization_event(key)
            found = None if event is None else event.asset_materialization.metadata
            entry = None if found is None else found.get(metadata_key)
            value = getattr(entry, "value", entry)
            if event is None:
                passed, what = False, "The asset has never been materialized"
            elif entry is None:
                passed, what = False, f"Metadata key {metadata_key!r} not found"
            elif isinstance(value, bool) or not isinstance(value, int | float):
                passed, what = False, f"Metadata value {value!r} is not a number"
            elif not in_bounds(value) or math.isnan(value):
                passed, what = False, f"Value {value} is not {wanted}"
            else:
                passed, what = True, f"Value {value} is {wanted}"
            yield AssetCheckResult(
                passed=passed,
                asset_key=key,
                check_name=name,
                severity=severity,
                description=what,
            )

    return [_bounds]


def build_column_schema_change_checks(
    *,
    assets: Sequence[Any],
    severity: AssetCheckSeverity = AssetCheckSeverity.WARN,
) -> list[AssetChecksDefinition]:
    """One check per asset, named `column_schema_change`: the column schema
    (`dagster/column_schema` metadata) of the asset's latest materialization is the one of
    the materialization before it. It passes while the asset has fewer than two
    materializations; its metadata names the added, removed and retyped columns."""
    keys = _asset_keys(assets, "build_column_schema_change_checks")
    name = "column_schema_change"
    specs = [
        AssetCheckSpec(name, asset=k, description="Checks whether the column schema changed")
        for k in keys
    ]

    @multi_asset_check(specs=specs, name=_op_name(name, keys), can_subset=True)
    def _schema(context: Any) -> Iterator[AssetCheckResult]:
        for key in keys:
            records = context.instance.fetch_materializations(key, limit=2).records
            schemas = [_column_schema(r.asset_materialization.metadata) for r in records]
            if len(schemas) < 2:
                yield AssetCheckResult(
                    passed=True,
                    asset_key=key,
                    check_name=name,
                    severity=severity,
                    description="The asset has been materialized fewer than 2 times",
                )
                continue
            new, old = schemas  # newest first
            if new is None or old is None:
                yield AssetCheckResult(
                    passed=False,
                    asset_key=key,
                    check_name=name,
                    severity=severity,
                    description=f"Metadata key {COLUMN_SCHEMA_METADATA_KEY!r} is missing "
                    f"from the {'latest' if new is None else 'previous'} materialization",
                )
                continue
            new_types = {c.name: c.type for c in new.columns}
            old_types = {c.name: c.type for c in old.columns}
            added = sorted(new_types.keys() - old_types.keys())
            removed = sorted(old_types.keys() - new_types.keys())
            retyped = {
                n: {"old": old_types[n], "new": t}
                for n, t in sorted(new_types.items())
                if n in old_types and old_types[n] != t
            }
            changed = bool(added or removed or retyped)
            yield AssetCheckResult(
                passed=not changed,
                asset_key=key,
                check_name=name,
                severity=severity,
                description="Column schema changed" if changed else "No changes",
                metadata={
                    "added_columns": added,
                    "removed_columns": removed,
                    "column_type_changes": retyped,
                },
            )

    return [_schema]


def _column_schema(metadata: Any) -> TableSchema | None:
    entry = (metadata or {}).get(COLUMN_SCHEMA_METADATA_KEY)
    value = getattr(entry, "schema", None) or getattr(entry, "value", entry)
    return value if isinstance(value, TableSchema) else None


def _deadline(cron: str | None, tz_name: str, now: datetime, builder: str) -> datetime:
    """The latest tick of `cron` at or before `now` (`now` itself without a cron)."""
    if cron is None:
        return now
    problem = cron_problem(cron)
    if problem is not None:
        raise DagsterInvalidDefinitionError(f"{builder}: deadline_cron {cron!r}: {problem}")
    tz = load_timezone(tz_name)
    # widen the window until it holds a tick: one hour covers minutely crons cheaply and
    # 400 days every cron that fires at least once a year
    for span in (timedelta(hours=1), timedelta(days=2), timedelta(days=32), timedelta(days=400)):
        latest: datetime | None = None
        for tick in iter_cron_ticks([cron], tz, now - span):
            if tick > now:
                break
            latest = tick
        if latest is not None:
            return latest
    return now - timedelta(days=400)


def _check_timezone(timezone: str, builder: str) -> None:
    try:
        load_timezone(timezone)
    except ValueError as exc:
        raise DagsterInvalidDefinitionError(f"{builder}: timezone {exc}") from exc


def build_last_update_freshness_checks(
    *,
    assets: Sequence[Any],
    lower_bound_delta: timedelta,
    deadline_cron: str | None = None,
    timezone: str = "UTC",
    severity: AssetCheckSeverity = AssetCheckSeverity.WARN,
    blocking: bool = False,
) -> list[AssetChecksDefinition]:
    """One check per asset, named `freshness_check`: the asset was last materialized no
    more than `lower_bound_delta` before the check's reference time. The reference time is
    now, or with `deadline_cron` the latest tick of that cron (in `timezone`) at or before
    now. An asset never materialized fails it."""
    builder = "build_last_update_freshness_checks"
    keys = _asset_keys(assets, builder)
    _check_timezone(timezone, builder)
    if deadline_cron is not None:
        _deadline(deadline_cron, timezone, datetime.now(UTC), builder)  # validates it
    name = "freshness_check"
    specs = [
        AssetCheckSpec(
            name,
            asset=k,
            blocking=blocking,
            description=f"Checks that the asset was updated within {lower_bound_delta}",
        )
        for k in keys
    ]

    @multi_asset_check(specs=specs, name=_op_name(name, keys), can_subset=True)
    def _fresh(context: Any) -> Iterator[AssetCheckResult]:
        reference = _deadline(deadline_cron, timezone, datetime.now(UTC), builder)
        lower_bound = reference - lower_bound_delta
        for key in keys:
            event = context.instance.get_latest_materialization_event(key)
            metadata: dict[str, Any] = {
                "dagster/freshness_lower_bound_timestamp": lower_bound.timestamp(),
                "dagster/freshness_params": {
                    "lower_bound_delta_seconds": lower_bound_delta.total_seconds(),
                    "deadline_cron": deadline_cron,
                    "timezone": timezone,
                },
            }
            if event is None:
                passed, what = False, "The asset has never been materialized"
            else:
                metadata["dagster/last_updated_timestamp"] = event.timestamp
                updated = datetime.fromtimestamp(event.timestamp, UTC)
                passed = updated >= lower_bound
                what = (
                    f"Last updated {updated.isoformat()}, "
                    f"{'within' if passed else 'before'} the bound {lower_bound.isoformat()}"
                )
            yield AssetCheckResult(
                passed=passed,
                asset_key=key,
                check_name=name,
                severity=severity,
                description=what,
                metadata=metadata,
            )

    return [_fresh]


def build_time_partition_freshness_checks(
    *,
    assets: Sequence[Any],
    deadline_cron: str,
    timezone: str = "UTC",
    severity: AssetCheckSeverity = AssetCheckSeverity.WARN,
    blocking: bool = False,
) -> list[AssetChecksDefinition]:
    """One check per asset, named `freshness_check`: the newest partition whose time window
    ended by the latest tick of `deadline_cron` (in `timezone`) has been materialized. Each
    asset must be an AssetsDefinition with time-window partitions."""
    from dagloom.definitions.asset import AssetsDefinition
    from dagloom.definitions.partitions import TimeWindowPartitionsDefinition

    builder = "build_time_partition_freshness_checks"
    _check_timezone(timezone, builder)
    _deadline(deadline_cron, timezone, datetime.now(UTC), builder)  # validates it
    partitions: dict[AssetKey, TimeWindowPartitionsDefinition] = {}
    for asset in assets:
        part = getattr(asset, "partitions_def", None)
        if not isinstance(asset, AssetsDefinition) or not isinstance(
            part, TimeWindowPartitionsDefinition
        ):
            raise DagsterInvalidDefinitionError(
                f"{builder}: asset {_asset_key_of(asset).to_user_string()!r} is not "
                "partitioned by time windows"
            )
        for key in asset.keys:
            partitions[key] = part
    keys = list(partitions)
    name = "freshness_check"
    specs = [
        AssetCheckSpec(
            name,
            asset=k,
            blocking=blocking,
            description=f"Checks that the partition due by {deadline_cron!r} is materialized",
        )
        for k in keys
    ]

    @multi_asset_check(specs=specs, name=_op_name(name, keys), can_subset=True)
    def _fresh(context: Any) -> Iterator[AssetCheckResult]:
        deadline = _deadline(deadline_cron, timezone, datetime.now(UTC), builder)
        for key in keys:
            part = partitions[key]
            due = [k for k in part.get_partition_keys(current_time=deadline)]
            due = [k for k in due if part.time_window_for_partition_key(k).end <= deadline]
            metadata: dict[str, Any] = {
                "dagster/freshness_params": {"deadline_cron": deadline_cron, "timezone": timezone}
            }
            if not due:
                passed, what = True, "No partition is due yet"
            else:
                expected = due[-1]
                metadata["dagster/expected_partition"] = expected
                passed = expected in context.instance.get_materialized_partitions(key)
                what = f"Partition {expected!r} {'is' if passed else 'is not'} materialized"
            yield AssetCheckResult(
                passed=passed,
                asset_key=key,
                check_name=name,
                severity=severity,
                description=what,
                metadata=metadata,
            )

    return [_fresh]


def build_sensor_for_freshness_checks(
    *,
    freshness_checks: Sequence[AssetChecksDefinition],
    minimum_interval_seconds: int | None = None,
    name: str = "freshness_checks_sensor",
    default_status: Any = None,
    tags: Mapping[str, str] | None = None,
) -> Any:
    """A sensor that runs `freshness_checks` (from `build_last_update_freshness_checks` /
    `build_time_partition_freshness_checks`) on each tick, so their results follow the
    clock without a schedule; its target is those checks, without their assets."""
    from dagloom.definitions.asset_selection import AssetSelection
    from dagloom.definitions.run_request import RunRequest
    from dagloom.definitions.sensor import DefaultSensorStatus, sensor

    checks = list(freshness_checks)
    if not checks or not all(isinstance(c, AssetChecksDefinition) for c in checks):
        raise DagsterInvalidDefinitionError(
            f"build_sensor_for_freshness_checks {name!r}: freshness_checks must be a non-empty "
            "list of AssetChecksDefinitions",
            name=name,
        )
    keys = sorted((k for c in checks for k in c.check_keys), key=lambda k: k.to_user_string())

    @sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status or DefaultSensorStatus.STOPPED,
        asset_selection=AssetSelection.checks(*checks),
        tags=tags,
        description="Evaluates freshness checks as time passes",
    )
    def _freshness_sensor() -> RunRequest:
        return RunRequest(asset_selection=[], asset_check_keys=keys)

    return _freshness_sensor


__all__ = [
    "build_column_schema_change_checks",
    "build_last_update_freshness_checks",
    "build_metadata_bounds_checks",
    "build_sensor_for_freshness_checks",
    "build_time_partition_freshness_checks",
    "load_asset_checks_from_current_module",
    "load_asset_checks_from_modules",
    "load_asset_checks_from_package_module",
    "load_asset_checks_from_package_name",
]
