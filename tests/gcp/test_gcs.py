"""dagloom.gcp against a real GCS emulator: the pickle IO manager in both of Dagster's
forms, failures naming the bucket and key, and GCSComputeLogManager built from Dagster's
module and class names, uploading while a step runs and when it ends."""

from __future__ import annotations

import pickle
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import anyio
import obstore
import pytest
from structlog.testing import capture_logs

import dagloom as dg
from dagloom.compute_logs import read_compute_log
from dagloom.gcp import (
    GCSComputeLogManager,
    GCSPickleIOManager,
    GCSResource,
    ObjectStoreError,
    gcs_pickle_io_manager,
    gcs_resource,
)
from dagloom.instance import DagloomInstance
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
    key = f"io/{result.run_id}/filter_even_numbers/result"
    assert pickle.loads(bytes(obstore.get(store, key).bytes())) == [2, 4, 6, 8, 10]


def test_the_class_form_stores_assets_by_key(gcs_server: GCSServer, gcs_bucket: str) -> None:
    @dg.asset(key_prefix=["warehouse"])
    def orders() -> dict[str, int]:
        return {"n": 3}

    @dg.asset(ins={"orders": dg.AssetIn(key=dg.AssetKey(["warehouse", "orders"]))})
    def order_count(orders: dict[str, int]) -> int:
        return orders["n"]

    gcs = GCSResource(project="test", endpoint_url=gcs_server.endpoint)
    manager = GCSPickleIOManager(gcs=gcs, gcs_bucket=gcs_bucket, gcs_prefix="assets")
    result = dg.materialize([orders, order_count], resources={"io_manager": manager})
    assert result.success
    stored = obstore.get(gcs.get_store(gcs_bucket), "assets/warehouse/orders").bytes()
    assert pickle.loads(bytes(stored)) == {"n": 3}
    assert result.output_for_node("order_count") == 3


def test_a_missing_bucket_fails_the_step_naming_bucket_and_key(gcs_server: GCSServer) -> None:
    result = evens.execute_in_process(
        resources=resources(gcs_server.endpoint, "no-such-bucket"), raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "gs://no-such-bucket/io/" in failure.message
    assert "generate_numbers/result" in failure.message
    assert "bucket 'no-such-bucket' does not exist" in failure.message


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
    @dg.op
    def make_lock() -> Any:
        return threading.Lock()

    @dg.op
    def use(x: Any) -> None:
        del x

    @dg.job
    def locked() -> None:
        use(make_lock())

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
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagloom.yaml").write_text(
        textwrap.dedent(
            f"""
            compute_logs:
              module: dagster_gcp.gcs.compute_log_manager
              class: GCSComputeLogManager
              config:
                bucket: {bucket}
                prefix: compute-log
                endpoint_url: {endpoint}
                local_dir: compute_logs
                max_attempts: 1
                timeout_seconds: 5
            """
        )
        + extra
    )
    return home


@dg.op
async def chatty() -> int:
    print("chatty says hello")
    print("chatty warns", file=sys.stderr)
    return 1


@dg.job
def chat() -> None:
    chatty()


async def test_logs_are_uploaded_and_read_back_elsewhere(
    tmp_path: Path, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    home = write_home(tmp_path / "a", gcs_server.endpoint, gcs_bucket)
    async with DagloomInstance.open(home) as instance:
        assert isinstance(instance.compute_log_manager, GCSComputeLogManager)
        with anyio.fail_after(60):
            result = await chat.execute_in_process_async(instance=instance)
            await instance.compute_log_manager.wait_uploads()
    store = GCSResource(endpoint_url=gcs_server.endpoint).get_store(gcs_bucket)
    key = f"compute-log/{result.run_id}/chatty.0.out"
    assert bytes(obstore.get(store, key).bytes()) == b"chatty says hello\n"

    other = write_home(tmp_path / "b", gcs_server.endpoint, gcs_bucket)
    with (other / "dagloom.yaml").open("a") as file:
        file.write(f"storage:\n  sqlite:\n    base_dir: {home}\n")
    async with DagloomInstance.open(other) as instance:
        manager = instance.compute_log_manager
        assert await manager.step_keys(result.run_id) == ["chatty"]
        err = await read_compute_log(instance, result.run_id, "chatty", "stderr")
        assert err.data == b"chatty warns\n"
        assert manager.log_location(result.run_id, "chatty", 0, 0) == (
            f"gs://{gcs_bucket}/compute-log/{result.run_id}/chatty.0.out"
        )


async def test_a_running_steps_output_is_uploaded_every_interval(
    tmp_path: Path, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    home = write_home(
        tmp_path / "home", gcs_server.endpoint, gcs_bucket, "    upload_interval: 3600\n"
    )
    async with DagloomInstance.open(home) as instance:
        manager = instance.compute_log_manager
        assert isinstance(manager, GCSComputeLogManager)
        log = manager.open_step("run-1", "busy", 0)
        log.write(0, "so far\n")
        await anyio.to_thread.run_sync(manager.upload_running)
        store = GCSResource(endpoint_url=gcs_server.endpoint).get_store(gcs_bucket)
        partial = obstore.get(store, "compute-log/run-1/busy.0.out").bytes()
        assert bytes(partial) == b"so far\n"
        log.write(0, "done\n")
        manager.step_finished(log)
        with anyio.fail_after(30):
            await manager.wait_uploads()
        final = obstore.get(store, "compute-log/run-1/busy.0.out").bytes()
        assert bytes(final) == b"so far\ndone\n"


async def test_a_failed_upload_keeps_the_local_copy_and_the_step_succeeds(
    tmp_path: Path, gcs_server: GCSServer
) -> None:
    home = write_home(tmp_path / "home", gcs_server.endpoint, "no-such-bucket")
    async with DagloomInstance.open(home) as instance:
        with capture_logs() as logs, anyio.fail_after(60):
            result = await chat.execute_in_process_async(instance=instance)
            await instance.compute_log_manager.wait_uploads()
        assert result.success
        out = await read_compute_log(instance, result.run_id, "chatty")
    assert out.data == b"chatty says hello\n"
    failed = [e for e in logs if e["event"] == "compute_log_upload_failed"]
    assert {e["key"] for e in failed} == {
        f"compute-log/{result.run_id}/chatty.0.out",
        f"compute-log/{result.run_id}/chatty.0.err",
    }
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
