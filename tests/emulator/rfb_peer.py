"""A scripted RFB 3.8 server: the peer the VNC sampler talks to, under the test's control.

It lets a test send what QEMU sends rarely or at awkward moments (a bell, clipboard text, a
framebuffer size change, a malformed rectangle) and see what the client asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from emulator.vnc import VncSampler

BGRA = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


@dataclass
class ClientSession:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    encodings: list[int] = field(default_factory=list)
    requests: asyncio.Queue[tuple[bool, int, int]] = field(default_factory=asyncio.Queue)

    async def pump(self) -> None:
        """Reads client messages for as long as the connection lasts."""
        try:
            while True:
                kind = (await self.reader.readexactly(1))[0]
                if kind == 0:  # SetPixelFormat
                    await self.reader.readexactly(19)
                elif kind == 2:  # SetEncodings
                    (count,) = struct.unpack(">xH", await self.reader.readexactly(3))
                    data = await self.reader.readexactly(4 * count)
                    self.encodings = list(struct.unpack(f">{count}i", data))
                elif kind == 3:  # FramebufferUpdateRequest
                    inc, _, _, w, h = struct.unpack(">BHHHH", await self.reader.readexactly(9))
                    await self.requests.put((bool(inc), w, h))
                elif kind == 4:
                    await self.reader.readexactly(7)
                elif kind == 5:
                    await self.reader.readexactly(5)
                else:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def frame(self, width: int, height: int, bgra: tuple[int, int, int], x: int = 0,
              y: int = 0) -> None:  # fmt: skip
        pixel = bytes((*bgra, 0))
        self.writer.write(struct.pack(">BxH", 0, 1))
        self.writer.write(struct.pack(">HHHHi", x, y, width, height, 0))
        self.writer.write(pixel * (width * height))

    def desktop_size(self, width: int, height: int) -> None:
        self.writer.write(struct.pack(">BxH", 0, 1))
        self.writer.write(struct.pack(">HHHHi", 0, 0, width, height, -223))

    def bell(self) -> None:
        self.writer.write(b"\x02")

    def cut_text(self, text: str) -> None:
        data = text.encode("latin-1")
        self.writer.write(struct.pack(">B3xI", 3, len(data)) + data)


class RfbPeer:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.sessions: asyncio.Queue[ClientSession] = asyncio.Queue()
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RfbPeer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"RFB 003.008\n")
        await reader.readline()
        writer.write(b"\x01\x01")  # one security type: None
        await reader.readexactly(1)
        writer.write(b"\x00\x00\x00\x00")  # SecurityResult OK
        await reader.readexactly(1)  # ClientInit
        name = b"rfb-peer"
        writer.write(struct.pack(">HH", self.width, self.height) + BGRA)
        writer.write(struct.pack(">I", len(name)) + name)
        session = ClientSession(reader, writer)
        await self.sessions.put(session)
        await session.pump()


@contextlib.asynccontextmanager
async def running(sampler: VncSampler) -> AsyncIterator[asyncio.Task[None]]:
    """The sampler running in a task for the block; cancelled afterwards."""
    task = asyncio.create_task(sampler.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
