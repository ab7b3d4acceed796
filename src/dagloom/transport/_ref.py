"""The `ActorRef` protocol: how a caller talks to an actor, whichever transport carries it."""

from __future__ import annotations

from typing import Protocol, TypeVar

import betterproto2

ReqT_contra = TypeVar("ReqT_contra", bound=betterproto2.Message, contravariant=True)
RepT_co = TypeVar("RepT_co", bound=betterproto2.Message, covariant=True)


class ActorRef(Protocol[ReqT_contra, RepT_co]):
    """A handle on one actor, local or remote; the only way callers reach an actor.

    Both transports raise the same errors: `ActorUnavailableError` when the actor is closed,
    crashed on this message, or (gRPC) its node cannot be reached; `TimeoutError` when an
    `ask` outlives its timeout. Neither call retries on its own, because a message that may
    have been delivered must not be delivered twice behind the caller's back.

    There is no `tell_nowait` here: a send that cannot wait cannot cross a network. The
    memory transport's refs have one.
    """

    @property
    def actor(self) -> str:
        """The name of the actor this ref reaches."""
        ...

    async def tell(self, message: ReqT_contra) -> None:
        """Deliver `message`, a fact, and return without its reply.

        Never waits for room in the actor's inbox (only asks do, which is what keeps actors
        that tell each other facts out of deadlocks); over gRPC it waits for the network.
        Returns once the message is queued, not once it is handled. Cancelling it before it
        returns may or may not have delivered the message.
        """
        ...

    async def ask(self, message: ReqT_contra, *, timeout: float | None = None) -> RepT_co:  # noqa: ASYNC109 - over gRPC it travels as the call's deadline
        """Deliver `message` and return the actor's reply.

        Blocks while the inbox is full of asks and until the reply comes; `timeout`
        (seconds) bounds both and raises `TimeoutError`. A timed-out or cancelled ask may
        still be handled (unless the actor drops asks nobody waits for and had not taken it).
        """
        ...
