"""Where a run's events go: the executor emits into a sink; storage and lists implement it."""

from __future__ import annotations

from typing import Protocol

from dagloom.messages import Event


class EventSink(Protocol):
    """Receives a run's events in the order they happen.

    `emit` never blocks and never raises for a storage reason: a sink buffers what it cannot
    write at once. `flush` returns once every event emitted before the call is durable (for a
    storage-backed sink) or delivered; calling it twice is safe. The executor flushes before it
    reports a run finished, so a terminal event is durable before anyone is told.
    """

    def emit(self, event: Event) -> None: ...

    async def flush(self) -> None: ...


class ListEventSink:
    """Keeps events in a list in memory; `flush` has nothing to do."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        return None


class FanoutEventSink:
    """Emits each event to several sinks in order; `flush` flushes them all."""

    __slots__ = ("_emits", "_sinks")

    def __init__(self, *sinks: EventSink) -> None:
        self._sinks = sinks
        self._emits = tuple(sink.emit for sink in sinks)

    def emit(self, event: Event) -> None:
        for emit in self._emits:
            emit(event)

    async def flush(self) -> None:
        for sink in self._sinks:
            await sink.flush()
