"""The actor base: a typed inbox served one message at a time, and the envelopes in it."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

import anyio
import betterproto2
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import (
    MemoryObjectReceiveStream,
    MemoryObjectSendStream,
    MemoryObjectStreamStatistics,
)

from dagloom.actors._protocol import ServiceSpec
from dagloom.errors import ActorUnavailableError

if TYPE_CHECKING:
    from betterproto2.grpclib import ServiceBase

ReqT = TypeVar("ReqT", bound=betterproto2.Message)
RepT = TypeVar("RepT", bound=betterproto2.Message)

Clock = Callable[[], float]
"""A function returning seconds; injected wherever tests need to control time."""


class ReplySlot(Generic[RepT]):
    """Where the answer to one `ask` lands: filled once by the actor, awaited by the asker.

    The first outcome wins; later ones are ignored, so an actor failing a slot it already
    answered is harmless. An asker that stops waiting (timeout, cancellation) just drops
    the slot; the actor still fills it and nobody reads it.
    """

    __slots__ = ("_done", "_error", "_reply")

    def __init__(self) -> None:
        self._done = anyio.Event()
        self._reply: RepT | None = None
        self._error: BaseException | None = None

    def set_reply(self, reply: RepT) -> None:
        """Answer the ask with `reply`; does not block."""
        if not self._done.is_set():
            self._reply = reply
            self._done.set()

    def set_error(self, error: BaseException) -> None:
        """Make the ask raise `error`; does not block."""
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def wait(self) -> RepT:
        """Block until the slot is filled, then return the reply or raise the error."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._reply is not None
        return self._reply


@dataclass(slots=True)
class Envelope(Generic[ReqT, RepT]):
    """A message in an inbox, with the slot for its reply when it was asked (None: told)."""

    message: ReqT
    reply: ReplySlot[RepT] | None = None


@dataclass(frozen=True, slots=True)
class ActorHealth:
    """A snapshot of one actor's liveness, for health checks.

    `heartbeat` is when the actor was last seen able to serve (seconds on its clock, the
    epoch by default; 0.0 if never): now, if it is ready and waiting for mail; when it took
    the message it is still handling, if busy. So a handler stuck for a minute shows a
    heartbeat a minute old, and an idle actor is never stale.
    """

    actor: str
    ready: bool
    heartbeat: float
    restarts: int = 0
    last_error: str | None = None


class Actor(ABC, Generic[ReqT, RepT]):
    """A long-running component that owns an inbox and serves it one message at a time.

    A subclass names its generated service base as `service`, is parametrized with the union
    of that service's request types and the union of its reply types, and implements
    `handle` with a `match` over the requests ending in `assert_never`. Callers reach it only
    through refs (`dagloom.transport`), which put envelopes in the inbox; the actor cannot
    tell whether a message came by reference or over gRPC.

    The inbox is bounded (`inbox_size`, 0 for a rendezvous): when it is full, `deliver`
    blocks, which is the backpressure `tell` relies on. The inbox outlives `run`: a
    supervisor that restarts a crashed actor calls `run` again on the same object and the
    queued messages are served by the new run. `close` ends the inbox for good.
    """

    service: ClassVar[type[ServiceBase]]
    """The generated `XxxBase` whose methods this actor serves."""

    def __init__(self, name: str, *, inbox_size: int = 64, clock: Clock = time.time) -> None:
        service = getattr(type(self), "service", None)
        if service is None:
            raise TypeError(f"{type(self).__qualname__} must set `service` to its XxxBase")
        self.name = name
        self.spec = ServiceSpec.of(service)
        self._clock = clock
        self._send: MemoryObjectSendStream[Envelope[ReqT, RepT]]
        self._receive: MemoryObjectReceiveStream[Envelope[ReqT, RepT]]
        self._send, self._receive = anyio.create_memory_object_stream[Envelope[ReqT, RepT]](
            inbox_size
        )
        self._ready = False
        self._busy_since: float | None = None
        self._heartbeat = 0.0
        self._restarts = 0
        self._last_error: str | None = None
        self._closed = False
        self._children: TaskGroup | None = None
        self._handling: Envelope[ReqT, RepT] | None = None

    # -- what a concrete actor writes ---------------------------------------------------

    @abstractmethod
    async def handle(self, message: ReqT) -> RepT | None:
        """Serve one message and return its reply; None stands for the method's empty reply.

        The reply goes back to an asker and is dropped for a teller. Raising crashes the
        actor: the asker gets `ActorUnavailableError` and `run` raises, for the supervisor.
        """

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Live until cancelled: serve the inbox, reporting `task_status.started()` once ready.

        Override to set up state or start children (in a task group opened here) before
        calling `serve`; whatever must be fresh after a restart belongs here, not in
        `__init__`. Runs until cancelled; raises what a handler raised.
        """
        await self.serve(task_status=task_status)

    @asynccontextmanager
    async def _open_children(self) -> AsyncIterator[TaskGroup]:
        """Open the task group for the tasks this actor starts, `_children` inside the block.

        For `run`, around `serve`. Leaving the block, by cancellation or a crash, cancels
        the children and waits for them to end; `_children` is None outside it.
        """
        async with anyio.create_task_group() as tg:
            self._children = tg
            try:
                yield tg
            finally:
                self._children = None
                tg.cancel_scope.cancel()

    # -- the message loop ---------------------------------------------------------------

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Take envelopes from the inbox and handle them in order, one at a time.

        Blocks until cancelled or a handler raises. Reports readiness through `task_status`.
        On a crash or cancellation in the middle of a message, its asker gets
        `ActorUnavailableError`; messages still queued stay for the next `serve`.
        """
        if self._closed:
            raise RuntimeError(f"actor {self.name!r} is closed")
        receive = self._receive
        clock = self._clock
        self._ready = True
        self._heartbeat = clock()
        task_status.started()
        try:
            while True:
                # The fast path skips `receive`'s checkpoint, a full loop cycle (~6 us of a
                # ~20 us ask). A handler that never awaits still yields once the inbox is
                # empty, and the inbox is bounded, so nothing starves.
                try:
                    envelope = receive.receive_nowait()
                except anyio.WouldBlock:
                    envelope = await receive.receive()
                self._busy_since = self._heartbeat = clock()
                self._handling = envelope
                try:
                    reply = await self.handle(envelope.message)
                except BaseException as exc:
                    self._fail(envelope, exc)
                    raise
                finally:
                    self._handling = None
                if envelope.reply is not None:
                    if reply is None:
                        reply = self.spec.method_for(type(envelope.message)).reply_type()  # type: ignore[assignment]
                    envelope.reply.set_reply(reply)  # type: ignore[arg-type]
                self._busy_since = None
        finally:
            self._ready = False
            self._busy_since = None

    def _detach_reply(self) -> ReplySlot[RepT] | None:
        """Take over answering the message being handled (None: it was told, not asked).

        Call it from `handle` to answer later, from a child task, so that slow work does
        not hold the inbox: `serve` then leaves the reply alone, and whoever holds the slot
        must fill it (`set_reply` or `set_error`), also when cancelled. Outside `handle` it
        raises `RuntimeError`.
        """
        envelope = self._handling
        if envelope is None:
            raise RuntimeError(f"actor {self.name!r} is not handling a message")
        slot, envelope.reply = envelope.reply, None
        return slot

    def _fail(self, envelope: Envelope[ReqT, RepT], exc: BaseException) -> None:
        kind = type(envelope.message).__name__
        if isinstance(exc, Exception):
            self._last_error = f"{kind}: {exc!r}"
            text = f"actor {self.name!r} crashed handling {kind}: {exc!r}"
        else:
            text = f"actor {self.name!r} stopped while handling {kind}"
        if envelope.reply is not None:
            error = ActorUnavailableError(text, actor=self.name)
            error.__cause__ = exc if isinstance(exc, Exception) else None
            envelope.reply.set_error(error)

    # -- what refs call -----------------------------------------------------------------

    async def deliver(self, envelope: Envelope[ReqT, RepT]) -> None:
        """Put an envelope in the inbox, blocking while it is full.

        With room in the inbox it returns without yielding to the loop (that checkpoint
        costs as much as the rest of a memory ask); tellers blocked on a full inbox keep
        their turn, since anyio refills freed room from them first. Raises
        `ActorUnavailableError` if the actor is closed. Cancelling it while blocked
        delivers nothing.
        """
        try:
            try:
                self._send.send_nowait(envelope)
            except anyio.WouldBlock:
                await self._send.send(envelope)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise ActorUnavailableError(f"actor {self.name!r} is closed", actor=self.name) from exc

    def deliver_nowait(self, envelope: Envelope[ReqT, RepT]) -> None:
        """Put an envelope in the inbox or raise `anyio.WouldBlock` if it is full.

        Raises `ActorUnavailableError` if the actor is closed.
        """
        try:
            self._send.send_nowait(envelope)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise ActorUnavailableError(f"actor {self.name!r} is closed", actor=self.name) from exc

    # -- lifecycle and health -----------------------------------------------------------

    def close(self) -> None:
        """End the inbox for good: queued and later asks fail with `ActorUnavailableError`.

        Idempotent and non-blocking. Call it once nothing will run the actor again (its
        supervisor gave up or shut down); tellers blocked on a full inbox are woken with
        the error too.
        """
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                envelope = self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            if envelope.reply is not None:
                envelope.reply.set_error(
                    ActorUnavailableError(f"actor {self.name!r} was closed", actor=self.name)
                )
        self._receive.close()
        self._send.close()

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._closed

    def health(self) -> ActorHealth:
        """A snapshot of readiness and heartbeat; cheap, never blocks."""
        if self._ready and self._busy_since is None:
            self._heartbeat = self._clock()
        return ActorHealth(
            actor=self.name,
            ready=self._ready,
            heartbeat=self._heartbeat,
            restarts=self._restarts,
            last_error=self._last_error,
        )

    def statistics(self) -> MemoryObjectStreamStatistics:
        """The inbox's statistics: queued messages, buffer size, blocked senders."""
        return self._send.statistics()

    def _record_restart(self, error: str) -> None:
        # Called by the supervisor, which is the one that knows a run is a restart.
        self._restarts += 1
        self._last_error = error

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
