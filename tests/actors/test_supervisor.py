"""The supervisor restarts crashed actors with backoff, records crashes, never eats cancels."""

from __future__ import annotations

import anyio
import pytest
from structlog.testing import capture_logs

from dagloom.actors import Backoff, RestartPolicy, Supervisor
from dagloom.errors import ActorUnavailableError
from dagloom.messages.rpc import PingRequest
from dagloom.transport import MemoryTransport

from ._flaky import FakeClock, Flaky, RecordingSleep

BACKOFF = Backoff(initial=0.5, maximum=1.5, multiplier=2.0)


async def test_a_crash_while_starting_is_restarted_with_exponential_backoff() -> None:
    sleep = RecordingSleep()
    flaky = Flaky(failures=3)
    supervisor = Supervisor(sleep=sleep)
    supervisor.add(flaky, RestartPolicy(backoff=BACKOFF))
    with capture_logs() as logs, anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            reply = await MemoryTransport().ref(flaky).ask(PingRequest())
            tg.cancel_scope.cancel()
    assert sleep.delays == [0.5, 1.0, 1.5]
    assert [a.actor for a in reply.actors] == ["flaky"]
    crashes = [e for e in logs if e["event"] == "actor_crashed"]
    assert [(e["actor"], e["crashes"], e["restart_in"]) for e in crashes] == [
        ("flaky", 1, 0.5),
        ("flaky", 2, 1.0),
        ("flaky", 3, 1.5),
    ]
    assert crashes[0]["error"] == "RuntimeError('start crash 1')"
    assert crashes[0]["log_level"] == "error"
    health = flaky.health()
    assert (health.restarts, health.last_error) == (3, "RuntimeError('start crash 3')")


async def test_a_crash_while_serving_is_restarted_and_later_mail_is_served() -> None:
    sleep = RecordingSleep()
    flaky = Flaky()
    supervisor = Supervisor(sleep=sleep)
    supervisor.add(flaky, RestartPolicy(backoff=BACKOFF))
    ref = MemoryTransport().ref(flaky)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            flaky.crash_on_ping = True
            with pytest.raises(ActorUnavailableError, match="ping crash"):
                await ref.ask(PingRequest())
            flaky.crash_on_ping = False
            await ref.ask(PingRequest())
            tg.cancel_scope.cancel()
    assert flaky.runs == 2
    assert sleep.delays == [0.5]


async def test_a_long_run_resets_the_backoff() -> None:
    clock = FakeClock()
    sleep = RecordingSleep()
    flaky = Flaky()
    supervisor = Supervisor(clock=clock, sleep=sleep)
    supervisor.add(flaky, RestartPolicy(backoff=BACKOFF, reset_after=60.0))
    ref = MemoryTransport().ref(flaky)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            for uptime in [0.0, 0.0, 61.0, 0.0]:
                clock.now += uptime
                flaky.crash_on_ping = True
                with pytest.raises(ActorUnavailableError):
                    await ref.ask(PingRequest())
                flaky.crash_on_ping = False
                await ref.ask(PingRequest())  # answered once the restart is done
            tg.cancel_scope.cancel()
    assert sleep.delays == [0.5, 1.0, 0.5, 1.0]


async def test_a_non_restartable_crash_propagates_and_stops_its_siblings() -> None:
    sibling = Flaky("sibling")
    doomed = Flaky("doomed")
    supervisor = Supervisor(sleep=RecordingSleep())
    supervisor.add(sibling)
    supervisor.add(doomed, RestartPolicy(restartable=False))
    doomed.crash_on_ping = True
    with capture_logs() as logs, anyio.fail_after(10), pytest.raises(ExceptionGroup) as info:
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            with pytest.raises(ActorUnavailableError):
                await MemoryTransport().ref(doomed).ask(PingRequest())
            await anyio.sleep_forever()
    assert info.group_contains(RuntimeError, match="ping crash", depth=None)
    assert sibling.cancelled == 1
    assert [(e["actor"], e["restart_in"]) for e in logs if e["event"] == "actor_crashed"] == [
        ("doomed", None)
    ]
    with pytest.raises(ActorUnavailableError):
        await MemoryTransport().ref(sibling).ask(PingRequest())


async def test_max_restarts_bounds_consecutive_restarts() -> None:
    sleep = RecordingSleep()
    flaky = Flaky(failures=5)
    supervisor = Supervisor(sleep=sleep)
    supervisor.add(flaky, RestartPolicy(backoff=BACKOFF, max_restarts=2))
    with anyio.fail_after(10), pytest.raises(ExceptionGroup) as info:
        await supervisor.run()
    assert info.group_contains(RuntimeError, match="start crash 3", depth=None)
    assert sleep.delays == [0.5, 1.0]
    assert flaky.runs == 3


async def test_cancelling_the_supervisor_cancels_children_and_logs_no_crash() -> None:
    first, second = Flaky("first"), Flaky("second")
    supervisor = Supervisor()
    supervisor.add(first)
    supervisor.add(second)
    with capture_logs() as logs, anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            assert all(h.ready for h in supervisor.health())
            tg.cancel_scope.cancel()
    assert (first.cancelled, second.cancelled) == (1, 1)
    assert not [e for e in logs if e["event"] == "actor_crashed"]
    assert not any(h.ready for h in supervisor.health())
    assert first.closed and second.closed


async def test_cancellation_during_a_backoff_wait_is_not_swallowed() -> None:
    waiting = anyio.Event()

    async def sleep_forever(delay: float) -> None:
        waiting.set()
        await anyio.sleep_forever()

    flaky = Flaky(failures=1)
    supervisor = Supervisor(sleep=sleep_forever)
    supervisor.add(flaky)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(supervisor.run)
            await waiting.wait()
            tg.cancel_scope.cancel()
    assert flaky.runs == 1
    assert flaky.closed


async def test_children_start_in_order_and_the_supervisor_is_ready_after_them() -> None:
    flaky = Flaky(failures=2)
    steady = Flaky("steady")
    supervisor = Supervisor(sleep=RecordingSleep())
    supervisor.add(flaky)
    supervisor.add(steady)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            assert [(h.actor, h.ready, h.restarts) for h in supervisor.health()] == [
                ("flaky", True, 2),
                ("steady", True, 0),
            ]
            tg.cancel_scope.cancel()


async def test_children_are_added_once_and_before_running() -> None:
    supervisor = Supervisor()
    supervisor.add(Flaky())
    with pytest.raises(ValueError):
        supervisor.add(Flaky())
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            with pytest.raises(RuntimeError):
                supervisor.add(Flaky("late"))
            tg.cancel_scope.cancel()
