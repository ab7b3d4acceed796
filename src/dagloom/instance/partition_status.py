"""Where each partition of an asset stands: materialized, failed, in progress or missing.

`fold_partition_status` is pure: it takes the materialization index's answer and the runs
that targeted the asset (each with the partition keys it covers) and decides. A partition
is FAILED when a run for it failed after the run of its latest materialization was created
(or it was never materialized), IN_PROGRESS when an unfinished run targets it, otherwise
MATERIALIZED when it has a materialization and MISSING when not.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dagloom.messages import RunStatus
from dagloom.storage.base import PartitionMaterialization

_UNFINISHED = frozenset(
    {
        RunStatus.NOT_STARTED,
        RunStatus.QUEUED,
        RunStatus.STARTING,
        RunStatus.STARTED,
        RunStatus.CANCELING,
    }
)


class PartitionState(enum.StrEnum):
    MATERIALIZED = "materialized"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class PartitionRun:
    """A run that targeted some partitions of the asset."""

    run_id: str
    status: RunStatus
    create_time: float
    partition_keys: Sequence[str]


@dataclass(frozen=True, slots=True)
class AssetPartitionStatus:
    """Each partition key of an asset, in its definition's order, and its state."""

    keys: list[str]
    states: dict[str, PartitionState]

    def keys_in(self, state: PartitionState) -> list[str]:
        return [k for k in self.keys if self.states[k] == state]

    @property
    def materialized(self) -> list[str]:
        return self.keys_in(PartitionState.MATERIALIZED)

    @property
    def failed(self) -> list[str]:
        return self.keys_in(PartitionState.FAILED)

    @property
    def in_progress(self) -> list[str]:
        return self.keys_in(PartitionState.IN_PROGRESS)

    @property
    def missing(self) -> list[str]:
        return self.keys_in(PartitionState.MISSING)

    def counts(self) -> dict[PartitionState, int]:
        out = dict.fromkeys(PartitionState, 0)
        for state in self.states.values():
            out[state] += 1
        return out

    def ranges(self) -> list[tuple[str, str, PartitionState]]:
        """Runs of consecutive keys in one state, as (first, last, state): what a status
        bar draws."""
        out: list[tuple[str, str, PartitionState]] = []
        for key in self.keys:
            state = self.states[key]
            if out and out[-1][2] == state:
                out[-1] = (out[-1][0], key, state)
            else:
                out.append((key, key, state))
        return out


def fold_partition_status(
    keys: Sequence[str],
    materialized: Mapping[str, PartitionMaterialization],
    runs: Iterable[PartitionRun],
    run_created: Mapping[str, float],
) -> AssetPartitionStatus:
    """Decide each key's state. `run_created` gives the create time of the runs named in
    `materialized` (a run missing from it counts as created at time 0)."""
    failed_at: dict[str, float] = {}
    running: set[str] = set()
    for run in runs:
        if run.status == RunStatus.FAILURE:
            for key in run.partition_keys:
                failed_at[key] = max(failed_at.get(key, 0.0), run.create_time)
        elif run.status in _UNFINISHED:
            running.update(run.partition_keys)
    # Most keys are only materialized or missing: decided in one pass, then the few that
    # runs name are decided again.
    done_state, missing_state = PartitionState.MATERIALIZED, PartitionState.MISSING
    states = {key: done_state if key in materialized else missing_state for key in keys}
    for key, failed_time in failed_at.items():
        if key not in states or key in running:
            continue
        done = materialized.get(key)
        if done is None or failed_time > run_created.get(done.run_id, 0.0):
            states[key] = PartitionState.FAILED
    for key in running:
        if key in states:
            states[key] = PartitionState.IN_PROGRESS
    return AssetPartitionStatus(list(keys), states)


__all__ = [
    "AssetPartitionStatus",
    "PartitionRun",
    "PartitionState",
    "fold_partition_status",
]
