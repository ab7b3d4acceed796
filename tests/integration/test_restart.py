"""A code-location process killed and started again is survived: nothing else restarts."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from dagloom.errors import ActorUnavailableError
from dagloom.messages import RunStatus
from tests.integration._stacks import process_stack, sqlite_instance, wait_healthy

pytestmark = pytest.mark.slow


async def test_killing_and_restarting_the_code_location_is_survived(tmp_path: Path) -> None:
    async with process_stack(tmp_path, sqlite_instance(tmp_path)) as stack:
        client = stack.client
        code = stack.processes["code"]
        others = {n: p.process.pid for n, p in stack.processes.items() if p.process and n != "code"}

        code.kill()
        # While it is down, a launch (validated by the code location) fails at once, stores
        # no run and leaves the API serving.
        with anyio.fail_after(30), pytest.raises(ActorUnavailableError):
            await client.launch_run("process_numbers", location_name="numbers")

        code.start()
        await wait_healthy(code)
        with anyio.fail_after(60):
            run = await client.launch_run("process_numbers", location_name="numbers")
            done = await client.wait_for_run(run.run_id)
        assert done.status == RunStatus.SUCCESS
        assert {
            n: p.process.pid for n, p in stack.processes.items() if p.process and n != "code"
        } == others
        assert all(p.process and p.process.poll() is None for p in stack.processes.values())
