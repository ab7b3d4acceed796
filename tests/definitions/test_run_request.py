"""RunRequest, SkipReason and SensorResult: the records a tick returns."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dagloom.definitions.run_request import RunRequest, SensorResult, SkipReason
from dagloom.errors import DefinitionError


class _RunConfigLike:
    """Stands in for a RunConfig: anything with `to_config_dict()`."""

    def to_config_dict(self) -> dict[str, Any]:
        return {"ops": {"fetch": {"config": {"limit": 3}}}}


def test_run_request_defaults_match_dagster() -> None:
    request = RunRequest()
    assert request.run_key is None
    assert request.run_config == {}
    assert request.tags == {}
    assert request.job_name is None
    assert request.asset_selection is None
    assert request.partition_key is None
    assert request.stale_assets_only is False


def test_run_request_takes_dagster_positional_order() -> None:
    request = RunRequest("key", {"ops": {}}, {"team": "data"}, "my_job")
    assert (request.run_key, request.run_config, request.tags, request.job_name) == (
        "key",
        {"ops": {}},
        {"team": "data"},
        "my_job",
    )


def test_run_request_is_frozen_and_slotted() -> None:
    request = RunRequest(run_key="a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.run_key = "b"  # type: ignore[misc]
    assert not hasattr(request, "__dict__")


def test_run_request_copies_run_config_so_later_mutation_does_not_leak() -> None:
    config = {"ops": {}}
    request = RunRequest(run_config=config)
    config["resources"] = {}
    assert request.run_config == {"ops": {}}


def test_run_request_accepts_run_config_objects_with_to_config_dict() -> None:
    request = RunRequest(run_config=_RunConfigLike())
    assert request.run_config == {"ops": {"fetch": {"config": {"limit": 3}}}}


def test_run_request_rejects_run_config_that_is_neither_mapping_nor_run_config() -> None:
    with pytest.raises(DefinitionError, match="run_config"):
        RunRequest(run_config=["not", "a", "mapping"])


def test_run_request_rejects_non_string_tags() -> None:
    with pytest.raises(DefinitionError, match="tag"):
        RunRequest(tags={"attempt": 1})


def test_run_request_rejects_a_string_as_asset_selection() -> None:
    with pytest.raises(DefinitionError, match="asset_selection"):
        RunRequest(asset_selection="my_asset")  # type: ignore[arg-type]


def test_run_request_equality_is_by_value() -> None:
    assert RunRequest("k", {"a": 1}) == RunRequest(run_key="k", run_config={"a": 1})
    assert RunRequest("k") != RunRequest("j")


def test_with_replaced_attrs_returns_a_changed_copy() -> None:
    request = RunRequest(run_key="k", tags={"a": "1"})
    changed = request.with_replaced_attrs(job_name="other", tags={"b": "2"})
    assert changed.job_name == "other"
    assert changed.tags == {"b": "2"}
    assert request.job_name is None and request.tags == {"a": "1"}
    with pytest.raises(TypeError):
        request.with_replaced_attrs(nope=1)


def test_with_tags_merges_over_own_tags() -> None:
    request = RunRequest(tags={"a": "1", "b": "1"})
    assert request.with_tags({"b": "2"}).tags == {"a": "1", "b": "2"}


def test_skip_reason_message_is_optional() -> None:
    assert SkipReason().skip_message is None
    assert SkipReason("nothing new").skip_message == "nothing new"
    assert SkipReason(skip_message="x") == SkipReason("x")


def test_sensor_result_coerces_a_string_skip_reason() -> None:
    result = SensorResult(skip_reason="nothing to do", cursor="5")
    assert result.skip_reason == SkipReason("nothing to do")
    assert result.cursor == "5"
    assert result.run_requests is None


def test_sensor_result_rejects_both_run_requests_and_a_skip_reason() -> None:
    with pytest.raises(DefinitionError, match="both"):
        SensorResult(run_requests=[RunRequest("a")], skip_reason=SkipReason("no"))


def test_sensor_result_allows_an_empty_run_request_list_with_a_skip_reason() -> None:
    result = SensorResult(run_requests=[], skip_reason="idle")
    assert result.run_requests == []


def test_sensor_result_rejects_items_that_are_not_run_requests() -> None:
    with pytest.raises(DefinitionError, match="RunRequest"):
        SensorResult(run_requests=[SkipReason("x")])  # type: ignore[list-item]
