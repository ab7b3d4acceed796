"""The multiprocess executor: steps run in warm step processes and meet through the IO manager."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import anyio
import pytest

from dagloom.code.loader import load_definitions
from dagloom.errors import DefinitionError
from dagloom.execution.origin import CodeOrigin
from dagloom.execution.run import execute_job_in_process
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, RunStatus
from tests._multiprocess import MULTIPROCESS, run_file_job

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "numbers.py"


def write_seed_with_filesystem_io(tmp_path: Path) -> Path:
    """A definitions file that serves the seed job with a FilesystemIOManager under tmp_path.

    The seed file is loaded by path through the loader, never by putting examples/ on
    sys.path (it would shadow the standard library's `numbers`).
    """
    path = tmp_path / "seed_fs.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from dagloom import Definitions, FilesystemIOManager
            from dagloom.code.loader import load_definitions

            _job = load_definitions(python_file={str(EXAMPLE)!r}).get_job_def("process_numbers")
            defs = Definitions(
                jobs=[_job],
                resources={{"io_manager": FilesystemIOManager(base_dir={str(tmp_path / "io")!r})}},
            )
            """
        )
    )
    return path


pytestmark = pytest.mark.usefixtures("close_warm_pools")


async def test_the_seed_job_runs_in_step_processes_selected_by_run_config(tmp_path: Path) -> None:
    """Run config picks the multiprocess executor; the outputs meet through files; 55."""
    path = write_seed_with_filesystem_io(tmp_path)
    job = load_definitions(python_file=path).get_job_def("process_numbers")
    with anyio.fail_after(120):
        async with DagloomInstance.ephemeral() as instance:
            result = await run_file_job(job, path, instance, MULTIPROCESS)
            assert result.output_for_node("sum_two_sums") == 55
            run = await instance.get_run(result.run_id)
            assert run is not None and run.status == RunStatus.SUCCESS
            starts = [e for e in result.all_events if e.event_type == EventType.STEP_START]
            assert len(starts) == 6
    assert (tmp_path / "io" / result.run_id / "sum_two_sums" / "result").exists()


async def test_a_job_with_executor_def_runs_its_steps_in_processes_and_a_step_can_fail(
    tmp_path: Path,
) -> None:
    """`executor_def=multiprocess_executor` picks it per job; a raising op fails its step and
    skips what depends on it; the origin is inferred from the file the job came from."""
    path = tmp_path / "mp_jobs.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import os
            from dagloom import FilesystemIOManager, job, multiprocess_executor, op

            @op
            def pid():
                return os.getpid()

            @op
            def boom(value):
                raise ValueError(f"no good: {{value > 0}}")

            @op
            def after(value):
                return value

            @job(
                executor_def=multiprocess_executor,
                resource_defs={{"io_manager": FilesystemIOManager(base_dir={str(tmp_path)!r})}},
            )
            def failing():
                after(boom(pid()))
            """
        )
    )
    job = load_definitions(python_file=path).get_job_def("failing")
    with anyio.fail_after(120):
        result = await job.execute_in_process_async(raise_on_error=False)
    assert not result.success
    by_type = {e.event_type: e for e in result.all_events}
    assert "ValueError: no good: True" in by_type[EventType.STEP_FAILURE].message
    assert by_type[EventType.STEP_SKIPPED].step_key == "after"

    assert result.output_for_node("pid") != os.getpid()


async def test_an_in_memory_io_manager_is_refused_with_the_fix(tmp_path: Path) -> None:
    job = load_definitions(python_file=EXAMPLE).get_job_def("process_numbers")
    with anyio.fail_after(60):
        result = await execute_job_in_process(
            job,
            run_config=MULTIPROCESS,
            raise_on_error=False,
            code_origin=CodeOrigin(python_file=str(EXAMPLE)),
        )
    assert not result.success
    failure = result.get_run_failure_event()
    assert "keep outputs in memory" in failure.message
    assert "FilesystemIOManager" in failure.message
    with pytest.raises(DefinitionError, match="in memory"):
        await execute_job_in_process(
            job, run_config=MULTIPROCESS, code_origin=CodeOrigin(python_file=str(EXAMPLE))
        )


async def test_collected_values_follow_yield_order_across_step_processes(tmp_path: Path) -> None:
    path = tmp_path / "mp_dynamic.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from dagloom import (
                DynamicOut, DynamicOutput, FilesystemIOManager, job, multiprocess_executor, op
            )

            @op(out=DynamicOut())
            def backwards():
                for n in [3, 10, 2]:
                    yield DynamicOutput(n, mapping_key=f"k{{n}}")

            @op
            def double(n):
                return 2 * n

            @op
            def as_list(values):
                return values

            @job(
                executor_def=multiprocess_executor,
                resource_defs={{"io_manager": FilesystemIOManager(base_dir={str(tmp_path)!r})}},
            )
            def ordered():
                as_list(backwards().map(double).collect())
            """
        )
    )
    job = load_definitions(python_file=path).get_job_def("ordered")
    with anyio.fail_after(120):
        result = await job.execute_in_process_async()
    assert result.output_for_node("as_list") == [6, 20, 4]


VERSIONED = """
import os
from dagloom import Definitions, FilesystemIOManager, job, op

@op
def answer() -> tuple:
    return ({value}, os.getpid())

@job
def versioned() -> None:
    answer()

defs = Definitions(
    jobs=[versioned], resources={{"io_manager": FilesystemIOManager(base_dir={base!r})}}
)
"""


async def test_a_warm_step_process_imports_the_code_again_when_the_run_is_newer(
    tmp_path: Path,
) -> None:
    """The step process imported version 1; the next run executes version 2 (the file
    changed and the worker reloaded it): the same step process imports it again."""
    from dagloom.actors.code_location import load_location

    path = tmp_path / "versioned.py"
    origin = CodeOrigin(python_file=str(path))
    config = {"execution": {"config": {"multiprocess": {"max_concurrent": 1}}}}
    outputs = []
    with anyio.fail_after(120):
        for value in (1, 2):
            path.write_text(VERSIONED.format(value=value, base=str(tmp_path / "io")))
            loaded = load_location(origin, location_name="v", loaded_at=0.0, fresh=True)
            result = await execute_job_in_process(
                loaded.definitions.get_job_def("versioned"),
                run_config=config,
                raise_on_error=False,
                code_origin=origin,
            )
            assert result.success, [e.message for e in result.all_events]
            outputs.append(result.output_for_node("answer"))
    (first, first_pid), (second, second_pid) = outputs
    assert (first, second) == (1, 2)
    assert first_pid == second_pid  # the same warm step process
