"""process_config against Dagster's config schema types: defaults, requiredness, key paths."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from dagloom.definitions.config_types import (
    Array,
    Enum,
    Field,
    Noneable,
    Permissive,
    Selector,
    Shape,
    as_field,
    process_config,
)
from dagloom.errors import ConfigError, DagsterInvalidConfigError, DagsterInvalidDefinitionError


def _check(schema: Any, value: Any) -> Any:
    return process_config(as_field(schema), value, ("config",), "test")


def _paths(schema: Any, value: Any) -> list[str]:
    with pytest.raises(DagsterInvalidConfigError) as caught:
        _check(schema, value)
    assert isinstance(caught.value, ConfigError)
    return caught.value.key_paths


def test_a_shape_whose_fields_all_default_is_optional_and_filled() -> None:
    schema = {"a": Field(int, default_value=1), "b": Field(str, is_required=False)}
    assert _check(schema, None) == {"a": 1}
    assert _check(schema, {"b": "x"}) == {"a": 1, "b": "x"}


def test_a_required_scalar_absent_is_an_error_at_its_path() -> None:
    assert _paths(int, None) == ["config"]
    assert _paths({"n": int}, {}) == ["config.n"]


def test_nested_paths_name_list_indexes() -> None:
    schema = {"outer": {"items": [{"n": int}]}}
    assert _paths(schema, {"outer": {"items": [{"n": 1}, {"n": "x"}]}}) == [
        "config.outer.items[1].n"
    ]


def test_bool_is_not_an_int_but_an_int_is_a_float() -> None:
    assert _paths(int, True) == ["config"]
    assert _check(float, 2) == 2.0


def test_noneable_absent_field_is_none() -> None:
    assert _check({"limit": Noneable(int)}, {}) == {"limit": None}
    assert _check({"limit": Noneable(int)}, {"limit": 3}) == {"limit": 3}


def test_selector_takes_exactly_one_key_and_a_lone_key_may_be_implied() -> None:
    assert _check(Selector({"a": int, "b": int}), {"b": 2}) == {"b": 2}
    assert _paths(Selector({"a": int, "b": int}), {"a": 1, "b": 2}) == ["config"]
    assert _check(Selector({"only": Field(int, default_value=4)}), None) == {"only": 4}


def test_permissive_keeps_undeclared_keys_shape_rejects_them() -> None:
    assert _check(Permissive({"a": int}), {"a": 1, "z": 2}) == {"a": 1, "z": 2}
    assert _paths(Shape({"a": int}), {"a": 1, "z": 2}) == ["config.z"]


def test_enum_from_a_python_enum_hands_out_members() -> None:
    class Color(enum.Enum):
        RED = 1
        BLUE = 2

    assert _check(Enum.from_python_enum(Color), "BLUE") is Color.BLUE
    assert _paths(Enum.from_python_enum(Color), 2) == ["config"]


def test_array_of_arrays() -> None:
    assert _check(Array([int]), [[1], [2, 3]]) == [[1], [2, 3]]
    assert _paths(Array([int]), [[1], "x"]) == ["config[1]"]


def test_malformed_schemas_are_definition_errors() -> None:
    with pytest.raises(DagsterInvalidDefinitionError):
        as_field([int, str])
    with pytest.raises(DagsterInvalidDefinitionError):
        Field(int, default_value=1, is_required=True)
    with pytest.raises(DagsterInvalidDefinitionError):
        as_field(3)
