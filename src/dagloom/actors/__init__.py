"""The actor runtime: the actor base, its supervisor and the health reporter.

Concrete actors (coordinator, launcher, daemon, ...) live in their own modules here and build
on these names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dagloom.actors._backoff import Backoff
from dagloom.actors._protocol import Method, ServiceSpec
from dagloom.actors._runtime import (
    Actor,
    ActorHealth,
    Clock,
    Envelope,
    ReplySlot,
    RepT,
    ReqT,
    live_actors,
)
from dagloom.actors._supervisor import (
    RestartPolicy,
    Sleep,
    Supervisor,
    unwrap_exception_group,
)

if TYPE_CHECKING:
    from dagloom.actors._health import HealthReporter, HealthSource


def __getattr__(name: str) -> Any:
    """The health reporter loads on first use: it pulls in the gRPC stubs of the messages."""
    if name not in ("HealthReporter", "HealthSource"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from dagloom.actors import _health

    value = getattr(_health, name)
    globals()[name] = value
    return value


__all__ = [
    "Actor",
    "ActorHealth",
    "Backoff",
    "Clock",
    "Envelope",
    "HealthReporter",
    "HealthSource",
    "Method",
    "RepT",
    "ReplySlot",
    "ReqT",
    "RestartPolicy",
    "ServiceSpec",
    "Sleep",
    "Supervisor",
    "live_actors",
    "unwrap_exception_group",
]
