"""The memory transport: refs that put messages in an in-process actor's inbox by reference."""

from __future__ import annotations

import os
from typing import Generic, TypeVar

import anyio
import betterproto2

from dagloom.actors._runtime import Actor, Envelope, ReplySlot, RepT, ReqT

STRICT_ENV = "DAGLOOM_STRICT_MESSAGES"
"""Set to 1 to make every `MemoryTransport` whose `strict` is unset round-trip through bytes."""

M = TypeVar("M", bound=betterproto2.Message)


def strict_from_env() -> bool:
    """Whether `DAGLOOM_STRICT_MESSAGES` asks for strict messages (1/true/yes/on)."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def cross_wire(message: M, expected: type[betterproto2.Message]) -> M:
    """Return `message` as the far side of a gRPC call would see it: serialized and parsed.

    Raises `TypeError` if it is not an `expected`, cannot be serialized (a field holds a
    value of the wrong type), or comes back different (a value out of its field's range),
    so whatever would break or change on the wire fails in tests on the memory transport.
    """
    if type(message) is not expected:
        raise TypeError(f"expected a {expected.__name__} message, got {type(message).__name__}")
    try:
        data = bytes(message)
    except Exception as exc:
        # betterproto2 raises whatever its encoder hits (AttributeError, TypeError,
        # struct.error), so the boundary is broad on purpose.
        raise TypeError(
            f"{type(message).__name__} cannot be serialized, so it cannot cross a process "
            f"boundary: {exc!r}"
        ) from exc
    copy = type(message).parse(data)
    if bytes(copy) != data:
        raise TypeError(f"{type(message).__name__} changes on the wire: {message!r} -> {copy!r}")
    return copy


class MemoryRef(Generic[ReqT, RepT]):
    """A ref to an actor in this process; messages travel by reference (or, strict, as bytes).

    Cheap to copy and share; holds no resources, so there is nothing to close.
    """

    __slots__ = ("_actor", "_strict")

    def __init__(self, actor: Actor[ReqT, RepT], *, strict: bool = False) -> None:
        self._actor = actor
        self._strict = strict

    @property
    def actor(self) -> str:
        """The name of the actor this ref reaches."""
        return self._actor.name

    @property
    def strict(self) -> bool:
        """Whether requests and replies are round-tripped through bytes."""
        return self._strict

    def _outgoing(self, message: ReqT) -> ReqT:
        if not self._strict:
            return message
        method = self._actor.spec.method_for(type(message))
        return cross_wire(message, method.request_type)

    async def tell(self, message: ReqT) -> None:
        """Queue `message`; never waits for room (see `ActorRef.tell`)."""
        await self._actor.deliver(Envelope(self._outgoing(message)))

    def tell_nowait(self, message: ReqT) -> None:
        """Queue `message` at once; a tell always finds room, so it never blocks."""
        self._actor.deliver_nowait(Envelope(self._outgoing(message)))

    async def ask(self, message: ReqT, *, timeout: float | None = None) -> RepT:  # noqa: ASYNC109 - over gRPC it travels as the call's deadline
        """Queue `message` and wait for the reply; see `ActorRef.ask`."""
        message = self._outgoing(message)
        slot: ReplySlot[RepT] = ReplySlot()
        if timeout is None:
            await self._actor.deliver(Envelope(message, slot))
            reply = await slot.wait()
        else:
            with anyio.fail_after(timeout):
                await self._actor.deliver(Envelope(message, slot))
                reply = await slot.wait()
        if self._strict:
            reply = cross_wire(reply, self._actor.spec.method_for(type(message)).reply_type)
        return reply

    def __repr__(self) -> str:
        return f"<MemoryRef {self._actor.name!r}{' strict' if self._strict else ''}>"


class MemoryTransport:
    """Makes refs to actors of this process.

    `strict=True` round-trips every request and reply through bytes, proving them wire-safe;
    `strict=None` (the default) takes it from `DAGLOOM_STRICT_MESSAGES`, read once, here.
    """

    def __init__(self, *, strict: bool | None = None) -> None:
        self.strict = strict_from_env() if strict is None else strict

    def ref(self, actor: Actor[ReqT, RepT]) -> MemoryRef[ReqT, RepT]:
        """A ref to `actor`; does not block, and the actor need not be running yet."""
        return MemoryRef(actor, strict=self.strict)
