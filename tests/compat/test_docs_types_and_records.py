"""Samples of Dagster's docs on executors, the type system and the instance's records API,
written with `import dagloom as dg`: `multi_or_in_process_executor` and its
`execution: {config: {multiprocess | in_process}}` selector; the type wrappers, DagsterTypes
with type checks and loaders; `get_run_records` / `get_event_records` from synchronous code."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

import dagloom as dg
from dagloom.code.loader import load_definitions

pytestmark = pytest.mark.usefixtures("close_warm_pools")

# -- multi_or_in_process_executor (docs: "Job execution", "Executors") -----------------------

EXECUTOR_SAMPLES = """
import os

import dagloom as dg
from dagloom import job, multi_or_in_process_executor, op


@op
def where_am_i():
    return os.getpid()


@job(executor_def=multi_or_in_process_executor)
def default_executor_job():
    where_am_i()


@job(
    config={
        "execution": {
            "config": {
                "multiprocess": {
                    "start_method": {
                        "forkserver": {},
                    },
                    "max_concurrent": 4,
                },
            }
        }
    }
)
def forkserver_job():
    where_am_i()


@job
def op_job():
    where_am_i()


defs = dg.Definitions(
    jobs=[default_executor_job, forkserver_job, op_job],
    executor=multi_or_in_process_executor,
    resources={"io_manager": dg.FilesystemIOManager(base_dir=IO_BASE_DIR)},
)
"""


@pytest.fixture
def executor_defs(tmp_path: Path) -> dg.Definitions:
    path = tmp_path / "executor_samples.py"
    path.write_text(f"IO_BASE_DIR = {str(tmp_path / 'io')!r}\n" + textwrap.dedent(EXECUTOR_SAMPLES))
    return load_definitions(python_file=path)


def _step_pid(defs: dg.Definitions, job_name: str, run_config: Any = None) -> int:
    result = defs.get_job_def(job_name).execute_in_process(run_config=run_config)
    assert result.success
    pid = result.output_for_node("where_am_i")
    assert isinstance(pid, int)
    return pid


def test_multi_or_in_process_executor_runs_each_step_in_its_own_process_by_default(
    executor_defs: dg.Definitions,
) -> None:
    assert executor_defs.get_job_def("default_executor_job").executor_def.name == (
        "multi_or_in_process"
    )
    assert _step_pid(executor_defs, "default_executor_job") != os.getpid()


def test_in_process_execution_chosen_by_the_docs_yaml(executor_defs: dg.Definitions) -> None:
    run_config = yaml.safe_load("execution:\n  config:\n    in_process:\n")
    assert run_config == {"execution": {"config": {"in_process": None}}}
    assert _step_pid(executor_defs, "default_executor_job", run_config) == os.getpid()


def test_definitions_executor_is_the_default_of_jobs_without_one(
    executor_defs: dg.Definitions,
) -> None:
    job = executor_defs.get_job_def("op_job")
    assert job.executor_def is dg.multi_or_in_process_executor
    assert _step_pid(executor_defs, "op_job") != os.getpid()
    in_process = {"execution": {"config": {"in_process": {}}}}
    assert _step_pid(executor_defs, "op_job", in_process) == os.getpid()


def test_the_docs_forkserver_job_runs_its_steps_in_forked_server_children(
    executor_defs: dg.Definitions,
) -> None:
    assert _step_pid(executor_defs, "forkserver_job") != os.getpid()


def test_configured_multi_or_in_process_executor_keeps_its_choice() -> None:
    configured = dg.multi_or_in_process_executor.configured({"in_process": {}})

    @dg.op
    def where_am_i() -> int:
        return os.getpid()

    @dg.job(executor_def=configured)
    def in_process_job() -> None:
        where_am_i()

    result = in_process_job.execute_in_process()
    assert result.success
    assert result.output_for_node("where_am_i") == os.getpid()


def test_multiprocess_and_in_process_together_are_a_config_error() -> None:
    @dg.op
    def noop() -> None:
        return None

    @dg.job(executor_def=dg.multi_or_in_process_executor)
    def either() -> None:
        noop()

    both = {
        "execution": {"config": {"multi_or_in_process": {"multiprocess": {}, "in_process": {}}}}
    }
    with pytest.raises(dg.DagsterInvalidConfigError, match="not both"):
        dg.validate_run_config(either, both)
    bad_start = {"execution": {"config": {"multiprocess": {"start_method": {"fork": {}}}}}}
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        dg.validate_run_config(either, bad_start)
    assert "execution.config.start_method.fork" in caught.value.key_paths
