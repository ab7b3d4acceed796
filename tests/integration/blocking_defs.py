"""Jobs whose ops block until a test lets them go: in sync code (a thread-blocking wait) or in
async code (until canceled), and a quick job to launch meanwhile."""

from typing import Any

import anyio

from dagloom import Definitions, job, op
from tests.actors._runs import GATES, STARTED


@op
def block_in_sync_code(context: Any) -> str:
    gate = context.run_tags["gate"]
    STARTED[gate].set()
    GATES[gate].wait_blocking()  # blocks this thread, as time.sleep or a driver call would
    return gate


@job(description="Blocks its thread until the test opens the run's gate.")
def sync_blocking_job() -> None:
    block_in_sync_code()


@op
async def block_in_async_code(context: Any) -> None:
    STARTED[context.run_tags["gate"]].set()
    await anyio.sleep_forever()


@job(description="Waits in async code until canceled.")
def async_blocking_job() -> None:
    block_in_async_code()


@op
def one() -> int:
    return 1


@op
def plus_one(value: int) -> int:
    return value + 1


@job(description="Two quick steps.")
def quick_job() -> None:
    plus_one(one())


defs = Definitions(jobs=[sync_blocking_job, async_blocking_job, quick_job])
