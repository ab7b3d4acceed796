"""The numbers example: the same pipeline as ops (`process_numbers`) and as assets
(`process_numbers_asset`), with schedules, a sensor and Definitions."""

import os

import dagloom as dg
from dagloom import (
    AssetSelection,
    Definitions,
    ScheduleDefinition,
    asset,
    define_asset_job,
    job,
    op,
)

# --- Ops and a job -----------------------------------------------------------------------


@op(description="Generate a list of numbers from 1 to 10")
def generate_numbers():
    return list(range(1, 11))


@op(description="Filter even numbers from the list")
def filter_even_numbers(numbers):
    return [num for num in numbers if num % 2 == 0]


@op(description="Filter odd numbers from the list")
def filter_odd_numbers(numbers):
    return [num for num in numbers if num % 2 != 0]


@op(description="Calculate the sum of the given list of even numbers")
def sum_even_numbers(numbers):
    return sum(numbers)


@op(description="Calculate the sum of the given list of odd numbers")
def sum_odd_numbers(numbers):
    return sum(numbers)


@op(description="Sum the two numbers")
def sum_two_sums(first_number, second_number):
    return first_number + second_number


@job(
    description="Process numbers",
    tags={
        "domain": "numbers",
    },
)
def process_numbers():
    numbers = generate_numbers()

    even_numbers = filter_even_numbers(numbers)
    odd_numbers = filter_odd_numbers(numbers)

    even_sum = sum_even_numbers(even_numbers)
    odd_sum = sum_odd_numbers(odd_numbers)

    sum_two_sums(even_sum, odd_sum)


# --- Assets and an asset job -------------------------------------------------------------


@asset(
    group_name="numbers", description="Generated a list of numbers from 1 to 10", kinds=["python"]
)
def generated_numbers():
    return list(range(1, 11))


@asset(group_name="numbers", description="Filtered even numbers from the list", kinds=["python"])
def filtered_even_numbers(generated_numbers):
    return [num for num in generated_numbers if num % 2 == 0]


@asset(group_name="numbers", description="Filtered odd numbers from the list", kinds=["python"])
def filtered_odd_numbers(generated_numbers):
    return [num for num in generated_numbers if num % 2 != 0]


@asset(group_name="numbers", description="Summed the even numbers", kinds=["python"])
def summed_even_numbers(filtered_even_numbers):
    return sum(filtered_even_numbers)


@asset(group_name="numbers", description="Summed the odd numbers", kinds=["python"])
def summed_odd_numbers(filtered_odd_numbers):
    return sum(filtered_odd_numbers)


@asset(group_name="numbers", description="Summed the two sums", kinds=["python"])
def summed_two_sums(summed_even_numbers, summed_odd_numbers):
    return summed_even_numbers + summed_odd_numbers


process_numbers_asset = define_asset_job(
    name="process_numbers_asset", selection=AssetSelection.groups("numbers")
)

# --- Schedules and a sensor --------------------------------------------------------------

process_numbers_every_minute = ScheduleDefinition(
    job=process_numbers,
    cron_schedule="* * * * *",
)

process_numbers_asset_every_minute = ScheduleDefinition(
    job=process_numbers_asset,
    cron_schedule="* * * * *",
)

CHECK_FILE = os.environ.get("DAGLOOM_EXAMPLE_CHECK_FILE", "/check")


@dg.sensor(
    job=process_numbers,
    minimum_interval_seconds=5,
)
def check_file_sensor():
    if os.path.exists(CHECK_FILE):
        yield dg.RunRequest(
            run_key="check_file_exists",
        )
    else:
        yield dg.SkipReason("check file not exists")


# --- Definitions -------------------------------------------------------------------------

defs = Definitions(
    assets=[
        generated_numbers,
        filtered_even_numbers,
        filtered_odd_numbers,
        summed_even_numbers,
        summed_odd_numbers,
        summed_two_sums,
    ],
    jobs=[
        process_numbers,
        process_numbers_asset,
    ],
    schedules=[
        process_numbers_every_minute,
        process_numbers_asset_every_minute,
    ],
    sensors=[
        check_file_sensor,
    ],
)
