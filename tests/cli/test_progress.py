"""The run view: counting steps (mapped ones included), failures as they happen, summary."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import dagloom as dg
from dagloom.cli._progress import FAILED, SKIPPED, SUCCEEDED, RunProgress
from dagloom.execution.run import execute_job_in_process


@dg.op(out=dg.DynamicOut())
def fan_out():
    for index in range(3):
        yield dg.DynamicOutput(index, mapping_key=f"k{index}")


@dg.op
def double(value: int) -> int:
    if value == 2:
        raise ValueError("two is too many")
    return value * 2


@dg.op
def total(values: list[int]) -> int:
    return sum(values)


@dg.job
def mapped():
    total(fan_out().map(double).collect())


def console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=200, highlight=False), buffer


@pytest.fixture(autouse=True)
def _no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)


async def test_mapped_steps_are_counted_as_they_appear() -> None:
    out, buffer = console(terminal=False)
    view = RunProgress(mapped.get_plan(), out, title="mapped")

    with view:
        result = await execute_job_in_process(mapped, raise_on_error=False, sink=view)

    assert not result.success
    status = {record.key: record.status for record in view.steps}
    assert status["fan_out"] == SUCCEEDED
    assert status["double[k0]"] == SUCCEEDED
    assert status["double[k2]"] == FAILED
    assert status["total"] == SKIPPED
    assert "double" not in status  # the template itself is never a step
    assert [r.key for r in view.failed] == ["double[k2]"]
    assert "✗ double[k2] failed: ValueError: two is too many" in buffer.getvalue()


async def test_on_a_terminal_the_bar_is_drawn_and_then_removed() -> None:
    out, buffer = console(terminal=True)
    view = RunProgress(mapped.get_plan(), out, title="mapped")

    with view:
        await execute_job_in_process(mapped, raise_on_error=False, sink=view)

    text = buffer.getvalue()
    assert "\x1b[" in text
    assert "two is too many" in text
    assert "✓ fan_out succeeded" not in text  # successes show on the bar, not as lines


async def test_under_ci_output_stays_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    out, buffer = console(terminal=True)
    view = RunProgress(mapped.get_plan(), out, title="mapped")

    with view:
        await execute_job_in_process(mapped, raise_on_error=False, sink=view)

    assert "✓ fan_out succeeded" in buffer.getvalue()


async def test_the_summary_lists_every_step_with_its_status() -> None:
    out, buffer = console(terminal=False)
    view = RunProgress(mapped.get_plan(), out, title="mapped")
    with view:
        await execute_job_in_process(mapped, raise_on_error=False, sink=view)
    table_out, buffer = console(terminal=False)

    table_out.print(view.summary())

    lines = [line for line in buffer.getvalue().splitlines() if "│" in line]
    rows = {line.split("│")[1].strip(): line for line in lines}
    assert "succeeded" in rows["double[k1]"]
    assert "failed" in rows["double[k2]"]
    assert "skipped" in rows["total"]
