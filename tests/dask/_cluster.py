"""What the Dask tests share: a real cluster of processes, a definitions file, run config."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from tests._ports import reserved_ports

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "numbers.py"
START_TIMEOUT = 120.0


@dataclass
class Cluster:
    """A `dask scheduler` and its `dask worker` processes on 127.0.0.1."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]


def _wait_for_workers(address: str, count: int) -> None:
    """Poll the scheduler through a client until `count` workers serve (at most
    START_TIMEOUT seconds)."""
    from distributed import Client

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with Client(address, timeout=5, set_as_default=False) as client:
                client.wait_for_workers(count, timeout=max(1.0, deadline - time.monotonic()))
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # the scheduler is not listening yet: poll again


@contextmanager
def dask_cluster(workers: int = 2, threads: int = 2) -> Iterator[Cluster]:
    """Start `dask scheduler` and `workers` `dask worker` processes (each `threads` threads)
    and yield once all serve; terminate them after."""
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    with reserved_ports(["scheduler"]) as ports:
        address = f"tcp://127.0.0.1:{ports['scheduler']}"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        scheduler = subprocess.Popen(
            [*dask, "--host", "127.0.0.1", "--port", str(ports["scheduler"]), "--no-dashboard"],
            **quiet,
        )
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    str(threads),
                    "--no-dashboard",
                    "--name",
                    f"worker-{i}",
                ],
                **quiet,
            )
            for i in range(workers)
        ]
        cluster = Cluster(address, scheduler, procs)
        try:
            _wait_for_workers(address, workers)
            yield cluster
        finally:
            for proc in [*procs, scheduler]:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in [*procs, scheduler]:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def dask_run_config(address: str, **options: Any) -> dict[str, Any]:
    """Run config that picks the Dask executor on the scheduler at `address`, with `options`
    (more of its config)."""
    config = {"cluster": {"existing": {"address": address}}, **options}
    return {"execution": {"config": {"dask": config}}}


def write_definitions(directory: Path) -> Path:
    """A definitions file: the seed job, an asset job, a fan of 200 steps, a flaky step under
    a retry policy, and slow steps that announce themselves; outputs in `directory/io`."""
    path = directory / "dask_defs.py"
    marks = directory / "marks"
    marks.mkdir(exist_ok=True)
    path.write_text(
        textwrap.dedent(
            f"""
            import os
            import time
            from pathlib import Path

            from dagloom import (
                Definitions, DynamicOut, DynamicOutput, FilesystemIOManager, RetryPolicy,
                asset, define_asset_job, job, op,
            )
            from dagloom.code.loader import load_definitions

            MARKS = Path({str(marks)!r})
            _seed = load_definitions(python_file={str(EXAMPLE)!r}).get_job_def("process_numbers")

            @asset
            def raw():
                return [1, 2, 3]

            @asset
            def total(raw):
                return sum(raw)

            assets_job = define_asset_job("assets_job", selection=[raw, total])

            @op(out=DynamicOut())
            def spread(context):
                for i in range(int(context.run_tags.get("width", "200"))):
                    yield DynamicOutput(i, mapping_key=str(i))

            @op
            def leaf(context, i):
                time.sleep(float(context.run_tags.get("leaf_seconds", "0")))
                return os.getpid()

            @op
            def count(pids):
                return len(pids)

            @job
            def fan():
                count(spread().map(leaf).collect())

            @op(retry_policy=RetryPolicy(max_retries=2))
            def flaky(context):
                mark = MARKS / (context.run_id + ".flaky")
                if not mark.exists():
                    mark.write_text("failed once")
                    raise RuntimeError("first attempt fails")
                return context.retry_number

            @job
            def retrying():
                flaky()

            @op
            def slow(context, i):
                (MARKS / f"{{context.run_id}}.slow.{{os.getpid()}}").touch()
                time.sleep(float(context.run_tags.get("slow_seconds", "1")))
                return i

            @job
            def slow_fan():
                count(spread().map(slow).collect())

            @op
            async def wait_forever(context):
                import anyio

                (MARKS / f"{{context.run_id}}.stuck.{{os.getpid()}}").touch()
                await anyio.sleep_forever()

            @job
            def stuck():
                wait_forever()

            @op
            def gate(context):
                (MARKS / f"{{context.run_id}}.gated.{{os.getpid()}}").touch()
                release = Path(context.run_tags["release"])
                deadline = time.monotonic() + 120
                while not release.exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
                return 1

            @job
            def gated():
                gate()

            @op
            def cooperative(context):
                from dagloom.dask import run_canceled

                (MARKS / f"{{context.run_id}}.polling.{{os.getpid()}}").touch()
                deadline = time.monotonic() + 120
                while not run_canceled() and time.monotonic() < deadline:
                    time.sleep(0.05)  # a chunk of work
                (MARKS / f"{{context.run_id}}.stopped.{{os.getpid()}}").touch()

            @job
            def cancellable():
                cooperative()

            defs = Definitions(
                jobs=[_seed, fan, retrying, slow_fan, stuck, gated, cancellable, assets_job],
                assets=[raw, total],
                resources={{"io_manager": FilesystemIOManager(base_dir={str(directory / "io")!r})}},
            )
            """
        )
    )
    return path


def write_job_definitions(path: Path, source: str, job_name: str) -> Path:
    """Writes `path`: the (indented) `source` of some ops and the job `job_name`, which may
    use dagloom's `job` and `op`, then the Definitions of that job with a filesystem IO
    manager in the file's folder."""
    io_dir = path.parent / "io"
    path.write_text(
        "from dagloom import Definitions, FilesystemIOManager, job, op\n"
        + textwrap.dedent(source)
        + textwrap.dedent(
            f"""
            defs = Definitions(
                jobs=[{job_name}],
                resources={{"io_manager": FilesystemIOManager(base_dir={str(io_dir)!r})}},
            )
            """
        )
    )
    return path


def started_marks(
    directory: Path, run_id: str | None = None, kind: str = "slow"
) -> list[tuple[str, int]]:
    """(run id, pid) of every step of `kind` (slow, stuck, gated) that started, from its
    mark file."""
    found = []
    for mark in (directory / "marks").glob(f"*.{kind}.*"):
        run, _, pid = mark.name.split(".")
        if run_id is None or run == run_id:
            found.append((run, int(pid)))
    return found


async def poll_until(predicate: Callable[[], bool], interval: float = 0.05) -> None:
    """Return once `predicate()` holds, checking every `interval` seconds (what is awaited is
    a file or a process outside this event loop, which no event can signal)."""
    while True:
        if predicate():
            return
        await anyio.sleep(interval)


async def tail_until(instance: Any, step_key: str, text: bytes) -> None:
    """Return once `step_key`'s compute log in the instance's first run shows `text`, read
    while the step runs as `run logs -f` tails it (the log is written by a worker, which no
    event of this loop signals)."""
    from dagloom.compute_logs import read_compute_log

    live = b""
    while text not in live:
        runs = await instance.get_runs()
        if runs:
            live = (await read_compute_log(instance, runs[0].run_id, step_key)).data
        await anyio.sleep(0.05)


def worker_pid(proc: subprocess.Popen[bytes]) -> int:
    """The pid of the process that runs tasks for `dask worker` (the nanny's child)."""
    import psutil

    children = psutil.Process(proc.pid).children(recursive=True)
    return children[0].pid if children else proc.pid


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
