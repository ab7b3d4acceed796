"""`dagloom run logs RUN_ID --step STEP [--stderr] [--attempt N] [-f]` prints what a step
printed, captured while `dagloom job execute` ran it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from dagloom.cli import app
from dagloom.cli.run import unknown_step_problem

runner = CliRunner(env={"COLUMNS": "250"})

DEFS = textwrap.dedent(
    """
    import sys
    import anyio
    import dagloom as dg

    @dg.op
    async def alpha() -> int:
        for i in range(3):
            print(f"alpha {i}")
            await anyio.sleep(0)
        print("alpha complains", file=sys.stderr)
        return 1

    @dg.op
    async def beta() -> int:
        for i in range(3):
            print(f"beta {i}")
            await anyio.sleep(0)
        return 2

    @dg.job
    def both():
        alpha()
        beta()
    """
)


def test_run_logs_step_shows_each_steps_own_output(home: Path, tmp_path: Path) -> None:
    (tmp_path / "defs.py").write_text(DEFS)
    executed = runner.invoke(app, ["job", "execute", "-f", "defs.py", "-j", "both"])
    assert executed.exit_code == 0, executed.output
    assert "alpha 0" in executed.output  # echoed to the console too
    listed = runner.invoke(app, ["run", "list", "--json"])
    run_id = json.loads(listed.output)[0]["run_id"]

    alpha = runner.invoke(app, ["run", "logs", run_id, "--step", "alpha"])
    assert alpha.exit_code == 0, alpha.output
    assert alpha.output == "alpha 0\nalpha 1\nalpha 2\n"
    beta = runner.invoke(app, ["run", "logs", run_id, "--step", "beta", "-f"])
    assert beta.output == "beta 0\nbeta 1\nbeta 2\n"
    err = runner.invoke(app, ["run", "logs", run_id, "--step", "alpha", "--stderr"])
    assert err.output == "alpha complains\n"
    none = runner.invoke(app, ["run", "logs", run_id, "--step", "alpha", "--attempt", "3"])
    assert none.exit_code == 0 and none.output == ""


def test_run_logs_step_refuses_a_step_key_leaving_the_log_folder(home: Path) -> None:
    (home.parent / "defs.py").write_text(DEFS)
    runner.invoke(app, ["job", "execute", "-f", "defs.py", "-j", "both", "--no-echo-logs"])
    run_id = json.loads(runner.invoke(app, ["run", "list", "--json"]).output)[0]["run_id"]
    escaped = runner.invoke(app, ["run", "logs", run_id, "--step", "../../etc"])
    assert escaped.exit_code == 1
    assert "path separator" in escaped.output
    unknown = runner.invoke(app, ["run", "logs", "no-such-run", "--step", "alpha"])
    assert unknown.exit_code == 1 and "no run with id" in unknown.output
    misspelt = runner.invoke(app, ["run", "logs", run_id, "--step", "alhpa"])
    assert misspelt.exit_code == 1
    assert "no step 'alhpa' that started (its steps: alpha, beta)" in misspelt.output


def test_an_unknown_step_is_named_with_the_runs_steps() -> None:
    assert unknown_step_problem("r", "alpha", ["alpha", "beta"]) is None
    assert unknown_step_problem("r", "x", ["b", "a"]) == (
        "run r has no step 'x' that started (its steps: a, b)"
    )
    assert (
        unknown_step_problem("r", "x", []) == "run r has no step 'x' that started (its steps: none)"
    )
