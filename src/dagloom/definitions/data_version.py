"""Data versions: what an asset's data is at a point in time, as Dagster records it.

A materialization carries its data version and what it was computed from in tags
(`dagster/data_version`, `dagster/code_version`, `dagster/input_data_version/<key>`); an
observation of an external asset carries the data version it saw. Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.definitions.outputs import (
    CODE_VERSION_TAG,
    DATA_VERSION_TAG,
    INPUT_DATA_VERSION_TAG_PREFIX,
)
from dagloom.errors import DefinitionError


@dataclass(frozen=True, slots=True)
class DataVersion:
    """A version of an asset's data: any non-empty string that changes when the data does
    (a hash, a row count, a file's modification time)."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not self.value:
            raise DefinitionError(f"DataVersion takes a non-empty string, got {self.value!r}")


class DataVersionsByPartition(Mapping[str, DataVersion]):
    """The data version of each partition of an asset an observation function saw; values
    may be given as strings."""

    __slots__ = ("_versions",)

    def __init__(self, data_versions_by_partition: Mapping[str, str | DataVersion]) -> None:
        self._versions = {
            str(partition): version if isinstance(version, DataVersion) else DataVersion(version)
            for partition, version in data_versions_by_partition.items()
        }

    def __getitem__(self, partition: str) -> DataVersion:
        return self._versions[partition]

    def __iter__(self) -> Iterator[str]:
        return iter(self._versions)

    def __len__(self) -> int:
        return len(self._versions)

    def __repr__(self) -> str:
        return f"DataVersionsByPartition({self._versions!r})"


@dataclass(frozen=True, slots=True)
class ObserveResult:
    """What an observation function returns: the data version it saw, metadata and tags for
    the observation, and (from a multi-asset observation) the key it is about."""

    asset_key: AssetKey | None = None
    data_version: DataVersion | None = None
    metadata: Mapping[str, Any] | None = None
    tags: Mapping[str, str] | None = None

    def __init__(
        self,
        *,
        asset_key: CoercibleToAssetKey | None = None,
        data_version: DataVersion | str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        check_results: Any = None,
    ) -> None:
        key = None if asset_key is None else AssetKey.from_coercible(asset_key)
        version = DataVersion(data_version) if isinstance(data_version, str) else data_version
        object.__setattr__(self, "asset_key", key)
        object.__setattr__(self, "data_version", version)
        object.__setattr__(self, "metadata", metadata)
        object.__setattr__(self, "tags", tags)


def compute_logical_data_version(code_version: str, input_versions: Mapping[str, str]) -> str:
    """The data version a materialization gets when its function gives none: a hash of the
    code version and each input's data version (by input key, sorted), as Dagster computes
    it, so the same code over the same inputs gives the same version."""
    parts = [code_version, *(input_versions[key] for key in sorted(input_versions))]
    return sha256("".join(parts).encode()).hexdigest()


def materialization_tags(
    *,
    code_version: str,
    input_versions: Mapping[str, str],
    data_version: str | None,
    user_tags: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The tags of a materialization: the user's, then its code version, each input's data
    version (keyed by the input's user string `a/b`) and its own data version (given, else
    computed by `compute_logical_data_version`)."""
    tags = {str(k): str(v) for k, v in (user_tags or {}).items()}
    tags[CODE_VERSION_TAG] = code_version
    for key, version in input_versions.items():
        tags[INPUT_DATA_VERSION_TAG_PREFIX + key] = version
    tags[DATA_VERSION_TAG] = data_version or compute_logical_data_version(
        code_version, input_versions
    )
    return tags


def input_data_versions(tags: Mapping[str, str]) -> dict[str, str]:
    """Upstream key (user string) -> the data version a materialization with `tags` read."""
    n = len(INPUT_DATA_VERSION_TAG_PREFIX)
    return {k[n:]: v for k, v in tags.items() if k.startswith(INPUT_DATA_VERSION_TAG_PREFIX)}


def observation_tags(
    data_version: DataVersion | str | None, user_tags: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The tags of an observation that saw `data_version`."""
    tags = {str(k): str(v) for k, v in (user_tags or {}).items()}
    if data_version is not None:
        value = data_version.value if isinstance(data_version, DataVersion) else data_version
        tags[DATA_VERSION_TAG] = value
    return tags


__all__ = [
    "CODE_VERSION_TAG",
    "DATA_VERSION_TAG",
    "INPUT_DATA_VERSION_TAG_PREFIX",
    "DataVersion",
    "DataVersionsByPartition",
    "ObserveResult",
    "compute_logical_data_version",
    "input_data_versions",
    "materialization_tags",
    "observation_tags",
]
