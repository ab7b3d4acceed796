"""Re-execution: a run with a parent and steps to execute runs only those steps, and loads
the other steps' outputs from the nearest run of its lineage that stored them, with either
executor."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import anyio
import pytest

from dagloom.code.loader import load_definitions
from dagloom.execution.multiprocess import close_pools
from dagloom.execution.origin import CodeOrigin
from dagloom.execution.run import execute_job_in_process
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, Run, RunStatus

DEFS = """
from pathlib import Path

from dagloom import FilesystemIOManager, job, op

HERE = Path({here!r})


@op
def load() -> int:
    with (HERE / "calls.txt").open("a") as calls:
        calls.write("load\\n")
    return 20


@op
def flaky(value: int) -> int:
    if not (HERE / "ok").exists():
        raise RuntimeError("not yet")
    return value + 1


@op
def report(value: int) -> int:
    return value * 2


@job(resource_defs={{"io_manager": FilesystemIOManager(base_dir={io!r})}})
def pipeline() -> None:
    report(flaky(load()))
"""

EXECUTORS = {
    "in_process": {},
    "multiprocess": {"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}},
}


@pytest.fixture(autouse=True, scope="module")
def _close_warm_pools() -> object:
    yield None
    close_pools()


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
async def test_a_re_execution_reuses_outputs_from_its_lineage(
    tmp_path: Path, executor: str
) -> None:
    path = tmp_path / "reexec_defs.py"
    path.write_text(textwrap.dedent(DEFS.format(here=str(tmp_path), io=str(tmp_path / "io"))))
    job = load_definitions(python_file=path).get_job_def("pipeline")
    origin = CodeOrigin(python_file=str(path))
    run_config = EXECUTORS[executor]
    with anyio.fail_after(120):
        async with DagloomInstance.ephemeral() as instance:
            first = await execute_job_in_process(
                job,
                run_config=run_config,
                instance=instance,
                raise_on_error=False,
                code_origin=origin,
            )
            assert not first.success

            async def reexecute(parent: str) -> Run:
                run = await instance.create_run(
                    Run(
                        job_name="pipeline",
                        parent_run_id=parent,
                        step_keys_to_execute=["flaky", "report"],
                    )
                )
                await execute_job_in_process(
                    job,
                    run_config=run_config,
                    instance=instance,
                    raise_on_error=False,
                    run_id=run.run_id,
                    run_is_stored=True,
                    code_origin=origin,
                    parent_run_id=parent,
                    step_keys_to_execute=run.step_keys_to_execute,
                )
                stored = await instance.get_run(run.run_id)
                assert stored is not None
                return stored

            second = await reexecute(first.run_id)  # fails again: `flaky` still raises
            assert second.status == RunStatus.FAILURE
            (tmp_path / "ok").touch()
            third = await reexecute(second.run_id)  # `load` comes from the grandparent
            assert third.status == RunStatus.SUCCESS
            assert third.root_run_id == first.run_id
            started = [
                r.event.step_key
                for r in await instance.get_events(third.run_id)
                if r.event is not None and r.event.event_type == EventType.STEP_START
            ]
            assert sorted(started) == ["flaky", "report"]
    assert (tmp_path / "calls.txt").read_text() == "load\n"
    assert not (tmp_path / "io" / third.run_id / "load").exists()
    with (tmp_path / "io" / third.run_id / "report" / "result").open("rb") as handle:
        assert pickle.load(handle) == 42
