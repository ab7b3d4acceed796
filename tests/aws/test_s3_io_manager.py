"""S3PickleIOManager / s3_pickle_io_manager with S3Resource / s3_resource against a real
S3-compatible server: the seed's Code 3 runs as written but for its import, and every
failure names the bucket and key."""

from __future__ import annotations

from typing import Any

import pytest

import dagloom as dg
from dagloom.aws.s3 import (
    ObjectStoreError,
    S3PickleIOManager,
    S3Resource,
    s3_pickle_io_manager,
    s3_resource,
)
from tests._object_store_scenarios import locked, pickled, step_failure_message
from tests.aws.conftest import S3Server


def seed_resources(endpoint: str, bucket: str, prefix: str) -> dict[str, Any]:
    """The seed's Code 3, with its constants filled in."""
    return {
        "io_manager": s3_pickle_io_manager.configured(
            {
                "s3_bucket": bucket,
                "s3_prefix": prefix,
            }
        ),
        "s3": s3_resource.configured(
            {
                "endpoint_url": endpoint,
                "use_ssl": False,
                "aws_access_key_id": "test",
                "aws_secret_access_key": "test",
            }
        ),
    }


@dg.op
def generate_numbers() -> list[int]:
    return list(range(1, 11))


@dg.op
def filter_even_numbers(numbers: list[int]) -> list[int]:
    return [n for n in numbers if n % 2 == 0]


@dg.op
def sum_numbers(numbers: list[int]) -> int:
    return sum(numbers)


@dg.job
def evens() -> None:
    sum_numbers(filter_even_numbers(generate_numbers()))


def test_the_seed_resources_store_each_output_as_an_object(
    s3_server: S3Server, bucket: str
) -> None:
    resources = seed_resources(s3_server.endpoint, bucket, "io")
    result = evens.execute_in_process(resources=resources)
    assert result.output_for_node("sum_numbers") == 30
    store = S3Resource(
        endpoint_url=s3_server.endpoint,
        use_ssl=False,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).get_store(bucket)
    assert pickled(store, f"io/{result.run_id}/filter_even_numbers/result") == [2, 4, 6, 8, 10]


def test_the_class_form_stores_assets_by_key(s3_server: S3Server, bucket: str) -> None:
    @dg.asset(key_prefix=["warehouse"])
    def orders() -> dict[str, int]:
        return {"n": 3}

    @dg.asset(deps=[], ins={"orders": dg.AssetIn(key=dg.AssetKey(["warehouse", "orders"]))})
    def order_count(orders: dict[str, int]) -> int:
        return orders["n"]

    s3 = S3Resource(
        endpoint_url=s3_server.endpoint,
        use_ssl=False,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    manager = S3PickleIOManager(s3_resource=s3, s3_bucket=bucket, s3_prefix="assets")
    result = dg.materialize([orders, order_count], resources={"io_manager": manager})
    assert result.success
    assert pickled(s3.get_store(bucket), "assets/warehouse/orders") == {"n": 3}
    assert result.output_for_node("order_count") == 3


def test_a_missing_bucket_fails_the_step_naming_bucket_and_key(s3_server: S3Server) -> None:
    resources = seed_resources(s3_server.endpoint, "no-such-bucket", "io")
    result = evens.execute_in_process(resources=resources, raise_on_error=False)
    message = step_failure_message(result)
    assert "s3://no-such-bucket/io/" in message and "generate_numbers/result" in message
    assert "bucket 'no-such-bucket' does not exist" in message


def test_an_unreachable_endpoint_fails_the_step_naming_the_key(bucket: str) -> None:
    with socket_nobody_listens_on() as endpoint:
        s3 = S3Resource(
            endpoint_url=endpoint,
            use_ssl=False,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            max_attempts=1,
            timeout_seconds=5,
        )
        manager = S3PickleIOManager(s3_resource=s3, s3_bucket=bucket, s3_prefix="io")
        with pytest.raises(ObjectStoreError) as caught:
            evens.execute_in_process(resources={"io_manager": manager})
    assert caught.value.bucket == bucket
    assert caught.value.key.endswith("/generate_numbers/result")
    assert f"writing s3://{bucket}/io/" in str(caught.value)


def test_refused_credentials_fail_the_step_naming_bucket_and_key(
    s3_server: S3Server, bucket: str
) -> None:
    resources = seed_resources(s3_server.endpoint, bucket, "io")
    s3_server.require_auth(True)
    try:
        result = evens.execute_in_process(resources=resources, raise_on_error=False)
    finally:
        s3_server.require_auth(False)
    message = step_failure_message(result)
    assert f"writing s3://{bucket}/io/" in message
    assert "generate_numbers/result" in message
    assert "the credentials were refused" in message


def test_a_value_that_cannot_be_pickled_names_its_output(s3_server: S3Server, bucket: str) -> None:
    resources = seed_resources(s3_server.endpoint, bucket, "io")
    with pytest.raises(ObjectStoreError, match="output 'result' of step 'make_lock' cannot be"):
        locked.execute_in_process(resources=resources)


def test_a_key_part_that_would_name_another_object_is_refused() -> None:
    """Run ids, step keys and output names are single key parts: no `/`, `..` or NUL."""
    location = S3Resource(endpoint_url="http://127.0.0.1:1", use_ssl=False).location("b", "io")
    assert location.key(["run", "step", "result"], "an output") == "io/run/step/result"
    for parts in (["..", "x"], ["run/../..", "x"], ["run", ""], ["a\0b"]):
        with pytest.raises(dg.DagloomError, match="refusing a key outside s3://b/io"):
            location.key(parts, "an output")


class socket_nobody_listens_on:  # a context manager used like a function
    """An http:// endpoint on 127.0.0.1 whose port is bound but never listens, so a
    connection is refused at once; held for the block."""

    def __enter__(self) -> str:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
