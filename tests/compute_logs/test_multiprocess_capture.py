"""Capturing step processes' output: their own file descriptors, so C-level writes and
child processes land in the step's log."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
import pytest

from dagloom.code.loader import load_definitions
from dagloom.compute_logs import read_compute_log, set_console_echo
from dagloom.instance import DagloomInstance
from tests._multiprocess import MULTIPROCESS, run_file_job

pytestmark = pytest.mark.usefixtures("close_warm_pools")


def _definitions(tmp_path: Path) -> Path:
    path = tmp_path / "printing.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import os, subprocess, sys
            from dagloom import Definitions, FilesystemIOManager, job, op

            @op
            def first():
                print("python print")
                sys.stdout.flush()
                os.write(1, b"fd write\\n")
                subprocess.run([sys.executable, "-c", "print('child process')"], check=True)
                print("to stderr", file=sys.stderr)
                return 1

            @op
            def second(x):
                print(f"second got {{x}}")
                return x

            @job
            def printing():
                second(first())

            defs = Definitions(
                jobs=[printing],
                resources={{"io_manager": FilesystemIOManager(base_dir={str(tmp_path / "io")!r})}},
            )
            """
        )
    )
    return path


async def test_step_processes_write_their_fds_to_the_step_log(tmp_path: Path) -> None:
    path = _definitions(tmp_path)
    job = load_definitions(python_file=path).get_job_def("printing")
    set_console_echo(False)
    try:
        with anyio.fail_after(120):
            async with DagloomInstance.open(tmp_path / "home") as instance:
                result = await run_file_job(job, path, instance, MULTIPROCESS)
                first = await read_compute_log(instance, result.run_id, "first")
                first_err = await read_compute_log(instance, result.run_id, "first", "stderr")
                second = await read_compute_log(instance, result.run_id, "second")
    finally:
        set_console_echo(True)
    assert first.data.decode().splitlines() == ["python print", "fd write", "child process"]
    assert first_err.data == b"to stderr\n"
    assert second.data == b"second got 1\n"
