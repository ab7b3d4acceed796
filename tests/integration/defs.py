"""Jobs the integration suite launches beside the seed example: one that fails a step, one
that waits until canceled, and one with required config."""

import anyio

from dagloom import Config, Definitions, job, op


@op
def explode() -> int:
    raise ValueError("boom")


@op
def after_explode(value: int) -> int:
    return value


@job(description="Fails its first step.")
def failing_job():
    after_explode(explode())


@op
async def wait_forever() -> None:
    # Waits until the run is canceled; the suite cancels it once the step has started.
    await anyio.sleep_forever()


@job(description="Runs until canceled.")
def endless_job():
    wait_forever()


class LimitConfig(Config):
    limit: int


@op
def count_to(config: LimitConfig) -> int:
    return config.limit


@job(description="Needs ops.count_to.config.limit.")
def configured_job():
    count_to()


defs = Definitions(jobs=[failing_job, endless_job, configured_job])
