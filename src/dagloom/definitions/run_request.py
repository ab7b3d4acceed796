"""What a schedule or sensor tick returns: `RunRequest`, `SkipReason` and `SensorResult`.

These are records with Dagster's names, fields and meaning. They are pure values: building
one does no I/O and touches no storage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagloom.definitions._instigator import coerce_run_config, normalize_tags
from dagloom.errors import DefinitionError

__all__ = ["RunRequest", "SensorResult", "SkipReason"]


@dataclass(frozen=True, slots=True, init=False)
class RunRequest:
    """A request, made by a schedule or sensor tick, to launch one run.

    `run_key` makes the request idempotent for its sensor: the daemon launches at most one run
    per (sensor, run_key), so a sensor may re-request the same key on every tick safely. A
    request with `run_key=None` always launches. `run_config` is a dict, or a `RunConfig`-like
    object with `to_config_dict()`, stored as a plain dict. `job_name` picks the target when
    the instigator has several jobs. `asset_selection` (asset keys) narrows the run to those
    assets; `asset_check_keys` (AssetCheckKeys) names the checks it executes (by default
    its assets'), so `asset_selection=[]` with checks runs the checks alone. Tags must be
    strings.
    """

    run_key: str | None
    run_config: Mapping[str, Any]
    tags: Mapping[str, str]
    job_name: str | None
    asset_selection: Sequence[Any] | None
    stale_assets_only: bool
    partition_key: str | None
    asset_check_keys: Sequence[Any] | None

    def __init__(
        self,
        run_key: str | None = None,
        run_config: Any = None,
        tags: Mapping[str, Any] | None = None,
        job_name: str | None = None,
        asset_selection: Sequence[Any] | None = None,
        stale_assets_only: bool = False,
        partition_key: str | None = None,
        asset_check_keys: Sequence[Any] | None = None,
    ) -> None:
        if run_key is not None and not isinstance(run_key, str):
            raise DefinitionError(f"RunRequest run_key must be a string, got {run_key!r}")
        if job_name is not None and not isinstance(job_name, str):
            raise DefinitionError(f"RunRequest job_name must be a string, got {job_name!r}")
        if partition_key is not None and not isinstance(partition_key, str):
            raise DefinitionError(
                f"RunRequest partition_key must be a string, got {partition_key!r}"
            )
        if asset_selection is not None and isinstance(asset_selection, str | bytes):
            raise DefinitionError(
                "RunRequest asset_selection must be a sequence of asset keys, not a string"
            )
        _set = object.__setattr__
        _set(self, "run_key", run_key)
        _set(self, "run_config", coerce_run_config(run_config))
        _set(self, "tags", normalize_tags(tags, owner="RunRequest"))
        _set(self, "job_name", job_name)
        _set(self, "asset_selection", None if asset_selection is None else list(asset_selection))
        _set(self, "stale_assets_only", bool(stale_assets_only))
        _set(self, "partition_key", partition_key)
        _set(self, "asset_check_keys", _check_keys(asset_check_keys))

    def with_replaced_attrs(self, **changes: Any) -> RunRequest:
        """Return a copy with the given fields replaced (the original is unchanged)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"RunRequest has no field(s) {sorted(unknown)}")
        values.update(changes)
        return RunRequest(**values)

    def with_tags(self, tags: Mapping[str, str]) -> RunRequest:
        """Return a copy whose tags are `tags` merged over this request's own tags."""
        return self.with_replaced_attrs(tags={**self.tags, **tags})


def _check_keys(keys: Sequence[Any] | None) -> list[Any] | None:
    """`keys` as AssetCheckKeys; DefinitionError for anything else."""
    from dagloom.definitions.asset_checks import AssetCheckKey

    if keys is None:
        return None
    if isinstance(keys, str | bytes):
        raise DefinitionError("RunRequest asset_check_keys must be a sequence of AssetCheckKeys")
    found = list(keys)
    wrong = [k for k in found if not isinstance(k, AssetCheckKey)]
    if wrong:
        raise DefinitionError(f"RunRequest asset_check_keys must be AssetCheckKeys, got {wrong!r}")
    return found


@dataclass(frozen=True, slots=True)
class SkipReason:
    """Returned or yielded by a tick to say why it requested no runs."""

    skip_message: str | None = None

    def __post_init__(self) -> None:
        if self.skip_message is not None and not isinstance(self.skip_message, str):
            raise DefinitionError(
                f"SkipReason skip_message must be a string, got {self.skip_message!r}"
            )


@dataclass(frozen=True, slots=True, init=False)
class SensorResult:
    """Everything a sensor tick produced: run requests or a skip reason, and a new cursor.

    A sensor returns at most one `SensorResult`, and nothing else. `skip_reason` may be given
    as a string. Giving both run requests and a skip reason raises `DefinitionError`, as does
    setting `cursor` here after calling `context.update_cursor()` (checked at evaluation).
    """

    run_requests: Sequence[RunRequest] | None
    skip_reason: SkipReason | None
    cursor: str | None
    dynamic_partitions_requests: Sequence[Any] | None

    def __init__(
        self,
        run_requests: Sequence[RunRequest] | None = None,
        skip_reason: SkipReason | str | None = None,
        cursor: str | None = None,
        dynamic_partitions_requests: Sequence[Any] | None = None,
    ) -> None:
        from dagloom.definitions.partitions import (
            AddDynamicPartitionsRequest,
            DeleteDynamicPartitionsRequest,
        )

        for change in dynamic_partitions_requests or ():
            if not isinstance(change, AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest):
                raise DefinitionError(
                    "SensorResult dynamic_partitions_requests must be "
                    "AddDynamicPartitionsRequest or DeleteDynamicPartitionsRequest, got "
                    f"{type(change).__name__}"
                )
        requests = None if run_requests is None else list(run_requests)
        for request in requests or ():
            if not isinstance(request, RunRequest):
                raise DefinitionError(
                    f"SensorResult run_requests must be RunRequests, got {type(request).__name__}"
                )
        reason = SkipReason(skip_reason) if isinstance(skip_reason, str) else skip_reason
        if reason is not None and not isinstance(reason, SkipReason):
            raise DefinitionError(
                f"SensorResult skip_reason must be a SkipReason or str, got {skip_reason!r}"
            )
        if requests and reason is not None:
            raise DefinitionError(
                "expected a single skip reason or one or more run requests: "
                "SensorResult received both run_requests and skip_reason"
            )
        if cursor is not None and not isinstance(cursor, str):
            raise DefinitionError(f"SensorResult cursor must be a string, got {cursor!r}")
        _set = object.__setattr__
        _set(self, "run_requests", requests)
        _set(self, "skip_reason", reason)
        _set(self, "cursor", cursor)
        _set(
            self,
            "dynamic_partitions_requests",
            None if dynamic_partitions_requests is None else list(dynamic_partitions_requests),
        )
