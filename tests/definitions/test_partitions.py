"""Partitions definitions and mappings: which keys exist, what a key's window is, which
upstream keys a downstream partition reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagloom import (
    AllPartitionMapping,
    DagsterInvalidDefinitionError,
    DagsterUnknownPartitionError,
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    IdentityPartitionMapping,
    LastPartitionMapping,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    PartitionKeyRange,
    StaticPartitionMapping,
    StaticPartitionsDefinition,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)
from dagloom.definitions.partition_mapping import infer_partition_mapping

NOW = datetime(2024, 1, 5, 12, tzinfo=UTC)


def test_daily_keys_are_the_days_that_have_ended() -> None:
    daily = DailyPartitionsDefinition(start_date="2024-01-01")
    assert daily.get_partition_keys(current_time=NOW) == [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
    ]


def test_end_offset_adds_the_window_in_progress() -> None:
    daily = DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)
    assert daily.get_partition_keys(current_time=NOW)[-1] == "2024-01-05"


def test_end_date_is_excluded() -> None:
    daily = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-03")
    assert daily.get_partition_keys() == ["2024-01-01", "2024-01-02"]


def test_time_window_of_a_key() -> None:
    daily = DailyPartitionsDefinition(start_date="2024-01-01")
    window = daily.time_window_for_partition_key("2024-01-02")
    assert window.start == datetime(2024, 1, 2, tzinfo=UTC)
    assert window.end == datetime(2024, 1, 3, tzinfo=UTC)


def test_hourly_in_a_timezone_skips_the_missing_hour() -> None:
    hourly = HourlyPartitionsDefinition(start_date="2024-03-10-00:00", timezone="America/New_York")
    keys = hourly.get_partition_keys(current_time=datetime(2024, 3, 10, 9, tzinfo=UTC))
    assert keys == ["2024-03-10-00:00", "2024-03-10-01:00", "2024-03-10-03:00", "2024-03-10-04:00"]


def test_weekly_and_monthly_cadences() -> None:
    weekly = WeeklyPartitionsDefinition(start_date="2024-01-01")  # weeks start on Sunday
    assert weekly.get_partition_keys(current_time=datetime(2024, 1, 30, tzinfo=UTC)) == [
        "2024-01-07",
        "2024-01-14",
        "2024-01-21",
    ]
    monthly = MonthlyPartitionsDefinition(start_date="2024-11-01")
    assert monthly.get_partition_keys(current_time=datetime(2025, 2, 2, tzinfo=UTC)) == [
        "2024-11-01",
        "2024-12-01",
        "2025-01-01",
    ]


def test_custom_fmt_and_cron() -> None:
    part = TimeWindowPartitionsDefinition(
        start="2024/01/01", fmt="%Y/%m/%d", cron_schedule="0 0 * * 1-5", end="2024/01/09"
    )
    # 2024-01-01 is a Monday: windows run weekday tick to weekday tick, Friday's to Monday.
    assert part.get_partition_keys() == [
        "2024/01/01",
        "2024/01/02",
        "2024/01/03",
        "2024/01/04",
        "2024/01/05",
        "2024/01/08",
    ]
    assert part.time_window_for_partition_key("2024/01/05").end.day == 8


def test_ten_thousand_daily_partitions() -> None:
    daily = DailyPartitionsDefinition(start_date="1990-01-01")
    keys = daily.get_partition_keys(current_time=datetime(2017, 5, 19, tzinfo=UTC))
    assert len(keys) == 10000
    assert daily.has_partition_key("2000-02-29", current_time=datetime(2017, 5, 19, tzinfo=UTC))
    assert not daily.has_partition_key("2000-02-30")


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=400))
def test_range_keys_are_the_slice_between_the_ends(a: int, b: int) -> None:
    daily = DailyPartitionsDefinition(start_date="2023-01-01", end_date="2024-03-01")
    keys = daily.get_partition_keys()
    lo, hi = sorted((a, b))
    got = daily.get_partition_keys_in_range(PartitionKeyRange(keys[lo], keys[hi]))
    assert got == keys[lo : hi + 1]
    for key in got:
        window = daily.time_window_for_partition_key(key)
        assert window.end - window.start == timedelta(days=1)


def test_reversed_range_names_both_ends() -> None:
    daily = DailyPartitionsDefinition(start_date="2024-01-01")
    reversed_range = r"2024-01-03\.\.\.2024-01-02 is reversed"
    with pytest.raises(DagsterUnknownPartitionError, match=reversed_range):
        daily.get_partition_keys_in_range(PartitionKeyRange("2024-01-03", "2024-01-02"))
    static = StaticPartitionsDefinition(["a", "b"])
    with pytest.raises(DagsterUnknownPartitionError, match="'c'"):
        static.get_partition_keys_in_range(PartitionKeyRange("a", "c"))


def test_static_refuses_duplicates_and_reserved_characters() -> None:
    with pytest.raises(DagsterInvalidDefinitionError, match="duplicate"):
        StaticPartitionsDefinition(["a", "a"])
    with pytest.raises(DagsterInvalidDefinitionError, match="reserved"):
        StaticPartitionsDefinition(["a|b"])


def test_multi_partition_keys() -> None:
    multi = MultiPartitionsDefinition(
        {
            "date": DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-03"),
            "color": StaticPartitionsDefinition(["red", "blue"]),
        }
    )
    keys = multi.get_partition_keys()
    assert keys == ["red|2024-01-01", "red|2024-01-02", "blue|2024-01-01", "blue|2024-01-02"]
    assert keys[0] == MultiPartitionKey({"date": "2024-01-01", "color": "red"})
    assert keys[0].keys_by_dimension == {"color": "red", "date": "2024-01-01"}
    assert multi.primary_dimension.name == "date"
    assert multi.has_partition_key("blue|2024-01-02")
    assert not multi.has_partition_key("green|2024-01-02")


def test_time_window_mapping_with_offsets() -> None:
    daily = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-10")
    previous = TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
    assert previous.upstream_partition_keys(["2024-01-05"], daily, daily) == ["2024-01-04"]
    with pytest.raises(DagsterUnknownPartitionError):
        previous.upstream_partition_keys(["2024-01-01"], daily, daily)
    lenient = TimeWindowPartitionMapping(
        start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
    )
    assert lenient.upstream_partition_keys(["2024-01-01"], daily, daily) == []


def test_daily_reads_hourly_through_the_default_mapping() -> None:
    hourly = HourlyPartitionsDefinition(start_date="2024-01-01-00:00", end_date="2024-01-03-00:00")
    daily = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-03")
    mapping = infer_partition_mapping(None, hourly, daily, where="test")
    assert isinstance(mapping, TimeWindowPartitionMapping)
    keys = mapping.upstream_partition_keys(["2024-01-02"], daily, hourly)
    assert len(keys) == 24 and keys[0] == "2024-01-02-00:00"


def test_static_all_last_and_identity_mappings() -> None:
    up = StaticPartitionsDefinition(["us-east", "us-west", "eu"])
    down = StaticPartitionsDefinition(["us", "eu"])
    mapping = StaticPartitionMapping({"us-east": "us", "us-west": "us", "eu": "eu"})
    mapping.validate_partition_mapping(up, down)
    assert mapping.upstream_partition_keys(["us"], down, up) == ["us-east", "us-west"]
    assert (
        AllPartitionMapping().upstream_partition_keys(["us"], down, up) == up.get_partition_keys()
    )
    assert LastPartitionMapping().upstream_partition_keys(None, None, up) == ["eu"]
    assert IdentityPartitionMapping().upstream_partition_keys(["eu"], down, up) == ["eu"]
    with pytest.raises(DagsterUnknownPartitionError):
        IdentityPartitionMapping().upstream_partition_keys(["us"], down, up)


def test_multi_to_single_dimension() -> None:
    daily = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-03")
    multi = MultiPartitionsDefinition(
        {"date": daily, "color": StaticPartitionsDefinition(["red", "blue"])}
    )
    mapping = infer_partition_mapping(None, multi, daily, where="test")
    assert isinstance(mapping, MultiToSingleDimensionPartitionMapping)
    assert mapping.upstream_partition_keys(["2024-01-02"], daily, multi) == [
        "red|2024-01-02",
        "blue|2024-01-02",
    ]
    assert mapping.upstream_partition_keys(["blue|2024-01-01"], multi, daily) == ["2024-01-01"]


def test_incompatible_mapping_is_refused_naming_the_dependency() -> None:
    static = StaticPartitionsDefinition(["a"])
    daily = DailyPartitionsDefinition(start_date="2024-01-01")
    with pytest.raises(DagsterInvalidDefinitionError, match="asset 'b' reading 'a'"):
        infer_partition_mapping(
            TimeWindowPartitionMapping(), daily, static, where="asset 'b' reading 'a'"
        )
    with pytest.raises(DagsterInvalidDefinitionError, match="different kinds"):
        infer_partition_mapping(None, static, daily, where="x")


def test_a_hundred_thousand_static_keys_index_once() -> None:
    keys = [f"customer-{i}" for i in range(100_000)]
    static = StaticPartitionsDefinition(keys)
    assert static.has_partition_key("customer-99999")
    assert not static.has_partition_key("customer-100000")
    span = static.get_partition_keys_in_range(PartitionKeyRange("customer-10", "customer-12"))
    assert span == ["customer-10", "customer-11", "customer-12"]
    with pytest.raises(DagsterInvalidDefinitionError, match=r"duplicate partition keys \['x'\]"):
        StaticPartitionsDefinition(["x", "y", "x", "x"])
