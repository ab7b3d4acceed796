"""What the tests of step processes share: the run config that picks the multiprocess
executor, and a run of a job loaded from a file that must succeed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagloom.execution.origin import CodeOrigin
from dagloom.execution.run import execute_job_in_process
from dagloom.instance import DagloomInstance

MULTIPROCESS = {"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}}


async def run_file_job(
    job: Any, path: Path, instance: DagloomInstance, run_config: dict[str, Any]
) -> Any:
    """Runs `job`, loaded from the definitions file `path`, on `instance` with `run_config`
    (its step processes load `path`), and asserts that it succeeded, naming what failed."""
    result = await execute_job_in_process(
        job,
        run_config=run_config,
        instance=instance,
        raise_on_error=False,
        code_origin=CodeOrigin(python_file=str(path)),
    )
    assert result.success, [e.message for e in result.all_events]
    return result
