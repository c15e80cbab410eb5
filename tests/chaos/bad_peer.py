"""A stand-in supervisor that answers ``/health`` badly, on purpose.

A real supervisor cannot be made to send garbage, a truncated body, an endless or a
trickling answer, or nothing at all on demand; this one can, per instance and switchable
while the backend probes it. It speaks HTTP/1.1 at the socket level (a web framework would
refuse to misbehave this way). ``good`` answers a valid health document.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from emulator.models import EmulatorStatus, OverallStatus, QemuFacts, VideoFacts

MODES = ("good", "garbage", "truncated", "trickle", "endless", "huge", "nothing", "alternating")


def good_body(name: str) -> bytes:
    return (
        EmulatorStatus(
            instance=name,
            overall_status=OverallStatus.HEALTHY,
            qemu_healthy=True,
            timestamp=datetime.now(UTC),
            supervisor_uptime_seconds=1.0,
            qemu=QemuFacts(pid=1, running=True, qmp_status="running", booted=True),
            video=VideoFacts(display_active=True, estimated_frame_rate=30.0),
        )
        .model_dump_json()
        .encode()
    )


def _head(length: int | None, chunked: bool = False) -> bytes:
    lines = [b"HTTP/1.1 200 OK", b"Content-Type: application/json"]
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
    elif length is not None:
        lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n"


class BadPeer:
    def __init__(self, names: dict[str, str]) -> None:
        self.modes = dict(names)
        self.requests: dict[str, int] = dict.fromkeys(names, 0)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> BadPeer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/i/{name}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                path = request.split(b" ", 2)[1].decode()
                name = path.split("/")[2] if path.startswith("/i/") else ""
                # Only /health misbehaves; anything else (the status stream) is not there,
                # as on a supervisor that predates it.
                if name not in self.modes or not path.endswith("/health"):
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                self.requests[name] += 1
                if not await self._answer(name, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, name: str, writer: asyncio.StreamWriter) -> bool:
        """Answers one request; False when the connection is to be dropped."""
        mode = self.modes[name]
        if mode == "alternating":
            mode = "good" if self.requests[name] % 2 else "garbage"
        body = good_body(name)
        if mode == "good":
            writer.write(_head(len(body)) + body)
        elif mode == "garbage":
            junk = b"\x00\xff<html>not a health document</html>"
            writer.write(_head(len(junk)) + junk)
        elif mode == "truncated":
            writer.write(_head(len(body)) + body[: len(body) // 2])
            await writer.drain()
            return False
        elif mode == "trickle":
            writer.write(_head(len(body)))
            for byte in body:  # one byte a second: each read is quick, the answer is not
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1.0)
        elif mode == "endless":
            writer.write(_head(None, chunked=True))
            chunk = b"x" * 65536
            while True:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
        elif mode == "huge":
            size = 100 * 1024 * 1024
            writer.write(_head(size))
            chunk = b" " * 65536
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        elif mode == "nothing":
            await asyncio.sleep(3600)
        await writer.drain()
        return True
