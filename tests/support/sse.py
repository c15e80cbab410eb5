"""Reading a server-sent events stream in a test: the backend's /api/events, a
supervisor's /status/stream."""

from __future__ import annotations

import asyncio

import httpx

__all__ = ["SseReader"]


class SseReader:
    """Reads one /api/events stream: parsed events, comments counted, with deadlines."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.comments = 0
        self.retry: int | None = None

    async def next_event(self, timeout: float = 15.0) -> tuple[str, int, str]:
        """The next event as (event name, id, data)."""
        event, ident, data = "message", -1, []
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if line == "":
                    if data:
                        return event, ident, "\n".join(data)
                    continue
                if line.startswith(":"):
                    self.comments += 1
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    event = value
                elif field == "id":
                    ident = int(value)
                elif field == "data":
                    data.append(value)
                elif field == "retry":
                    self.retry = int(value)
        raise AssertionError("event stream ended")

    async def next_comment(self, timeout: float = 5.0) -> str:
        """Skips lines until a comment (keep-alive) arrives."""
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if line.startswith(":"):
                    self.comments += 1
                    return line
        raise AssertionError("event stream ended")
