"""A fake of the API server's side of a port-forward websocket (a real cluster's
port-forward is tested with the cluster tests)."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

from backend.kube.portforward import DATA, ERROR


def header(channel: int, port: int) -> bytes:
    return bytes([channel]) + struct.pack("<H", port)


@dataclass
class Msg:
    data: bytes | None


class EchoPod:
    """The API server's side of one port-forward websocket, to a port that echoes."""

    def __init__(self, port: int, refuse: bool = False) -> None:
        self.queue: asyncio.Queue[Msg] = asyncio.Queue()
        self.queue.put_nowait(Msg(header(DATA, port)))
        self.queue.put_nowait(Msg(header(ERROR, port)))
        if refuse:
            self.queue.put_nowait(Msg(bytes([ERROR]) + b"dial tcp 127.0.0.1:5900: refused"))
        self.closed = False

    async def send_bytes(self, data: bytes) -> None:
        assert data[0] == DATA
        await self.queue.put(Msg(bytes([DATA]) + data[1:].upper()))

    async def receive(self) -> Msg:
        return await self.queue.get()

    async def close(self) -> None:
        self.closed = True
        await self.queue.put(Msg(None))
