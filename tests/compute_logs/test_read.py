"""Reading compute logs while the step runs: `tail_compute_log` follows the latest attempt
until the run ends."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import dagloom as dg
from dagloom.compute_logs import LogChunk, read_compute_log, tail_compute_log
from dagloom.instance import DagloomInstance


async def test_a_tail_sees_a_running_steps_lines_and_ends_with_its_run(tmp_path: Path) -> None:
    release = anyio.Event()
    printed = anyio.Event()

    @dg.op(retry_policy=dg.RetryPolicy(max_retries=1))
    async def slow(context: dg.OpExecutionContext) -> None:
        print(f"attempt {context.retry_number} starts")
        if context.retry_number == 0:
            printed.set()
            await release.wait()
            raise RuntimeError("try again")
        print("second attempt done")

    @dg.job
    def slow_job() -> None:
        slow()

    chunks: list[LogChunk] = []
    async with DagloomInstance.open(tmp_path) as instance:
        run_ids: list[str] = []

        async def execute() -> None:
            result = await slow_job.execute_in_process_async(
                instance=instance, run_id="run-1", raise_on_error=False
            )
            run_ids.append(result.run_id)

        with anyio.fail_after(120):  # a loaded CI machine; normally about a second
            async with anyio.create_task_group() as tg:
                tg.start_soon(execute)
                await printed.wait()
                async for chunk in tail_compute_log(instance, "run-1", "slow", poll_interval=0.01):
                    chunks.append(chunk)
                    release.set()  # the first line was read while the step ran
    assert run_ids == ["run-1"]
    assert chunks[0].attempt == 0  # read while the first attempt ran
    # a line may arrive in more than one chunk (the text and its newline are separate writes)
    assert b"".join(c.data for c in chunks if c.attempt == 0) == b"attempt 0 starts\n"
    assert b"".join(c.data for c in chunks if c.attempt == 1) == (
        b"attempt 1 starts\nsecond attempt done\n"
    )


async def test_reading_an_unknown_run_names_it(tmp_path: Path) -> None:
    async with DagloomInstance.open(tmp_path) as instance:
        with pytest.raises(dg.DagloomError, match="no-such-run"):
            await read_compute_log(instance, "no-such-run", "step")
        with pytest.raises(dg.DagloomError, match="no-such-run"):
            async for _ in tail_compute_log(instance, "no-such-run", "step"):
                pass
