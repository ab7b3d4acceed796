"""The executor core and the in-process executor: runs a plan's steps on the event loop, in
dependency order; `ExecutorContext` is what every `Executor` gets for a run.

Sync ops run inline, one at a time (or in a bounded thread pool when configured); async ops
run concurrently as tasks, at most `max_concurrent` at once. Every step failure is recorded as
an event and its downstream steps are skipped; nothing a step raises escapes `execute_plan`.
Cancellation does escape: the caller records the run as canceled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, ClassVar

import anyio
import anyio.lowlevel
from anyio import create_memory_object_stream, create_task_group
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import BaseModel

from dagloom.definitions.config import Config
from dagloom.definitions.executor import InProcessExecutorConfig
from dagloom.execution.step import (
    SKIPPED,
    SUCCESS,
    ExecutionState,
    Outcome,
    RunFacts,
    StepRunner,
)

if TYPE_CHECKING:
    from dagloom.definitions.job import JobDefinition
    from dagloom.execution.origin import CodeOrigin

_YIELD_AFTER = 0.01  # seconds of inline sync steps between checkpoints

Finished = tuple[str, int, Outcome]  # an attempt that ran in a task: step key, attempt, outcome
# Subscripted once here: typing builds (and caches) the alias on first use, ~50 µs.
_outcome_stream = create_memory_object_stream[Finished]


async def execute_plan(
    facts: RunFacts,
    *,
    max_concurrent: int = 64,
    sync_op_threads: int = 0,
    make_runner: Callable[[RunFacts, ExecutionState], StepRunner] = StepRunner,
    every_step_concurrent: bool = False,
) -> ExecutionState:
    """Run every step of `facts.plan` and return the final state.

    Blocks until all steps have ended. Step failures are recorded, not raised. Cancelling the
    caller cancels running steps and re-raises the cancellation.

    `make_runner` builds what runs the attempts (the multiprocess executor passes one that
    sends them to step processes); `every_step_concurrent` runs sync steps as tasks too, at most
    `max_concurrent` at once, through `runner.run_async`.
    """
    plan = facts.plan
    state = ExecutionState()
    if make_runner is StepRunner and facts.compute_logs is not None:
        from dagloom.execution.captured import CapturingStepRunner

        make_runner = CapturingStepRunner
    runner = make_runner(facts, state)
    threads = anyio.CapacityLimiter(sync_op_threads) if sync_op_threads > 0 else None
    # Steps still waiting with some of their upstream done: the others wait for all of
    # their template's upstream, not counted per run.
    pending: dict[str, int] = {}
    steps = plan.steps
    successors: dict[str, list[str]] = {}
    upstream_of: dict[str, tuple[str, ...]] = {}
    ready: deque[str] = deque(plan.roots)
    status = state.status

    def expand(step_key: str) -> None:
        """A step with dynamic outputs succeeded: create the mapped steps hanging from it."""
        for (source, output), scope in plan.scopes.items():
            if source != step_key:
                continue
            mapping_keys = list(state.dynamic_keys.get((source, output), {}))
            in_scope = set(scope.templates)
            for template in scope.templates:
                tmpl = plan.steps[template]
                mapped_ups = [u for u in tmpl.upstream if u in in_scope]
                # Static steps a mapped step also reads, besides its DynamicOut's source:
                # each instance waits for those still to end.
                static_ups = [u for u in tmpl.upstream if u not in in_scope and u != source]
                waiting = [u for u in static_ups if u not in status]
                for mapping_key in mapping_keys:
                    instance = f"{template}[{mapping_key}]"
                    ups = tuple(f"{u}[{mapping_key}]" for u in mapped_ups)
                    if static_ups:
                        upstream_of[instance] = (
                            (*ups, *static_ups) if ups else (source, *static_ups)
                        )
                    else:
                        upstream_of[instance] = ups or (source,)
                    pending[instance] = len(ups) + len(waiting)
                    for up in (*ups, *waiting):
                        successors.setdefault(up, []).append(instance)
                    if not ups and not waiting:
                        ready.append(instance)
            for collector, collected in scope.collectors:
                if collected == source:
                    continue
                instances = [f"{collected}[{k}]" for k in mapping_keys]
                left = pending.get(collector)
                if left is None:
                    left = len(plan.steps[collector].upstream)
                pending[collector] = left + len(instances)
                upstream_of[collector] = (*plan.steps[collector].upstream, *instances)
                for instance in instances:
                    successors.setdefault(instance, []).append(collector)

    def complete(step_key: str, outcome: Outcome) -> None:
        status[step_key] = outcome.status
        if dynamic_sources and outcome.status == SUCCESS and step_key in dynamic_sources:
            expand(step_key)
        tmpl = steps.get(step_key)
        children: list[str] | tuple[str, ...]
        if tmpl is None:  # a mapped step: its successors were made when it was
            children = successors.get(step_key, ())
        else:
            children = tmpl.downstream
            extra = successors.get(step_key) if successors else None
            if extra:
                children = (*children, *extra)
        for child in children:
            left = pending.get(child)
            if left is None:  # the first upstream step of `child` to end
                left = len(steps[child].upstream) - 1
                if left:
                    pending[child] = left
                else:
                    ready.append(child)
            else:
                left -= 1
                pending[child] = left
                if left == 0:
                    ready.append(child)

    dynamic_sources = {source for source, _ in plan.scopes}
    reused = facts.reused

    def blocked_by(ups: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(u for u in ups if status.get(u, SUCCESS) != SUCCESS)

    # Made when the first step goes to a task: a plan of sync steps inline needs none.
    finished: tuple[MemoryObjectSendStream[Finished], MemoryObjectReceiveStream[Finished]] | None
    finished = None
    in_flight = 0
    last_yield = perf_counter()

    async def run_task(
        send: MemoryObjectSendStream[Finished], step_key: str, attempt: int, delay: float
    ) -> None:
        if delay > 0:
            await anyio.sleep(delay)
        outcome = await runner.run_async(step_key, attempt, threads)
        send.send_nowait((step_key, attempt, outcome))

    def start_task(step_key: str, attempt: int, delay: float) -> None:
        nonlocal finished, in_flight
        if finished is None:
            finished = _outcome_stream(float("inf"))
        in_flight += 1
        tg.start_soon(run_task, finished[0], step_key, attempt, delay)

    async with create_task_group() as tg:

        def settle(step_key: str, attempt: int, outcome: Outcome) -> None:
            """Record an attempt's outcome, or start the next attempt when it asks for one."""
            if outcome.retry_delay is None:
                complete(step_key, outcome)
                return
            start_task(step_key, attempt + 1, outcome.retry_delay)

        concurrent = threads is not None or every_step_concurrent
        run_sync = runner.run_sync
        while True:
            while ready:
                step_key = ready.popleft()
                if reused and step_key in reused:  # a re-execution: stored by an earlier run
                    runner.reuse(step_key, reused[step_key])
                    complete(step_key, Outcome(SUCCESS))
                    continue
                tmpl = steps.get(step_key)
                if tmpl is None:  # a mapped step, `node[mapping_key]`
                    tmpl = plan.template(step_key)
                ups = upstream_of.get(step_key) if upstream_of else None
                if ups is None:
                    ups = tmpl.upstream
                for up in ups:
                    if status.get(up, SUCCESS) != SUCCESS:
                        blockers = blocked_by(ups)
                        break
                else:
                    blockers = ()
                if blockers:
                    runner.skip(
                        step_key,
                        "upstream step(s) "
                        + ", ".join(f'"{b}"' for b in blockers)
                        + " did not succeed",
                        blockers,
                    )
                    complete(step_key, Outcome(SKIPPED))
                    continue
                if tmpl.facts.is_async or concurrent:
                    if in_flight >= max_concurrent:
                        ready.appendleft(step_key)
                        break
                    start_task(step_key, 0, 0.0)
                    continue
                outcome = run_sync(step_key, 0)
                now = perf_counter()
                if now - last_yield > _YIELD_AFTER:
                    # Long stretches of sync ops would starve the loop: event writers,
                    # heartbeats and cancellation all wait for a checkpoint.
                    await anyio.lowlevel.checkpoint()
                    last_yield = perf_counter()
                if outcome.retry_delay is None:
                    complete(step_key, outcome)
                else:
                    settle(step_key, 0, outcome)
            if in_flight == 0:
                break
            assert finished is not None
            done = await finished[1].receive()
            in_flight -= 1
            settle(*done)
    if finished is not None:
        finished[0].close()
        finished[1].close()
    return state


@dataclass(frozen=True, slots=True)
class ExecutorContext:
    """What an `Executor` gets for one run: the run's facts (plan, events, resources), its
    job, its validated executor `config`, where the job's code lives (None: inferred from
    the job's module) and the op selection it was subset to."""

    facts: RunFacts
    job: JobDefinition
    config: Config
    code_origin: CodeOrigin | None = None
    op_selection: Sequence[str] | None = None

    async def execute_plan(
        self,
        *,
        max_concurrent: int = 64,
        sync_op_threads: int = 0,
        make_runner: Callable[[RunFacts, ExecutionState], StepRunner] = StepRunner,
        every_step_concurrent: bool = False,
    ) -> ExecutionState:
        """Run the plan with the executor core (`execute_plan`); blocks until every step
        ended."""
        return await execute_plan(
            self.facts,
            max_concurrent=max_concurrent,
            sync_op_threads=sync_op_threads,
            make_runner=make_runner,
            every_step_concurrent=every_step_concurrent,
        )


class InProcessExecutor:
    """The `in_process` executor: steps on the run's event loop, async ones concurrently
    (at most `max_concurrent`), sync ones inline or in `sync_op_threads` threads."""

    config_model: ClassVar[type[BaseModel]] = InProcessExecutorConfig

    def __init__(self, max_concurrent: int = 64, sync_op_threads: int = 0) -> None:
        self.max_concurrent = max_concurrent
        self.sync_op_threads = sync_op_threads

    @classmethod
    def from_config(cls, config: InProcessExecutorConfig, context: object) -> InProcessExecutor:
        return cls(config.max_concurrent, config.sync_op_threads)

    async def execute(self, context: ExecutorContext) -> ExecutionState:
        return await context.execute_plan(
            max_concurrent=self.max_concurrent, sync_op_threads=self.sync_op_threads
        )
