"""Reloading on change: which files are a location's, and a dev node whose next run uses
the code just saved."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import anyio
import pytest

from dagloom.api import AsyncClient
from dagloom.code.watch import CodeFilter, watch_paths
from dagloom.errors import DefinitionError
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.messages import RunStatus
from dagloom.topology import dev_topology
from dagloom.topology.wiring import RunningNode, run_node

pytestmark = pytest.mark.usefixtures("restore_import_state")

VERSIONED = """
from dagloom import Definitions, FilesystemIOManager, job, op

@op
def answer() -> int:
    return {value}

@job
def versioned() -> None:
    answer()

defs = Definitions(
    jobs=[versioned], resources={{"io_manager": FilesystemIOManager(base_dir={base!r})}}
)
"""


def test_a_files_folder_is_watched(tmp_path: Path) -> None:
    assert watch_paths(CodeOrigin(python_file=str(tmp_path / "defs.py"))) == [tmp_path.resolve()]


def test_a_modules_top_level_package_is_watched(tmp_path: Path) -> None:
    (tmp_path / "pipelines" / "etl").mkdir(parents=True)
    (tmp_path / "single.py").write_text("")
    package = CodeOrigin(module_name="pipelines.etl.defs", working_directory=str(tmp_path))
    single = CodeOrigin(module_name="single", working_directory=str(tmp_path))
    assert watch_paths(package) == [(tmp_path / "pipelines").resolve()]
    assert watch_paths(single) == [(tmp_path / "single.py").resolve()]
    assert watch_paths(CodeOrigin(module_name="no_such_module_anywhere")) == []


def _output(base: Path, run_id: str) -> object:
    with (base / run_id / "answer" / "result").open("rb") as handle:
        return pickle.load(handle)


async def test_saving_a_definitions_file_makes_the_next_run_use_the_new_code(
    tmp_path: Path,
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    path = code / "versioned.py"
    path.write_text(VERSIONED.format(value=1, base=str(tmp_path)))
    topology = dev_topology(
        {"versioned": CodeOrigin(python_file=str(path))}, grpc_port=None, api_port=None
    )
    with anyio.fail_after(60):
        async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
            node: RunningNode = await tg.start(
                functools.partial(run_node, topology, "dev", instance=instance)
            )
            assert node.api is not None
            client = AsyncClient.in_process(node.api)
            first = await client.launch_run("versioned", location_name="versioned")
            assert (await client.wait_for_run(first.run_id)).status == RunStatus.SUCCESS
            watcher = node.watchers["versioned"]
            seen = watcher.reloads
            path.write_text(VERSIONED.format(value=2, base=str(tmp_path)))
            await watcher.wait_reloaded(seen)
            second = await client.launch_run("versioned", location_name="versioned")
            assert (await client.wait_for_run(second.run_id)).status == RunStatus.SUCCESS
            tg.cancel_scope.cancel()
    assert _output(tmp_path, first.run_id) == 1
    assert _output(tmp_path, second.run_id) == 2
    assert first.job_snapshot_id and second.job_snapshot_id
    assert first.job_snapshot_id != second.job_snapshot_id


async def test_a_reload_asked_through_the_api_makes_the_next_run_use_the_new_code(
    tmp_path: Path,
) -> None:
    path = tmp_path / "versioned.py"
    path.write_text(VERSIONED.format(value=1, base=str(tmp_path)))
    topology = dev_topology(
        {"versioned": CodeOrigin(python_file=str(path))},
        grpc_port=None,
        api_port=None,
        reload_on_change=False,
    )
    with anyio.fail_after(60):
        async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
            node: RunningNode = await tg.start(
                functools.partial(run_node, topology, "dev", instance=instance)
            )
            assert node.api is not None and not node.watchers
            client = AsyncClient.in_process(node.api)
            path.write_text(VERSIONED.format(value=2, base=str(tmp_path)))
            # Not watched: the location still serves what it imported at start.
            stale = await client.launch_run("versioned")
            assert (await client.wait_for_run(stale.run_id)).status == RunStatus.SUCCESS
            snapshot = await client.reload_location("versioned")
            assert snapshot.load_error is None
            fresh = await client.launch_run("versioned")
            assert (await client.wait_for_run(fresh.run_id)).status == RunStatus.SUCCESS
            with pytest.raises(DefinitionError, match="no code location named 'nope'"):
                await client.reload_location("nope")
            tg.cancel_scope.cancel()
    assert _output(tmp_path, stale.run_id) == 1
    assert _output(tmp_path, fresh.run_id) == 2
    assert [j.snapshot_id for j in snapshot.jobs] == [fresh.job_snapshot_id]


def test_installed_packages_beside_the_definitions_do_not_count_as_its_code(
    tmp_path: Path,
) -> None:
    from watchfiles import Change

    keep = CodeFilter()
    project = tmp_path / "project"
    assert keep(Change.modified, str(project / "defs.py"))
    assert keep(Change.added, str(project / "pipelines" / "orders.py"))
    assert not keep(Change.modified, str(project / "README.md"))
    for installed in (
        project / ".venv-ci" / "lib" / "python3.11" / "site-packages" / "pip" / "main.py",
        project / "venv" / "bin" / "activate_this.py",
        project / ".venv" / "lib" / "x.py",
        project / "node_modules" / "x" / "y.py",
        project / "__pycache__" / "defs.py",
    ):
        assert not keep(Change.modified, str(installed)), installed
