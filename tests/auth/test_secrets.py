"""Secrets given as `EnvVar` or `{env: …}` never reach events, logs, stored runs or job
snapshots: a run that uses (and fails with) a secret-holding resource is grepped all over."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from dagloom import ConfigurableResource, Definitions, EnvVar, job, op
from dagloom.instance import DagloomInstance

SECRET = "pa55-w0rd-from-the-environment"


class Warehouse(ConfigurableResource):
    password: str
    host: str = "db"

    def connect(self) -> str:
        return f"connected to {self.host}"


@op
def query(warehouse: Warehouse) -> str:
    return warehouse.connect()


@op
def fails(value: str) -> None:
    raise RuntimeError(f"the query said {value!r}")


@job
def secret_job():
    fails(query())


defs = Definitions(jobs=[secret_job], resources={"warehouse": Warehouse(password=EnvVar("WH_PW"))})


async def test_an_env_var_secret_is_nowhere_in_events_logs_runs_or_snapshots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WH_PW", SECRET)
    instance = DagloomInstance.ephemeral()
    job_def = defs.get_job_def("secret_job")
    with capture_logs() as logs:
        async with instance:
            result = await job_def.execute_in_process_async(instance=instance, raise_on_error=False)
            assert not result.success
            events = await instance.get_events(result.run_id)
            run = await instance.get_run(result.run_id)
            assert run is not None
            snapshot = await instance.run_storage.get_job_snapshot(run.job_snapshot_id)
    assert events
    for record in events:
        assert SECRET.encode() not in bytes(record)
    assert SECRET.encode() not in bytes(run)
    assert snapshot is None or SECRET.encode() not in snapshot
    assert SECRET not in repr(logs)
