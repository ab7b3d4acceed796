"""An actor's protocol: the request and reply types of its generated gRPC service."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import betterproto2

if TYPE_CHECKING:
    from betterproto2.grpclib import ServiceBase, ServiceStub


@dataclass(frozen=True, slots=True)
class Method:
    """One unary rpc: `route` is the gRPC path, e.g. `/dagloom.v1.rpc.Health/Ping`."""

    name: str
    route: str
    request_type: type[betterproto2.Message]
    reply_type: type[betterproto2.Message]


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """The methods of one generated service, looked up by request type.

    Built from the service's generated `XxxBase.__mapping__()`, so no method is written twice:
    the memory transport uses it to check (strict mode) and default replies, the gRPC transport
    to route calls. Each request type must belong to exactly one method, because a ref picks
    the method from the type of the message it is given.
    """

    name: str
    base: type[ServiceBase]
    stub: type[ServiceStub]
    methods: tuple[Method, ...]
    by_request: Mapping[type[betterproto2.Message], Method]

    @staticmethod
    def of(base: type[ServiceBase]) -> ServiceSpec:
        """The spec of a generated `XxxBase` class; cached, so calling it again is cheap.

        Raises `TypeError` if the service has a streaming method, shares a request type
        between two methods, or has no `XxxStub` beside it.
        """
        return _spec_of(base)

    def method_for(self, request_type: type[object]) -> Method:
        """The method that takes `request_type`; `TypeError` if the service has none."""
        method = self.by_request.get(request_type)  # type: ignore[arg-type]
        if method is None:
            known = ", ".join(sorted(t.__name__ for t in self.by_request))
            raise TypeError(
                f"{request_type.__name__} is not a request of service {self.name} "
                f"(it takes {known})"
            )
        return method


@functools.cache
def _spec_of(base: type[ServiceBase]) -> ServiceSpec:
    if not base.__name__.endswith("Base"):
        raise TypeError(f"{base.__qualname__} is not a generated service base (XxxBase)")
    stub_name = base.__name__.removesuffix("Base") + "Stub"
    stub = getattr(sys.modules[base.__module__], stub_name, None)
    if stub is None:
        raise TypeError(f"no {stub_name} beside {base.__qualname__}; generate clients too")
    # Generated bases are concrete (each method raises UNIMPLEMENTED), so one can be built
    # just to read its mapping.
    mapping: dict[str, Any] = base().__mapping__()  # type: ignore[attr-defined]
    methods: list[Method] = []
    by_request: dict[type[betterproto2.Message], Method] = {}
    service_name = ""
    for route, handler in mapping.items():
        service_name, _, method_name = route.lstrip("/").rpartition("/")
        if handler.cardinality.name != "UNARY_UNARY":
            raise TypeError(f"{route} is {handler.cardinality.name}; actors serve unary calls")
        method = Method(method_name, route, handler.request_type, handler.reply_type)
        if method.request_type in by_request:
            other = by_request[method.request_type]
            raise TypeError(
                f"{route} and {other.route} both take {method.request_type.__name__}; "
                "give each method its own request message"
            )
        methods.append(method)
        by_request[method.request_type] = method
    if not methods:
        raise TypeError(f"{base.__qualname__} has no methods")
    return ServiceSpec(service_name, base, stub, tuple(methods), by_request)


def serves(service: type) -> Callable[[type], bool]:
    """The membership test of an actor component family: a class belongs when it is an
    `Actor` whose `service` is the generated `service` (e.g. `RunLauncherBase`)."""

    def accepts(cls: type) -> bool:
        from dagloom.actors._runtime import Actor

        return issubclass(cls, Actor) and getattr(cls, "service", None) is service

    return accepts
