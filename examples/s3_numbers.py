"""The numbers job with its outputs in S3: the seed's Code 1 and Code 3, unchanged but for
the import (`dagster_aws.s3` -> `dagloom.aws.s3`).

Needs `pip install 'dagloom[s3]'` and an S3-compatible server; for a local one,
`pip install 'moto[server]' && python -m moto.server -H 127.0.0.1 -p 9000` and create the
bucket (`curl -X PUT http://127.0.0.1:9000/dagloom`). The settings come from the
environment, with defaults for that local server.
"""

import os

from dagloom import Definitions, job, op
from dagloom.aws.s3 import s3_pickle_io_manager, s3_resource

IO_MANAGER_S3_ENDPOINT_URL = os.environ.get("IO_MANAGER_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
IO_MANAGER_S3_BUCKET = os.environ.get("IO_MANAGER_S3_BUCKET", "dagloom")
IO_MANAGER_S3_PREFIX = os.environ.get("IO_MANAGER_S3_PREFIX", "io-manager")
IO_MANAGER_S3_ACCESS_KEY_ID = os.environ.get("IO_MANAGER_S3_ACCESS_KEY_ID", "root")
IO_MANAGER_S3_SECRET_ACCESS_KEY = os.environ.get("IO_MANAGER_S3_SECRET_ACCESS_KEY", "root123!")


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
    print(f"{first_number} + {second_number} = {first_number + second_number}")
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


def get_io_manager():
    return {
        "io_manager": s3_pickle_io_manager.configured(
            {
                "s3_bucket": IO_MANAGER_S3_BUCKET,
                "s3_prefix": IO_MANAGER_S3_PREFIX,
            }
        ),
        "s3": s3_resource.configured(
            {
                "endpoint_url": IO_MANAGER_S3_ENDPOINT_URL,
                "use_ssl": False,
                "aws_access_key_id": IO_MANAGER_S3_ACCESS_KEY_ID,
                "aws_secret_access_key": IO_MANAGER_S3_SECRET_ACCESS_KEY,
            }
        ),
    }


defs = Definitions(
    jobs=[process_numbers],
    resources=get_io_manager(),
)
