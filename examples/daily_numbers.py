"""The numbers assets, partitioned by day: each day's numbers come from its date, a weekly
rollup reads its seven days through a time window mapping, a check looks at each day's
total, and an asset job runs a day."""

import dagloom as dg
from dagloom import AssetIn, DailyPartitionsDefinition, Definitions, asset, define_asset_job

daily = DailyPartitionsDefinition(start_date="2024-01-01")


@asset(partitions_def=daily, group_name="daily_numbers", kinds=["python"])
def generated_numbers(context: dg.AssetExecutionContext):
    """Numbers from 1 to the day of the month of the partition."""
    day = context.partition_time_window.start.day
    return list(range(1, day + 1))


@asset(partitions_def=daily, group_name="daily_numbers", kinds=["python"])
def filtered_even_numbers(generated_numbers):
    return [num for num in generated_numbers if num % 2 == 0]


@asset(partitions_def=daily, group_name="daily_numbers", kinds=["python"])
def filtered_odd_numbers(generated_numbers):
    return [num for num in generated_numbers if num % 2 != 0]


@asset(partitions_def=daily, group_name="daily_numbers", kinds=["python"])
def summed_even_numbers(filtered_even_numbers):
    return sum(filtered_even_numbers)


@asset(partitions_def=daily, group_name="daily_numbers", kinds=["python"])
def summed_odd_numbers(filtered_odd_numbers):
    return sum(filtered_odd_numbers)


@asset(partitions_def=daily, group_name="daily_numbers", kinds=["python"])
def summed_two_sums(summed_even_numbers, summed_odd_numbers):
    return summed_even_numbers + summed_odd_numbers


@asset(
    partitions_def=daily,
    group_name="daily_numbers",
    ins={
        "summed_two_sums": AssetIn(
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-6, allow_nonexistent_upstream_partitions=True
            )
        )
    },
)
def trailing_week_total(context: dg.AssetExecutionContext, summed_two_sums):
    """The sum of the last seven days' totals (fewer at the start of the partitions)."""
    if not isinstance(summed_two_sums, dict):  # a single day reads one value
        return summed_two_sums
    context.log.info(f"summing {len(summed_two_sums)} days")
    return sum(summed_two_sums.values())


@dg.asset_check(asset=summed_two_sums, description="Each day's numbers add up to more than 0")
def total_is_positive(summed_two_sums):
    return dg.AssetCheckResult(passed=summed_two_sums > 0, metadata={"total": summed_two_sums})


process_day = define_asset_job(
    name="process_day", selection=dg.AssetSelection.groups("daily_numbers")
)

defs = Definitions(
    assets=[
        generated_numbers,
        filtered_even_numbers,
        filtered_odd_numbers,
        summed_even_numbers,
        summed_odd_numbers,
        summed_two_sums,
        trailing_week_total,
    ],
    asset_checks=[total_is_positive],
    jobs=[process_day],
)
