"""The live view of a run on the terminal: a bar of steps done, the steps running, a summary."""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from dagloom.execution.plan import ExecutionPlan
from dagloom.messages import Event, EventType
from dagloom.messages.rows import STEP_KEY, TYPE, EventRow, event_of

RUNNING = "running"
RETRYING = "retrying"
SUCCEEDED = "succeeded"
FAILED = "failed"
SKIPPED = "skipped"
NOT_RUN = "not run"

_STYLE = {
    RUNNING: "yellow",
    RETRYING: "yellow",
    SUCCEEDED: "green",
    FAILED: "bold red",
    SKIPPED: "dim",
    NOT_RUN: "dim",
}
_DONE = frozenset({SUCCEEDED, FAILED, SKIPPED})


@dataclass(slots=True)
class StepRecord:
    """What the view knows of one step: its status, when it ran, and why it failed."""

    key: str
    status: str = NOT_RUN
    started: float | None = None
    ended: float | None = None
    error: str = ""

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


def is_live(console: Console) -> bool:
    """Whether to animate: only on an interactive terminal, and never under CI."""
    return console.is_terminal and not console.is_dumb_terminal and not os.environ.get("CI")


class RunProgress:
    """An EventSink that shows a run's steps as they happen.

    On an interactive terminal it draws a bar of finished steps out of all steps with the
    steps running now, and prints each failure in red as it happens; elsewhere (a pipe, CI,
    tests) it prints one plain line per finished step. Use it with `with`, which starts and
    stops the drawing. `emit` never blocks; `flush` has nothing to do.

    The total starts as the plan's non-mapped steps; each mapped step instance adds one when
    it first appears.
    """

    def __init__(self, plan: ExecutionPlan, console: Console, *, title: str) -> None:
        self._console = console
        self._title = title
        self._steps: dict[str, StepRecord] = {
            key: StepRecord(key) for key, step in plan.steps.items() if step.scope is None
        }
        self._live = is_live(console)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._bar = BarColumn(complete_style="green", finished_style="green")

    # -- EventSink ---------------------------------------------------------------------------

    def emit(self, row: EventRow) -> None:
        kind = row[TYPE]
        if kind not in _WATCHED or not row[STEP_KEY]:
            return
        event = event_of("", row)
        record = self._steps.get(event.step_key)
        if record is None:
            record = self._steps[event.step_key] = StepRecord(event.step_key)
        if kind in (EventType.STEP_START, EventType.STEP_RESTARTED):
            if record.started is None:
                record.started = event.timestamp
            record.status = RUNNING
        elif kind == EventType.STEP_UP_FOR_RETRY:
            record.status = RETRYING
        elif kind == EventType.STEP_SUCCESS:
            self._finish(record, SUCCEEDED, event)
        elif kind == EventType.STEP_FAILURE:
            error = event.step_failure.error if event.step_failure else None
            record.error = f"{error.cls_name}: {error.message}" if error else event.message
            self._finish(record, FAILED, event)
        elif kind == EventType.STEP_SKIPPED:
            self._finish(record, SKIPPED, event)
        self._refresh()

    async def flush(self) -> None:
        return None

    # -- what it saw -------------------------------------------------------------------------

    @property
    def steps(self) -> list[StepRecord]:
        """Every step, in plan order then in the order mapped steps appeared."""
        return list(self._steps.values())

    @property
    def failed(self) -> list[StepRecord]:
        return [r for r in self._steps.values() if r.status == FAILED]

    def summary(self) -> Table:
        """A table of every step: its status and how long it ran."""
        table = Table(title=self._title, title_justify="left")
        table.add_column("step")
        table.add_column("status")
        table.add_column("duration", justify="right")
        for record in self._steps.values():
            took = record.duration
            table.add_row(
                Text(record.key),
                Text(record.status, style=_STYLE[record.status]),
                "" if took is None else _format_seconds(took),
            )
        return table

    # -- drawing -----------------------------------------------------------------------------

    def __enter__(self) -> RunProgress:
        if self._live:
            self._progress = Progress(
                SpinnerColumn(),
                # Not markup: mapped step keys look like `step[key]`.
                TextColumn("{task.description}", style="bold", markup=False),
                self._bar,
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[running]}", style="yellow", markup=False),
                console=self._console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._title, total=len(self._steps), running="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _finish(self, record: StepRecord, status: str, event: Event) -> None:
        record.status = status
        record.ended = event.timestamp
        if record.started is None:
            record.started = event.timestamp if status != SKIPPED else None
        console = self._progress.console if self._progress is not None else self._console
        line = Text()
        if status == FAILED:
            self._bar.complete_style = self._bar.finished_style = "red"
            line.append(f"✗ {record.key} failed: {record.error}", style="bold red")
        elif status == SKIPPED:
            line.append(f"- {record.key} skipped", style="dim")
        elif not self._live:
            took = record.duration
            line.append(f"✓ {record.key} succeeded", style="green")
            if took is not None:
                line.append(f" in {_format_seconds(took)}")
        if line:
            console.print(line, soft_wrap=True)

    def _refresh(self) -> None:
        if self._progress is None or self._task is None:
            return
        done = sum(1 for r in self._steps.values() if r.status in _DONE)
        running = [r.key for r in self._steps.values() if r.status in (RUNNING, RETRYING)]
        shown = ", ".join(running[:4]) + (f" +{len(running) - 4}" if len(running) > 4 else "")
        self._progress.update(self._task, total=len(self._steps), completed=done, running=shown)


_WATCHED = frozenset(
    {
        EventType.STEP_START,
        EventType.STEP_RESTARTED,
        EventType.STEP_UP_FOR_RETRY,
        EventType.STEP_SUCCESS,
        EventType.STEP_FAILURE,
        EventType.STEP_SKIPPED,
    }
)


def _format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s"


__all__ = ["RunProgress", "StepRecord", "is_live"]
