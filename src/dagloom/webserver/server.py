"""`Webserver`: serves the webserver's aiohttp application on `host:port`."""

from __future__ import annotations

import socket
import ssl

import anyio
import structlog
from aiohttp import web
from anyio.abc import TaskStatus

from dagloom.webserver._context import Backend
from dagloom.webserver.app import build_app

SHUTDOWN_TIMEOUT = 5.0
"""How long open requests get to finish when the server stops."""


class Webserver:
    """Serves GraphQL, GraphiQL and `/health` for `backend` on `host:port` (0: any free port),
    over HTTPS when given `ssl_context` (`dagloom.auth.server_ssl_context`).

    Not an actor: each HTTP request and websocket runs in its own aiohttp task, so a long
    subscription never holds up a query. It runs no user code: it reads storage through the
    instance and reaches the coordinator and code locations through refs, so several
    replicas over one storage serve the same answers. `run` is not re-entrant.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        graphiql: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.backend = backend
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self._graphiql = graphiql
        self._address: str | None = None
        self._log = structlog.get_logger("dagloom.webserver")

    @property
    def address(self) -> str:
        """`host:port` served; `RuntimeError` until `run` has started."""
        if self._address is None:
            raise RuntimeError("the webserver is not running")
        return self._address

    async def run(self, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; `task_status.started("host:port")` once listening.

        Raises `OSError` if the address is taken. On exit it stops listening, closes open
        websockets and gives requests `SHUTDOWN_TIMEOUT` seconds to finish.
        """
        runner = web.AppRunner(
            build_app(self.backend, graphiql=self._graphiql),
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
            except OSError:
                sock.close()
                raise
            site = web.SockSite(runner, sock, ssl_context=self.ssl_context)
            await site.start()
            port = sock.getsockname()[1]
            self._address = f"{self.host}:{port}"
            self._log.info(
                "webserver_listening", address=self._address, tls=self.ssl_context is not None
            )
            task_status.started(self._address)
            await anyio.sleep_forever()
        finally:
            self._address = None
            with anyio.CancelScope(shield=True):
                await runner.cleanup()
