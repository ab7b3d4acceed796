"""JSON Schemas of op config, from Dagster-style schemas and from Config classes."""

from __future__ import annotations

from dagloom.definitions.config import Config
from dagloom.definitions.config_schema import field_schema, op_config_schema
from dagloom.definitions.config_types import (
    Array,
    Enum,
    EnumValue,
    Field,
    IntSource,
    Noneable,
    Permissive,
    Selector,
    Shape,
)


def test_a_shape_lists_its_fields_required_defaults_and_descriptions() -> None:
    shape = Field(
        Shape(
            {
                "limit": Field(int, description="how many"),
                "mode": Field(str, default_value="fast"),
                "tags": Array(str),
                "maybe": Noneable(float),
                "level": Enum("Level", [EnumValue("LOW"), EnumValue("HIGH")]),
                "port": IntSource,
            }
        )
    )
    schema = field_schema(shape)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) == {"limit", "tags", "level", "port"}
    properties = schema["properties"]
    assert properties["limit"] == {"type": "integer", "description": "how many"}
    assert properties["mode"] == {"type": "string", "default": "fast"}
    assert properties["tags"] == {"type": "array", "items": {"type": "string"}}
    assert properties["maybe"] == {"anyOf": [{"type": "number"}, {"type": "null"}]}
    assert properties["level"] == {"enum": ["LOW", "HIGH"]}
    assert properties["port"]["anyOf"][0] == {"type": "integer"}


def test_selectors_and_permissive_shapes() -> None:
    selector = field_schema(Field(Selector({"a": int, "b": str})))
    assert selector["maxProperties"] == 1
    assert [option["required"] for option in selector["oneOf"]] == [["a"], ["b"]]
    assert field_schema(Field(Permissive({"x": int})))["additionalProperties"] is True


def test_a_config_class_gives_its_pydantic_schema() -> None:
    class LimitConfig(Config):
        limit: int
        label: str = "x"

    schema = op_config_schema(LimitConfig, None)
    assert schema is not None
    assert schema["required"] == ["limit"]
    assert schema["properties"]["label"]["default"] == "x"
    assert op_config_schema(None, None) is None
