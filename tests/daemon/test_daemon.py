"""The daemon actor: every loop ticks on its interval with a heartbeat per round, a failing
round is recorded as the loop's last error and the loop goes on, and `GetStatus` says so."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import pytest

from dagloom.daemon._loop import DaemonLoop
from dagloom.daemon.daemon import Daemon
from dagloom.instance import DagloomInstance
from dagloom.messages.rpc import DaemonStatusReply, DaemonStatusRequest
from dagloom.transport import MemoryTransport


@dataclass
class CountingLoop:
    """A loop that records the `now` of every round and raises on the rounds listed."""

    name: str
    interval: float = 0.0
    fail_on: set[int] = field(default_factory=set)
    seen: list[float] = field(default_factory=list)
    enough: int = 3
    done: anyio.Event = field(default_factory=anyio.Event)

    async def tick(self, now: float) -> None:
        self.seen.append(now)
        if len(self.seen) >= self.enough:
            self.done.set()
        if len(self.seen) in self.fail_on:
            raise RuntimeError(f"round {len(self.seen)} broke")


def test_a_counting_loop_is_a_daemon_loop() -> None:
    loop: DaemonLoop = CountingLoop("x")
    assert loop.name == "x"


def test_loop_names_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Daemon(DagloomInstance.ephemeral().schedule_storage, [CountingLoop("a"), CountingLoop("a")])


async def test_each_round_writes_a_heartbeat_with_the_injected_clock() -> None:
    now = [1000.0]
    async with DagloomInstance.ephemeral() as instance:
        loop = CountingLoop("scheduler", interval=30)
        daemon = Daemon(instance.schedule_storage, [loop], daemon_id="d1", clock=lambda: now[0])
        assert await daemon.run_round("scheduler") is None
        now[0] = 1030.0
        await daemon.run_round("scheduler")
        assert loop.seen == [1000.0, 1030.0]
        beat = (await instance.schedule_storage.get_daemon_heartbeats())["scheduler"]
        assert (beat.daemon_id, beat.timestamp, beat.interval) == ("d1", 1030.0, 30)
        assert beat.last_error is None and beat.errors == []


async def test_a_failing_round_is_the_loops_last_error_and_the_loop_goes_on() -> None:
    now = [5.0]
    async with DagloomInstance.ephemeral() as instance:
        loop = CountingLoop("sensors", fail_on={2})
        daemon = Daemon(instance.schedule_storage, [loop], clock=lambda: now[0])
        await daemon.run_round("sensors")
        now[0] = 6.0
        error = await daemon.run_round("sensors")
        assert error is not None and "round 2 broke" in error.message
        now[0] = 7.0
        assert await daemon.run_round("sensors") is None
        beat = (await instance.schedule_storage.get_daemon_heartbeats())["sensors"]
        # The last error stays until a newer one; the round itself met none.
        assert beat.errors == []
        assert beat.last_error is not None and beat.last_error.cls_name == "RuntimeError"
        assert beat.last_error_time == 6.0
        status = daemon.status().loops[0]
        assert (status.rounds, status.last_error_time) == (3, 6.0)


async def test_a_running_daemon_ticks_every_loop_and_answers_status() -> None:
    async with DagloomInstance.ephemeral() as instance:
        fast = CountingLoop("fast", fail_on={1})
        other = CountingLoop("other")
        daemon = Daemon(instance.schedule_storage, [fast, other])
        memory = MemoryTransport()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                await tg.start(daemon.run)
                await fast.done.wait()
                await other.done.wait()
                reply = await memory.ref(daemon).ask(DaemonStatusRequest())
                tg.cancel_scope.cancel()
        assert isinstance(reply, DaemonStatusReply)
        by_name = {s.name: s for s in reply.loops}
        assert by_name["fast"].rounds >= 3 and by_name["other"].rounds >= 3
        assert by_name["fast"].last_error is not None
        assert by_name["other"].last_error is None
        beats = await instance.schedule_storage.get_daemon_heartbeats()
        assert set(beats) == {"fast", "other"}
