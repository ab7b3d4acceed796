"""Refs to actors, and the two transports that carry their messages: memory and gRPC.

An actor is written once (`dagloom.actors.Actor`); the wiring picks how each caller reaches
it: `MemoryTransport().ref(actor)` in the same process, `GrpcTransport.ref(...)` across
processes. Both refs satisfy `ActorRef` and raise the same errors.
"""

from __future__ import annotations

from dagloom.transport._codec import DEFAULT_MAX_MESSAGE_SIZE, BoundedProtoCodec, check_wire
from dagloom.transport._corked import CorkedTransport, cork_connections
from dagloom.transport._grpc import (
    ACTOR_HEADER,
    DEFAULT_RECONNECT_BACKOFF,
    TELL_HEADER,
    GrpcRef,
    GrpcTransport,
    open_grpc_server,
    split_address,
)
from dagloom.transport._memory import (
    STRICT_ENV,
    MemoryRef,
    MemoryTransport,
    cross_wire,
    strict_from_env,
)
from dagloom.transport._ref import ActorRef
from dagloom.transport._security import (
    SECRET_ENV,
    TLS_CA_ENV,
    TLS_CERT_ENV,
    TLS_KEY_ENV,
    ClusterSecurity,
)

__all__ = [
    "ACTOR_HEADER",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_RECONNECT_BACKOFF",
    "SECRET_ENV",
    "STRICT_ENV",
    "TELL_HEADER",
    "TLS_CA_ENV",
    "TLS_CERT_ENV",
    "TLS_KEY_ENV",
    "ActorRef",
    "BoundedProtoCodec",
    "ClusterSecurity",
    "CorkedTransport",
    "GrpcRef",
    "GrpcTransport",
    "MemoryRef",
    "MemoryTransport",
    "check_wire",
    "cork_connections",
    "cross_wire",
    "open_grpc_server",
    "split_address",
    "strict_from_env",
]
