"""Data version tags when assets run in step processes: each step learns the versions of
the assets materialized before it, in the run or before the run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
import pytest

from dagloom.code.loader import load_definitions
from dagloom.instance import DagloomInstance
from tests._multiprocess import MULTIPROCESS, run_file_job

pytestmark = pytest.mark.usefixtures("close_warm_pools")


def _write_versioned(tmp_path: Path) -> Path:
    path = tmp_path / "versioned.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import dagloom as dg

            @dg.asset(code_version="1")
            def first():
                return dg.Output(1, data_version="f1")

            @dg.asset(code_version="1")
            def second(first):
                return first + 1

            defs = dg.Definitions(
                assets=[first, second],
                resources={{"io_manager": dg.FilesystemIOManager(base_dir={str(tmp_path)!r})}},
            )
            """
        )
    )
    return path


async def _second_reads_first(path: Path, run_config: dict[str, object]) -> str:
    job = load_definitions(python_file=path).get_implicit_global_asset_job_def()
    with anyio.fail_after(120):
        async with DagloomInstance.ephemeral() as instance:
            await run_file_job(job, path, instance, run_config)
            [record] = await instance.get_materializations(["second"], limit=1)
    assert record.event is not None and record.event.asset_materialization is not None
    return record.event.asset_materialization.tags["dagster/input_data_version/first"]


async def test_step_processes_record_input_data_versions(tmp_path: Path) -> None:
    assert await _second_reads_first(_write_versioned(tmp_path), MULTIPROCESS) == "f1"


async def test_dask_tasks_record_input_data_versions(tmp_path: Path) -> None:
    from dagloom.dask.executor import (
        LocalClusterConfig,
        close_local_clusters,
        local_cluster_address,
    )
    from tests.dask._cluster import dask_run_config

    address = local_cluster_address(LocalClusterConfig(n_workers=1, processes=False))
    try:
        run_config = dask_run_config(address)
        assert await _second_reads_first(_write_versioned(tmp_path), run_config) == "f1"
    finally:
        close_local_clusters()
