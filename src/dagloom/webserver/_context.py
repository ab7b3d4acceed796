"""What every GraphQL resolver reaches: the instance, refs to the coordinator and the code
locations, and the request (for the operation gate)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagloom.auth import Authenticator, Identity
from dagloom.errors import ActorUnavailableError
from dagloom.instance import DagloomInstance
from dagloom.messages.rpc import GetSnapshotRequest, LocationSnapshot
from dagloom.transport import ActorRef
from dagloom.webserver._operations import AllowAll, OperationGate

DEFAULT_CALL_TIMEOUT = 60.0
"""How long a resolver waits for an actor's reply."""


@dataclass(slots=True)
class Backend:
    """The webserver's reach into the deployment; shared by every request.

    It never holds user code: definitions come as snapshots from the code-location actors,
    and runs are submitted to the coordinator.
    """

    instance: DagloomInstance
    coordinator: ActorRef[Any, Any]
    locations: Mapping[str, ActorRef[Any, Any]]
    timeout: float = DEFAULT_CALL_TIMEOUT
    gate: OperationGate = field(default_factory=AllowAll)
    authenticator: Authenticator = field(default_factory=Authenticator.disabled)
    """Checks the tokens of HTTP requests (`/metrics`, the login page); with auth enabled,
    `gate` should be a `TokenGate` over the same authenticator (`secured_backend`)."""
    metrics_public: bool = False
    """Whether `/metrics` answers without a token while auth is enabled."""


@dataclass(slots=True)
class LocationView:
    """A code location as one request sees it: its snapshot, or why there is none."""

    name: str
    snapshot: LocationSnapshot | None
    unavailable: str = ""


@dataclass(slots=True)
class GraphQLContext:
    """The context of one GraphQL operation (`info.context`)."""

    backend: Backend
    request: Any = None
    response: Any = None
    connection_params: Any = None
    """A websocket's `connection_init` payload (it may carry the token)."""
    identity: Identity | None = None
    """Who the gate let run this operation; None until it has, or without auth."""
    _views: dict[str, LocationView] = field(default_factory=dict)
    version_records: dict[Any, Any] = field(default_factory=dict)
    """Asset key -> its AssetVersionRecord, read once per operation (staleness fields)."""

    @property
    def instance(self) -> DagloomInstance:
        return self.backend.instance

    @property
    def gate(self) -> OperationGate:
        return self.backend.gate

    async def location(self, name: str) -> LocationView:
        """The location's snapshot, asked once per operation; a location that does not
        answer is reported, not raised."""
        view = self._views.get(name)
        if view is not None:
            return view
        ref = self.backend.locations[name]
        try:
            reply = await ref.ask(GetSnapshotRequest(), timeout=self.backend.timeout)
        except (ActorUnavailableError, TimeoutError) as exc:
            view = LocationView(name, None, unavailable=f"code location {name!r}: {exc}")
        else:
            assert isinstance(reply, LocationSnapshot)
            view = LocationView(name, reply)
        self._views[name] = view
        return view

    async def all_locations(self) -> list[LocationView]:
        return [await self.location(name) for name in sorted(self.backend.locations)]

    def drop_cached(self, name: str) -> None:
        """Forget a location's snapshot (after a reload)."""
        self._views.pop(name, None)
