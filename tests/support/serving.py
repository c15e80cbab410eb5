"""Serving an ASGI app in the test's own event loop (fakes, simulators, the backend)."""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from tests.support.waiting import GiveUp, eventually


async def start_server(
    server: uvicorn.Server, sockets: list[socket.socket], timeout: float = 10.0
) -> asyncio.Task[None]:
    """Runs ``server`` in a task of this loop; returns the task once it accepts connections.

    A server that ends while starting (a bind error, a failing lifespan) fails at once,
    with its error as the cause, instead of after the timeout.
    """
    task = asyncio.get_running_loop().create_task(server.serve(sockets=sockets))

    def started() -> bool:
        if task.done():
            error = None if task.cancelled() else task.exception()
            raise GiveUp(f"the server ended while starting: {error!r}") from error
        return bool(server.started)

    await eventually(started, timeout, "the server started", interval=0.005)
    return task


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    return sock
