"""The worker-pool launcher: offers runs to workers in turn, skipping full or unreachable
ones, and stops a run wherever it runs."""

from __future__ import annotations

from typing import assert_never

import anyio

from dagloom.actors import Actor
from dagloom.instance import DagloomInstance
from dagloom.messages.rpc import (
    ExecuteRunReply,
    ExecuteRunRequest,
    LaunchRunReply,
    LaunchRunRequest,
    RunWorkerBase,
    StopRunReply,
    StopRunRequest,
    TerminateRunReply,
    TerminateRunRequest,
)
from dagloom.topology.dispatch import WorkerPoolRunLauncher
from dagloom.transport import MemoryTransport


class FakeWorker(Actor[ExecuteRunRequest | StopRunRequest, ExecuteRunReply | StopRunReply]):
    """Accepts (or refuses) every run and remembers the ones it took."""

    service = RunWorkerBase

    def __init__(self, name: str, *, accept: bool = True) -> None:
        super().__init__(name)
        self.accept = accept
        self.runs: list[str] = []

    async def handle(
        self, message: ExecuteRunRequest | StopRunRequest
    ) -> ExecuteRunReply | StopRunReply:
        match message:
            case ExecuteRunRequest():
                if not self.accept:
                    return ExecuteRunReply(accepted=False, message="at its limit")
                self.runs.append(message.run_id)
                return ExecuteRunReply(accepted=True)
            case StopRunRequest():
                return StopRunReply(stopped=message.run_id in self.runs)
            case _:
                assert_never(message)


async def _ask(
    launcher: WorkerPoolRunLauncher, message: LaunchRunRequest | TerminateRunRequest
) -> LaunchRunReply | TerminateRunReply:
    reply = await MemoryTransport().ref(launcher).ask(message)
    assert isinstance(reply, LaunchRunReply | TerminateRunReply)
    return reply


async def test_runs_go_to_accepting_workers_in_turn() -> None:
    workers = [FakeWorker("a"), FakeWorker("full", accept=False), FakeWorker("b")]
    gone = FakeWorker("gone")
    gone.close()
    memory = MemoryTransport()
    launcher = WorkerPoolRunLauncher(
        DagloomInstance.ephemeral(), [memory.ref(w) for w in [gone, *workers]]
    )
    async with anyio.create_task_group() as tg:
        for actor in (*workers, launcher):
            await tg.start(actor.run)
        replies = [await _ask(launcher, LaunchRunRequest(run_id=f"r{i}")) for i in range(3)]
        tg.cancel_scope.cancel()
    assert [r.worker for r in replies] == ["a", "b", "a"]
    assert workers[0].runs == ["r0", "r2"] and workers[2].runs == ["r1"]


async def test_no_taker_explains_each_refusal() -> None:
    full = FakeWorker("full", accept=False)
    gone = FakeWorker("gone")
    gone.close()
    memory = MemoryTransport()
    launcher = WorkerPoolRunLauncher(
        DagloomInstance.ephemeral(), [memory.ref(full), memory.ref(gone)]
    )
    async with anyio.create_task_group() as tg:
        for actor in (full, launcher):
            await tg.start(actor.run)
        reply = await _ask(launcher, LaunchRunRequest(run_id="r"))
        tg.cancel_scope.cancel()
    assert isinstance(reply, LaunchRunReply)
    assert reply.worker == ""
    assert "full: at its limit" in reply.error and "gone" in reply.error


async def test_terminate_finds_the_run_on_any_worker() -> None:
    a, b = FakeWorker("a"), FakeWorker("b")
    memory = MemoryTransport()
    launcher = WorkerPoolRunLauncher(DagloomInstance.ephemeral(), [memory.ref(a), memory.ref(b)])
    async with anyio.create_task_group() as tg:
        for actor in (a, b, launcher):
            await tg.start(actor.run)
        await _ask(launcher, LaunchRunRequest(run_id="r0"))
        await _ask(launcher, LaunchRunRequest(run_id="r1"))
        stopped = await _ask(launcher, TerminateRunRequest(run_id="r1"))
        unknown = await _ask(launcher, TerminateRunRequest(run_id="nope"))
        tg.cancel_scope.cancel()
    assert isinstance(stopped, TerminateRunReply) and stopped.terminated
    assert isinstance(unknown, TerminateRunReply) and not unknown.terminated
