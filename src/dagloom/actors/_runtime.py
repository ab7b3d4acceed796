"""The actor base: a typed inbox served one message at a time, and the envelopes in it.

Why no cycle of actors can deadlock on full inboxes: only an `ask` ever waits for room in an
inbox. A `tell` carries a fact (`RunEnded`, `WorkerExited`, `AdmitRuns`) and never waits:
told messages always go in, whatever the inbox holds; a reply is set on its `ReplySlot`,
which never waits either. So a wait-for cycle would need a cycle of asks, and the asks form
a tree that points away from the user: API -> coordinator -> (code location, launcher) ->
worker. Facts flow back up that tree as tells. The rule for new actors: ask only actors
further down; report anything upward with `tell`. Facts are bounded by the work that
produces them (one `RunEnded` per run), so the room they take is bounded too.
"""

from __future__ import annotations

import math
import time
import weakref
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

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

_ACTORS: weakref.WeakSet[Actor[Any, Any]] = weakref.WeakSet()
"""Every actor object of this process that is still referenced, for `live_actors`."""


def live_actors() -> list[Actor[Any, Any]]:
    """The actors of this process that are not closed, for metrics (inbox depth, restarts).

    An actor counts from its construction until `close` (or until nothing refers to it)."""
    return [actor for actor in list(_ACTORS) if not actor.closed]


class ReplySlot(Generic[RepT]):
    """Where the answer to one `ask` lands: filled once by the actor, awaited by the asker.

    The first outcome wins; later ones are ignored, so an actor failing a slot it already
    answered is harmless. An asker that stops waiting (timeout, cancellation) leaves the
    slot `abandoned`; the actor still fills it and nobody reads it, unless the actor drops
    abandoned asks unhandled (`Actor.drop_abandoned_asks`).
    """

    __slots__ = ("_abandoned", "_done", "_error", "_reply")

    def __init__(self) -> None:
        self._done = anyio.Event()
        self._reply: RepT | None = None
        self._error: BaseException | None = None
        self._abandoned = False

    @property
    def abandoned(self) -> bool:
        """Whether the asker stopped waiting before the slot was filled; never blocks."""
        return self._abandoned

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
        """Block until the slot is filled, then return the reply or raise the error.

        Cancelled before the slot is filled, it marks the slot `abandoned`.
        """
        try:
            await self._done.wait()
        finally:
            if not self._done.is_set():
                self._abandoned = True
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

    The inbox holds at most `inbox_size` (at least 1) asks waiting to be served: delivering
    an ask to a full inbox blocks, which is the backpressure on new work. Told messages
    (facts) never block and never count against that bound (see the module docstring for
    why this rules out deadlocks). Messages are served in the order they arrived. The inbox
    outlives `run`: a supervisor that restarts a crashed actor calls `run` again on the same
    object and the queued messages are served by the new run. `close` ends the inbox for
    good.
    """

    service: ClassVar[type[ServiceBase]]
    """The generated `XxxBase` whose methods this actor serves."""

    drop_abandoned_asks: ClassVar[bool] = False
    """True: an ask whose asker stopped waiting before the actor took it from the inbox is
    dropped unhandled. For commands that must either be acknowledged or not happen at all
    (a submitted run), so an overloaded actor sheds the work nobody waits for."""

    batched: ClassVar[tuple[type[Any], ...]] = ()
    """Message types whose asks waiting next to each other in the inbox are handled
    together, by `handle_batch`, up to `batch_limit` at once."""

    batch_limit: ClassVar[int] = 32

    def __init__(self, name: str, *, inbox_size: int = 64, clock: Clock = time.time) -> None:
        service = getattr(type(self), "service", None)
        if service is None:
            raise TypeError(f"{type(self).__qualname__} must set `service` to its XxxBase")
        self.name = name
        self.spec = ServiceSpec.of(service)
        self._clock = clock
        self._send: MemoryObjectSendStream[Envelope[ReqT, RepT]]
        self._receive: MemoryObjectReceiveStream[Envelope[ReqT, RepT]]
        # Unbounded, because tells never wait; asks are bounded by `_ask_room` instead.
        self._send, self._receive = anyio.create_memory_object_stream[Envelope[ReqT, RepT]](
            math.inf
        )
        self._ask_room = max(inbox_size, 1)
        self._asks_queued = 0  # asks in the inbox, plus room handed to woken askers
        self._waiters: deque[anyio.Event] = deque()  # askers waiting for room, oldest first
        self._ready = False
        self._busy_since: float | None = None
        self._heartbeat = 0.0
        self._restarts = 0
        self._last_error: str | None = None
        self._closed = False
        self._children: TaskGroup | None = None
        self._handling: Envelope[ReqT, RepT] | None = None
        # Taken from the inbox while gathering a batch, served next (by the next `serve`).
        self._carried: Envelope[ReqT, RepT] | None = None
        _ACTORS.add(self)

    # -- what a concrete actor writes ---------------------------------------------------

    @abstractmethod
    async def handle(self, message: ReqT) -> RepT | None:
        """Serve one message and return its reply; None stands for the method's empty reply.

        The reply goes back to an asker and is dropped for a teller. Raising crashes the
        actor: the asker gets `ActorUnavailableError` and `run` raises, for the supervisor.
        """

    async def handle_batch(self, messages: Sequence[ReqT]) -> list[RepT | Exception | None]:
        """Serve several asks of a `batched` type taken together, in inbox order, and return
        one outcome each: its reply (None: the empty reply) or the exception its handling
        raised, which fails only its own ask, with `ActorUnavailableError` from it; once
        every ask is answered the actor then crashes with the first, as `handle` raising
        does. By default each is handled by `handle` in turn."""
        outcomes: list[RepT | Exception | None] = []
        for message in messages:
            try:
                outcomes.append(await self.handle(message))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

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
        batched = self.batched
        try:
            while True:
                if self._carried is not None:
                    envelope, self._carried = self._carried, None
                else:
                    # The fast path skips `receive`'s checkpoint, a full loop cycle (~6 us
                    # of a ~20 us ask). A handler that never awaits still yields once the
                    # inbox is empty, and the inbox is bounded, so nothing starves.
                    try:
                        envelope = receive.receive_nowait()
                    except anyio.WouldBlock:
                        envelope = await receive.receive()
                    if envelope.reply is not None:
                        self._free_room()
                        if self.drop_abandoned_asks and envelope.reply.abandoned:
                            continue
                if batched and envelope.reply is not None and isinstance(envelope.message, batched):
                    batch, self._carried = self._gather(envelope)
                    if len(batch) > 1:
                        await self._serve_batch(batch)
                        continue
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

    def _gather(
        self, first: Envelope[ReqT, RepT]
    ) -> tuple[list[Envelope[ReqT, RepT]], Envelope[ReqT, RepT] | None]:
        """`first` and the asks of the same `batched` type waiting right behind it in the
        inbox (abandoned ones dropped, when the actor drops them), up to `batch_limit`; and
        the envelope taken that ends the run of them, to be served next (None if none)."""
        batch = [first]
        while len(batch) < self.batch_limit:
            try:
                envelope = self._receive.receive_nowait()
            except anyio.WouldBlock:
                return batch, None
            if envelope.reply is not None:
                self._free_room()
                if self.drop_abandoned_asks and envelope.reply.abandoned:
                    continue
            if envelope.reply is None or not isinstance(envelope.message, type(first.message)):
                return batch, envelope
            batch.append(envelope)
        return batch, None

    async def _serve_batch(self, batch: list[Envelope[ReqT, RepT]]) -> None:
        """`serve` for asks gathered by `_gather`: `handle_batch`, then each answered."""
        self._busy_since = self._heartbeat = self._clock()
        self._handling = batch[0]
        try:
            outcomes = await self.handle_batch([e.message for e in batch])
        except BaseException as exc:
            for envelope in batch:
                self._fail(envelope, exc)
            raise
        finally:
            self._handling = None
        crash: Exception | None = None
        for envelope, outcome in zip(batch, outcomes, strict=True):
            assert envelope.reply is not None
            if isinstance(outcome, Exception):
                self._fail(envelope, outcome)
                crash = crash or outcome
                continue
            reply = outcome
            if reply is None:
                reply = self.spec.method_for(type(envelope.message)).reply_type()  # type: ignore[assignment]
            envelope.reply.set_reply(reply)  # type: ignore[arg-type]
        self._busy_since = None
        if crash is not None:
            raise crash

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
        """Put an envelope in the inbox; an ask blocks while the inbox is full of asks.

        A told envelope (no reply slot) never blocks. With room it returns without yielding
        to the loop (that checkpoint costs as much as the rest of a memory ask). Blocked
        askers get in in the order they came, each woken only when its room is free (so a
        thousand waiting askers cost one wake-up per served ask). Raises
        `ActorUnavailableError` if the actor is closed. Cancelling it while blocked
        delivers nothing.
        """
        if envelope.reply is None or (not self._waiters and self._asks_queued < self._ask_room):
            self.deliver_nowait(envelope)
            return
        turn = anyio.Event()
        self._waiters.append(turn)
        try:
            await turn.wait()
        except BaseException:
            if turn.is_set():
                self._free_room()  # handed room it will not use: pass it on
            else:
                self._waiters.remove(turn)
            raise
        # The room freed for this ask is already counted in `_asks_queued`.
        self._put(envelope)

    def deliver_nowait(self, envelope: Envelope[ReqT, RepT]) -> None:
        """Put an envelope in the inbox, or raise `anyio.WouldBlock` for an ask when the
        inbox is full of asks (or askers wait for room); a told envelope always goes in.

        Raises `ActorUnavailableError` if the actor is closed.
        """
        if envelope.reply is None:
            self._put(envelope)
            return
        if (self._waiters or self._asks_queued >= self._ask_room) and not self._closed:
            raise anyio.WouldBlock
        self._put(envelope)
        self._asks_queued += 1

    def _put(self, envelope: Envelope[ReqT, RepT]) -> None:
        try:
            self._send.send_nowait(envelope)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise ActorUnavailableError(f"actor {self.name!r} is closed", actor=self.name) from exc

    def _free_room(self) -> None:
        # An ask left the inbox: hand its room to the longest-waiting asker, if any.
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._asks_queued -= 1

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
        while self._waiters:  # blocked askers wake, and find the inbox closed
            self._waiters.popleft().set()
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
        """The inbox's statistics: messages queued (asks and tells), the room for asks, and
        the askers blocked waiting for it."""
        stats = self._send.statistics()
        return MemoryObjectStreamStatistics(
            current_buffer_used=stats.current_buffer_used,
            max_buffer_size=self._ask_room,
            open_send_streams=stats.open_send_streams,
            open_receive_streams=stats.open_receive_streams,
            tasks_waiting_send=len(self._waiters),
            tasks_waiting_receive=stats.tasks_waiting_receive,
        )

    def _record_restart(self, error: str) -> None:
        # Called by the supervisor, which is the one that knows a run is a restart.
        self._restarts += 1
        self._last_error = error

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
