"""One actor, three ways to reach it: the same behaviour by reference, through bytes, over gRPC."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from dagloom.actors._runtime import Envelope, ReplySlot
from dagloom.errors import ActorUnavailableError
from dagloom.messages.rpc import PingRequest
from dagloom.transport import MemoryRef, MemoryTransport

from ._echo import (
    KINDS,
    CrashRequest,
    EchoReply,
    EchoRequest,
    EchoServer,
    HoldReply,
    HoldRequest,
    serving,
    wait_until,
)


@pytest.mark.parametrize("kind", KINDS)
async def test_ask_returns_the_actors_reply(kind: str) -> None:
    with anyio.fail_after(10):
        async with serving(kind) as (_, ref):
            reply = await ref.ask(EchoRequest(text="hi", number=7, payload=b"abc"))
    assert reply == EchoReply(text="hi", number=7, payload_size=3, actor="echo")


@pytest.mark.parametrize("kind", KINDS)
async def test_tell_queues_and_messages_are_handled_in_order(kind: str) -> None:
    with anyio.fail_after(10):
        async with serving(kind) as (actor, ref):
            for n in range(5):
                await ref.tell(EchoRequest(number=n))
            await ref.ask(EchoRequest(number=99))
    assert [m.number for m in actor.handled if isinstance(m, EchoRequest)] == [0, 1, 2, 3, 4, 99]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_handler_returning_none_answers_with_the_empty_reply(kind: str) -> None:
    with anyio.fail_after(10):
        async with serving(kind) as (_, ref):
            reply = await ref.ask(EchoRequest(text="no reply"))
    assert reply == EchoReply()


@pytest.mark.parametrize("kind", KINDS)
async def test_ask_times_out_with_timeout_error_and_the_actor_carries_on(kind: str) -> None:
    with anyio.fail_after(10):
        async with serving(kind) as (actor, ref):
            with pytest.raises(TimeoutError):
                await ref.ask(HoldRequest(key="slow"), timeout=0.05)
            actor.gate.set()
            reply = await ref.ask(EchoRequest(text="after"))
    assert reply.text == "after"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_crash_fails_the_asker_and_the_supervisor_restarts_the_actor(kind: str) -> None:
    with anyio.fail_after(10):
        async with serving(kind) as (actor, ref):
            with pytest.raises(ActorUnavailableError) as info:
                await ref.ask(CrashRequest(reason="kaboom"))
            assert info.value.actor == "echo"
            assert "kaboom" in str(info.value)
            reply = await ref.ask(EchoRequest(text="back"))
    assert reply.text == "back"
    assert actor.health().restarts == 1
    assert "kaboom" in (actor.health().last_error or "")


@pytest.mark.parametrize("kind", ["strict", "grpc"])
async def test_a_message_outside_the_actors_protocol_is_refused(kind: str) -> None:
    with anyio.fail_after(10):
        async with serving(kind) as (_, ref):
            with pytest.raises(TypeError, match="not a request of service"):
                await ref.ask(PingRequest())  # type: ignore[arg-type]


async def test_strict_mode_refuses_a_request_that_cannot_be_serialized() -> None:
    bad = EchoRequest(text=5)  # type: ignore[arg-type]
    with anyio.fail_after(10):
        async with serving("strict") as (_, ref):
            with pytest.raises(TypeError, match="cannot be serialized"):
                await ref.ask(bad)
            with pytest.raises(TypeError, match="cannot be serialized"):
                await ref.tell(bad)
        # By reference the same message goes through: the hole strict mode closes.
        async with serving("memory") as (_, ref):
            reply = await ref.ask(bad)
    assert reply.text == 5


async def test_strict_mode_refuses_a_value_the_wire_would_change() -> None:
    with anyio.fail_after(10):
        async with serving("strict") as (_, ref):
            with pytest.raises(TypeError, match="changes on the wire"):
                await ref.ask(EchoRequest(number=2**40))


async def test_grpc_refuses_a_request_that_cannot_be_serialized() -> None:
    with anyio.fail_after(10):
        async with serving("grpc") as (_, ref):
            with pytest.raises(TypeError, match="cannot be serialized"):
                await ref.ask(EchoRequest(text=5))  # type: ignore[arg-type]
            assert (await ref.ask(EchoRequest(text="still here"))).text == "still here"


async def test_a_reply_that_cannot_be_serialized_fails_in_strict_mode_and_over_grpc() -> None:
    with anyio.fail_after(10):
        async with serving("strict") as (_, ref):
            with pytest.raises(TypeError, match="cannot be serialized"):
                await ref.ask(CrashRequest(bad_reply=True))
        async with serving("grpc") as (_, ref):
            with pytest.raises(ActorUnavailableError):
                await ref.ask(CrashRequest(bad_reply=True))
            assert (await ref.ask(EchoRequest(text="still here"))).text == "still here"


def test_memory_transport_is_strict_in_the_test_suite() -> None:
    assert MemoryTransport().strict
    assert not MemoryTransport(strict=False).strict


def test_strict_mode_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLOOM_STRICT_MESSAGES", "0")
    assert not MemoryTransport().strict
    monkeypatch.setenv("DAGLOOM_STRICT_MESSAGES", "true")
    assert MemoryTransport().strict


@pytest.mark.parametrize("kind", ["memory", "strict"])
async def test_a_full_inbox_blocks_asks_and_never_tells(kind: str) -> None:
    actor = EchoServer(inbox_size=1)
    slot: ReplySlot[Any] = ReplySlot()
    with anyio.fail_after(10):
        async with serving(kind, actor) as (_, ref):
            assert isinstance(ref, MemoryRef)
            await ref.tell(HoldRequest(key="busy"))
            await actor.holding.wait()
            actor.deliver_nowait(Envelope(EchoRequest(number=1), slot))  # the one ask's room
            with pytest.raises(anyio.WouldBlock):
                actor.deliver_nowait(Envelope(EchoRequest(number=9), ReplySlot()))
            # Facts always go in, however many asks wait.
            ref.tell_nowait(EchoRequest(number=2))
            await ref.tell(EchoRequest(number=3))

            answered = anyio.Event()

            async def blocked_ask() -> None:
                await ref.ask(EchoRequest(number=4))
                answered.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(blocked_ask)
                await wait_until(lambda: actor.statistics().tasks_waiting_send == 1)
                assert not answered.is_set()
                actor.gate.set()
                await answered.wait()
            assert (await slot.wait()).number == 1
    assert [m.number for m in actor.handled if isinstance(m, EchoRequest)] == [1, 2, 3, 4]


async def test_over_grpc_a_full_remote_inbox_blocks_asks_and_never_tells() -> None:
    actor = EchoServer(inbox_size=1)
    with anyio.fail_after(10):
        async with serving("grpc", actor) as (_, ref):
            await ref.tell(HoldRequest(key="busy"))
            await actor.holding.wait()
            async with anyio.create_task_group() as tg:
                tg.start_soon(ref.ask, EchoRequest(number=1))
                await wait_until(lambda: actor.statistics().current_buffer_used == 1)
                await ref.tell(EchoRequest(number=2))  # returns though the inbox is full
                answered = anyio.Event()

                async def blocked_ask() -> None:
                    await ref.ask(EchoRequest(number=3))
                    answered.set()

                tg.start_soon(blocked_ask)
                await wait_until(lambda: actor.statistics().tasks_waiting_send == 1)
                assert not answered.is_set()
                actor.gate.set()
                await answered.wait()
    assert [m.number for m in actor.handled if isinstance(m, EchoRequest)] == [1, 2, 3]


@pytest.mark.parametrize("kind", KINDS)
async def test_asks_queued_behind_a_closed_actor_fail_instead_of_hanging(kind: str) -> None:
    with anyio.fail_after(10):
        async with serving(kind) as (actor, ref):
            await ref.tell(HoldRequest(key="busy"))
            await actor.holding.wait()
            outcome: list[BaseException | HoldReply] = []

            async def queued_ask() -> None:
                try:
                    outcome.append(await ref.ask(HoldRequest(key="queued")))
                except ActorUnavailableError as exc:
                    outcome.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(queued_ask)
                await wait_until(lambda: actor.statistics().current_buffer_used == 1)
                actor.close()
            with pytest.raises(ActorUnavailableError):
                await ref.ask(EchoRequest())
    assert len(outcome) == 1
    assert isinstance(outcome[0], ActorUnavailableError)


async def test_cancelling_an_ask_leaves_the_actor_serving() -> None:
    with anyio.fail_after(10):
        async with serving("strict") as (actor, ref):
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(ref.ask, HoldRequest(key="abandoned"))
                    await actor.holding.wait()
                    scope.cancel()
            actor.gate.set()
            assert (await ref.ask(EchoRequest(text="next"))).text == "next"
