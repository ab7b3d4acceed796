"""The actor base: readiness, heartbeats, closing, and the protocol read from the service."""

from __future__ import annotations

import anyio
import pytest

from dagloom.actors import Actor, Envelope, HealthReporter, ReplySlot, ServiceSpec
from dagloom.errors import ActorUnavailableError
from dagloom.messages.rpc import HealthBase, HealthStub, PingReply, PingRequest
from dagloom.transport import MemoryTransport

from ._flaky import FakeClock, Slow


def test_the_protocol_comes_from_the_generated_service() -> None:
    spec = ServiceSpec.of(HealthBase)
    assert spec.name == "dagloom.v1.rpc.Health"
    assert spec.stub is HealthStub
    (method,) = spec.methods
    assert (method.name, method.route) == ("Ping", "/dagloom.v1.rpc.Health/Ping")
    assert (method.request_type, method.reply_type) == (PingRequest, PingReply)
    assert spec.method_for(PingRequest) is method
    assert ServiceSpec.of(HealthBase) is spec
    with pytest.raises(TypeError, match="not a request of service"):
        spec.method_for(PingReply)
    with pytest.raises(TypeError, match="not a generated service base"):
        ServiceSpec.of(HealthStub)  # type: ignore[arg-type]


def test_an_actor_must_name_its_service() -> None:
    class Nameless(Actor[PingRequest, PingReply]):
        async def handle(self, message: PingRequest) -> PingReply:
            return PingReply()

    with pytest.raises(TypeError, match="must set `service`"):
        Nameless("nameless")


async def test_ready_and_heartbeat_follow_the_actor() -> None:
    clock = FakeClock(50.0)
    actor = Slow(clock=clock)
    assert (actor.health().ready, actor.health().heartbeat) == (False, 0.0)
    ref = MemoryTransport().ref(actor)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(actor.run)
            assert (actor.health().ready, actor.health().heartbeat) == (True, 50.0)
            clock.now = 60.0
            assert actor.health().heartbeat == 60.0  # idle and ready: seen now
            tg.start_soon(ref.ask, PingRequest())
            await actor.entered.wait()
            clock.now = 90.0
            assert actor.health().heartbeat == 60.0  # busy since 60: a stuck handler shows
            actor.gate.set()
            await ref.ask(PingRequest())
            assert actor.health().heartbeat == 90.0
            tg.cancel_scope.cancel()
    assert not actor.health().ready


async def test_close_fails_queued_asks_and_later_deliveries_and_is_idempotent() -> None:
    actor = Slow()
    slot: ReplySlot[PingReply] = ReplySlot()
    actor.deliver_nowait(Envelope(PingRequest(), slot))
    actor.close()
    actor.close()
    with anyio.fail_after(10):
        with pytest.raises(ActorUnavailableError, match="was closed"):
            await slot.wait()
        with pytest.raises(ActorUnavailableError, match="is closed"):
            await actor.deliver(Envelope(PingRequest()))
        with pytest.raises(ActorUnavailableError):
            actor.deliver_nowait(Envelope(PingRequest()))
        with pytest.raises(RuntimeError, match="closed"):
            await actor.serve()


async def test_a_reply_slot_keeps_its_first_outcome() -> None:
    slot: ReplySlot[PingReply] = ReplySlot()
    slot.set_reply(PingReply(time=1.0))
    slot.set_error(RuntimeError("late"))
    slot.set_reply(PingReply(time=2.0))
    with anyio.fail_after(10):
        assert (await slot.wait()).time == 1.0


async def test_cancelling_an_actor_mid_message_fails_that_ask() -> None:
    actor = Slow()
    ref = MemoryTransport().ref(actor)
    errors: list[BaseException] = []

    async def ask() -> None:
        try:
            await ref.ask(PingRequest())
        except ActorUnavailableError as exc:
            errors.append(exc)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as outer:
            outer.start_soon(ask)
            async with anyio.create_task_group() as tg:
                await tg.start(actor.run)
                await actor.entered.wait()
                tg.cancel_scope.cancel()
    assert len(errors) == 1
    assert "stopped while handling PingRequest" in str(errors[0])


async def test_the_health_reporter_answers_for_others_and_itself() -> None:
    other = Slow("other")
    reporter = HealthReporter(lambda: [other.health()], clock=FakeClock(7.0))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(reporter.run)
            reply = await MemoryTransport().ref(reporter).ask(PingRequest())
            tg.cancel_scope.cancel()
    assert [(a.actor, a.ready) for a in reply.actors] == [("other", False), ("health", True)]
    assert reply.time == 7.0


async def test_a_handler_may_answer_later_while_the_inbox_moves_on() -> None:
    class Deferring(Actor[PingRequest, PingReply]):
        service = HealthBase

        def __init__(self) -> None:
            super().__init__("deferring")
            self.held: list[ReplySlot[PingReply] | None] = []

        async def handle(self, message: PingRequest) -> PingReply | None:
            if not self.held:
                self.held.append(self._detach_reply())
                return None
            return PingReply()

    actor = Deferring()
    ref = MemoryTransport().ref(actor)
    order: list[str] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(actor.run)

            async def first() -> None:
                await ref.ask(PingRequest())
                order.append("first answered")

            tg.start_soon(first)
            await anyio.wait_all_tasks_blocked()  # the first ask is held by the actor
            assert len(actor.held) == 1
            await ref.ask(PingRequest())
            order.append("second answered")
            (slot,) = actor.held
            assert slot is not None
            slot.set_reply(PingReply())
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert order == ["second answered", "first answered"]
    with pytest.raises(RuntimeError, match="not handling a message"):
        actor._detach_reply()
