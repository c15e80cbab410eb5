"""Minimal ASGI plumbing: a request object, plain and streaming responses.

The simulator speaks raw ASGI rather than through a web framework because watch and
log-follow streams need two things frameworks hide: every chunk flushed as its own HTTP
chunk, and prompt notice when the client goes away (so idle watches do not pile up).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = "application/json"


@dataclass
class Request:
    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    receive: Receive
    query: dict[str, list[str]] = field(default_factory=dict)
    _body: bytes | None = None

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> Request:
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", []):
            key = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        qs = scope.get("query_string", b"").decode("latin-1")
        return cls(
            method=scope["method"].upper(),
            path=scope["path"],
            query_string=qs,
            headers=headers,
            receive=receive,
            query=parse_qs(qs, keep_blank_values=True),
        )

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def q_bool(self, name: str) -> bool:
        return (self.q(name) or "").lower() in ("true", "1")

    def q_int(self, name: str) -> int | None:
        value = self.q(name)
        if value is None or value == "":
            return None
        return int(value)

    @property
    def target(self) -> str:
        """Path plus query, what fault rules match against."""
        return f"{self.path}?{self.query_string}" if self.query_string else self.path

    async def body(self) -> bytes:
        if self._body is None:
            chunks: list[bytes] = []
            while True:
                msg = await self.receive()
                if msg["type"] == "http.disconnect":
                    break
                chunks.append(msg.get("body", b""))
                if not msg.get("more_body"):
                    break
            self._body = b"".join(chunks)
        return self._body


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, obj: Any, content_type: str = JSON) -> Response:
        return cls(status, json.dumps(obj, separators=(",", ":")).encode() + b"\n", content_type)


@dataclass
class StreamResponse:
    status: int
    chunks: AsyncIterator[bytes]
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)


async def send_response(send: Send, resp: Response) -> None:
    headers = [
        (b"content-type", resp.content_type.encode()),
        (b"content-length", str(len(resp.body)).encode()),
        (b"cache-control", b"no-cache, private"),
        *[(k.encode(), v.encode()) for k, v in resp.headers],
    ]
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    await send({"type": "http.response.body", "body": resp.body, "more_body": False})


async def send_stream(send: Send, receive: Receive, resp: StreamResponse) -> None:
    """Send chunks as they come, ending early (and quietly) if the client disconnects."""
    headers = [
        (b"content-type", resp.content_type.encode()),
        (b"cache-control", b"no-cache, private"),
        *[(k.encode(), v.encode()) for k, v in resp.headers],
    ]
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})

    async def wait_disconnect() -> None:
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return

    disconnect = asyncio.ensure_future(wait_disconnect())
    it = resp.chunks
    gone = False
    try:
        while True:
            nxt = asyncio.ensure_future(it.__anext__())
            done, _ = await asyncio.wait({nxt, disconnect}, return_when=asyncio.FIRST_COMPLETED)
            if nxt not in done:
                nxt.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await nxt
                gone = True
                break
            try:
                chunk = nxt.result()
            except StopAsyncIteration:
                break
            try:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except OSError:
                gone = True
                break
        if not gone:
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        disconnect.cancel()
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
