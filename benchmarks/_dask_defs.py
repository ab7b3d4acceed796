"""Jobs of the Dask benchmark: a fan and a chain of 200 steps, and a fan of CPU-bound steps,
each step calling the same function the bare-Dask floor submits."""

from __future__ import annotations

import os
import time

from dagloom import Definitions, DynamicOut, DynamicOutput, FilesystemIOManager, job, op

WIDTH = 200
CPU_WIDTH = int(os.environ.get("DAGLOOM_BENCH_CPU_WIDTH", "40"))
CPU_SECONDS = 0.05


def work(x: int) -> int:
    """What every step does: a little arithmetic."""
    return x + 1


def burn(x: int) -> int:
    """A CPU-bound step: spin for CPU_SECONDS."""
    end = time.perf_counter() + CPU_SECONDS
    n = 0
    while time.perf_counter() < end:
        n += 1
    return x + 1


@op(out=DynamicOut())
def spread(context) -> object:  # type: ignore[no-untyped-def]
    width = int(context.run_tags.get("width", str(WIDTH)))
    for i in range(width):
        yield DynamicOutput(i, mapping_key=str(i))


@op
def step(x: int) -> int:
    return work(x)


@op
def cpu_step(x: int) -> int:
    return burn(x)


@op
def total(values: list[int]) -> int:
    return sum(values)


@op
def first() -> int:
    return work(0)


@job
def fan() -> None:
    total(spread().map(step).collect())


@job
def cpu_fan() -> None:
    total(spread().map(cpu_step).collect())


@job
def chain() -> None:
    value = first()
    for _ in range(WIDTH - 1):
        value = step(value)


defs = Definitions(
    jobs=[fan, chain, cpu_fan],
    resources={
        "io_manager": FilesystemIOManager(
            base_dir=os.environ.get("DAGLOOM_BENCH_IO", "/tmp/dagloom-bench-io")
        )
    },
)
