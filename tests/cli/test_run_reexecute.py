"""`dagloom run reexecute RUN_ID [--from-failure]`: a new run of the same job, whose parent is
the given run, executing all steps or only those that did not succeed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
from typer.testing import CliRunner

from dagloom.cli import app
from dagloom.instance import DagloomInstance
from dagloom.messages import Run, RunStatus

runner = CliRunner(env={"COLUMNS": "250"})

DEFS = """
from pathlib import Path

from dagloom import job, op

HERE = Path({here!r})


@op
def load() -> int:
    with (HERE / "calls.txt").open("a") as calls:
        calls.write("load\\n")
    return 20


@op
def flaky(value: int) -> int:
    if not (HERE / "ok").exists():
        raise RuntimeError("not yet")
    return value + 1


@op
def report(value: int) -> int:
    (HERE / "report.txt").write_text(str(value * 2))
    return value * 2


@job
def pipeline() -> None:
    report(flaky(load()))
"""


def runs(home: Path) -> list[Run]:
    async def main() -> list[Run]:
        async with DagloomInstance.open(home) as instance:
            return list(reversed(await instance.get_runs()))

    return anyio.run(main)


def test_reexecuting_from_failure_runs_only_the_steps_that_did_not_succeed(
    home: Path, tmp_path: Path
) -> None:
    defs = tmp_path / "defs.py"
    defs.write_text(textwrap.dedent(DEFS.format(here=str(tmp_path))))
    failed = runner.invoke(app, ["job", "execute", "-f", str(defs), "-j", "pipeline"])
    assert failed.exit_code == 1, failed.output
    (parent,) = runs(home)
    assert parent.status == RunStatus.FAILURE

    (tmp_path / "ok").touch()
    result = runner.invoke(
        app, ["run", "reexecute", parent.run_id, "--from-failure", "-f", str(defs)]
    )
    assert result.exit_code == 0, result.output
    child = runs(home)[1]
    assert child.status == RunStatus.SUCCESS
    assert (child.parent_run_id, child.root_run_id) == (parent.run_id, parent.run_id)
    assert sorted(child.step_keys_to_execute) == ["flaky", "report"]
    assert (tmp_path / "report.txt").read_text() == "42"
    assert (tmp_path / "calls.txt").read_text() == "load\n"  # reused, not run again

    again = runner.invoke(app, ["run", "reexecute", child.run_id, "-f", str(defs)])
    assert again.exit_code == 0, again.output
    grandchild = runs(home)[2]
    assert grandchild.status == RunStatus.SUCCESS
    assert (grandchild.parent_run_id, grandchild.root_run_id) == (child.run_id, parent.run_id)
    assert list(grandchild.step_keys_to_execute) == []
    assert (tmp_path / "calls.txt").read_text() == "load\nload\n"

    refused = runner.invoke(
        app, ["run", "reexecute", child.run_id, "--from-failure", "-f", str(defs)]
    )
    assert refused.exit_code == 2
    assert "only a failed run can be re-executed from failure" in refused.output
    assert len(runs(home)) == 3
