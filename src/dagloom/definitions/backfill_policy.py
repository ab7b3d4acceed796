"""BackfillPolicy: how many partitions of an asset one backfill run may cover."""

from __future__ import annotations

from dataclasses import dataclass

from dagloom.errors import DagsterInvalidDefinitionError


@dataclass(frozen=True, slots=True)
class BackfillPolicy:
    """`max_partitions_per_run` partitions per backfill run; None: all of them in one run
    (the asset then reads `context.partition_key_range` or `partition_keys`)."""

    max_partitions_per_run: int | None = 1

    def __post_init__(self) -> None:
        limit = self.max_partitions_per_run
        if limit is not None and limit < 1:
            raise DagsterInvalidDefinitionError(
                f"BackfillPolicy: max_partitions_per_run must be at least 1, got {limit}"
            )

    @classmethod
    def single_run(cls) -> BackfillPolicy:
        """Every partition of a backfill in one run."""
        return cls(max_partitions_per_run=None)

    @classmethod
    def multi_run(cls, max_partitions_per_run: int = 1) -> BackfillPolicy:
        """Runs of at most `max_partitions_per_run` partitions each."""
        return cls(max_partitions_per_run=max_partitions_per_run)


def partitions_per_run(policies: list[BackfillPolicy | None]) -> int:
    """The partitions per run a backfill of assets with these policies uses: 0 (one run)
    when each asset takes a single run, else the smallest limit (1 without policies)."""
    if policies and all(p is not None and p.max_partitions_per_run is None for p in policies):
        return 0
    limits = [p.max_partitions_per_run for p in policies if p is not None]
    return min((n for n in limits if n is not None), default=1)


__all__ = ["BackfillPolicy", "partitions_per_run"]
