"""What the plan works out once per step for the step runner: sole and required outputs,
plain inputs' reads and the fixed messages of an unmapped step's events."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import dagloom as dg


@dg.op
def source() -> int:
    return 1


@dg.op
def add(x: int, y: int) -> int:
    return x + y


@dg.op(out={"a": dg.Out(), "b": dg.Out(is_required=False)})
def two() -> tuple[int, int]:
    return 1, 2


@dg.op
def total(xs: list[int]) -> int:
    return sum(xs)


@dg.job
def shapes() -> None:
    one = source()
    add(one, one)
    a, _ = two()
    total([one, a])


def test_a_step_with_one_output_and_plain_inputs_has_its_reads_and_messages() -> None:
    plan = shapes.get_plan()
    step = plan.steps["add"]
    assert step.sole_output == "result"
    assert step.required_outputs == ("result",)
    assert step.plain_reads is step.inputs
    assert [(spec.name, spec.sources, spec.manager_key) for spec in step.plain_reads] == [
        ("x", (("source", "result"),), "io_manager"),
        ("y", (("source", "result"),), "io_manager"),
    ]
    # Both read the key the upstream step's output is recorded under.
    assert step.inputs[0].source is plan.steps["source"].sole_output_key
    assert step.sole_output_messages == (
        'Yielded output "result".',
        'Handled output "result" using IO manager "io_manager"',
    )


def test_steps_share_equal_upstream_and_downstream_tuples() -> None:
    @dg.job
    def fanned() -> None:
        one = source()
        total([add(one, one), add.alias("again")(one, one)])

    plan = fanned.get_plan()
    steps = plan.steps
    assert steps["add"].upstream == ("source",)
    assert steps["add"].upstream is steps["again"].upstream
    assert steps["add"].downstream == ("total",)
    assert steps["add"].downstream is steps["again"].downstream
    # The fan-in reads each step's recorded output key.
    assert steps["total"].inputs[0].sources[1] is steps["again"].sole_output_key
    assert plan.dep_count("total") == 2 and plan.dep_count("source") == 0
    assert plan.roots == ("source",)


def test_several_outputs_have_no_sole_one_and_a_fan_in_is_no_plain_read() -> None:
    plan = shapes.get_plan()
    assert plan.steps["two"].sole_output is None
    assert plan.steps["two"].required_outputs == ("a",)
    assert plan.steps["source"].plain_reads == ()
    assert plan.steps["total"].plain_reads is None


def test_the_events_use_the_plans_messages() -> None:
    result = shapes.execute_in_process()
    messages = [e.message for e in result.all_events if e.step_key == "add"]
    assert messages[:4] == [
        'Started execution of step "add".',
        'Loaded input "x" using input manager "io_manager", from output "result" of step "source"',
        'Loaded input "y" using input manager "io_manager", from output "result" of step "source"',
        'Yielded output "result".',
    ]


def test_making_a_job_imports_what_running_it_needs(tmp_path: Path) -> None:
    """So its first run does not wait for those imports; `import dagloom` alone does not."""
    script = textwrap.dedent(
        """
        import sys
        import dagloom as dg
        assert "dagloom.execution.run" not in sys.modules

        @dg.op
        def hello() -> int:
            return 1

        @dg.job
        def one() -> None:
            hello()

        assert "dagloom.execution.run" in sys.modules
        assert "anyio._backends._asyncio" in sys.modules
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
