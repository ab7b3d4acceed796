"""examples/s3_numbers.py (the seed's Code 3) against a local S3-compatible server, in
process and in step processes, with examples/s3_dagloom.yaml's compute logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import obstore
import pytest

from dagloom.aws.s3 import S3Resource
from dagloom.code.loader import load_definitions
from dagloom.compute_logs import read_compute_log
from dagloom.execution.multiprocess import close_pools
from dagloom.instance import DagloomInstance
from tests._multiprocess import run_file_job
from tests.aws.conftest import S3Server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def example_env(
    s3_server: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch, restore_import_state: None
) -> Iterator[str]:
    monkeypatch.setenv("IO_MANAGER_S3_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("IO_MANAGER_S3_BUCKET", bucket)
    close_pools()  # warm step processes must import the example with this environment
    yield bucket
    close_pools()


@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
async def test_the_seed_example_runs_with_its_outputs_and_logs_in_s3(
    tmp_path: Path, s3_server: S3Server, example_env: str, executor: str
) -> None:
    bucket = example_env
    home = tmp_path / "home"
    home.mkdir()
    config = (EXAMPLES / "s3_dagloom.yaml").read_text()
    config = config.replace("http://127.0.0.1:9000", s3_server.endpoint)
    (home / "dagloom.yaml").write_text(config.replace("bucket: dagloom", f"bucket: {bucket}"))
    path = EXAMPLES / "s3_numbers.py"
    job = load_definitions(python_file=path).get_job_def("process_numbers")
    run_config = {"execution": {"config": {executor: {}}}}
    with anyio.fail_after(120):
        async with DagloomInstance.open(home) as instance:
            result = await run_file_job(job, path, instance, run_config)
            log = await read_compute_log(instance, result.run_id, "sum_two_sums")
    assert log.data == b"30 + 25 = 55\n"
    store = S3Resource(
        endpoint_url=s3_server.endpoint,
        use_ssl=False,
        aws_access_key_id="root",
        aws_secret_access_key="root123!",
    ).get_store(bucket)
    keys = {m["path"] for m in obstore.list(store, "").collect()}
    assert f"io-manager/{result.run_id}/sum_two_sums/result" in keys
    assert f"compute-log/{result.run_id}/sum_two_sums.0.out" in keys
