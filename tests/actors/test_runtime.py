"""The actor base: readiness, heartbeats, closing, and the protocol read from the service."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from dagloom.actors import Actor, Envelope, HealthReporter, ReplySlot, ServiceSpec
from dagloom.errors import ActorUnavailableError
from dagloom.messages.rpc import HealthBase, HealthStub, PingReply, PingRequest
from dagloom.transport import MemoryRef, MemoryTransport
from tests.transport.echo_pb.dagloomtest.v1 import EchoBase, EchoReply, EchoRequest

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


class _Upper(Actor[EchoRequest, EchoReply]):
    """Serves each ask by asking `lower`; counts the facts `lower` tells it."""

    service = EchoBase

    def __init__(self, lower: MemoryRef[EchoRequest, EchoReply]) -> None:
        super().__init__("upper", inbox_size=1)
        self.lower = lower
        self.facts = 0

    async def handle(self, message: EchoRequest) -> EchoReply:
        if message.text == "fact":
            self.facts += 1
            return EchoReply()
        return await self.lower.ask(message)


class _Lower(Actor[EchoRequest, EchoReply]):
    """Tells `upper` a fact before it answers each ask, as a launcher tells `RunEnded`."""

    service = EchoBase

    def __init__(self) -> None:
        super().__init__("lower", inbox_size=1)
        self.upper: MemoryRef[EchoRequest, EchoReply] | None = None

    async def handle(self, message: EchoRequest) -> EchoReply:
        assert self.upper is not None
        await self.upper.tell(EchoRequest(text="fact"))
        return EchoReply(number=message.number)


async def test_a_fact_told_up_an_ask_chain_never_waits_on_the_asker_full_inbox() -> None:
    """The cycle that once hung a coordinator and its launcher: the upper actor's inbox is
    full of asks while it waits on the lower one, which tells it a fact before replying."""
    transport = MemoryTransport()
    lower = _Lower()
    upper = _Upper(transport.ref(lower))
    lower.upper = transport.ref(upper)
    replies: list[int] = []

    async def ask(number: int) -> None:
        reply = await transport.ref(upper).ask(EchoRequest(number=number))
        replies.append(reply.number)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(lower.run)
            await tg.start(upper.run)
            async with anyio.create_task_group() as askers:
                for number in range(50):
                    askers.start_soon(ask, number)
            tg.cancel_scope.cancel()
    assert sorted(replies) == list(range(50))
    assert upper.facts == 50


class _Counting(Slow):
    handled = 0

    async def handle(self, message: PingRequest) -> PingReply:
        self.handled += 1
        return await super().handle(message)


class _Shedding(_Counting):
    drop_abandoned_asks = True


@pytest.mark.parametrize(("actor_type", "handled"), [(_Counting, 2), (_Shedding, 1)])
async def test_an_actor_may_drop_the_asks_nobody_waits_for(
    actor_type: type[_Counting], handled: int
) -> None:
    actor = actor_type()
    ref = MemoryTransport().ref(actor)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(actor.run)
            tg.start_soon(ref.ask, PingRequest())
            await actor.entered.wait()
            with pytest.raises(TimeoutError):
                await ref.ask(PingRequest(), timeout=0.01)  # queued, then given up on
            actor.gate.set()
            await ref.ask(PingRequest())
            tg.cancel_scope.cancel()
    assert actor.handled == handled + 1


class _Batching(Actor[PingRequest, PingReply]):
    """Holds its first ping until `gate` opens; fails the third ping it handles."""

    service = HealthBase
    batched = (PingRequest,)

    def __init__(self) -> None:
        super().__init__("batching")
        self.entered = anyio.Event()
        self.gate = anyio.Event()
        self.handled = 0
        self.batches: list[int] = []

    async def handle(self, message: PingRequest) -> PingReply:
        self.handled += 1
        if self.handled == 1:
            self.entered.set()
            await self.gate.wait()
        if self.handled == 3:
            raise ValueError("the third ping")
        return PingReply()

    async def handle_batch(
        self, messages: Sequence[PingRequest]
    ) -> list[PingReply | Exception | None]:
        self.batches.append(len(messages))
        return await super().handle_batch(messages)


async def test_asks_waiting_together_are_handled_as_a_batch_with_their_own_errors() -> None:
    """Asks of a batched type queued next to each other reach `handle_batch` together; the
    one that fails fails only its own ask, and the actor then crashes with its error."""
    actor = _Batching()
    ref = MemoryTransport().ref(actor)
    crashed: list[BaseException] = []
    outcomes: dict[int, object] = {}

    async def run(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            await actor.run(task_status=task_status)
        except ValueError as exc:
            crashed.append(exc)

    async def ask(index: int) -> None:
        try:
            outcomes[index] = await ref.ask(PingRequest())
        except ActorUnavailableError as exc:
            outcomes[index] = exc

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run)
            tg.start_soon(ask, 1)
            await actor.entered.wait()
            for index in (2, 3, 4):
                tg.start_soon(ask, index)
            while actor.statistics().current_buffer_used < 3:
                await anyio.lowlevel.checkpoint()
            actor.gate.set()
    assert actor.batches == [3]
    assert [type(outcomes[i]).__name__ for i in (1, 2, 3, 4)] == [
        "PingReply",
        "PingReply",
        "ActorUnavailableError",
        "PingReply",
    ]
    assert isinstance(outcomes[3], ActorUnavailableError)
    assert isinstance(outcomes[3].__cause__, ValueError)
    assert [str(e) for e in crashed] == ["the third ping"]
