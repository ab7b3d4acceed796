"""Partition mappings: which partitions of an upstream asset a downstream partition reads.

Pure, sync code. Each mapping answers `upstream_partition_keys(downstream keys, downstream
definition, upstream definition)`, and checks at definition time that it can relate the two
definitions it is placed between (`validate_partition_mapping`), raising
`DagsterInvalidDefinitionError` naming both assets when it cannot.
"""

from __future__ import annotations

import bisect
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from dagloom.definitions.partitions import (
    DynamicPartitionsStore,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindow,
    TimeWindowPartitionsDefinition,
)
from dagloom.errors import DagsterInvalidDefinitionError, DagsterUnknownPartitionError


class PartitionMapping(ABC):
    """How a downstream asset's partitions read an upstream asset's."""

    def validate_partition_mapping(
        self,
        upstream_partitions_def: PartitionsDefinition | None,
        downstream_partitions_def: PartitionsDefinition | None,
        *,
        where: str = "partition mapping",
    ) -> None:
        """Raise `DagsterInvalidDefinitionError` (naming `where`) when this mapping cannot
        relate the two definitions. The default accepts any pair."""
        return None

    @abstractmethod
    def upstream_partition_keys(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        """The upstream keys the downstream keys read (`None`: an unpartitioned downstream),
        in upstream order. Raises `DagsterUnknownPartitionError` when a mapped key does not
        exist upstream and the mapping does not allow that."""


def _refuse(where: str, message: str) -> DagsterInvalidDefinitionError:
    return DagsterInvalidDefinitionError(f"{where}: {message}", name=where)


def _require_both(
    where: str,
    needs: str,
    kind: type[PartitionsDefinition],
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
) -> None:
    """Refuses a mapping unless both sides are partitioned by `kind`; `needs` starts the
    message (`"... needs static partitions"`), which goes on to name the side and what it has."""
    for side, definition in (("upstream", upstream), ("downstream", downstream)):
        if not isinstance(definition, kind):
            raise _refuse(where, f"{needs} {side}, got {definition}")


def _ordered(
    upstream: PartitionsDefinition, wanted: set[str], store: DynamicPartitionsStore | None
) -> list[str]:
    return [k for k in upstream.get_partition_keys(dynamic_partitions_store=store) if k in wanted]


@dataclass(frozen=True, slots=True)
class IdentityPartitionMapping(PartitionMapping):
    """Each downstream partition reads the upstream partition with the same key."""

    def validate_partition_mapping(
        self,
        upstream_partitions_def: PartitionsDefinition | None,
        downstream_partitions_def: PartitionsDefinition | None,
        *,
        where: str = "partition mapping",
    ) -> None:
        if (upstream_partitions_def is None) != (downstream_partitions_def is None):
            raise _refuse(where, "IdentityPartitionMapping needs both assets partitioned")
        if type(upstream_partitions_def) is not type(downstream_partitions_def):
            raise _refuse(
                where,
                f"IdentityPartitionMapping between different kinds of partitions "
                f"({upstream_partitions_def} upstream, {downstream_partitions_def} downstream)",
            )

    def upstream_partition_keys(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        keys = list(downstream_partition_keys or ())
        missing = [
            k
            for k in keys
            if not upstream_partitions_def.has_partition_key(
                k, dynamic_partitions_store=dynamic_partitions_store
            )
        ]
        if missing:
            raise DagsterUnknownPartitionError(
                f"partitions {missing} do not exist upstream in {upstream_partitions_def}",
                name=missing[0],
            )
        return keys


@dataclass(frozen=True, slots=True)
class AllPartitionMapping(PartitionMapping):
    """Every downstream partition reads every upstream partition."""

    def upstream_partition_keys(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        return upstream_partitions_def.get_partition_keys(
            dynamic_partitions_store=dynamic_partitions_store
        )


@dataclass(frozen=True, slots=True)
class LastPartitionMapping(PartitionMapping):
    """Every downstream partition reads the upstream's last partition."""

    def upstream_partition_keys(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        last = upstream_partitions_def.get_last_partition_key(
            dynamic_partitions_store=dynamic_partitions_store
        )
        return [] if last is None else [last]


@dataclass(frozen=True, slots=True)
class SpecificPartitionsPartitionMapping(PartitionMapping):
    """Every downstream partition (or an unpartitioned downstream) reads the same fixed
    upstream partitions, `partition_keys`."""

    partition_keys: Sequence[str]

    def __post_init__(self) -> None:
        keys = self.partition_keys
        if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
            raise DagsterInvalidDefinitionError(
                f"SpecificPartitionsPartitionMapping takes a list of partition keys, got {keys!r}"
            )
        object.__setattr__(self, "partition_keys", tuple(keys))

    def upstream_partition_keys(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        missing = [
            k
            for k in self.partition_keys
            if not upstream_partitions_def.has_partition_key(
                k, dynamic_partitions_store=dynamic_partitions_store
            )
        ]
        if missing:
            raise DagsterUnknownPartitionError(
                f"SpecificPartitionsPartitionMapping: partitions {missing} do not exist "
                f"upstream in {upstream_partitions_def}",
                name=missing[0],
            )
        return _ordered(upstream_partitions_def, set(self.partition_keys), dynamic_partitions_store)


@dataclass(frozen=True, slots=True)
class StaticPartitionMapping(PartitionMapping):
    """Upstream key -> the downstream key (or keys) that read it, between static partitions
    (`StaticPartitionMapping({"us-east": "us", "us-west": "us"})`)."""

    downstream_partition_keys_by_upstream_partition_key: Mapping[str, str | Sequence[str]] = field(
        default_factory=dict
    )

    def _by_downstream(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for up, downs in self.downstream_partition_keys_by_upstream_partition_key.items():
            for down in [downs] if isinstance(downs, str) else downs:
                out.setdefault(down, set()).add(up)
        return out

    def validate_partition_mapping(
        self,
        upstream_partitions_def: PartitionsDefinition | None,
        downstream_partitions_def: PartitionsDefinition | None,
        *,
        where: str = "partition mapping",
    ) -> None:
        _require_both(
            where,
            "StaticPartitionMapping needs static partitions",
            StaticPartitionsDefinition,
            upstream_partitions_def,
            downstream_partitions_def,
        )
        assert upstream_partitions_def is not None and downstream_partitions_def is not None
        ups = set(upstream_partitions_def.get_partition_keys())
        downs = set(downstream_partitions_def.get_partition_keys())
        unknown_up = sorted(set(self.downstream_partition_keys_by_upstream_partition_key) - ups)
        unknown_down = sorted(set(self._by_downstream()) - downs)
        if unknown_up:
            raise _refuse(
                where, f"StaticPartitionMapping names upstream keys {unknown_up} that do not exist"
            )
        if unknown_down:
            raise _refuse(
                where,
                f"StaticPartitionMapping names downstream keys {unknown_down} that do not exist",
            )

    def upstream_partition_keys(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        by_down = self._by_downstream()
        wanted = {up for down in downstream_partition_keys or () for up in by_down.get(down, ())}
        return _ordered(upstream_partitions_def, wanted, dynamic_partitions_store)


@dataclass(frozen=True, slots=True)
class TimeWindowPartitionMapping(PartitionMapping):
    """A downstream time partition reads the upstream windows overlapping it, widened by
    `start_offset` and `end_offset` upstream windows (`start_offset=-1, end_offset=-1`: the
    window before). Outside the upstream's windows is an error unless
    `allow_nonexistent_upstream_partitions`, when such keys are left out."""

    start_offset: int = 0
    end_offset: int = 0
    allow_nonexistent_upstream_partitions: bool = False

    def validate_partition_mapping(
        self,
        upstream_partitions_def: PartitionsDefinition | None,
        downstream_partitions_def: PartitionsDefinition | None,
        *,
        where: str = "partition mapping",
    ) -> None:
        _require_both(
            where,
            "TimeWindowPartitionMapping needs time window partitions",
            TimeWindowPartitionsDefinition,
            upstream_partitions_def,
            downstream_partitions_def,
        )
        if self.start_offset > self.end_offset:
            raise _refuse(
                where,
                f"TimeWindowPartitionMapping start_offset {self.start_offset} is after "
                f"end_offset {self.end_offset}",
            )

    def upstream_partition_keys(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        assert isinstance(downstream_partitions_def, TimeWindowPartitionsDefinition)
        assert isinstance(upstream_partitions_def, TimeWindowPartitionsDefinition)
        keys = list(downstream_partition_keys or ())
        if not keys:
            return []
        windows = [downstream_partitions_def.time_window_for_partition_key(k) for k in keys]
        span = TimeWindow(min(w.start for w in windows), max(w.end for w in windows))
        up_keys = upstream_partitions_def.get_partition_keys()
        hits = _overlapping(upstream_partitions_def, len(up_keys), span)
        if not hits:
            # No upstream window exists there yet: locate where it would be.
            if self.allow_nonexistent_upstream_partitions:
                return []
            raise DagsterUnknownPartitionError(
                f"downstream partitions {keys[0]}...{keys[-1]} map to upstream windows from "
                f"{span.start} to {span.end}, where {upstream_partitions_def} has none",
                name=keys[0],
            )
        first = hits[0] + self.start_offset
        last = hits[-1] + self.end_offset
        outside = first < 0 or last >= len(up_keys)
        if outside and not self.allow_nonexistent_upstream_partitions:
            raise DagsterUnknownPartitionError(
                f"downstream partitions {keys[0]}...{keys[-1]} map, with offsets "
                f"{self.start_offset}/{self.end_offset}, to upstream partitions that do "
                f"not exist in {upstream_partitions_def}",
                name=keys[0],
            )
        return up_keys[max(first, 0) : min(last, len(up_keys) - 1) + 1]


def _overlapping(
    definition: TimeWindowPartitionsDefinition, count: int, span: TimeWindow
) -> list[int]:
    """The first and last index among the first `count` windows of `definition` that
    overlap `span` (windows are contiguous and sorted: a bisection, not a scan), or []."""
    if not count:
        return []
    definition._window_at(count - 1)  # the window starts are listed through `count`
    starts = definition._starts
    first = max(bisect.bisect_right(starts, span.start, 0, count) - 1, 0)
    last = bisect.bisect_left(starts, span.end, 0, count) - 1
    if last < first or not (starts[first] < span.end and span.start < starts[first + 1]):
        return []
    return [first, last]


@dataclass(frozen=True, slots=True)
class MultiToSingleDimensionPartitionMapping(PartitionMapping):
    """Between a multi-partitioned asset and a single-partitioned one whose definition is
    one of its dimensions: a partition reads every partition sharing that dimension's key.
    `partition_dimension_name` picks the dimension when both could match."""

    partition_dimension_name: str | None = None

    def _dimension(
        self, multi: MultiPartitionsDefinition, single: PartitionsDefinition | None, where: str
    ) -> str:
        names = [
            d.name
            for d in multi.partitions_defs
            if self.partition_dimension_name in (None, d.name) and d.partitions_def == single
        ]
        if self.partition_dimension_name is not None and not names:
            raise _refuse(
                where,
                f"MultiToSingleDimensionPartitionMapping: dimension "
                f"{self.partition_dimension_name!r} of {multi} is not {single}",
            )
        if len(names) != 1:
            raise _refuse(
                where,
                f"MultiToSingleDimensionPartitionMapping: {single} matches "
                f"{len(names)} dimensions of {multi}; name one with partition_dimension_name",
            )
        return names[0]

    def validate_partition_mapping(
        self,
        upstream_partitions_def: PartitionsDefinition | None,
        downstream_partitions_def: PartitionsDefinition | None,
        *,
        where: str = "partition mapping",
    ) -> None:
        if isinstance(upstream_partitions_def, MultiPartitionsDefinition):
            self._dimension(upstream_partitions_def, downstream_partitions_def, where)
        elif isinstance(downstream_partitions_def, MultiPartitionsDefinition):
            self._dimension(downstream_partitions_def, upstream_partitions_def, where)
        else:
            raise _refuse(
                where, "MultiToSingleDimensionPartitionMapping needs one side multi-partitioned"
            )

    def upstream_partition_keys(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        keys = list(downstream_partition_keys or ())
        if isinstance(upstream_partitions_def, MultiPartitionsDefinition):
            dim = self._dimension(upstream_partitions_def, downstream_partitions_def, "mapping")
            wanted = set(keys)
            return [
                k
                for k in upstream_partitions_def.get_partition_keys(
                    dynamic_partitions_store=dynamic_partitions_store
                )
                if isinstance(k, MultiPartitionKey) and k.keys_by_dimension[dim] in wanted
            ]
        assert isinstance(downstream_partitions_def, MultiPartitionsDefinition)
        dim = self._dimension(downstream_partitions_def, upstream_partitions_def, "mapping")
        picked = {
            downstream_partitions_def.get_partition_key_from_str(k).keys_by_dimension[dim]
            for k in keys
        }
        return _ordered(upstream_partitions_def, picked, dynamic_partitions_store)


@dataclass(frozen=True, slots=True)
class DimensionPartitionMapping:
    """In a MultiPartitionMapping: the downstream dimension an upstream dimension maps to,
    and the mapping between the two dimensions' partitions."""

    dimension_name: str
    partition_mapping: PartitionMapping

    def __post_init__(self) -> None:
        if not isinstance(self.partition_mapping, PartitionMapping):
            raise DagsterInvalidDefinitionError(
                f"DimensionPartitionMapping {self.dimension_name!r}: partition_mapping must be "
                f"a PartitionMapping, got {self.partition_mapping!r}"
            )


@dataclass(frozen=True, slots=True)
class MultiPartitionMapping(PartitionMapping):
    """Between two multi-partitioned assets: upstream dimension name -> the downstream
    dimension and mapping it follows. An upstream dimension not named maps all its
    partitions; a downstream dimension not named does not narrow what is read."""

    downstream_mappings_by_upstream_dimension: Mapping[str, DimensionPartitionMapping]

    def validate_partition_mapping(
        self,
        upstream_partitions_def: PartitionsDefinition | None,
        downstream_partitions_def: PartitionsDefinition | None,
        *,
        where: str = "partition mapping",
    ) -> None:
        _require_both(
            where,
            "MultiPartitionMapping needs multi-partitions",
            MultiPartitionsDefinition,
            upstream_partitions_def,
            downstream_partitions_def,
        )
        assert isinstance(upstream_partitions_def, MultiPartitionsDefinition)
        assert isinstance(downstream_partitions_def, MultiPartitionsDefinition)
        up_names = upstream_partitions_def.partition_dimension_names
        down_names = downstream_partitions_def.partition_dimension_names
        used: set[str] = set()
        for up_dim, dim_mapping in self.downstream_mappings_by_upstream_dimension.items():
            down_dim = dim_mapping.dimension_name
            if up_dim not in up_names:
                raise _refuse(
                    where,
                    f"MultiPartitionMapping: {up_dim!r} is not a dimension upstream ({up_names})",
                )
            if down_dim not in down_names:
                raise _refuse(
                    where,
                    f"MultiPartitionMapping: {down_dim!r} is not a dimension downstream "
                    f"({down_names})",
                )
            if down_dim in used:
                raise _refuse(
                    where,
                    f"MultiPartitionMapping: downstream dimension {down_dim!r} is mapped twice",
                )
            used.add(down_dim)
            dim_mapping.partition_mapping.validate_partition_mapping(
                upstream_partitions_def.get_partitions_def_for_dimension(up_dim),
                downstream_partitions_def.get_partitions_def_for_dimension(down_dim),
                where=f"{where} (dimension {up_dim!r} -> {down_dim!r})",
            )

    def upstream_partition_keys(
        self,
        downstream_partition_keys: Sequence[str] | None,
        downstream_partitions_def: PartitionsDefinition | None,
        upstream_partitions_def: PartitionsDefinition,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> list[str]:
        assert isinstance(upstream_partitions_def, MultiPartitionsDefinition)
        assert isinstance(downstream_partitions_def, MultiPartitionsDefinition)
        # per downstream key, each upstream dimension's allowed keys (absent: all of them)
        wanted: list[dict[str, set[str]]] = []
        for key in downstream_partition_keys or ():
            down_key = downstream_partitions_def.get_partition_key_from_str(key)
            allowed: dict[str, set[str]] = {}
            for up_dim, dim_mapping in self.downstream_mappings_by_upstream_dimension.items():
                down_dim = dim_mapping.dimension_name
                allowed[up_dim] = set(
                    dim_mapping.partition_mapping.upstream_partition_keys(
                        [down_key.keys_by_dimension[down_dim]],
                        downstream_partitions_def.get_partitions_def_for_dimension(down_dim),
                        upstream_partitions_def.get_partitions_def_for_dimension(up_dim),
                        dynamic_partitions_store,
                    )
                )
            wanted.append(allowed)
        found: list[str] = []
        for up_key in upstream_partitions_def.get_partition_keys(
            dynamic_partitions_store=dynamic_partitions_store
        ):
            dims = upstream_partitions_def.get_partition_key_from_str(up_key).keys_by_dimension
            if any(all(dims[d] in keys for d, keys in a.items()) for a in wanted):
                found.append(up_key)
        return found


def infer_partition_mapping(
    partition_mapping: PartitionMapping | None,
    upstream_partitions_def: PartitionsDefinition | None,
    downstream_partitions_def: PartitionsDefinition | None,
    *,
    where: str,
) -> PartitionMapping | None:
    """The mapping a dependency uses: the one given, else Dagster's default for the pair
    (time windows: TimeWindowPartitionMapping; a multi and one of its dimensions:
    MultiToSingleDimensionPartitionMapping; an unpartitioned downstream: all partitions;
    otherwise identity). None when the upstream is not partitioned. Validated either way."""
    if upstream_partitions_def is None:
        if partition_mapping is not None and downstream_partitions_def is not None:
            raise _refuse(where, f"{type(partition_mapping).__name__} on an unpartitioned upstream")
        return None
    mapping = partition_mapping
    if mapping is None:
        if downstream_partitions_def is None:
            mapping = AllPartitionMapping()
        elif isinstance(upstream_partitions_def, TimeWindowPartitionsDefinition) and isinstance(
            downstream_partitions_def, TimeWindowPartitionsDefinition
        ):
            mapping = TimeWindowPartitionMapping()
        elif isinstance(upstream_partitions_def, MultiPartitionsDefinition) != isinstance(
            downstream_partitions_def, MultiPartitionsDefinition
        ):
            mapping = MultiToSingleDimensionPartitionMapping()
        else:
            mapping = IdentityPartitionMapping()
    if downstream_partitions_def is None and not isinstance(
        mapping, AllPartitionMapping | LastPartitionMapping | SpecificPartitionsPartitionMapping
    ):
        raise _refuse(
            where,
            f"{type(mapping).__name__} needs a partitioned downstream; an unpartitioned asset "
            "reads its upstream through AllPartitionMapping, LastPartitionMapping or "
            "SpecificPartitionsPartitionMapping",
        )
    mapping.validate_partition_mapping(
        upstream_partitions_def, downstream_partitions_def, where=where
    )
    return mapping


_SERIALIZABLE: dict[str, type[PartitionMapping]] = {
    cls.__name__: cls
    for cls in (
        IdentityPartitionMapping,
        AllPartitionMapping,
        LastPartitionMapping,
        SpecificPartitionsPartitionMapping,
        StaticPartitionMapping,
        TimeWindowPartitionMapping,
        MultiToSingleDimensionPartitionMapping,
    )
}


def partition_mapping_to_dict(mapping: PartitionMapping) -> dict[str, Any] | None:
    """`mapping` as JSON-ready data (its type and fields), or None for a mapping type that
    has no such form (a user-defined subclass)."""
    name = type(mapping).__name__
    if _SERIALIZABLE.get(name) is not type(mapping) or not is_dataclass(mapping):
        return None
    fields = asdict(mapping)
    if isinstance(mapping, StaticPartitionMapping):
        fields["downstream_partition_keys_by_upstream_partition_key"] = {
            up: down if isinstance(down, str) else list(down)
            for up, down in mapping.downstream_partition_keys_by_upstream_partition_key.items()
        }
    if isinstance(mapping, SpecificPartitionsPartitionMapping):
        fields["partition_keys"] = list(mapping.partition_keys)
    return {"type": name, **fields}


def partition_mapping_from_dict(data: Mapping[str, Any]) -> PartitionMapping:
    """The mapping `partition_mapping_to_dict` wrote; ValueError for an unknown type."""
    fields = dict(data)
    name = fields.pop("type", None)
    cls = _SERIALIZABLE.get(str(name))
    if cls is None:
        raise ValueError(f"unknown partition mapping type {name!r}")
    return cls(**fields)


__all__ = [
    "AllPartitionMapping",
    "DimensionPartitionMapping",
    "IdentityPartitionMapping",
    "LastPartitionMapping",
    "MultiPartitionMapping",
    "MultiToSingleDimensionPartitionMapping",
    "PartitionMapping",
    "SpecificPartitionsPartitionMapping",
    "StaticPartitionMapping",
    "TimeWindowPartitionMapping",
    "infer_partition_mapping",
    "partition_mapping_from_dict",
    "partition_mapping_to_dict",
]
