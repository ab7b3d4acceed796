"""MetadataValue: typed metadata attached to outputs, materializations and failures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from dagloom.definitions.asset_key import AssetKey
from dagloom.messages import AssetKeyMessage
from dagloom.messages import MetadataValue as MetadataValueMessage


@dataclass(frozen=True, slots=True)
class TypedMetadataValue:
    """A metadata value with an explicit kind: text, int, float, bool, json, url, path, md,
    asset or null."""

    kind: str
    value: Any


class MetadataValue:
    """Constructors for typed metadata: `MetadataValue.url("https://…")`, `.md("# hi")`."""

    @staticmethod
    def text(value: str) -> TypedMetadataValue:
        return TypedMetadataValue("text", str(value))

    @staticmethod
    def int(value: int) -> TypedMetadataValue:
        return TypedMetadataValue("int", value)

    @staticmethod
    def float(value: float) -> TypedMetadataValue:
        return TypedMetadataValue("float", value)

    @staticmethod
    def bool(value: bool) -> TypedMetadataValue:
        return TypedMetadataValue("bool", value)

    @staticmethod
    def json(value: Any) -> TypedMetadataValue:
        return TypedMetadataValue("json", value)

    @staticmethod
    def url(value: str) -> TypedMetadataValue:
        return TypedMetadataValue("url", value)

    @staticmethod
    def path(value: Any) -> TypedMetadataValue:
        return TypedMetadataValue("path", str(value))

    @staticmethod
    def md(value: str) -> TypedMetadataValue:
        return TypedMetadataValue("md", value)

    @staticmethod
    def asset(value: AssetKey) -> TypedMetadataValue:
        return TypedMetadataValue("asset", value)

    @staticmethod
    def null() -> TypedMetadataValue:
        return TypedMetadataValue("null", None)


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def to_metadata_message(value: Any) -> MetadataValueMessage:
    """A user metadata value as a wire message; unknown objects become text."""
    if isinstance(value, TypedMetadataValue):
        kind, raw = value.kind, value.value
        if kind == "json":
            return MetadataValueMessage(json=_json_text(raw))
        if kind == "asset":
            return MetadataValueMessage(asset=AssetKeyMessage(path=list(raw.path)))
        if kind == "null":
            return MetadataValueMessage(null=True)
        return MetadataValueMessage(**{kind: raw})
    if value is None:
        return MetadataValueMessage(null=True)
    if isinstance(value, bool):
        return MetadataValueMessage(bool=value)
    if isinstance(value, int):
        return MetadataValueMessage(int=value)
    if isinstance(value, float):
        return MetadataValueMessage(float=value)
    if isinstance(value, str):
        return MetadataValueMessage(text=value)
    if isinstance(value, AssetKey):
        return MetadataValueMessage(asset=AssetKeyMessage(path=list(value.path)))
    if isinstance(value, Mapping | list | tuple):
        return MetadataValueMessage(json=_json_text(value))
    return MetadataValueMessage(text=str(value))


def to_metadata_messages(metadata: Mapping[str, Any] | None) -> dict[str, MetadataValueMessage]:
    if not metadata:
        return {}
    return {str(key): to_metadata_message(value) for key, value in metadata.items()}


def from_metadata_message(message: MetadataValueMessage) -> Any:
    """The plain Python value of a metadata message (json parsed, asset as AssetKey)."""
    import betterproto2

    field, value = betterproto2.which_one_of(message, "value")
    if value is None:
        return None
    if field == "json":
        return orjson.loads(value)
    if field == "asset":
        return AssetKey(list(value.path))
    if field in ("null", ""):
        return None
    return value


__all__ = ["MetadataValue", "TypedMetadataValue"]
