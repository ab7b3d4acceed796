"""Inputs and outputs of ops: In, Out, DynamicOut, and the values ops return (Output, ...)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.errors import DefinitionError

T = TypeVar("T")

DEFAULT_OUTPUT = "result"

DATA_VERSION_TAG = "dagster/data_version"
"""The tag holding an asset event's data version (Dagster's name)."""
CODE_VERSION_TAG = "dagster/code_version"
"""The tag holding the code version a materialization was computed with."""
INPUT_DATA_VERSION_TAG_PREFIX = "dagster/input_data_version/"
"""Prefix of the tags holding the data version of each upstream asset a materialization read,
followed by the upstream key (`a/b`)."""


class _NoValue:
    """Marks an input with no default value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NoValue"


NO_VALUE: Any = _NoValue()


@dataclass(frozen=True, slots=True)
class In:
    """Declares an op input: its type, description, default, and where its value comes from."""

    dagster_type: Any = None
    description: str | None = None
    default_value: Any = NO_VALUE
    metadata: Mapping[str, Any] | None = None
    asset_key: AssetKey | None = None
    input_manager_key: str | None = None

    @property
    def has_default(self) -> bool:
        return self.default_value is not NO_VALUE


@dataclass(frozen=True, slots=True)
class Out:
    """Declares an op output: its type, description, whether it may be skipped, and the IO
    manager that stores it."""

    dagster_type: Any = None
    description: str | None = None
    is_required: bool = True
    io_manager_key: str = "io_manager"
    metadata: Mapping[str, Any] | None = None
    code_version: str | None = None

    @property
    def is_dynamic(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class DynamicOut(Out):
    """An output that yields any number of DynamicOutputs, each mapped downstream separately."""

    @property
    def is_dynamic(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Output(Generic[T]):
    """A value returned or yielded by an op, naming the output it fills and its metadata."""

    value: T
    output_name: str = DEFAULT_OUTPUT
    metadata: Mapping[str, Any] | None = None
    data_version: str | None = None
    tags: Mapping[str, str] | None = None


_MAPPING_KEY = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True, slots=True)
class DynamicOutput(Generic[T]):
    """One element of a DynamicOut, told apart by `mapping_key` (letters, digits, `_`)."""

    value: T
    mapping_key: str
    output_name: str = DEFAULT_OUTPUT
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not _MAPPING_KEY.match(self.mapping_key):
            raise DefinitionError(
                f"DynamicOutput mapping_key {self.mapping_key!r} must contain only letters, "
                "digits and underscores"
            )


@dataclass(frozen=True, slots=True)
class _AssetEvent:
    """What an asset materialization and an asset observation both carry; the key is
    coerced from any of its accepted forms."""

    asset_key: AssetKey
    description: str | None = None
    metadata: Mapping[str, Any] | None = None
    partition: str | None = None
    tags: Mapping[str, str] | None = None

    def __init__(
        self,
        asset_key: CoercibleToAssetKey,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        partition: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        object.__setattr__(self, "asset_key", AssetKey.from_coercible(asset_key))
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "metadata", metadata)
        object.__setattr__(self, "partition", partition)
        object.__setattr__(self, "tags", tags)

    @property
    def data_version(self) -> str | None:
        """The `dagster/data_version` tag, if the event carries one."""
        return (self.tags or {}).get(DATA_VERSION_TAG)

    @property
    def label(self) -> str:
        """The asset key's parts joined by spaces, as Dagster labels the event."""
        return " ".join(self.asset_key.path)


@dataclass(frozen=True, slots=True, init=False)
class AssetMaterialization(_AssetEvent):
    """Reports that an asset was materialized, from an op that does not define it."""

    @staticmethod
    def file(
        path: str,
        description: str | None = None,
        asset_key: CoercibleToAssetKey | None = None,
    ) -> AssetMaterialization:
        """A materialization of the file at `path`, keyed by `asset_key` or else the path."""
        from dagloom.definitions.metadata import MetadataValue

        key = AssetKey(path) if asset_key is None else AssetKey.from_coercible(asset_key)
        return AssetMaterialization(key, description, {"path": MetadataValue.path(path)})


@dataclass(frozen=True, slots=True, init=False)
class AssetObservation(_AssetEvent):
    """Reports what was seen of an asset without materializing it (a row count, a file's
    age), given to `context.log_event` or yielded; stored as an ASSET_OBSERVATION event."""


@dataclass(frozen=True, slots=True)
class ExpectationResult:
    """The outcome of a data quality check an op ran, yielded by it or given to
    `context.log_event`; recorded as a STEP_EXPECTATION_RESULT event (a failed expectation
    does not fail the step). Without a label it is labelled "result", as in Dagster."""

    success: bool
    label: str | None = "result"
    description: str | None = None
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.label is None:
            object.__setattr__(self, "label", "result")


@dataclass(frozen=True, slots=True)
class MaterializeResult:
    """What an asset returns when it stores its data itself: metadata for the
    materialization, no value for the IO manager, and the results of its checks
    (`check_results`, each for this asset unless it names another)."""

    asset_key: AssetKey | None = None
    metadata: Mapping[str, Any] | None = None
    data_version: str | None = None
    tags: Mapping[str, str] | None = None
    value: Any = field(default=NO_VALUE)
    check_results: Sequence[Any] = ()

    def __init__(
        self,
        *,
        asset_key: CoercibleToAssetKey | None = None,
        metadata: Mapping[str, Any] | None = None,
        data_version: str | None = None,
        tags: Mapping[str, str] | None = None,
        value: Any = NO_VALUE,
        check_results: Sequence[Any] | None = None,
    ) -> None:
        key = None if asset_key is None else AssetKey.from_coercible(asset_key)
        object.__setattr__(self, "check_results", tuple(check_results or ()))
        object.__setattr__(self, "asset_key", key)
        object.__setattr__(self, "metadata", metadata)
        object.__setattr__(self, "data_version", data_version)
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "value", value)


__all__ = [
    "CODE_VERSION_TAG",
    "DATA_VERSION_TAG",
    "DEFAULT_OUTPUT",
    "INPUT_DATA_VERSION_TAG_PREFIX",
    "NO_VALUE",
    "AssetMaterialization",
    "AssetObservation",
    "DynamicOut",
    "DynamicOutput",
    "ExpectationResult",
    "In",
    "MaterializeResult",
    "Out",
    "Output",
]
