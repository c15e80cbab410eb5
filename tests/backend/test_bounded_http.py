"""The bounded reader and the request-body ceiling, against real servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backend.bounded_http import AnswerTooLarge, AnswerTooSlow, fetch, lines
from emulator.bodylimit import BodyLimit


def _stream(chunks: list[bytes]) -> httpx.Response:
    async def gen() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return httpx.Response(200, content=gen())


async def _lines(chunks: list[bytes], limit: int) -> list[str]:
    return [line async for line in lines(_stream(chunks), limit)]


async def test_lines_split_on_any_line_end_even_across_chunks() -> None:
    got = await _lines([b"ab\r", b"\ncd\n", b"\n", b"e\rf\r\n", b"tail"], 10)
    assert got == ["ab", "cd", "", "e", "f", "tail"]


async def test_a_line_over_the_limit_is_refused_whether_it_ends_or_not() -> None:
    with pytest.raises(AnswerTooLarge, match="over the 10 bytes limit"):
        await _lines([b"0123456789", b"x\n"], 10)
    with pytest.raises(AnswerTooLarge):
        await _lines([b"0123456789012"], 10)
    assert await _lines([b"0123456789\n"], 10) == ["0123456789"]


class _Peer:
    """A loopback HTTP server that answers every request with ``answer``."""

    def __init__(self, answer: bytes, trickle: float = 0.0) -> None:
        self.answer, self.trickle = answer, trickle

    async def __aenter__(self) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            for i in range(0, len(self.answer), 1 if self.trickle else len(self.answer)):
                writer.write(self.answer[i : i + (1 if self.trickle else len(self.answer))])
                await writer.drain()
                if self.trickle:
                    await asyncio.sleep(self.trickle)
            writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


def _http(body: bytes, length: int | None = None) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body) if length is None else length,
        body,
    )


async def test_fetch_bounds_size_and_the_whole_exchange() -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        async with _Peer(_http(b'{"ok": true}')) as url:
            resp = await fetch(client, "GET", url, limit=1024, deadline=5)
            assert resp.json() == {"ok": True}
        async with _Peer(_http(b"", length=10**9)) as url:
            with pytest.raises(AnswerTooLarge, match="1000000000 bytes"):
                await fetch(client, "GET", url, limit=1024, deadline=5)
        # Every read is quick; the answer never completes within the deadline.
        async with _Peer(_http(b"x" * 50), trickle=0.05) as url:
            with pytest.raises(AnswerTooSlow, match=r"no complete answer within 0\.5 s"):
                await fetch(client, "GET", url, limit=1024, deadline=0.5)


async def test_request_bodies_over_the_limit_are_refused_declared_or_chunked() -> None:
    seen: list[int] = []

    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        seen.append(len(body))
        return JSONResponse({"bytes": len(body)})

    app = BodyLimit(Starlette(routes=[Route("/", echo, methods=["POST"])]), limit=1000)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/", content=b"x" * 1000)).json() == {"bytes": 1000}
        assert (await client.post("/", content=b"x" * 1001)).status_code == 413

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"x" * 400

        resp = await client.post("/", content=chunks())
        assert resp.status_code == 413
        assert resp.json()["error"] == "payload_too_large"
    assert seen == [1000], "the application never got an oversized body"
