"""AssetSelection resolved against a graph of assets, and define_asset_job built from one."""

from __future__ import annotations

import pytest

from dagloom import (
    AssetKey,
    AssetSelection,
    DagloomInvalidSelectionError,
    DefinitionError,
    Definitions,
    asset,
    define_asset_job,
)
from dagloom.messages import EventType

#   raw_a ─┐
#          ├─> joined ─> report
#   raw_b ─┘
#   other (group "misc", no edges)


@asset(group_name="ingest")
def raw_a():
    return [1, 2]


@asset(group_name="ingest")
def raw_b():
    return [3]


@asset(group_name="model")
def joined(raw_a, raw_b):
    return raw_a + raw_b


@asset(group_name="model")
def report(joined):
    return sum(joined)


@asset(group_name="misc")
def other():
    return "other"


ALL = [raw_a, raw_b, joined, report, other]


def _keys(*names: str) -> set[AssetKey]:
    return {AssetKey(n) for n in names}


def test_all_selects_every_asset() -> None:
    assert AssetSelection.all().resolve(ALL) == _keys("raw_a", "raw_b", "joined", "report", "other")


def test_groups_selects_assets_in_any_named_group() -> None:
    assert AssetSelection.groups("ingest").resolve(ALL) == _keys("raw_a", "raw_b")
    assert AssetSelection.groups("ingest", "misc").resolve(ALL) == _keys("raw_a", "raw_b", "other")


def test_keys_and_assets_select_exactly_those() -> None:
    assert AssetSelection.keys("report", AssetKey("other")).resolve(ALL) == _keys("report", "other")
    assert AssetSelection.assets(joined, raw_b).resolve(ALL) == _keys("joined", "raw_b")


def test_upstream_includes_self_and_all_ancestors() -> None:
    assert AssetSelection.keys("report").upstream().resolve(ALL) == _keys(
        "report", "joined", "raw_a", "raw_b"
    )
    assert AssetSelection.keys("report").upstream(depth=1).resolve(ALL) == _keys("report", "joined")
    assert AssetSelection.keys("report").upstream(include_self=False).resolve(ALL) == _keys(
        "joined", "raw_a", "raw_b"
    )


def test_downstream_includes_self_and_all_descendants() -> None:
    assert AssetSelection.keys("raw_a").downstream().resolve(ALL) == _keys(
        "raw_a", "joined", "report"
    )
    assert AssetSelection.keys("raw_a").downstream(depth=1, include_self=False).resolve(
        ALL
    ) == _keys("joined")


def test_union_intersection_and_difference() -> None:
    ingest = AssetSelection.groups("ingest")
    model = AssetSelection.groups("model")
    assert (ingest | AssetSelection.keys("other")).resolve(ALL) == _keys("raw_a", "raw_b", "other")
    assert (AssetSelection.keys("raw_a").downstream() & model).resolve(ALL) == _keys(
        "joined", "report"
    )
    assert (AssetSelection.all() - ingest - model).resolve(ALL) == _keys("other")


def test_unknown_key_is_an_invalid_selection_error() -> None:
    with pytest.raises(DagloomInvalidSelectionError, match="missing"):
        AssetSelection.keys("missing").resolve(ALL)


def test_unknown_group_is_an_invalid_selection_error() -> None:
    with pytest.raises(DagloomInvalidSelectionError, match="nowhere"):
        AssetSelection.groups("nowhere").resolve(ALL)


def test_invalid_selection_error_is_a_definition_error() -> None:
    assert issubclass(DagloomInvalidSelectionError, DefinitionError)


def test_define_asset_job_materializes_only_the_selection() -> None:
    defs = Definitions(
        assets=ALL,
        jobs=[define_asset_job("model_job", AssetSelection.groups("model").upstream())],
    )
    result = defs.get_job_def("model_job").execute_in_process()
    assert result.success
    materialized = {
        tuple(e.asset_materialization.asset_key.path)
        for e in result.filter_events(EventType.ASSET_MATERIALIZATION)
    }
    assert materialized == {("raw_a",), ("raw_b",), ("joined",), ("report",)}
    assert result.asset_value("report") == 6


def test_define_asset_job_without_selection_selects_all_assets() -> None:
    defs = Definitions(assets=ALL, jobs=[define_asset_job("everything")])
    job = defs.get_job_def("everything")
    assert sorted(job.node_names) == ["joined", "other", "raw_a", "raw_b", "report"]


def test_define_asset_job_with_a_list_of_keys() -> None:
    defs = Definitions(assets=ALL, jobs=[define_asset_job("two", ["raw_a", "other"])])
    assert sorted(defs.get_job_def("two").node_names) == ["other", "raw_a"]


def test_define_asset_job_selecting_an_unknown_key_fails_when_definitions_are_built() -> None:
    with pytest.raises(DagloomInvalidSelectionError, match="nope"):
        Definitions(assets=ALL, jobs=[define_asset_job("bad", AssetSelection.keys("nope"))])
