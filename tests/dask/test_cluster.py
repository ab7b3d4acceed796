"""The Dask executor and run launcher on a real cluster: a `dask scheduler` and two
`dask worker` processes on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from dagloom.actors.job_source import LoaderJobSource
from dagloom.actors.run_coordinator import submit_run
from dagloom.actors.run_launcher import build_run_launcher
from dagloom.code.loader import load_definitions
from dagloom.dask import DaskRunLauncher
from dagloom.execution.origin import CodeOrigin
from dagloom.execution.run import execute_job_in_process
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, RunStatus
from dagloom.messages.rpc import CancelRunRequest, SubmitRunRequest
from tests.actors._runs import coordinator_over, stored_output, wait_for_end

from ._cluster import (
    Cluster,
    dask_cluster,
    dask_run_config,
    poll_until,
    started_marks,
    tail_until,
    write_definitions,
    write_job_definitions,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with dask_cluster(workers=2, threads=2) as started:
        yield started


@pytest.fixture(scope="module")
def defs_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_definitions(tmp_path_factory.mktemp("dask_cluster"))


async def _execute(path: Path, name: str, address: str, **kwargs: Any) -> Any:
    job = load_definitions(python_file=path).get_job_def(name)
    async with DagloomInstance.ephemeral() as instance:
        return await execute_job_in_process(
            job,
            run_config=dask_run_config(address),
            instance=instance,
            raise_on_error=False,
            code_origin=CodeOrigin(python_file=str(path)),
            **kwargs,
        )


def _workers_of(result: Any) -> dict[str, str]:
    """Step key -> the Dask worker that ran it, from the engine events."""
    return {
        e.step_key: e.event_specific_data.metadata["dask_worker"].text
        for e in result.all_events
        if e.event_type == EventType.ENGINE_EVENT and "Dask worker" in e.message
    }


async def test_the_seed_job_and_the_asset_job_succeed(defs_path: Path, cluster: Cluster) -> None:
    with anyio.fail_after(120):
        seed = await _execute(defs_path, "process_numbers", cluster.address)
        assets = await _execute(defs_path, "assets_job", cluster.address)
    assert seed.success and seed.output_for_node("sum_two_sums") == 55
    assert assets.success, [e.message for e in assets.all_events]
    assert assets.output_for_node("total") == 6


async def test_a_fan_of_200_steps_runs_on_both_workers(defs_path: Path, cluster: Cluster) -> None:
    with anyio.fail_after(240):
        result = await _execute(
            defs_path, "fan", cluster.address, tags={"width": "200", "leaf_seconds": "0.01"}
        )
    assert result.success
    assert result.output_for_node("count") == 200
    workers = _workers_of(result)
    leaves = {k: w for k, w in workers.items() if k.startswith("leaf[")}
    assert len(leaves) == 200
    assert len(set(leaves.values())) == 2
    assert os.getpid() not in result.output_for_node("leaf").values()


async def test_a_failing_step_succeeds_on_retry(defs_path: Path, cluster: Cluster) -> None:
    with anyio.fail_after(120):
        result = await _execute(defs_path, "retrying", cluster.address)
    assert result.success
    assert result.output_for_node("flaky") == 1


async def test_two_runs_of_one_job_at_once_do_not_collide(
    defs_path: Path, cluster: Cluster
) -> None:
    results: list[Any] = []

    async def one() -> None:
        results.append(await _execute(defs_path, "fan", cluster.address, tags={"width": "30"}))

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)
    assert [r.success for r in results] == [True, True]
    assert [r.output_for_node("count") for r in results] == [30, 30]


async def test_killing_a_worker_mid_run_reruns_its_steps_or_fails_clearly(
    tmp_path: Path,
) -> None:
    """SIGKILL the worker process running a step: Dask runs the step on the other worker
    (the nanny also restarts the killed one), or the step fails naming the lost task; the run
    ends either way."""
    path = write_definitions(tmp_path)
    with dask_cluster(workers=2, threads=2) as own, anyio.fail_after(240):
        results: list[Any] = []

        async def run() -> None:
            tags = {"width": "8", "slow_seconds": "2"}
            results.append(await _execute(path, "slow_fan", own.address, tags=tags))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await poll_until(lambda: bool(started_marks(tmp_path)))
            victim = started_marks(tmp_path)[0][1]
            os.kill(victim, 9)
    (result,) = results
    if result.success:
        assert result.output_for_node("count") == 8
    else:
        failures = [e for e in result.all_events if e.event_type == EventType.STEP_FAILURE]
        assert failures and all("Dask could not run task" in e.message for e in failures)


async def test_the_dask_run_launcher_runs_runs_as_dask_tasks_and_terminates_them(
    defs_path: Path, cluster: Cluster, tmp_path: Path
) -> None:
    """Each run's worker is a Dask task: the seed job ends SUCCESS with its outputs stored;
    cancelling a run whose op waits for ever ends it CANCELED, recorded by the task."""
    origins = {"location": CodeOrigin(python_file=str(defs_path))}
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagloom.yaml").write_text(
        "run_launcher:\n  module: dagloom.dask\n  class: DaskRunLauncher\n"
        f"  config:\n    address: {cluster.address}\n    terminate_grace_seconds: 60\n"
    )
    with anyio.fail_after(180):
        async with DagloomInstance.open(home) as instance:
            launcher = build_run_launcher(instance, origins)
            assert isinstance(launcher, DaskRunLauncher)
            async with coordinator_over(
                instance, launcher, LoaderJobSource(origins)
            ) as coordinator:
                run = await submit_run(coordinator, SubmitRunRequest(job_name="process_numbers"))
                ended = await wait_for_end(instance, run.run_id)
                assert ended.status == RunStatus.SUCCESS, ended.failure
                assert stored_output(defs_path.parent / "io", run.run_id, "sum_two_sums") == 55

                stuck = await submit_run(coordinator, SubmitRunRequest(job_name="stuck"))
                await poll_until(
                    lambda: bool(started_marks(defs_path.parent, stuck.run_id, kind="stuck"))
                )
                reply = await coordinator.ask(CancelRunRequest(run_id=stuck.run_id))
                assert reply.accepted, reply.message
                canceled = await wait_for_end(instance, stuck.run_id)
            assert canceled.status == RunStatus.CANCELED
            events = [r.event for r in await instance.get_events(stuck.run_id)]
            canceled_events = [e for e in events if e.event_type == EventType.RUN_CANCELED]
            assert len(canceled_events) == 1
            assert "Dask task did not stop" not in canceled_events[0].message


def _write_talking_definitions(directory: Path) -> Path:
    """A job whose one step writes through Python, straight to file descriptor 1 and from a
    child process, then waits for the file named by its `release` tag."""
    path = directory / "talking.py"
    write_job_definitions(
        path,
        """
        import os
        import subprocess
        import sys
        import time
        from pathlib import Path

        @op
        def talk(context):
            print("from python", flush=True)
            os.write(1, b"from the file descriptor\\n")
            subprocess.run(["sh", "-c", "echo from a child; echo child err >&2"], check=True)
            sys.stderr.write("python err\\n")
            release = Path(context.run_tags["release"])
            deadline = time.monotonic() + 120
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            print("after release")
            return 1

        @job
        def talking():
            talk()
        """,
        "talking",
    )
    return path


async def test_a_steps_output_on_a_one_thread_worker_is_caught_by_fd_and_readable_live(
    tmp_path: Path,
) -> None:
    """On a worker of one thread the step owns fds 1 and 2: Python, C-level and child-process
    writes all reach its compute log, and what it wrote shows there while it still runs."""
    from dagloom.compute_logs import read_compute_log

    path = _write_talking_definitions(tmp_path)
    release = tmp_path / "release"
    job = load_definitions(python_file=path).get_job_def("talking")
    results: list[Any] = []
    with dask_cluster(workers=1, threads=1) as own, anyio.fail_after(180):
        async with DagloomInstance.open(tmp_path / "home") as instance:

            async def run() -> None:
                results.append(
                    await execute_job_in_process(
                        job,
                        run_config=dask_run_config(own.address),
                        instance=instance,
                        raise_on_error=False,
                        code_origin=CodeOrigin(python_file=str(path)),
                        tags={"release": str(release)},
                    )
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                await tail_until(instance, "talk", b"from a child\n")
                assert not results  # the step still runs
                release.touch()
            (result,) = results
            assert result.success, [e.message for e in result.all_events]
            out = await read_compute_log(instance, result.run_id, "talk")
            err = await read_compute_log(instance, result.run_id, "talk", "stderr")
    assert out.data == b"from python\nfrom the file descriptor\nfrom a child\nafter release\n"
    assert b"child err\n" in err.data and b"python err\n" in err.data
