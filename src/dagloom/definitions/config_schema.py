"""JSON Schemas of config: what an op's `config` accepts, as data a UI or a GraphQL client
can read without importing the op. Pure."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from dagloom.definitions.config_types import (
    NO_VALUE,
    Array,
    ConfigType,
    Enum,
    Field,
    Noneable,
    Permissive,
    Selector,
    Shape,
    _AnyType,
    _PythonType,
    _Scalar,
    _Source,
)

_SCALARS = {"Int": "integer", "Float": "number", "String": "string", "Bool": "boolean"}


def type_schema(config_type: ConfigType) -> dict[str, Any]:
    """The JSON Schema of one Dagster-style config type."""
    match config_type:
        case Permissive():
            return {**_object(config_type.fields), "additionalProperties": True}
        case Shape():
            return _object(config_type.fields)
        case Selector():
            return {
                "type": "object",
                "oneOf": [
                    {"properties": {name: field_schema(f)}, "required": [name]}
                    for name, f in config_type.fields.items()
                ],
                "minProperties": 1,
                "maxProperties": 1,
            }
        case Noneable():
            return {"anyOf": [type_schema(config_type.inner), {"type": "null"}]}
        case Array():
            return {"type": "array", "items": type_schema(config_type.inner)}
        case Enum():
            return {"enum": [v.config_value for v in config_type.enum_values]}
        case _Source():
            scalar = {"type": _SCALARS[config_type.scalar.name]}
            env = {"type": "object", "properties": {"env": {"type": "string"}}}
            return {"anyOf": [scalar, env]}
        case _Scalar():
            return {"type": _SCALARS.get(config_type.name, "string")}
        case _PythonType():
            adapted: dict[str, Any] = config_type.adapter.json_schema()
            return adapted
        case _AnyType():
            return {}
    return {"description": config_type.describe()}


def field_schema(field: Field) -> dict[str, Any]:
    """The JSON Schema of a field: its type's, with its description and default."""
    schema = dict(type_schema(field.config_type))
    if field.description:
        schema["description"] = field.description
    if field.default_value is not NO_VALUE:
        schema["default"] = field.default_value
    return schema


def _object(fields: dict[str, Field]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: field_schema(f) for name, f in fields.items()},
        "additionalProperties": False,
    }
    required = [name for name, f in fields.items() if f.is_required]
    if required:
        schema["required"] = required
    return schema


def op_config_schema(
    config_model: type[BaseModel] | None, config_field: Field | None
) -> dict[str, Any] | None:
    """The JSON Schema of an op's `config`: from its `Config` class, or its Dagster-style
    `config_schema`; None when it takes no config."""
    if config_model is not None:
        return config_model.model_json_schema()
    if config_field is not None:
        return field_schema(config_field)
    return None
