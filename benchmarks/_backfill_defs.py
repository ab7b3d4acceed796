"""The daily partitioned asset the backfill benchmark backfills (1,000 days from 2020)."""

from dagloom import DailyPartitionsDefinition, Definitions, asset

days = DailyPartitionsDefinition(start_date="2020-01-01", end_date="2022-09-27")


@asset(partitions_def=days)
def daily_value(context) -> str:
    return context.partition_key


defs = Definitions(assets=[daily_value])
