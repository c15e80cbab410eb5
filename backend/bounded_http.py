"""Reading HTTP answers with a ceiling on their size and one deadline for the whole exchange.

httpx's timeouts bound each network operation, not the answer: a server that sends one
byte every second keeps a read with a 2 s timeout going for ever, and a body is read into
memory whatever its size. Everything the backend and the console read from a peer (health
bodies, thumbnails, logs, the event stream) goes through here instead, so a slow, endless
or huge answer fails with a message that says so, and memory stays bounded.

Both errors are ``httpx.TransportError`` subclasses, so code that already treats transport
failures as "that peer is not usable right now" (breakers, reconnect loops) keeps doing so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

KiB = 1024
MiB = 1024 * KiB

# Headers that describe the body as it travelled, not the decoded bytes handed on.
_TRANSFER_HEADERS = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


class AnswerTooLarge(httpx.TransportError):
    """The answer is larger than the reader accepts."""


class AnswerTooSlow(httpx.TimeoutException):
    """The whole answer did not arrive within the deadline (a trickle, or an endless body)."""


def _request_of(resp: httpx.Response) -> httpx.Request | None:
    try:
        return resp.request
    except RuntimeError:  # a response built by hand (tests) has none
        return None


def _size(limit: int) -> str:
    if limit >= MiB:
        return f"{limit / MiB:g} MiB"
    return f"{limit / KiB:g} KiB" if limit >= KiB else f"{limit} bytes"


async def read_limited(resp: httpx.Response, limit: int) -> bytes:
    """The body of a streamed response, decoded, refusing more than ``limit`` bytes."""
    declared = resp.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise AnswerTooLarge(
            f"answer of {int(declared)} bytes is over the {_size(limit)} limit",
            request=_request_of(resp),
        )
    chunks: list[bytes] = []
    size = 0
    # Decoded bytes are counted, so a small gzip bomb is stopped as well.
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(
                f"answer is over the {_size(limit)} limit", request=_request_of(resp)
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    limit: int,
    deadline: float,
    **kwargs: Any,
) -> httpx.Response:
    """One request and its complete answer within ``deadline`` seconds, at most ``limit``
    bytes; returns an ordinary, fully read :class:`httpx.Response`."""
    try:
        async with asyncio.timeout(deadline):
            async with client.stream(method, url, **kwargs) as resp:
                body = await read_limited(resp, limit)
    except TimeoutError:
        raise AnswerTooSlow(f"no complete answer within {deadline:g} s") from None
    headers = [(k, v) for k, v in resp.headers.raw if k.lower() not in _TRANSFER_HEADERS]
    return httpx.Response(
        resp.status_code,
        headers=headers,
        content=body,
        request=resp.request,
        extensions=resp.extensions,
    )


class LineTooLong(ValueError):
    """A line of a stream grew past the reader's limit without ending."""


async def split_lines(
    chunks: AsyncIterator[bytes], max_line: int, *, split_long: bool = False
) -> AsyncIterator[str]:
    """The lines of a byte stream (ended by ``\n``, ``\r\n`` or ``\r``), none longer than
    ``max_line`` bytes: a peer that never ends a line cannot make the reader hold it all.
    A longer line raises :class:`LineTooLong`, or with ``split_long`` is handed on in
    ``max_line`` pieces (for logs, where showing beats refusing)."""
    buf = bytearray()
    searched = 0  # bytes at the start of buf known to hold no line end
    async for chunk in chunks:
        buf += chunk
        while True:
            end = _line_end(buf, searched)
            if end is not None and end[0] <= max_line:
                stop, skip = end
                line = bytes(buf[:stop])
                del buf[: stop + skip]
                searched = 0
                yield line.decode("utf-8", errors="replace")
                continue
            if end is None and len(buf) <= max_line:
                searched = max(0, len(buf) - 1)  # a lone trailing \r is looked at again
                break
            if not split_long:
                raise LineTooLong(f"a line of the stream is over the {_size(max_line)} limit")
            piece = bytes(buf[:max_line])
            del buf[:max_line]
            searched = 0
            yield piece.decode("utf-8", errors="replace")
    if buf:
        yield buf.rstrip(b"\r").decode("utf-8", errors="replace")


async def lines(resp: httpx.Response, max_line: int) -> AsyncIterator[str]:
    """:func:`split_lines` of an httpx response; a line too long is :class:`AnswerTooLarge`."""
    try:
        async for line in split_lines(resp.aiter_bytes(), max_line):
            yield line
    except LineTooLong as exc:
        raise AnswerTooLarge(str(exc), request=_request_of(resp)) from None


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str | None
    data: str | None
    id: str | None


async def sse_events(lines: AsyncIterator[str], max_data: int) -> AsyncIterator[SseEvent]:
    """The events of a ``text/event-stream`` body, from its lines (WHATWG rules, enough for
    the project's servers); comments (keep-alives) are skipped, ``retry`` is ignored (the
    reader's own backoff decides) and no event may hold more than ``max_data`` bytes of
    data (:class:`AnswerTooLarge`): many short data lines add up too."""
    event: str | None = None
    data: list[str] = []
    size = 0
    ident: str | None = None
    async for line in lines:
        if line == "":
            if data or event:
                yield SseEvent(event, "\n".join(data) if data else None, ident)
            event, data, size = None, [], 0
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            size += len(value)
            if size > max_data:
                raise AnswerTooLarge(f"an event of the stream is over {_size(max_data)}")
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            ident = value
    if data:
        yield SseEvent(event, "\n".join(data), ident)


def _line_end(buf: bytearray, start: int) -> tuple[int, int] | None:
    """(index of the line end, its length) or None; a ``\r`` at the very end waits for the
    next chunk, which may bring its ``\n``."""
    nl = buf.find(b"\n", start)
    cr = buf.find(b"\r", start, nl if nl >= 0 else len(buf))
    if cr >= 0:
        if cr + 1 == len(buf):
            return None
        return cr, 2 if buf[cr + 1 : cr + 2] == b"\n" else 1
    if nl >= 0:
        return nl, 1
    return None
