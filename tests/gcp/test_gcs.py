"""dagloom.gcp against a real GCS emulator: the pickle IO manager in both of Dagster's
forms, failures naming the bucket and key, and GCSComputeLogManager built from Dagster's
module and class names, uploading while a step runs and when it ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dagloom as dg
from dagloom.gcp import (
    GCSComputeLogManager,
    GCSPickleIOManager,
    GCSResource,
    ObjectStoreError,
    gcs_pickle_io_manager,
    gcs_resource,
)
from dagloom.instance import DagloomInstance
from tests._object_store_scenarios import (
    assets_by_key,
    failed_upload_keeps_local_copy,
    locked,
    logs_read_back_elsewhere,
    pickled,
    running_output_is_uploaded,
    step_failure_message,
    write_compute_logs_home,
)
from tests.aws.test_s3_io_manager import evens, socket_nobody_listens_on
from tests.gcp.conftest import GCSServer


def resources(endpoint: str, bucket: str) -> dict[str, Any]:
    return {
        "io_manager": gcs_pickle_io_manager.configured({"gcs_bucket": bucket, "gcs_prefix": "io"}),
        "gcs": gcs_resource.configured({"project": "test", "endpoint_url": endpoint}),
    }


def test_the_function_form_stores_each_output_as_an_object(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    result = evens.execute_in_process(resources=resources(gcs_server.endpoint, gcs_bucket))
    assert result.output_for_node("sum_numbers") == 30
    store = GCSResource(endpoint_url=gcs_server.endpoint).get_store(gcs_bucket)
    assert pickled(store, f"io/{result.run_id}/filter_even_numbers/result") == [2, 4, 6, 8, 10]


def test_the_class_form_stores_assets_by_key(gcs_server: GCSServer, gcs_bucket: str) -> None:
    gcs = GCSResource(project="test", endpoint_url=gcs_server.endpoint)
    manager = GCSPickleIOManager(gcs=gcs, gcs_bucket=gcs_bucket, gcs_prefix="assets")
    assets_by_key(manager, gcs.get_store(gcs_bucket), "assets")


def test_a_missing_bucket_fails_the_step_naming_bucket_and_key(gcs_server: GCSServer) -> None:
    result = evens.execute_in_process(
        resources=resources(gcs_server.endpoint, "no-such-bucket"), raise_on_error=False
    )
    message = step_failure_message(result)
    assert "gs://no-such-bucket/io/" in message
    assert "generate_numbers/result" in message
    assert "bucket 'no-such-bucket' does not exist" in message


def test_an_unreachable_endpoint_fails_the_step_naming_the_key() -> None:
    with socket_nobody_listens_on() as endpoint:
        gcs = GCSResource(endpoint_url=endpoint, max_attempts=1, timeout_seconds=5)
        manager = GCSPickleIOManager(gcs=gcs, gcs_bucket="b", gcs_prefix="io")
        with pytest.raises(ObjectStoreError) as caught:
            evens.execute_in_process(resources={"io_manager": manager})
    assert caught.value.bucket == "b"
    assert caught.value.key.endswith("/generate_numbers/result")
    assert "writing gs://b/io/" in str(caught.value)


def test_a_value_that_cannot_be_pickled_names_its_output(
    gcs_server: GCSServer, gcs_bucket: str
) -> None:
    with pytest.raises(ObjectStoreError, match=f"cannot be pickled for gs://{gcs_bucket}/io/"):
        locked.execute_in_process(resources=resources(gcs_server.endpoint, gcs_bucket))


def test_the_io_manager_names_a_missing_bucket_setting() -> None:
    broken = {
        "io_manager": gcs_pickle_io_manager.configured({"gcs_prefix": "io"}),
        "gcs": gcs_resource,
    }
    with pytest.raises(dg.ConfigError, match="gcs_pickle_io_manager needs its gcs_bucket"):
        evens.execute_in_process(resources=broken)


# -- compute logs ------------------------------------------------------------------------------


def write_home(home: Path, endpoint: str, bucket: str, extra: str = "") -> Path:
    return write_compute_logs_home(
        home,
        "dagster_gcp.gcs.compute_log_manager",
        "GCSComputeLogManager",
        {"bucket": bucket, "endpoint_url": endpoint},
        extra,
    )


async def test_logs_are_uploaded_and_read_back_elsewhere(
    tmp_path: Path, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    home = write_home(tmp_path / "a", gcs_server.endpoint, gcs_bucket)
    other = write_home(tmp_path / "b", gcs_server.endpoint, gcs_bucket)
    store = GCSResource(endpoint_url=gcs_server.endpoint).get_store(gcs_bucket)
    run_id, manager = await logs_read_back_elsewhere(home, other, store, GCSComputeLogManager)
    assert manager.log_location(run_id, "chatty", 0, 0) == (
        f"gs://{gcs_bucket}/compute-log/{run_id}/chatty.0.out"
    )


async def test_a_running_steps_output_is_uploaded_every_interval(
    tmp_path: Path, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    home = write_home(
        tmp_path / "home", gcs_server.endpoint, gcs_bucket, "    upload_interval: 3600\n"
    )
    store = GCSResource(endpoint_url=gcs_server.endpoint).get_store(gcs_bucket)
    await running_output_is_uploaded(home, store, GCSComputeLogManager)


async def test_a_failed_upload_keeps_the_local_copy_and_the_step_succeeds(
    tmp_path: Path, gcs_server: GCSServer
) -> None:
    home = write_home(tmp_path / "home", gcs_server.endpoint, "no-such-bucket")
    failed = await failed_upload_keeps_local_copy(home)
    assert all("does not exist" in e["error"] for e in failed)


def test_a_credentials_variable_that_is_not_set_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_GCS_KEY", raising=False)
    home = write_home(
        tmp_path / "home",
        "http://127.0.0.1:1",
        "b",
        "    json_credentials_envvar: NO_SUCH_GCS_KEY\n",
    )
    with pytest.raises(dg.ConfigError) as caught:
        DagloomInstance.open(home).compute_log_manager  # noqa: B018  # building it is the test
    assert caught.value.key_paths == ["compute_logs.config.json_credentials_envvar"]
    assert "NO_SUCH_GCS_KEY" in str(caught.value)
