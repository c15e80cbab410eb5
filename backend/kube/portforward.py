"""Port-forwarding to a pod through the Kubernetes API, as ``kubectl port-forward`` does.

Each local TCP connection accepted on ``127.0.0.1:<port>`` opens its own websocket to
``pods/{name}/portforward?ports=N`` (subprotocol ``v4.channel.k8s.io``) with the
caller's credentials (RBAC: ``pods/portforward``), and bytes are copied both ways.

The protocol: every binary frame starts with its channel byte — channel 0 carries the
port's data, channel 1 its errors — and the first frame of each channel is the port
number (2 bytes, little-endian) rather than data. :class:`ChannelReader` is that
framing, pure; :class:`PortForward` is the listener and the copying.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["DATA", "ERROR", "ChannelReader", "PortForward", "data_frame"]

DATA = 0
ERROR = 1
_CHUNK = 64 * 1024


def data_frame(payload: bytes) -> bytes:
    """A frame of local bytes for the pod's port."""
    return bytes([DATA]) + payload


@dataclass
class ChannelReader:
    """Frames from the API server → (data, error text); the port headers are dropped."""

    port: int | None
    """The port asked for (None: any; the backend's port is looked up per connection)."""
    _seen: set[int] = field(default_factory=set)

    def feed(self, frame: bytes) -> tuple[bytes, str | None]:
        if not frame:
            return b"", None
        channel, payload = frame[0], frame[1:]
        if channel not in self._seen:
            self._seen.add(channel)
            if len(payload) >= 2:
                (port,) = struct.unpack("<H", payload[:2])
                if self.port is not None and port != self.port:
                    return b"", f"the API server answered for port {port}, not {self.port}"
                payload = payload[2:]
        if channel == DATA:
            return payload, None
        if channel == ERROR:
            text = payload.decode("utf-8", errors="replace").strip()
            return b"", text or None
        return b"", None


class WebSocket(Protocol):
    """What is used of aiohttp's ``ClientWebSocketResponse``."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def receive(self) -> Any: ...

    async def close(self) -> Any: ...


Opener = Callable[[], Awaitable[WebSocket]]


class PortForward:
    """Listens on ``127.0.0.1`` and forwards each connection through ``open_ws``.

    ``errors`` keeps the last few errors (a refused connection in the pod, RBAC), for
    the console to show; a failing connection never stops the listener.
    """

    def __init__(
        self,
        open_ws: Opener,
        port: int | None,
        *,
        local_port: int = 0,
        sock: socket.socket | None = None,
    ) -> None:
        self.open_ws = open_ws
        self.port = port
        self.local_port = local_port
        self.sock = sock
        """A listening socket bound beforehand (its port is known before the loop runs)."""
        self.connections = 0
        self.errors: list[str] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Starts listening; returns the local port."""
        if self.sock is not None:
            self._server = await asyncio.start_server(self._accept, sock=self.sock)
        else:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.local_port)
        self.local_port = self._server.sockets[0].getsockname()[1]
        return self.local_port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _note(self, error: str) -> None:
        self.errors = [*self.errors[-4:], error]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            ws = await self.open_ws()
        except Exception as exc:  # refused, unreachable: this connection only
            self._note(str(exc))
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await self._copy(reader, writer, ws)
        finally:
            with contextlib.suppress(Exception):
                await ws.close()
            writer.close()
            self._tasks.discard(task)

    async def _copy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws: WebSocket
    ) -> None:
        frames = ChannelReader(self.port)

        async def upstream() -> None:
            while chunk := await reader.read(_CHUNK):
                await ws.send_bytes(data_frame(chunk))

        async def downstream() -> None:
            while True:
                msg = await ws.receive()
                data = getattr(msg, "data", None)
                if not isinstance(data, bytes | bytearray):
                    return  # closed (or a text frame, which this protocol does not use)
                payload, error = frames.feed(bytes(data))
                if error:
                    self._note(error)
                    return
                if payload:
                    writer.write(payload)
                    await writer.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            # Either side ending ends the connection, as kubectl's does.
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
