"""S3ComputeLogManager against a real S3-compatible server: built from the seed's
`compute_logs` section, uploads each attempt's logs when it ends, reads them back on
another machine, and never fails a step for an upload."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import obstore
import pytest
from obstore.store import ObjectStore
from structlog.testing import capture_logs

import dagloom as dg
from dagloom.aws.s3 import S3ComputeLogManager, S3Resource
from dagloom.compute_logs import read_compute_log
from dagloom.compute_logs.capture import STDOUT
from dagloom.instance import DagloomInstance
from tests._object_store_scenarios import (
    append_config,
    chatty,
    failed_upload_keeps_local_copy,
    logs_read_back_elsewhere,
    write_config,
)
from tests.aws.conftest import S3Server


def write_home(home: Path, endpoint: str, bucket: str, local_dir: str = "compute_logs") -> Path:
    """A home whose dagloom.yaml has the seed's compute_logs section (Dagster's names)."""
    return write_config(
        home,
        f"""
        compute_logs:
          module: "dagster_obstore.s3.compute_log_manager"
          class: "S3ComputeLogManager"
          config:
            access_key_id: root
            allow_http: true
            allow_invalid_certificates: true
            bucket: {bucket}
            endpoint: {endpoint}
            prefix: compute-log
            region: default
            secret_access_key: root123!
            local_dir: {local_dir}
            max_attempts: 1
            timeout_seconds: 5
        """,
    )


def _store(s3_server: S3Server, bucket: str) -> ObjectStore:
    return S3Resource(
        endpoint_url=s3_server.endpoint,
        use_ssl=False,
        aws_access_key_id="root",
        aws_secret_access_key="root123!",
    ).get_store(bucket)


async def test_logs_are_uploaded_and_read_back_elsewhere(
    tmp_path: Path, s3_server: S3Server, bucket: str
) -> None:
    home = write_home(tmp_path / "a", s3_server.endpoint, bucket)
    # Another machine: same storage, its own (empty) local folder.
    other = write_home(tmp_path / "b", s3_server.endpoint, bucket, local_dir="elsewhere")
    store = _store(s3_server, bucket)
    run_id, _ = await logs_read_back_elsewhere(home, other, store, S3ComputeLogManager)
    async with DagloomInstance.open(other) as instance:
        manager = instance.compute_log_manager
        assert await manager.attempts(run_id, "chatty") == [0]
        out = await read_compute_log(instance, run_id, "chatty")
        tail = await read_compute_log(instance, run_id, "chatty", cursor=7, max_bytes=4)
    assert not (other / "elsewhere").exists()
    assert out.data == b"chatty says hello\n"
    assert (tail.data, tail.cursor) == (b"says", 11)


async def test_a_failed_upload_keeps_the_local_copy_and_the_step_succeeds(
    tmp_path: Path, s3_server: S3Server
) -> None:
    home = write_home(tmp_path / "home", s3_server.endpoint, "no-such-bucket")
    failed = await failed_upload_keeps_local_copy(home)
    assert all(e["bucket"] == "no-such-bucket" for e in failed)
    assert "does not exist" in failed[0]["error"]


def test_dagster_aws_names_configure_it_too(tmp_path: Path) -> None:
    """`endpoint_url`, `use_ssl` and `verify` (dagster_aws's manager) are accepted."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagloom.yaml").write_text(
        "compute_logs:\n"
        "  module: dagster_aws.s3.compute_log_manager\n"
        "  class: S3ComputeLogManager\n"
        "  config: {bucket: logs, endpoint_url: 'http://127.0.0.1:9', use_ssl: false}\n"
    )
    manager = DagloomInstance.open(home).compute_log_manager
    assert isinstance(manager, S3ComputeLogManager)
    assert manager.describe() == "S3ComputeLogManager at s3://logs/dagster"


def test_a_wrong_compute_logs_section_names_the_key_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagloom.yaml").write_text(
        "compute_logs:\n  class: S3ComputeLogManager\n  config: {prefix: x, bukket: y}\n"
    )
    try:
        DagloomInstance.open(home).compute_log_manager  # noqa: B018  # building it is the test
    except dg.ConfigError as exc:
        assert exc.key_paths == ["compute_logs.config.bucket", "compute_logs.config.bukket"]
        assert str(home / "dagloom.yaml") in str(exc)
    else:
        raise AssertionError("no ConfigError")


def _object(s3_server: S3Server, bucket: str, key: str) -> bytes | None:
    try:
        return bytes(obstore.get(_store(s3_server, bucket), key).bytes())
    except FileNotFoundError:
        return None


async def test_upload_interval_uploads_a_running_steps_output_before_it_ends(
    tmp_path: Path, s3_server: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = write_home(tmp_path / "home", s3_server.endpoint, bucket)
    append_config(home, "    upload_interval: 0.05\n")
    async with DagloomInstance.open(home) as instance:
        manager = instance.compute_log_manager
        assert isinstance(manager, S3ComputeLogManager)
        assert manager.upload_interval == 0.05
        key = "compute-log/run-1/busy.0.out"
        rounds = threading.Event()
        upload_running = manager.upload_running

        def observed() -> None:
            upload_running()
            if _object(s3_server, bucket, key) == b"first\n":
                rounds.set()

        monkeypatch.setattr(manager, "upload_running", observed)
        log = manager.open_step("run-1", "busy", 0)
        log.write(STDOUT, "first\n")
        # The background thread uploads the partial log on its own.
        with anyio.fail_after(30):
            await anyio.to_thread.run_sync(rounds.wait)
        assert _object(s3_server, bucket, key) == b"first\n"
        log.write(STDOUT, "second\n")
        await anyio.to_thread.run_sync(upload_running)
        assert _object(s3_server, bucket, key) == b"first\nsecond\n"
        log.write(STDOUT, "last\n")
        manager.step_finished(log)
        with anyio.fail_after(30):
            await manager.wait_uploads()
        assert _object(s3_server, bucket, key) == b"first\nsecond\nlast\n"
        # Ended: nothing is uploaded for it any more, and the thread stops.
        await anyio.to_thread.run_sync(upload_running)
        assert _object(s3_server, bucket, key) == b"first\nsecond\nlast\n"


async def test_a_failing_partial_upload_is_logged_once_and_the_step_goes_on(
    tmp_path: Path, s3_server: S3Server
) -> None:
    home = write_home(tmp_path / "home", s3_server.endpoint, "no-such-bucket")
    append_config(home, "    upload_interval: 3600\n")
    async with DagloomInstance.open(home) as instance:
        manager = instance.compute_log_manager
        assert isinstance(manager, S3ComputeLogManager)
        log = manager.open_step("run-2", "busy", 0)
        log.write(STDOUT, "kept\n")
        with capture_logs() as logs:
            for _ in range(3):
                await anyio.to_thread.run_sync(manager.upload_running)
        partial = [e for e in logs if e["event"] == "compute_log_upload_failed"]
        assert len(partial) == 1 and partial[0]["partial"] is True
        assert partial[0]["bucket"] == "no-such-bucket"
        manager.step_finished(log)
        with anyio.fail_after(30):
            await manager.wait_uploads()
        assert (await manager.read("run-2", "busy")).data == b"kept\n"


def test_upload_interval_must_be_positive(tmp_path: Path) -> None:
    home = write_home(tmp_path / "home", "http://127.0.0.1:1", "b")
    append_config(home, "    upload_interval: 0\n")
    with pytest.raises(dg.ConfigError) as caught:
        DagloomInstance.open(home).compute_log_manager  # noqa: B018  # building it is the test
    assert caught.value.key_paths == ["compute_logs.config.upload_interval"]


async def test_the_webserver_names_and_serves_logs_kept_in_the_bucket(
    tmp_path: Path, s3_server: S3Server, bucket: str
) -> None:
    from tests.webserver.extras_node import serve_extras
    from tests.webserver.test_compute_logs_graphql import _run_talking

    home = write_home(tmp_path / "home", s3_server.endpoint, bucket)
    async with serve_extras(home) as web:
        run_id = await _run_talking(web)
        shutil.rmtree(home / "compute_logs")  # only the bucket has them now
        meta = await web.data(
            "query($k: [String!]!) { capturedLogsMetadata(logKey: $k) { stdoutLocation"
            " stdoutDownloadUrl } }",
            {"k": [run_id, "compute_logs", "talk"]},
        )
        found = meta["capturedLogsMetadata"]
        assert found["stdoutLocation"] == f"s3://{bucket}/compute-log/{run_id}/talk.0.out"
        async with web.session.get(web.url + found["stdoutDownloadUrl"]) as response:
            assert response.status == 200
            assert await response.text() == "first line\nsecond line\n"


@dg.op
async def chatty_too() -> int:
    print("another step speaks")
    return 2


@dg.job
def chat_twice() -> None:
    chatty()
    chatty_too()


async def test_after_a_failed_upload_the_others_are_not_tried(tmp_path: Path) -> None:
    """A store that is down costs one request, not one per log: the other uploads of the
    cooldown are logged as not tried, and the local copies stay."""
    from tests.aws.test_s3_io_manager import socket_nobody_listens_on

    with socket_nobody_listens_on() as endpoint:
        home = write_home(tmp_path / "home", endpoint, "logs")
        async with DagloomInstance.open(home) as instance:
            manager = instance.compute_log_manager
            assert isinstance(manager, S3ComputeLogManager)
            manager._uploads = ThreadPoolExecutor(1)  # one upload at a time: a strict order
            with capture_logs() as logs, anyio.fail_after(60):
                result = await chat_twice.execute_in_process_async(instance=instance)
            assert result.success
            out = await read_compute_log(instance, result.run_id, "chatty_too")
    assert out.data == b"another step speaks\n"
    failed = [e for e in logs if e["event"] == "compute_log_upload_failed"]
    assert len(failed) == 3  # chatty's .out and .err, chatty_too's .out
    tried = [e for e in failed if not e["error"].startswith("not tried")]
    assert len(tried) == 1
    assert all("less than 60 s ago" in e["error"] for e in failed if e not in tried)
