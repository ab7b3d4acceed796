"""Ports for servers whose port must be known before they start."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager


@contextmanager
def reserved_ports(names: Sequence[str], host: str = "127.0.0.1") -> Iterator[dict[str, int]]:
    """A port for each name, picked by the OS (port 0) and held for the block.

    Nodes of one topology must know each other's ports before any of them starts (control
    and workers call each other), so they cannot each bind port 0. Each port is held by a
    socket bound with SO_REUSEADDR that never listens: Linux then gives it to no other bind
    to port 0 and no outgoing connection, yet a server that also sets SO_REUSEADDR, as
    dagloom's do, may bind and listen on it, and bind it again after a restart. Unlike
    picking a free port and closing it, nothing can take the port in between.
    """
    with ExitStack() as stack:
        ports = {}
        for name in names:
            sock = stack.enter_context(socket.socket())
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, 0))
            ports[name] = sock.getsockname()[1]
        yield ports
