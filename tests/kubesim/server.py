"""Serving the ASGI app with uvicorn on a fixed loopback port that can go down and up.

"API down" must look like a dead API server to clients: connection refused for new
connections and reset for open ones (watches, log streams), not a polite 503. So going
down closes the listening socket and aborts every connection; coming up binds the same
port again, so kubeconfigs stay valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn

from tests.kubesim.tls import ServerCerts
from tests.support.serving import start_server


class SimServer:
    def __init__(
        self, app: object, host: str = "127.0.0.1", port: int = 0, tls: ServerCerts | None = None
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.tls = tls
        self._config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            lifespan="off",
            http="h11",
            ws="none",
            log_config=None,  # never reconfigure the host process's (pytest's) logging
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
            ssl_certfile=str(tls.cert_file) if tls else None,
            ssl_keyfile=str(tls.key_file) if tls else None,
        )
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def _bind(self) -> socket.socket:
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it every response waits ~40 ms on delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        # Re-binding the same port right after going down must not fail on TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        return sock

    async def up(self) -> None:
        if self._server is not None:
            return
        sock = self._bind()
        server = uvicorn.Server(self._config)
        self._server = server
        try:
            self._task = await start_server(server, [sock])
        except BaseException:
            self._server = None
            raise

    async def down(self) -> None:
        server, task = self._server, self._task
        if server is None or task is None:
            return
        self._server = self._task = None
        for listener in getattr(server, "servers", []):
            listener.close()  # new connections are refused from here on
        for conn in list(server.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.abort()  # open watches and log streams see a reset
        server.should_exit = True
        server.force_exit = True
        # uvicorn's own shutdown polls every 100 ms and then sleeps another 100 ms; with the
        # listener closed and every connection aborted there is nothing left for it to do,
        # so cancel instead of paying that on every test teardown.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # let aborted connections deliver their disconnects
