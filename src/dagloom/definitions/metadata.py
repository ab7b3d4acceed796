"""Typed metadata attached to outputs, materializations, observations and failures.

`MetadataValue` is the base of every typed value and holds Dagster's constructors
(`MetadataValue.url("https://…")`, `.md("# hi")`, `.table(records, schema)`). A plain value
in a metadata dict is typed as Dagster types it: str as text, int, float, bool, dict or list
as json, an `AssetKey` as asset, a `TableSchema` as table_schema, None as null. Values are
stored as `MetadataValue` messages and read back as these classes (`metadata["rows"].value`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.errors import DagsterInvalidDefinitionError
from dagloom.messages import AssetKeyMessage
from dagloom.messages import MetadataValue as MetadataValueMessage

TableRecordValue = str | int | float | bool | None


# -- tables ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableColumnConstraints:
    """Constraints on one column: nullable, unique, and any others as text."""

    nullable: bool = True
    unique: bool = False
    other: Sequence[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "other", tuple(self.other or ()))

    def to_json(self) -> dict[str, Any]:
        return {"nullable": self.nullable, "unique": self.unique, "other": list(self.other)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TableColumnConstraints:
        return cls(bool(data["nullable"]), bool(data["unique"]), tuple(data["other"]))


@dataclass(frozen=True, slots=True)
class TableConstraints:
    """Constraints on a whole table, as text (`"unique (a, b)"`)."""

    other: Sequence[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "other", tuple(self.other or ()))

    def to_json(self) -> dict[str, Any]:
        return {"other": list(self.other)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TableConstraints:
        return cls(tuple(data["other"]))


@dataclass(frozen=True, slots=True)
class TableColumn:
    """One column of a table schema: its name, type (free text, default "string"),
    description, constraints and tags."""

    name: str
    type: str = "string"
    description: str | None = None
    constraints: TableColumnConstraints = field(default_factory=TableColumnConstraints)
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DagsterInvalidDefinitionError(
                f"TableColumn name must be a non-empty string, got {self.name!r}"
            )
        if self.constraints is None:
            object.__setattr__(self, "constraints", TableColumnConstraints())
        if self.tags is None:
            object.__setattr__(self, "tags", {})

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "constraints": self.constraints.to_json(),
            "tags": dict(self.tags),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TableColumn:
        return cls(
            data["name"],
            data["type"],
            data["description"],
            TableColumnConstraints.from_json(data["constraints"]),
            dict(data["tags"]),
        )


@dataclass(frozen=True, slots=True)
class TableSchema:
    """The columns of a table and its constraints."""

    columns: Sequence[TableColumn] = ()
    constraints: TableConstraints = field(default_factory=TableConstraints)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        if self.constraints is None:
            object.__setattr__(self, "constraints", TableConstraints())
        for column in self.columns:
            if not isinstance(column, TableColumn):
                raise DagsterInvalidDefinitionError(
                    f"TableSchema columns must be TableColumns, got {type(column).__name__}"
                )

    @staticmethod
    def from_name_type_dict(name_type_dict: Mapping[str, str]) -> TableSchema:
        """A schema of columns given as `{name: type}`."""
        return TableSchema([TableColumn(name, kind) for name, kind in name_type_dict.items()])

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": [column.to_json() for column in self.columns],
            "constraints": self.constraints.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TableSchema:
        return cls(
            [TableColumn.from_json(c) for c in data["columns"]],
            TableConstraints.from_json(data["constraints"]),
        )


class TableRecord:
    """One row of a table: column name to a scalar (str, int, float, bool or None).
    `TableRecord({"a": 1})` or `TableRecord(a=1)`."""

    __slots__ = ("data",)

    def __init__(self, data: Mapping[str, TableRecordValue] | None = None, **columns: Any) -> None:
        merged = {**(data or {}), **columns}
        for name, value in merged.items():
            if value is not None and not isinstance(value, str | builtins.int | builtins.float):
                raise DagsterInvalidDefinitionError(
                    f"TableRecord column {name!r} must be a str, int, float, bool or None, "
                    f"got {type(value).__name__}"
                )
        self.data: dict[str, TableRecordValue] = merged

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TableRecord) and other.data == self.data

    def __hash__(self) -> builtins.int:
        return hash(tuple(self.data.items()))

    def __repr__(self) -> str:
        return f"TableRecord({self.data!r})"


# -- typed values ----------------------------------------------------------------------------


class MetadataValue:
    """The base of typed metadata values, and Dagster's constructors for them."""

    __slots__ = ()

    kind: ClassVar[str]
    """The `MetadataValue` message field the value is stored in."""

    @property
    def value(self) -> Any:
        """The plain value (each kind overrides this with its own)."""
        return None

    @staticmethod
    def text(text: str) -> TextMetadataValue:
        return TextMetadataValue(str(text))

    @staticmethod
    def int(value: builtins.int) -> IntMetadataValue:
        return IntMetadataValue(value)

    @staticmethod
    def float(value: builtins.float) -> FloatMetadataValue:
        return FloatMetadataValue(builtins.float(value))

    @staticmethod
    def bool(value: builtins.bool) -> BoolMetadataValue:
        return BoolMetadataValue(value)

    @staticmethod
    def json(data: Any) -> JsonMetadataValue:
        return JsonMetadataValue(data)

    @staticmethod
    def url(url: str) -> UrlMetadataValue:
        return UrlMetadataValue(url)

    @staticmethod
    def path(path: Any) -> PathMetadataValue:
        return PathMetadataValue(str(path))

    @staticmethod
    def notebook(path: Any) -> NotebookMetadataValue:
        return NotebookMetadataValue(str(path))

    @staticmethod
    def md(data: str) -> MarkdownMetadataValue:
        return MarkdownMetadataValue(data)

    @staticmethod
    def asset(asset_key: CoercibleToAssetKey) -> DagsterAssetMetadataValue:
        return DagsterAssetMetadataValue(AssetKey.from_coercible(asset_key))

    @staticmethod
    def dagster_run(run_id: str) -> DagsterRunMetadataValue:
        return DagsterRunMetadataValue(run_id)

    @staticmethod
    def timestamp(value: Any) -> TimestampMetadataValue:
        """Seconds since the epoch, or a timezone-aware `datetime`."""
        return TimestampMetadataValue(_epoch_seconds(value))

    @staticmethod
    def table(
        records: Sequence[TableRecord], schema: TableSchema | None = None
    ) -> TableMetadataValue:
        return TableMetadataValue(records, schema)

    @staticmethod
    def table_schema(schema: TableSchema) -> TableSchemaMetadataValue:
        return TableSchemaMetadataValue(schema)

    @staticmethod
    def null() -> NullMetadataValue:
        return NullMetadataValue()


TypedMetadataValue = MetadataValue
"""The base class of typed metadata values (an older name)."""


def _epoch_seconds(value: Any) -> builtins.float:
    from datetime import datetime

    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise DagsterInvalidDefinitionError(
                "MetadataValue.timestamp takes a timezone-aware datetime; "
                f"{value.isoformat()} has no timezone"
            )
        return value.timestamp()
    if isinstance(value, builtins.bool) or not isinstance(value, builtins.int | builtins.float):
        raise DagsterInvalidDefinitionError(
            f"MetadataValue.timestamp takes seconds since the epoch or a datetime, got {value!r}"
        )
    return builtins.float(value)


@dataclass(frozen=True, slots=True)
class TextMetadataValue(MetadataValue):
    text: str  # type: ignore[assignment]  # Dagster's field name, shadowing the constructor
    kind: ClassVar[str] = "text"

    @property
    def value(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class UrlMetadataValue(MetadataValue):
    url: str  # type: ignore[assignment]  # Dagster's field name, shadowing the constructor
    kind: ClassVar[str] = "url"

    @property
    def value(self) -> str:
        return self.url


@dataclass(frozen=True, slots=True)
class PathMetadataValue(MetadataValue):
    path: str  # type: ignore[assignment]  # Dagster's field name, shadowing the constructor
    kind: ClassVar[str] = "path"

    @property
    def value(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class NotebookMetadataValue(MetadataValue):
    path: str  # type: ignore[assignment]  # Dagster's field name, shadowing the constructor
    kind: ClassVar[str] = "notebook"

    @property
    def value(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class MarkdownMetadataValue(MetadataValue):
    md_str: str
    kind: ClassVar[str] = "md"

    @property
    def value(self) -> str:
        return self.md_str


@dataclass(frozen=True, slots=True)
class JsonMetadataValue(MetadataValue):
    data: Any
    kind: ClassVar[str] = "json"

    @property
    def value(self) -> Any:
        return self.data


@dataclass(frozen=True, slots=True)
class IntMetadataValue(MetadataValue):
    value: builtins.int | None
    kind: ClassVar[str] = "int"


@dataclass(frozen=True, slots=True)
class FloatMetadataValue(MetadataValue):
    value: builtins.float | None
    kind: ClassVar[str] = "float"


@dataclass(frozen=True, slots=True)
class BoolMetadataValue(MetadataValue):
    value: builtins.bool | None
    kind: ClassVar[str] = "bool"


@dataclass(frozen=True, slots=True)
class TimestampMetadataValue(MetadataValue):
    """Seconds since the epoch."""

    value: builtins.float
    kind: ClassVar[str] = "timestamp"


@dataclass(frozen=True, slots=True)
class DagsterRunMetadataValue(MetadataValue):
    run_id: str
    kind: ClassVar[str] = "dagster_run"

    @property
    def value(self) -> str:
        return self.run_id


@dataclass(frozen=True, slots=True)
class DagsterAssetMetadataValue(MetadataValue):
    asset_key: AssetKey
    kind: ClassVar[str] = "asset"

    @property
    def value(self) -> AssetKey:
        return self.asset_key


@dataclass(frozen=True, slots=True)
class TableSchemaMetadataValue(MetadataValue):
    schema: TableSchema
    kind: ClassVar[str] = "table_schema"

    @property
    def value(self) -> TableSchema:
        return self.schema


@dataclass(frozen=True, slots=True)
class TableMetadataValue(MetadataValue):
    """Rows of a table and its schema; without a schema, one column per key of the first
    record, typed by its value's Python type."""

    records: Sequence[TableRecord]
    schema: TableSchema | None = None
    kind: ClassVar[str] = "table"

    def __post_init__(self) -> None:
        records = tuple(self.records)
        for record in records:
            if not isinstance(record, TableRecord):
                raise DagsterInvalidDefinitionError(
                    f"MetadataValue.table records must be TableRecords, got {type(record).__name__}"
                )
        object.__setattr__(self, "records", records)
        if self.schema is None:
            first = records[0].data if records else {}
            columns = [TableColumn(name, type(value).__name__) for name, value in first.items()]
            object.__setattr__(self, "schema", TableSchema(columns))

    @property
    def value(self) -> TableMetadataValue:
        return self


@dataclass(frozen=True, slots=True)
class NullMetadataValue(MetadataValue):
    kind: ClassVar[str] = "null"

    @property
    def value(self) -> None:
        return None


# -- to and from messages --------------------------------------------------------------------


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def normalize_metadata_value(value: Any) -> MetadataValue:
    """A user metadata value typed as Dagster types it (see the module docstring); an
    object of no known kind becomes its text."""
    if isinstance(value, MetadataValue):
        return value
    if value is None:
        return NullMetadataValue()
    if isinstance(value, builtins.bool):
        return BoolMetadataValue(value)
    if isinstance(value, builtins.int):
        return IntMetadataValue(value)
    if isinstance(value, builtins.float):
        return FloatMetadataValue(value)
    if isinstance(value, str):
        return TextMetadataValue(value)
    if isinstance(value, AssetKey):
        return DagsterAssetMetadataValue(value)
    if isinstance(value, TableSchema):
        return TableSchemaMetadataValue(value)
    if isinstance(value, Mapping | list | tuple):
        return JsonMetadataValue(value)
    return TextMetadataValue(str(value))


def normalize_metadata(metadata: Mapping[str, Any] | None) -> dict[str, MetadataValue]:
    """A metadata dict with every value typed."""
    if not metadata:
        return {}
    return {str(key): normalize_metadata_value(value) for key, value in metadata.items()}


def to_metadata_message(value: Any) -> MetadataValueMessage:
    """A user metadata value as a wire message."""
    typed = normalize_metadata_value(value)
    if isinstance(typed, JsonMetadataValue):
        return MetadataValueMessage(json=_json_text(typed.data))
    if isinstance(typed, DagsterAssetMetadataValue):
        return MetadataValueMessage(asset=AssetKeyMessage(path=list(typed.asset_key.path)))
    if isinstance(typed, NullMetadataValue):
        return MetadataValueMessage(null=True)
    if isinstance(typed, TableSchemaMetadataValue):
        return MetadataValueMessage(table_schema=_json_text(typed.schema.to_json()))
    if isinstance(typed, TableMetadataValue):
        assert typed.schema is not None
        table = {
            "records": [record.data for record in typed.records],
            "schema": typed.schema.to_json(),
        }
        return MetadataValueMessage(table=_json_text(table))
    return MetadataValueMessage(**{typed.kind: typed.value})


def to_metadata_messages(metadata: Mapping[str, Any] | None) -> dict[str, MetadataValueMessage]:
    if not metadata:
        return {}
    return {str(key): to_metadata_message(value) for key, value in metadata.items()}


class TableMetadataSet(Mapping[str, Any]):
    """Dagster's standard table metadata under its `dagster/` keys: a mapping to spread into
    an asset's or a materialization's metadata (`{**TableMetadataSet(row_count=3)}`); the
    fields left None are absent. `extract` reads them back from metadata."""

    _FIELDS: ClassVar[tuple[str, ...]] = (
        "column_schema",
        "row_count",
        "partition_row_count",
        "table_name",
        "column_lineage",
    )

    def __init__(
        self,
        *,
        column_schema: TableSchema | None = None,
        row_count: int | None = None,
        partition_row_count: int | None = None,
        table_name: str | None = None,
        column_lineage: Any = None,
    ) -> None:
        if column_schema is not None and not isinstance(column_schema, TableSchema):
            raise DagsterInvalidDefinitionError(
                f"TableMetadataSet column_schema must be a TableSchema, got {column_schema!r}"
            )
        for name, count in (("row_count", row_count), ("partition_row_count", partition_row_count)):
            if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
                raise DagsterInvalidDefinitionError(
                    f"TableMetadataSet {name} must be an int, got {count!r}"
                )
        self.column_schema = column_schema
        self.row_count = row_count
        self.partition_row_count = partition_row_count
        self.table_name = table_name
        self.column_lineage = column_lineage

    @staticmethod
    def namespace() -> str:
        return "dagster"

    def _present(self) -> dict[str, Any]:
        return {
            f"dagster/{name}": getattr(self, name)
            for name in self._FIELDS
            if getattr(self, name) is not None
        }

    def __getitem__(self, key: str) -> Any:
        return self._present()[key]

    def __iter__(self) -> Any:
        return iter(self._present())

    def __len__(self) -> int:
        return len(self._present())

    @classmethod
    def extract(cls, metadata: Mapping[str, Any]) -> TableMetadataSet:
        """The table metadata among `metadata` (values or MetadataValues)."""
        found: dict[str, Any] = {}
        for name in cls._FIELDS:
            entry = metadata.get(f"dagster/{name}")
            if entry is None:
                continue
            if isinstance(entry, MetadataValue):
                entry = entry.value
            found[name] = entry
        return cls(**found)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if v is not None)
        return f"TableMetadataSet({fields})"


def metadata_value_of(message: MetadataValueMessage) -> MetadataValue:
    """A stored metadata message as the typed value it was written from."""
    import betterproto2

    kind, raw = betterproto2.which_one_of(message, "value")
    if raw is None or kind in ("", "null"):
        return NullMetadataValue()
    if kind == "json":
        return JsonMetadataValue(orjson.loads(raw))
    if kind == "asset":
        return DagsterAssetMetadataValue(AssetKey(list(raw.path)))
    if kind == "table_schema":
        return TableSchemaMetadataValue(TableSchema.from_json(orjson.loads(raw)))
    if kind == "table":
        table = orjson.loads(raw)
        records = [TableRecord(record) for record in table["records"]]
        return TableMetadataValue(records, TableSchema.from_json(table["schema"]))
    return _SIMPLE_KINDS[kind](raw)


_SIMPLE_KINDS: dict[str, Callable[[Any], MetadataValue]] = {
    cls.kind: cls
    for cls in (
        TextMetadataValue,
        UrlMetadataValue,
        PathMetadataValue,
        NotebookMetadataValue,
        MarkdownMetadataValue,
        IntMetadataValue,
        FloatMetadataValue,
        BoolMetadataValue,
        TimestampMetadataValue,
        DagsterRunMetadataValue,
    )
}


def metadata_values_of(messages: Mapping[str, MetadataValueMessage]) -> dict[str, MetadataValue]:
    return {name: metadata_value_of(message) for name, message in messages.items()}


def from_metadata_message(message: MetadataValueMessage) -> Any:
    """The plain Python value of a metadata message (json parsed, asset as AssetKey, a
    table schema as TableSchema, a table as its TableMetadataValue)."""
    return metadata_value_of(message).value


__all__ = [
    "BoolMetadataValue",
    "DagsterAssetMetadataValue",
    "DagsterRunMetadataValue",
    "FloatMetadataValue",
    "IntMetadataValue",
    "JsonMetadataValue",
    "MarkdownMetadataValue",
    "MetadataValue",
    "NotebookMetadataValue",
    "NullMetadataValue",
    "PathMetadataValue",
    "TableColumn",
    "TableColumnConstraints",
    "TableConstraints",
    "TableMetadataSet",
    "TableMetadataValue",
    "TableRecord",
    "TableSchema",
    "TableSchemaMetadataValue",
    "TextMetadataValue",
    "TimestampMetadataValue",
    "TypedMetadataValue",
    "UrlMetadataValue",
]
